"""The bench runner end to end on a tiny profile: real servers, wrk, the realtime drivers, the
results document and the report; and a server that dies mid-run fails its cells, not the run."""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from loadtests import results, runner
from loadtests.profiles import PROFILES

pytestmark = [
    pytest.mark.server,
    pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed"),
]


def _run(tmp_path: Path, stacks: list[str], scenarios: list[str], **kwargs: Any) -> dict[str, Any]:
    path = runner.main(profile="smoke", impls=None, servers=None, scenarios=scenarios, stacks=stacks,
                       dsn=f"sqlite:///{tmp_path / 'bench.sqlite3'}", out=tmp_path / "runs",
                       write_report=kwargs.pop("write_report", False), console=Console(quiet=True), **kwargs)
    return results.load(path)


def _cells(doc: dict[str, Any], stack: str) -> dict[str, dict[str, Any]]:
    return {c["scenario"]: c for c in doc["cells"] if c["stack"] == stack}


def test_smoke_run_measures_every_kind_of_cell(tmp_path: Path) -> None:
    doc = _run(tmp_path, ["rest-uvicorn"], ["config", "card", "review", "chat", "sse-fanout"],
               write_report=True)
    assert results.validate(doc) == []
    ceiling = doc["driver_ceilings"][0]
    assert ceiling["floor"] == "raw-asgi-granian-asgi" and ceiling["rps"] > 0
    cells = _cells(doc, "rest-uvicorn")
    assert set(cells) == {"config", "card", "review", "chat", "sse-fanout"}
    for scenario, cell in cells.items():
        assert cell["status"] == "ok", (scenario, cell["error"])
        assert cell["samples"][0]["server_peak_rss_bytes"] > 0, scenario
    # every acknowledged review is a stored row (in-flight ones at the cutoff may add a few)
    writes = cells["review"]["samples"][0]["writes"]
    assert writes["acknowledged"] > 0 and writes["lost"] == 0
    assert writes["stored"] == writes["acknowledged"] + writes["in_flight_at_cutoff"]
    chat = cells["chat"]["samples"][0]["extra"]
    assert chat["completed"] == 5 and chat["ttft_ms"]["p50"] >= PROFILES["smoke"].upstream_ttft_ms
    fanout = cells["sse-fanout"]["samples"][0]["extra"]
    assert fanout["connected"] == 20 and fanout["delivered"] == fanout["expected"] == 20 * 3
    stack = doc["stacks"]["rest-uvicorn"]
    assert stack["settings"]["loop"] == "uvloop" and stack["fanout_server"]["workers"] == 1
    report = Path(doc["run_id"]).name
    assert (tmp_path / "runs" / report / "report.html").exists()


def test_a_server_that_dies_fails_its_cells_and_the_run_goes_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    killed: list[int] = []
    original = runner.Bench._wrk_scenario

    def kill_before_card(self: runner.Bench, stack: Any, client: Any, load: Any, scenario: str, *rest: Any) -> None:
        if stack.id == "rest-uvicorn" and scenario == "card" and not killed:
            os.kill(load.server_pid, signal.SIGKILL)
            killed.append(load.server_pid)
        original(self, stack, client, load, scenario, *rest)

    monkeypatch.setattr(runner.Bench, "_wrk_scenario", kill_before_card)
    doc = _run(tmp_path, ["rest-uvicorn", "graphql-uvicorn"], ["config", "card", "due"])
    assert killed
    dead = _cells(doc, "rest-uvicorn")
    assert dead["config"]["status"] == "ok"
    # the killed server's card run saw only connection errors; the next cell is failed, with why
    assert "errors" in dead["card"]["flags"] or dead["card"]["status"] == "failed"
    assert dead["due"]["status"] == "failed" and "exited" in dead["due"]["error"]
    alive = _cells(doc, "graphql-uvicorn")
    assert all(c["status"] == "ok" for c in alive.values()), alive


def test_without_wrk_the_run_uses_locust_and_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner, "wrk_available", lambda: False)
    doc = _run(tmp_path, ["rest-uvicorn"], ["config", "review"])
    assert doc["settings"]["closed_loop_driver"] == "locust"
    assert doc["driver_ceilings"][0]["driver"] == "locust"
    cells = _cells(doc, "rest-uvicorn")
    assert {c["driver"] for c in cells.values()} == {"locust"}
    assert all(c["status"] == "ok" and c["samples"][0]["requests"] > 0 for c in cells.values())
    assert "wrk missing" in cells["config"]["samples"][0]["extra"]["note"]
    writes = cells["review"]["samples"][0]["writes"]
    assert writes["acknowledged"] > 0 and writes["lost"] == 0
