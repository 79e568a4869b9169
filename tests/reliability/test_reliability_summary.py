"""loadtests/reliability.py reads pytest's JUnit XML right, and the report renders the summary."""

from __future__ import annotations

from pathlib import Path

from loadtests.reliability import _node_path, summarize_junit
from loadtests.report import Table, reliability_section

JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" tests="7">
 <testcase classname="tests.reliability.test_raw_http_fuzz" name="test_pinned_raw_requests[flask-invalid-utf8]" time="0.10"/>
 <testcase classname="tests.reliability.test_raw_http_fuzz" name="test_hostile_requests_below_500[rest]" time="1.5">
  <failure message="AssertionError: rest: 500 for b'POST /api/decks'">trace</failure></testcase>
 <testcase classname="tests.reliability.test_database_outage" name="test_outage_gives_503_fast_and_recovers[flask]" time="2"/>
 <testcase classname="tests.reliability.test_raw_http_fuzz" name="test_client_leaving_mid_body_is_not_a_server_error[graphql-1000]" time="0.5"/>
 <testcase classname="tests.http.test_bad_input" name="test_bad_request[flask-postgresql-deck-title-201]" time="0.01"/>
 <testcase classname="tests.http.test_bad_input" name="test_bad_request[flask-sqlite-deck-title-201]" time="0.01">
  <skipped message="no flask"/></testcase>
 <testcase classname="tests.contract.test_parity" name="test_scripted_sequence" time="3">
  <failure message="ParityError: flask 404, fastapi 404, graphql NOT_FOUND">trace</failure></testcase>
 <testcase classname="tests.other.test_elsewhere" name="test_not_ours" time="9"/>
</testsuite></testsuites>
"""


def test_summary_counts_per_suite_faults_and_server_errors(tmp_path: Path) -> None:
    xml = tmp_path / "junit.xml"
    xml.write_text(JUNIT)
    summary = summarize_junit(xml)
    assert summary["suites"]["reliability"] == {"path": "tests/reliability", "tests": 4, "passed": 3, "failed": 1,
                                                "skipped": 0, "seconds": 4.1}  # fmt: skip
    assert summary["suites"]["bad_input"]["tests"] == 2 and summary["suites"]["bad_input"]["skipped"] == 1
    assert summary["suites"]["parity"]["failed"] == 1 and summary["suites"]["graphql_schema"]["tests"] == 0
    assert summary["totals"] == {"tests": 7, "passed": 4, "failed": 2, "skipped": 1, "seconds": 7.12}
    assert summary["bad_inputs_tried"] == 2
    assert summary["faults_injected"] == 2  # the outage and the client that left (both passed)
    assert summary["server_errors_found"] == 1  # the 500; the parity failure is not a 5xx
    assert summary["failures"] == [
        "tests/reliability/test_raw_http_fuzz.py::test_hostile_requests_below_500[rest]",
        "tests/contract/test_parity.py::test_scripted_sequence",
    ]


def test_node_path_keeps_classes_apart_from_modules() -> None:
    from xml.etree.ElementTree import Element

    case = Element("testcase", classname="tests.http.test_x.TestThing", name="test_a[b.c]")
    assert _node_path(case) == "tests/http/test_x.py::TestThing::test_a[b.c]"


def test_report_renders_the_reliability_summary(tmp_path: Path) -> None:
    xml = tmp_path / "junit.xml"
    xml.write_text(JUNIT)
    rel = {**summarize_junit(xml), "status": "failed", "returncode": 1, "wall_seconds": 12.3,
           "profile": "default", "command": "pytest tests/reliability"}  # fmt: skip
    section = reliability_section({"cells": [], "checks": {"sm2-parity": "passed", "reliability": rel}})
    tables = [b for b in section.blocks if isinstance(b, Table)]
    assert tables[0].rows == [["sm2-parity", "passed"]]  # the named checks, without the summary dict
    suites = tables[1]
    assert suites.header[:3] == ["reliability suite", "path", "tests"]
    assert suites.rows[0] == ["reliability", "`tests/reliability`", "4", "3", "**1**", "0", "4.1"]
    assert suites.rows[-1] == ["total", "", "7", "4", "2", "1", "7.1"]
    text = " ".join(b for b in section.blocks if isinstance(b, str))
    assert "2 bad inputs tried, 2 faults injected, **1** server errors (5xx) found" in text
    assert any("test_hostile_requests_below_500[rest]" in row[0] for row in tables[2].rows)  # failed tests, with why
    broken = reliability_section({"cells": [], "checks": {"reliability": {"status": "error", "returncode": 4, "suites": {}}}})
    assert any("could not run" in b for b in broken.blocks if isinstance(b, str))


def test_failures_say_which_test_failed_and_why(tmp_path: Path) -> None:
    xml = tmp_path / "junit.xml"
    xml.write_text(JUNIT.replace('trace</failure></testcase>\n <testcase classname="tests.reliability.test_database_outage"',
                                 'trace line\nE   assert 500 == 200</failure><system-out>POST /api/decks -> 500</system-out>'
                                 '</testcase>\n <testcase classname="tests.reliability.test_database_outage"'))
    details = summarize_junit(xml)["failure_details"]
    assert [d["test"] for d in details] == summarize_junit(xml)["failures"]
    assert details[0]["why"] == "AssertionError: rest: 500 for b'POST /api/decks'"
    assert "assert 500 == 200" in details[0]["trace_tail"] and "POST /api/decks -> 500" in details[0]["trace_tail"]
    rel = {**summarize_junit(xml), "status": "failed", "junit": "reliability-junit.xml", "output": "reliability-output.txt"}
    section = reliability_section({"cells": [], "checks": {"reliability": rel}})
    failed = next(b for b in section.blocks if isinstance(b, Table) and b.header[0] == "failed test")
    assert failed.rows[0] == ["`tests/reliability/test_raw_http_fuzz.py::test_hostile_requests_below_500[rest]`",
                              "AssertionError: rest: 500 for b'POST /api/decks'"]
    assert any("`reliability-junit.xml` (JUnit XML)" in b for b in section.blocks if isinstance(b, str))


def test_a_real_failing_suite_keeps_its_junit_and_output_beside_the_run(tmp_path: Path) -> None:
    """A pytest subprocess over a suite with one failing test: the summary names the test and
    its assertion, and the JUnit XML and the output stay in the run's directory."""
    from loadtests.reliability import JUNIT_NAME, OUTPUT_NAME, failure_lines, run_reliability_checks

    suite = tmp_path / "repo" / "tests" / "reliability"
    suite.mkdir(parents=True)
    (suite / "test_probe.py").write_text(
        "def test_fine():\n    assert True\n\n"
        "def test_outage_answer():\n    status = 500\n    assert status == 503, f'GET /decks gave {status}'\n")
    run_dir = tmp_path / "run"
    summary = run_reliability_checks(tmp_path / "repo", keep_dir=run_dir)
    assert summary["status"] == "failed" and summary["totals"]["failed"] == 1
    assert summary["junit"] == JUNIT_NAME and (run_dir / JUNIT_NAME).exists() and (run_dir / OUTPUT_NAME).exists()
    [line] = failure_lines(summary)
    assert line.startswith("tests/reliability/test_probe.py::test_outage_answer: ") and "GET /decks gave 500" in line
