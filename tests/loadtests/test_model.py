"""The typed results document (loadtests/document.py and its parts): validation on construction, the schema-1
upgrade (on a schema-1 run kept in tests/loadtests/data: 41 cells of the standard run of
2026-11-30, micro-benchmarks dropped), metric accessors, the JSON Schema, and the committed
reports/latest/results.json loading as it is."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import jsonschema_rs
import pytest
from pydantic import ValidationError

from loadtests import results
from loadtests.cell import Setup
from loadtests.document import SCHEMA_PATH, Run, json_schema
from loadtests.sample import Capacity, Sample
from loadtests.upgrade import upgrade_v1

ROOT = Path(__file__).resolve().parents[2]
LATEST = ROOT / "reports" / "latest" / "results.json"
SCHEMA_1_RUN = Path(__file__).resolve().parent / "data" / "results_v1.json"


@pytest.fixture(scope="module")
def latest() -> dict:
    """A schema-1 document: what every upgrade test starts from."""
    return json.loads(SCHEMA_1_RUN.read_text())


def test_committed_latest_loads_validates_and_round_trips() -> None:
    """reports/latest is whatever the last standard run wrote (schema 1 or 2): it must load."""
    raw = json.loads(LATEST.read_text())
    current = upgrade_v1(raw) if raw["schema_version"] == 1 else raw
    assert results.validate(raw) == []
    run = Run.from_json(raw)
    assert len(run.cells) == len(raw["cells"]) > 0
    assert run.to_json() == current
    assert jsonschema_rs.validator_for(json.loads(SCHEMA_PATH.read_text())).is_valid(current)


def test_latest_v1_upgrades_and_loads(latest: dict) -> None:
    assert latest["schema_version"] == 1
    before = copy.deepcopy(latest)
    up = upgrade_v1(latest)
    assert latest == before  # pure
    assert up["schema_version"] == 2
    run = Run.from_json(latest)
    assert len(run.cells) == len(latest["cells"])
    assert results.validate(latest) == []
    # wrk's mean moved into latency_ms.mean; the sample's mean is the recorded one, not p50
    cell = run.cell("rest-uvicorn/config/wrk/c64")
    raw = next(c for c in latest["cells"] if c["id"] == cell.id)
    assert cell.values("mean_ms") == [s["extra"]["latency_mean_ms"] for s in raw["samples"]]
    assert cell.values("mean_ms") != cell.values("p50_ms")
    # setups inferred from the stack description and the processes seen
    gevent = run.cell("flask-gunicorn-gevent/config/wrk/c64").setup
    assert gevent is not None and gevent.inferred and gevent.master
    assert gevent.processes == 3 and gevent.workers == 3 and gevent.cores == [0]
    uvicorn = cell.setup
    assert uvicorn is not None and uvicorn.processes == 1
    assert not gevent.like_for_like(uvicorn)
    assert "3 processes" in gevent.describe()


def test_round_trip_keeps_every_field(latest: dict) -> None:
    up = upgrade_v1(latest)
    assert Run.from_json(up).to_json() == up


def test_metric_accessors() -> None:
    s = Sample.model_validate({
        "requests": 1000, "duration_s": 2.0, "rps": 500.0,
        "latency_ms": {"p50": 2.0, "p99": 9.0, "mean": 3.0}, "errors": {"timeout": 2, "read": 1},
        "server_cpu_pct": 50.0, "server_cpu_s": 1.0, "server_peak_rss_bytes": 300,
        "server_pss_bytes": 200})
    assert s.metric("p99_ms") == 9.0 and s.metric("mean_ms") == 3.0
    assert s.metric("rps_per_core") == 1000.0
    assert s.metric("memory") == 200  # PSS before RSS
    assert s.metric("peak_rss") == 300
    assert s.metric("error_rate") == pytest.approx(0.003) and s.timeouts == 2
    assert s.metric("cpu_ms_per_request") == pytest.approx(1.0)
    assert s.metric("connects_per_s") is None
    with pytest.raises(KeyError):
        s.metric("speed")


@pytest.mark.parametrize("patch, where", [
    (lambda d: d["cells"][0]["samples"][0].pop("rps"), "rps"),
    (lambda d: d["cells"][0]["samples"][0].__setitem__("requests", True), "requests"),
    (lambda d: d["cells"][0]["samples"][0]["latency_ms"].__setitem__("p50", -1.0), "negative"),
    (lambda d: d["cells"][0].__setitem__("status", "fine"), "status"),
    (lambda d: d["cells"][0].__setitem__("stack", "nope"), "not described"),
    (lambda d: d["cells"][1].__setitem__("id", d["cells"][0]["id"]), "duplicate"),
    (lambda d: d["environment"]["machine"].pop("cores"), "cores"),
    (lambda d: d["cells"][0]["samples"][0]["extra"].__setitem__(
        "capacity", {"held_lo": 100, "failed_hi": 50, "resolution": 0.1, "max_tried": 100,
                     "objective": "p99 < 500 ms"}), "failed_hi"),
])
def test_invalid_documents_named(latest: dict, patch, where: str) -> None:
    doc = upgrade_v1(latest)
    patch(doc)
    found = results.validate(doc)
    assert found and any(where in p for p in found), found
    with pytest.raises(ValidationError):
        Run.from_json(doc)


def test_wrong_schema_version_refused(latest: dict) -> None:
    assert results.validate({**latest, "schema_version": 7})[0].startswith("schema_version")
    assert results.validate([]) == ["document: not a JSON object"]


def test_committed_json_schema_is_generated_and_validates(latest: dict) -> None:
    generated = json_schema()
    committed = json.loads(SCHEMA_PATH.read_text())
    assert committed == generated, "run: python -m loadtests.document --write"
    validator = jsonschema_rs.validator_for(committed)
    up = upgrade_v1(latest)
    assert validator.is_valid(up)
    broken = copy.deepcopy(up)
    del broken["cells"][0]["samples"][0]["rps"]
    assert not validator.is_valid(broken)
    assert any("rps" in e.message for e in validator.iter_errors(broken))


def test_setup_and_capacity_fields_v2() -> None:
    setup = Setup.model_validate({"server": "gunicorn", "worker_class": "gevent",
                                        "processes": 2, "master": True, "workers": 2,
                                        "threads_per_worker": None, "cores": [0, 1]})
    assert setup.describe() == "gunicorn gevent: 2 processes on cores 0,1"
    with pytest.raises(ValidationError):
        Setup.model_validate({"server": "x", "processes": 0, "workers": 0})
    cap = Capacity.model_validate({"held_lo": 10, "failed_hi": None, "resolution": 0.1,
                                         "max_tried": 10, "objective": "p99 < 500 ms",
                                         "probes": [{"level": 10, "held": True}]})
    assert cap.failed_hi is None and cap.probes[0].held
