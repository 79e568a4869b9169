"""The closed loop without wrk: locust's request mode, its spec, status rule and samples."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from loadtests import journey, locust_closed
from loadtests.launcher import serving
from loadtests.locust_closed import (
    NOTE,
    closed_environment,
    run_locust_closed,
    status_failure,
)
from loadtests.results import validate
from loadtests.servers import AppTarget, ServerSpec
from loadtests.wire import RequestSpec
from tests.loadtests.tiny_server import TinyServer

REVIEW = RequestSpec("POST", "/api/cards/{id}/reviews", '{"grade": {grade}}',
                     {"Authorization": "Bearer t", "Content-Type": "application/json"},
                     ids=(1, 2, 3, 404), expect_status=201)


def _schema_ok(sample: dict[str, Any]) -> None:
    """The sample passes the results validator inside a minimal document."""
    doc = {
        "schema_version": 1, "run_id": "r", "profile": "quick", "started_at": "t",
        "environment": {"machine": {"cpu_model": "", "cores": 2, "memory_bytes": 0, "kernel": ""},
                        "python": "", "packages": {}, "git": {}},
        "settings": {}, "driver_ceilings": [], "stacks": {"s": {
            "impl": "raw-asgi", "server": "uvicorn", "kind": "floor", "workers": 1,
            "settings": {}, "command": []}},
        "cells": [{"id": "s/config/locust/c8", "stack": "s", "scenario": "config",
                   "driver": "locust", "mode": "closed", "concurrency": 8, "status": "ok",
                   "samples": [json.loads(json.dumps(sample))], "summary": {}, "flags": []}],
    }
    assert validate(doc) == []


# -- units ------------------------------------------------------------------------------------


def test_the_spec_travels_as_json() -> None:
    assert RequestSpec.from_json(REVIEW.to_json()) == REVIEW
    plain = RequestSpec("GET", "/api/config")
    assert RequestSpec.from_json(plain.to_json()) == plain
    env = closed_environment(REVIEW, warmup_s=1, duration_s=2, processes=2, marks="/tmp/m")
    assert env["STACKBENCH_LOCUST_MODE"] == "request"
    assert RequestSpec.from_json(env["STACKBENCH_LOCUST_SPEC"]) == REVIEW
    assert env["STACKBENCH_JOURNEY_WARMUP_S"] == "1.0"
    assert env["STACKBENCH_JOURNEY_DURATION_S"] == "2.0"
    assert env["STACKBENCH_JOURNEY_PROCESSES"] == "2"
    assert env["STACKBENCH_JOURNEY_MARKS"] == "/tmp/m"


@pytest.mark.parametrize(("status", "expect", "message"), [
    (201, 201, None), (200, 200, None), (404, 404, None),
    (200, 201, "HTTP 200"), (500, 200, "HTTP 500"),
    (0, 200, None),  # no response: locust reports its own exception
])
def test_an_unexpected_status_is_a_failure(status: int, expect: int, message: str | None) -> None:
    assert status_failure(status, expect) == message


@pytest.mark.parametrize(("message", "kind"), [
    ("CatchResponseError('HTTP 200')", "status"),
    ("CatchResponseError('HTTP 500')", "status"),
    ("CatchResponseError(\"graphql errors: [{'message': 'timeout'}]\")", "status"),
    ("CatchResponseError('HTTP 0')", "read"),
])
def test_the_locustfiles_own_failures_are_classified(message: str, kind: str) -> None:
    assert journey.classify(message) == kind


def test_final_errors_come_from_the_lead_process(tmp_path: Path) -> None:
    rows = [{"method": "POST", "name": "/x", "error": "CatchResponseError('HTTP 200')",
             "occurrences": 7}]
    marks = [{"event": "reset", "pid": 1, "role": "master", "time": 1.0, "cpu_s": 0.1},
             {"event": "errors", "pid": 2, "role": "worker", "time": 3.0, "cpu_s": 0.1,
              "errors": [{**rows[0], "occurrences": 3}]},
             {"event": "errors", "pid": 1, "role": "master", "time": 3.0, "cpu_s": 0.2,
              "errors": rows}]
    path = tmp_path / "marks.jsonl"
    path.write_text("".join(json.dumps(m) + "\n" for m in marks))
    assert journey.read_final_errors(path) == rows
    path.write_text(json.dumps(marks[0]) + "\n")
    assert journey.read_final_errors(path) is None
    assert journey.read_final_errors(tmp_path / "missing") is None


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        run_locust_closed("http://127.0.0.1:1", REVIEW, users=0, duration_s=1, warmup_s=0)


# -- real runs --------------------------------------------------------------------------------


@pytest.mark.server
def test_closed_loop_against_the_raw_asgi_floor() -> None:
    spec = ServerSpec(server="uvicorn", app=AppTarget("loadtests.floors.raw_asgi:app", "asgi"),
                      port=0, workers=1)
    with serving(spec) as server:
        sample = run_locust_closed(server.url, RequestSpec("GET", "/"), users=8, duration_s=2.0,
                                   warmup_s=0.5)
    print(f"locust closed loop, raw ASGI floor: {sample['rps']:.0f} req/s, "
          f"client CPU {sample['extra']['client_cpu_pct_window']:.0f}% in the window")
    assert sample["requests"] > 0 and sample["rps"] > 0
    assert sample["errors"] == dict.fromkeys(journey.ERROR_KEYS, 0)
    extra = sample["extra"]
    assert extra["driver"] == "locust" and extra["note"] == NOTE and extra["mode"] == "closed"
    assert extra["window_marked"] and extra["warmup"] == "inside the run"
    assert sample["duration_s"] == pytest.approx(2.0, abs=0.3)
    assert set(extra["requests_by_name"]) == {"/"}
    assert isinstance(extra["client_bound"], bool)
    assert extra["user_exceptions"] == 0
    assert "writes" not in sample  # a GET writes nothing
    lat = sample["latency_ms"]
    assert 0 < lat["p50"] <= lat["p99"] <= lat["max"]
    _schema_ok(sample)


def test_requests_are_rendered_statuses_checked_and_writes_counted() -> None:
    """Against an in-process server that records what it got: ids and grades rendered per
    request, 404s (the id 404) are status errors since 201 is expected, and with ``count_rows``
    the warmup is a run of its own, so the rows stored are the window's."""
    with TinyServer(status=lambda path: 404 if "/404/" in path else 201) as server:

        def rows() -> int:
            return sum(1 for _m, path, _b in list(server.seen) if "/404/" not in path)

        sample = run_locust_closed(server.url, REVIEW, users=4, duration_s=1.0, warmup_s=0.5,
                                   count_rows=rows)
        seen = list(server.seen)
    paths = {path for _m, path, _b in seen}
    assert paths == {f"/api/cards/{i}/reviews" for i in (1, 2, 3, 404)}
    grades = {json.loads(body)["grade"] for _m, _p, body in seen}
    assert grades <= set(range(6)) and len(grades) > 3
    assert {method for method, _p, _b in seen} == {"POST"}
    failures = sample["extra"]["failures"]
    assert 0 < failures < sample["requests"]
    assert sample["errors"] == {**dict.fromkeys(journey.ERROR_KEYS, 0), "status": failures}
    assert sample["extra"]["failures_by_message"] == {
        "/api/cards/{id}/reviews: CatchResponseError('HTTP 404')": failures}
    writes = sample["writes"]
    assert writes["acknowledged"] == sample["requests"] - failures
    # the warmup's writes are not in the window's; at most one per connection in flight at the end
    assert 0 <= writes["stored"] - writes["acknowledged"] <= 4, writes
    assert writes["lost"] == 0
    assert sample["extra"]["warmup"] == "separate run"
    assert locust_closed.writes_spec(REVIEW)


def test_a_spec_spread_over_users_is_sent_as_each_user_with_its_own_ids() -> None:
    spec = dataclasses.replace(REVIEW, ids=(1, 2), users=(("a", (1, 2)), ("b", (3, 4))))
    owner = {"1": "Bearer a", "2": "Bearer a", "3": "Bearer b", "4": "Bearer b"}
    with TinyServer(status=lambda path: 201) as server:
        sample = run_locust_closed(server.url, spec, users=2, duration_s=1.0, warmup_s=0.0)
        sent = list(zip(server.seen, server.authorizations, strict=True))
    assert sample["requests"] > 0 and sent
    for (_method, path, _body), auth in sent:
        assert owner[path.split("/")[3]] == auth
    assert {auth for _, auth in sent} == {"Bearer a", "Bearer b"}
