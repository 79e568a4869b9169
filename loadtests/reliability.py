"""The reliability checks of a bench run: the test suites behind the report's reliability claims,
run in a pytest subprocess and summarized for the results document (`doc["checks"]["reliability"]`).

Suites: `tests/reliability` (security, limits, owners, login limiting, faults, database outage,
raw-HTTP fuzzing), `tests/http/test_bad_input.py` (the bad-input table on both REST apps),
`tests/contract/test_parity.py` and `tests/contract/test_graphql_schema.py` (the three apps agree;
the GraphQL schema under schemathesis). Counts come from pytest's JUnit XML, so the summary
describes exactly the run that produced it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from loadtests.interrupt import run_child

SUITES: dict[str, str] = {
    "reliability": "tests/reliability",
    "bad_input": "tests/http/test_bad_input.py",
    "parity": "tests/contract/test_parity.py",
    "graphql_schema": "tests/contract/test_graphql_schema.py",
}
# Tests that inject a fault (a dead database, a failing upstream, clients that vanish) rather
# than send a bad request: the "faults injected" count of the summary.
FAULT_TESTS = (
    "tests/reliability/test_database_outage.py::",
    "tests/reliability/test_graphql_chat_faults.py::",
    "tests/reliability/test_stream_cleanup.py::",
    "tests/reliability/test_raw_http_fuzz.py::test_client_leaving_mid_body",
)
# A failure that reports a server error: a 5xx status in the assertion message, or a masked one.
_SERVER_ERROR = re.compile(
    r"\b5\d\d for\b|, 5\d\d, |HTTP/1\.[01] 5\d\d|status(?:_code)?\W{0,4}5\d\d\b"
    r"|INTERNAL_SERVER_ERROR|Internal server error|unhandled exception"
)
TIMEOUT_S = 1800
JUNIT_NAME = "reliability-junit.xml"
OUTPUT_NAME = "reliability-output.txt"


def _node_path(case: ET.Element) -> str:
    """`tests/x/test_y.py::test_name[params]` of a JUnit testcase (pytest's classname is the
    dotted module path, plus the class for tests in classes: `TestX` is not a module)."""
    parts = case.get("classname", "").split(".")
    name = case.get("name", "")
    modules = [i for i, part in enumerate(parts) if part.startswith("test")]
    if not modules:
        return "::".join([*parts, name])
    cut = modules[-1] + 1
    return "::".join(["/".join(parts[:cut]) + ".py", *parts[cut:], name])


def summarize_junit(xml_path: Path, suites: dict[str, str] = SUITES) -> dict[str, Any]:
    """Counts per suite and the totals the report prints, from pytest's JUnit XML."""
    root = ET.parse(xml_path).getroot()
    per_suite: dict[str, dict[str, Any]] = {
        name: {"path": path, "tests": 0, "passed": 0, "failed": 0, "skipped": 0, "seconds": 0.0}
        for name, path in suites.items()
    }
    faults_passed = 0
    server_errors = 0
    failures: list[str] = []
    details: list[dict[str, str]] = []
    for case in root.iter("testcase"):
        node = _node_path(case)
        suite = next((n for n, p in suites.items() if node.startswith(p)), None)
        if suite is None:
            continue
        counts = per_suite[suite]
        counts["tests"] += 1
        counts["seconds"] += float(case.get("time", "0") or 0)
        failed = case.find("failure") if case.find("failure") is not None else case.find("error")
        if failed is not None:
            counts["failed"] += 1
            failures.append(node)
            text = (failed.get("message") or "") + (failed.text or "")
            details.append(_failure_detail(node, failed, case))
            if _SERVER_ERROR.search(text):
                server_errors += 1
        elif case.find("skipped") is not None:
            counts["skipped"] += 1
        else:
            counts["passed"] += 1
            if node.startswith(FAULT_TESTS):
                faults_passed += 1
    for counts in per_suite.values():
        counts["seconds"] = round(counts["seconds"], 2)
    totals = {key: sum(s[key] for s in per_suite.values()) for key in ("tests", "passed", "failed", "skipped")}
    return {
        "suites": per_suite,
        "totals": {**totals, "seconds": round(sum(s["seconds"] for s in per_suite.values()), 2)},
        "bad_inputs_tried": per_suite["bad_input"]["tests"] if "bad_input" in per_suite else 0,
        "faults_injected": faults_passed,
        "server_errors_found": server_errors,
        "failures": failures[:50],
        "failure_details": details[:50],
    }


def _failure_detail(node: str, failed: ET.Element, case: ET.Element) -> dict[str, str]:
    """Which test failed and why: pytest's one-line message (the assertion, which names the
    request and the answer in these suites) and the end of its traceback and captured output."""
    message = (failed.get("message") or "").strip()
    trace = (failed.text or "").strip()
    captured = "\n".join((e.text or "").strip() for e in case if e.tag in ("system-out", "system-err") and e.text)
    why = message.splitlines()[0] if message else (trace.splitlines()[-1] if trace else failed.tag)
    tail = (trace + ("\n--- captured ---\n" + captured if captured else ""))[-1500:]
    return {"test": node, "why": why[:500], "trace_tail": tail}


def run_reliability_checks(repo_root: Path, keep_dir: Path | None = None) -> dict[str, Any]:
    """Run the reliability suites once (pytest subprocess, JUnit XML to a temporary file) and
    summarize them: per suite {tests, passed, failed, skipped, seconds}, plus bad inputs tried,
    faults injected, server errors (5xx) found, the profile and the wall time.

    `status` is "passed" when every test passed, "failed" when any failed, "error" when pytest
    could not run (no JUnit file: the summary then says why, from pytest's output).

    With `keep_dir` (the run's directory) the JUnit XML and pytest's output are kept there as
    reliability-junit.xml and reliability-output.txt, named in the summary (`junit`, `output`)
    by their file name: beside the results.json, where a failure can be read in full."""
    paths = [p for p in SUITES.values() if (repo_root / p).exists()]
    suites = {name: path for name, path in SUITES.items() if path in paths}
    with tempfile.TemporaryDirectory(prefix="stackbench-reliability-") as tmp:
        junit = (keep_dir or Path(tmp)) / JUNIT_NAME
        junit.parent.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "ignore",
                f"--junitxml={junit}", "-o", "junit_family=xunit2", *paths]  # fmt: skip
        started = time.monotonic()
        try:
            proc = run_child(argv, cwd=repo_root, timeout=TIMEOUT_S)  # stopped cleanly on Ctrl-C
            returncode, output = proc.returncode, proc.stdout + proc.stderr
        except subprocess.TimeoutExpired as exc:
            partial = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else exc.stdout or ""
            returncode, output = -1, f"timed out after {TIMEOUT_S} s: {partial}"
        wall = round(time.monotonic() - started, 1)
        kept = {}
        if keep_dir is not None:
            (keep_dir / OUTPUT_NAME).write_text(output)
            kept = {"output": OUTPUT_NAME, **({"junit": JUNIT_NAME} if junit.exists() else {})}
        if not junit.exists():
            return {"status": "error", "returncode": returncode, "wall_seconds": wall,
                    "profile": _profile(), "output_tail": output[-2000:], "suites": {}, **kept}  # fmt: skip
        summary = {**summarize_junit(junit, suites), **kept}
    summary["status"] = "passed" if returncode == 0 and summary["totals"]["failed"] == 0 else "failed"
    summary["returncode"] = returncode
    summary["wall_seconds"] = wall
    summary["profile"] = _profile()
    summary["command"] = "pytest " + " ".join(paths)
    return summary


def failure_lines(summary: dict[str, Any], limit: int = 5) -> list[str]:
    """`test: why` for the first `limit` failures, and how many more (the terminal's view)."""
    details = summary.get("failure_details") or [{"test": t, "why": ""} for t in summary.get("failures") or []]
    lines = [f"{d['test']}: {d['why']}" if d.get("why") else str(d["test"]) for d in details[:limit]]
    failed = int((summary.get("totals") or {}).get("failed") or len(details))
    if failed > limit:
        lines.append(f"… and {failed - limit} more")
    return lines


def _profile() -> str:
    return os.environ.get("STACKBENCH_CONTRACT_PROFILE", "default")


if __name__ == "__main__":  # python -m loadtests.reliability: the summary as JSON
    import json

    print(json.dumps(run_reliability_checks(Path(__file__).resolve().parent.parent), indent=2))
