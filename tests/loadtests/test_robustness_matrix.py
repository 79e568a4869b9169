"""The robustness matrix end to end on one real server (uvicorn, the REST app, SQLite, tiny sizes),
its section in the results model (round trip, refusals) and in the report."""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
from pydantic import ValidationError

from loadtests.document import SCHEMA_PATH, Run
from loadtests.report.document import Table, to_html, to_markdown
from loadtests.robustness_matrix import PROBES, RobustnessSettings, bench_env, run_matrix, stack_for
from loadtests.robustness_render import cell, robustness_section, text_table
from loadtests.servers import all_servers
from loadtests.upgrade import upgrade_v1

V1_RUN = Path(__file__).resolve().parent / "data" / "results_v1.json"
TINY = RobustnessSettings(
    slowloris_connections=5, slowloris_duration_s=1.5, slowloris_interval_s=0.5, header_sizes=(1024 * 1024,),
    header_timeout_s=5.0, slow_body_connections=3, slow_body_duration_s=1.5, slow_body_interval_s=0.5,
    idle_connections=20, idle_hold_s=1.0, abandon_streams=3, abandon_rounds=2, probe_every_s=0.5,
    probe_timeout_s=1.0, recover_s=2.0)

SECTION: dict[str, Any] = {
    "settings": {"slowloris_connections": 5, "header_sizes": [1048576], "probe_every_s": 0.5},
    "server_cpus": [0], "client_cpus": [1], "loopback": True, "apps": {"wsgi": "flask", "asgi": "rest"},
    "database": "sqlite", "probe_path": "/api/health/live",
    "servers": {
        "uvicorn": {"stack": "rest-uvicorn", "app": "rest", "wall_s": 12.0, "probes": {
            "slowloris": {"connections": 5, "opened": 5, "closed_by_server": 0, "first_close_s": None,
                          "close_statuses": [], "probes": {"sent": 3, "served": 3, "p50_ms": 1.5, "max_ms": 4.0},
                          "recovery_ms": 1.2, "wall_s": 2.0},
            "oversized_header": {"sizes": [{"size_bytes": 1048576, "outcome": "answered", "status": 431,
                                            "elapsed_ms": 3.0, "rss_peak_growth": 0, "served_after": True}]},
            "slow_body": {"connections": 3, "opened": 3, "closed_by_server": 3, "first_close_s": 1.0,
                          "close_statuses": ["408"], "probes": {"sent": 3, "served": 3, "p50_ms": 2.0,
                                                                "max_ms": 3.0}, "recovery_ms": 1.0},
            "idle_keepalive": {"connections": 20, "opened": 20, "answered": 20, "closed_by_server": 20,
                               "first_close_s": 5.0, "close_statuses": [],
                               "probes": {"sent": 2, "served": 2, "p50_ms": 1.0, "max_ms": 1.0}},
            "abandon_streams": {"streams": 3, "rounds": [{"started": 3, "probe_ms": 2.0}], "bound_s": 2.0,
                                "served_after": True},
        }},
        "gunicorn-sync": {"stack": "flask-gunicorn-sync", "app": "flask", "probes": {
            "slowloris": {"connections": 5, "opened": 5, "closed_by_server": 0, "close_statuses": [],
                          "probes": {"sent": 3, "served": 0, "p50_ms": None, "max_ms": None}, "recovery_ms": None},
            "abandon_streams": None,
        }},
        "waitress": {"stack": "flask-waitress", "app": "flask", "error": "ServerStartError: boom"},
    },
}


def test_every_server_has_an_app_stack() -> None:
    for server in all_servers():
        stack = stack_for(server)
        assert stack.server == server and stack.impl in ("flask", "rest")


@pytest.mark.timeout(60)
def test_uvicorn_serves_through_every_probe(tmp_path: Path) -> None:
    """One real server through the whole probe set in well under 20 s (tiny sizes)."""
    from loadtests.benchdb import BenchDatabase
    from provision.seed import SeedPlan

    db = BenchDatabase(f"sqlite:///{tmp_path / 'r.sqlite3'}", SeedPlan(users=1, decks_per_user=1, cards_per_deck=2, seed=1))
    db.prepare()
    started = time.monotonic()
    section = run_matrix(["uvicorn"], TINY, env=bench_env(db.dsn), server_cpus=(0,), client_cpus=(0,))
    assert time.monotonic() - started < 20
    entry = section["servers"]["uvicorn"]
    assert "error" not in entry, entry
    found = entry["probes"]
    assert set(found) == set(PROBES)
    assert found["slowloris"]["opened"] == 5 and found["slowloris"]["probes"]["served"] >= 2
    assert found["slowloris"]["recovery_ms"] is not None
    header = found["oversized_header"]["sizes"][0]
    assert header["served_after"] and header["rss_before"] > 10 * 2**20  # a real process group's RSS
    assert found["idle_keepalive"]["answered"] == 20
    streams = found["abandon_streams"]
    assert [r["started"] for r in streams["rounds"]] == [3, 3] and streams["served_after"]
    run = _run_with(section)
    assert run.robustness is not None and run.robustness.servers["uvicorn"].probes["slowloris"] is not None
    assert "served" in cell("slowloris", found["slowloris"])


def _run_with(section: dict[str, Any]) -> Run:
    doc = upgrade_v1(json.loads(V1_RUN.read_text()))
    doc["robustness"] = copy.deepcopy(section)
    return Run.from_json(doc)


def test_section_round_trips_and_the_json_schema_accepts_it() -> None:
    run = _run_with(SECTION)
    out = run.to_json()
    assert out["robustness"] == SECTION
    assert run.robustness is not None
    tally = run.robustness.servers["uvicorn"].probes["slowloris"]
    assert tally is not None and tally.probes is not None and tally.probes.served == 3
    assert run.robustness.servers["gunicorn-sync"].probes["abandon_streams"] is None
    assert jsonschema_rs.validator_for(json.loads(SCHEMA_PATH.read_text())).is_valid(out)
    assert Run.from_json(upgrade_v1(json.loads(V1_RUN.read_text()))).robustness is None  # optional


@pytest.mark.parametrize("patch, where", [
    (lambda s: s["servers"]["uvicorn"]["probes"].update(teleport={}), "teleport"),
    (lambda s: s["servers"]["uvicorn"]["probes"]["slowloris"]["probes"].update(served=9), "served 9 > sent 3"),
    (lambda s: s.pop("server_cpus"), "server_cpus"),
])
def test_bad_sections_are_refused(patch: Any, where: str) -> None:
    section = copy.deepcopy(SECTION)
    patch(section)
    with pytest.raises(ValidationError, match=where):
        _run_with(section)


def test_report_renders_the_table_and_the_method(tmp_path: Path) -> None:
    doc = {"robustness": SECTION}
    section = robustness_section(doc, tmp_path)
    assert section is not None
    table = next(b for b in section.blocks if isinstance(b, Table))
    assert table.header[0] == "server (app)" and len(table.header) == 1 + len(PROBES)
    rows = {r[0]: r for r in table.rows}
    uvicorn = rows["uvicorn (rest)"]
    assert uvicorn[1].startswith("served 3/3, p50 1.5 ms") and "recovered" in uvicorn[1]
    assert uvicorn[2].startswith("1 MiB: 431 in 3.0 ms")
    assert "3/3 closed (408), first after 1.0 s" in uvicorn[3]
    assert uvicorn[4].startswith("20/20 answered")
    assert uvicorn[5].startswith("started 3 of 3")
    sync = rows["gunicorn-sync (flask)"]
    assert sync[1].startswith("served 0/3") and "NOT recovered" in sync[1]
    assert sync[5] == "n/a (no stream route)" and sync[2] == "not run"
    assert rows["waitress (flask)"][1].startswith("server failed: ServerStartError")
    method = next(b for b in section.blocks if isinstance(b, str))
    assert "loopback" in method and "CPUs [0]" in method and "CPUs [1]" in method
    md = to_markdown([section], tmp_path)
    assert "## Server robustness" in md and "served 3/3" in md
    assert "<td>served 0/3" in to_html([section], "t")
    assert text_table(SECTION).count("\n") == 1 + len(SECTION["servers"])
    assert robustness_section({}, tmp_path) is None


def test_report_builders_include_the_section() -> None:
    from loadtests.report import SECTION_BUILDERS

    assert "loadtests.robustness_render:robustness_section" in SECTION_BUILDERS


def test_cli_refuses_unknown_servers_before_anything_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    import loadtests.robustness_matrix as matrix
    from stackbench.cli import app

    called: list[Any] = []
    monkeypatch.setattr(matrix, "run_standalone", lambda *a, **k: called.append((a, k)))
    result = CliRunner().invoke(app, ["robustness", "--server", "nginx"])
    assert result.exit_code == 2 and "unknown servers ['nginx']" in result.output and not called
    result = CliRunner().invoke(app, ["robustness", "--server", "uvicorn", "--quick"])
    assert result.exit_code == 0, result.output
    assert called[0][0] == (["uvicorn"],) and called[0][1]["quick"] is True
