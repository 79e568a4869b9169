"""Fan-out across workers through the PostgreSQL feed (issue 16): the real measurement at small
scale against uvicorn with 2 workers (every subscriber gets the event, both workers hold
subscribers, read from the OS), the SQLite refusal, and the report section."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from loadtests import fanout_workers, measure
from loadtests.document import FanoutAcrossWorkers
from loadtests.launcher import RunningServer, serving
from loadtests.report.document import to_markdown
from loadtests.report.realtime import fanout_workers_section as _section
from loadtests.servers import ServerSpec
from loadtests.stacks import APPS
from tests.support import FAST_HASH, fresh_schema, make_settings, postgres_dsn

FAST_HASH_ENV = {f"STACKBENCH_{k.upper()}": str(v) for k, v in FAST_HASH.items()}
PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def two_workers() -> Iterator[RunningServer]:
    dsn = postgres_dsn("stackbench_test_fanout_workers")
    fresh_schema(make_settings(dsn))
    env = {"STACKBENCH_DSN": dsn, "STACKBENCH_ENVIRONMENT": "test", **FAST_HASH_ENV,
           "STACKBENCH_MAX_STREAMS_PER_USER": "1000000", "STACKBENCH_MAX_CHATS_PER_USER": "1000000"}
    spec = ServerSpec("uvicorn", APPS["rest"], port=0, workers=2, cpus=(0,), env=env)
    with serving(spec, timeout=90) as running:
        yield running


def _token(url: str) -> str:
    username = f"fan_{os.getpid()}_{time.monotonic_ns() % 10**9}"
    with httpx.Client(base_url=url, timeout=30) as c:
        r = c.post("/api/auth/register", json={"username": username, "display_name": "fan", "password": PASSWORD})
        assert r.status_code == 201, r.text
        r = c.post("/api/auth/token", json={"username": username, "password": PASSWORD})
        return str(r.json()["access_token"])


@pytest.mark.server
def test_two_workers_every_subscriber_gets_the_event_and_both_workers_hold_subscribers(
        two_workers: RunningServer) -> None:
    token = _token(two_workers.url)
    load = measure.Load(two_workers.url, two_workers.pid, (1,) if len(os.sched_getaffinity(0)) > 1 else None)
    sample = fanout_workers.measure_cell(two_workers, load, token, "rest", 2, 50, events=3, rate=10.0,
                                         connect_timeout_s=30.0)
    extra = sample["extra"]
    assert extra["connected"] == 50
    single = extra["single_event"]
    assert single["published"] == 1 and single["delivered"] == single["expected"] == 50, single
    assert extra["delivered"] == extra["expected"] == 50 * 3, extra
    split = extra["worker_split"]
    assert extra["workers_holding"] == 2 and extra["spread"], split
    assert sum(split.values()) >= 50  # the held streams (plus the publisher's connection, at times)
    holding = {int(pid) for pid, n in split.items() if n}
    assert len(holding) == 2 and two_workers.pid not in holding, split  # two workers, not the master
    entry = {"stack": "rest-uvicorn", "workers": 2, "subscribers": 50, "transport": "sse", "status": "ok",
             "sample": sample, "server_cpus": [0], "flags": []}
    FanoutAcrossWorkers.model_validate(entry)  # the results schema holds it


def _entry(workers: int, split: dict[str, int], status: str = "ok") -> dict[str, object]:
    sample = {"extra": {"workers": workers, "worker_split": split, "workers_holding": sum(1 for n in split.values() if n),
                        "spread": workers == 1 or sum(1 for n in split.values() if n) > 1, "connected": 1000,
                        "delivered": 10000, "expected": 10000, "delivery_ms": {"p50": 40.0, "p99": 90.0, "max": 120.0},
                        "single_event": {"delivered": 1000, "expected": 1000,
                                         "delivery_ms": {"p50": 30.0, "p99": 70.0, "max": 80.0}}},
              "client_cpu_pct": 50.0, "server_cpu_pct": 80.0}
    return {"stack": "rest-uvicorn", "workers": workers, "subscribers": 1000, "transport": "sse", "status": status,
            "error": None if status == "ok" else fanout_workers.SQLITE_REFUSAL, "server_cpus": [0],
            "setup": {"workers": workers, "processes": workers + (workers > 1)},
            "sample": sample if status == "ok" else None, "flags": ["workers-share-cores"] if workers > 1 else []}


def fanout_workers_section(doc: dict[str, Any]) -> str:
    section = _section(doc)
    return "" if section is None else to_markdown([section], Path("."))


def test_the_report_section_shows_both_worker_counts_and_the_split() -> None:
    doc = {"fanout_workers": [_entry(1, {"11": 1000}), _entry(2, {"10": 0, "12": 510, "13": 490})],
           "cells": [], "settings": {"server_cpus": [0]}}
    for entry in doc["fanout_workers"]:
        FanoutAcrossWorkers.model_validate(entry)
    html = fanout_workers_section(doc)
    assert "Fan-out across workers (PostgreSQL feed)" in html
    assert "rest-uvicorn" in html and "510 / 490" in html and "1000" in html
    assert "share" in html and "not scaling" in html  # the one-core caveat
    one_worker_only = {"fanout_workers": [_entry(2, {"10": 0, "12": 1000, "13": 0})], "cells": [],
                       "settings": {"server_cpus": [0]}}
    assert "not spread" in fanout_workers_section(one_worker_only)
    refused = {"fanout_workers": [_entry(2, {}, status="refused")], "cells": [], "settings": {}}
    assert "PostgreSQL" in fanout_workers_section(refused) and "refused" in fanout_workers_section(refused)
    assert _section({"cells": []}) is None
