"""App ÷ framework floor (loadtests/floor_ratios.py) on synthetic cells, and its report section."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from loadtests import results
from loadtests.floor_ratios import TARGET, Measured, Ratio, StackInfo, floor_ratios
from loadtests.report.document import to_html, to_markdown
from loadtests.report.overhead import overhead_section
from tests.loadtests.test_report import ENVIRONMENT

STACKS = {
    "rest-uvicorn": StackInfo("rest", "uvicorn", "app"),
    "rest-granian": StackInfo("rest", "granian-asgi", "app"),
    "flask-gunicorn-gthread": StackInfo("flask", "gunicorn-gthread", "app"),
    "graphql-uvicorn": StackInfo("graphql", "uvicorn", "app"),
    "hello-fastapi": StackInfo("hello-fastapi", "uvicorn", "floor"),
    "hello-flask": StackInfo("hello-flask", "gunicorn-gthread", "floor"),
    "db-fastapi": StackInfo("db-fastapi", "uvicorn", "floor"),
    "db-flask": StackInfo("db-flask", "gunicorn-gthread", "floor"),
}


def _one(rows: list[Ratio], app: str, scenario: str) -> Ratio:
    found = [r for r in rows if r.app == app and r.scenario == scenario]
    assert len(found) == 1, found
    return found[0]


def test_ratios_to_the_floor_on_the_same_server_with_the_target() -> None:
    cells = [Measured("rest-uvicorn", "config", 100, 3000.0), Measured("hello-fastapi", "config", 100, 4000.0),
             Measured("flask-gunicorn-gthread", "card", 100, 900.0), Measured("db-flask", "card", 100, 1000.0),
             Measured("rest-uvicorn", "card", 100, 800.0), Measured("db-fastapi", "card", 100, 1000.0)]
    rows = floor_ratios(cells, STACKS, primary=100)
    config = _one(rows, "rest-uvicorn", "config")
    assert config.floor == "hello-fastapi" and config.value == 0.75 and config.reading == "not met"
    card = _one(rows, "flask-gunicorn-gthread", "card")
    assert card.floor == "db-flask" and card.value == 0.9 and card.reading == "met"
    at_target = _one(rows, "rest-uvicorn", "card")
    assert at_target.value == TARGET and at_target.reading == "met"  # the target itself is met
    assert {r.app for r in rows} == {"rest-uvicorn", "flask-gunicorn-gthread"}  # floors get no row


def test_missing_failed_or_zero_floors_read_not_measured_never_a_division() -> None:
    cells = [Measured("rest-uvicorn", "config", 100, 3000.0), Measured("hello-fastapi", "config", 100, 0.0),
             Measured("rest-granian", "config", 100, 3500.0),
             Measured("flask-gunicorn-gthread", "config", 100, 2000.0),
             Measured("flask-gunicorn-gthread", "card", 100, 900.0), Measured("db-flask", "card", 100, None),
             Measured("rest-uvicorn", "card", 100, None), Measured("db-fastapi", "card", 100, 1000.0)]
    stacks = {k: v for k, v in STACKS.items() if k != "hello-flask"}
    rows = floor_ratios(cells, stacks, primary=100)
    for row in rows:
        assert row.value is None and row.reading == "not measured" and row.why, row
    assert "granian-asgi" in _one(rows, "rest-granian", "config").why  # the floor runs on uvicorn only
    assert "not in this run" in _one(rows, "flask-gunicorn-gthread", "config").why
    assert "failed or refused" in _one(rows, "flask-gunicorn-gthread", "card").why
    assert "rest-uvicorn cell" in _one(rows, "rest-uvicorn", "card").why


def test_graphql_card_uses_the_strawberry_database_floor_and_config_strawberrys() -> None:
    stacks = {**STACKS, "hello-strawberry": StackInfo("hello-strawberry", "uvicorn", "floor"),
              "db-strawberry": StackInfo("db-strawberry", "uvicorn", "floor")}
    cells = [Measured("graphql-uvicorn", "card", 100, 700.0), Measured("db-fastapi", "card", 100, 1000.0),
             Measured("db-strawberry", "card", 100, 800.0),
             Measured("graphql-uvicorn", "config", 100, 900.0), Measured("hello-strawberry", "config", 100, 1000.0)]
    rows = floor_ratios(cells, stacks, primary=100)
    card = _one(rows, "graphql-uvicorn", "card")
    assert card.floor == "db-strawberry" and card.value == 0.875 and card.reading == "met"  # never db-fastapi (REST)
    config = _one(rows, "graphql-uvicorn", "config")
    assert config.floor == "hello-strawberry" and config.value == 0.9


def test_graphql_card_without_its_floor_in_the_run_reads_not_measured() -> None:
    stacks = {**STACKS, "db-strawberry": StackInfo("db-strawberry", "uvicorn", "floor")}
    rows = floor_ratios([Measured("graphql-uvicorn", "card", 100, 700.0), Measured("db-fastapi", "card", 100, 1000.0)],
                        stacks, primary=100)
    card = _one(rows, "graphql-uvicorn", "card")
    assert card.value is None and card.reading == "not measured" and "db-strawberry not measured" in card.why


def test_graphql_config_above_its_floor_is_still_met_but_the_floor_is_the_like_for_like_one() -> None:
    """The registry judges graphql's config against `hello-strawberry`, and that floor is the one
    sent the GraphQL app's own request (tests/loadtests/test_strawberry_floor.py)."""
    from loadtests import stacks as registry

    floor = registry.STACKS["hello-strawberry"]
    assert floor.api == "graphql" and floor.server == registry.STACKS["graphql-uvicorn"].server
    stacks = {**STACKS, "hello-strawberry": StackInfo(floor.impl, floor.server, "floor"),
              "graphql-granian": StackInfo("graphql", "granian-asgi", "app")}
    cells = [Measured("graphql-uvicorn", "config", 100, 2500.0), Measured("hello-strawberry", "config", 100, 2800.0),
             Measured("graphql-granian", "config", 100, 2000.0)]
    rows = floor_ratios(cells, stacks, primary=100)
    config = _one(rows, "graphql-uvicorn", "config")
    assert config.reading == "met" and round(config.value or 0, 3) == 0.893
    granian = _one(rows, "graphql-granian", "config")
    assert granian.reading == "not measured" and "uvicorn" in granian.why


def test_only_levels_the_floor_was_measured_at_and_the_primary_level() -> None:
    cells = [Measured("rest-uvicorn", "config", c, 3000.0) for c in (16, 100, 256)]
    cells.append(Measured("hello-fastapi", "config", 16, 3000.0))  # the floor at 16 only
    rows = floor_ratios(cells, STACKS, primary=100)
    assert [(r.app, r.concurrency, r.reading) for r in rows] == [
        ("rest-uvicorn", 16, "met"), ("rest-uvicorn", 100, "not measured")]


def _document() -> dict[str, Any]:
    doc = results.new_document(run_id="20261203T000000Z-floors", profile="quick", environment=ENVIRONMENT,
                               settings={"primary_concurrency": 100, "closed_loop_driver": "wrk"})
    for sid, info in [*STACKS.items(), ("flask-gunicorn-gthread-2n1", StackInfo("flask", "gunicorn-gthread", "app"))]:
        doc["stacks"][sid] = {"impl": info.impl, "server": info.server, "kind": info.kind, "workers": 1,
                              "settings": {}, "command": [info.server],
                              **({"variant_of": "flask-gunicorn-gthread"} if sid.endswith("2n1") else {})}
    for stack, scenario, rps in [("rest-uvicorn", "config", 3000.0), ("hello-fastapi", "config", 4000.0),
                                 ("flask-gunicorn-gthread", "card", 900.0), ("db-flask", "card", 1000.0),
                                 ("flask-gunicorn-gthread-2n1", "card", 950.0)]:
        cell = results.new_cell(stack, scenario, "wrk", 100)
        cell["samples"] = [{"requests": int(rps * 3), "duration_s": 3.0, "rps": rps,
                            "latency_ms": {"p50": 1.0, "p90": 2.0, "p99": 3.0, "p99_9": 4.0, "max": 5.0},
                            "errors": {}, "server_cpu_pct": 90.0, "server_peak_rss_bytes": 2**26,
                            "client_cpu_pct": 20.0, "extra": {}}]
        cell["status"] = "ok"
        results.finish_cell(cell, 30000.0)
        doc["cells"].append(cell)
    return doc


def test_the_report_section_renders_ratios_in_markdown_and_html(tmp_path: Path) -> None:
    section = overhead_section(_document(), tmp_path)
    assert section is not None and section.title == "App vs its framework's floor"
    md = to_markdown([section], tmp_path)
    assert "| config | rest-uvicorn | uvicorn | 100 | 3,000 | hello-fastapi | 4,000 | 0.75× | **not met** |" in md
    assert "| card | flask-gunicorn-gthread | gunicorn-gthread | 100 | 900 | db-flask | 1,000 | 0.90× | met |" in md
    assert "2n1" not in md  # a variant's workers are not the floor's
    assert "∞" not in md and "inf" not in md
    html = to_html([section], "t", toc=False)
    assert "0.75×" in html and "<table>" in html and "App vs its framework" in html
