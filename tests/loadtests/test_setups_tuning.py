"""The GC policy and the app's tuning knobs recorded in `cell.setup`, and printed by the report."""

from __future__ import annotations

import os

from flashcards.settings import Settings
from loadtests import setups
from loadtests.report.run import environment_section, setups_as_launched


def test_gc_policy_says_the_default_when_the_environment_sets_none() -> None:
    assert setups.gc_policy({}) == "freeze (default)"
    assert setups.gc_policy({"STACKBENCH_GC_POLICY": "off", "OTHER": "x"}) == "STACKBENCH_GC_POLICY=off"


def test_app_tuning_reads_the_servers_environment_over_the_defaults() -> None:
    tuning = setups.app_tuning({"STACKBENCH_POOL_SIZE": "30", "STACKBENCH_UPSTREAM_MAX_CONNECTIONS": "1500",
                                "STACKBENCH_EVENT_QUEUE_SIZE": "0", "STACKBENCH_JWT_SECRET": "s3cret"})
    assert tuning["pool_size"] == 30 and tuning["upstream_max_connections"] == 1500
    assert tuning["event_queue_size"] == "0 (invalid)"  # the app would refuse it: said so, not hidden
    assert tuning["sse_keepalive_s"] == Settings.model_fields["sse_keepalive_s"].default
    assert set(tuning) == set(setups.APP_TUNING)
    assert "s3cret" not in repr(tuning) and "jwt_secret" not in tuning and "dsn" not in tuning


def test_read_setup_of_this_process_records_both() -> None:
    setup = setups.read_setup(os.getpid(), {"server": "uvicorn", "loop": "uvloop", "http": "httptools"})
    assert setup["gc_policy"] and setup["app"] == setups.app_tuning(os.environ)
    assert setups.same_setup(setup, dict(setup))
    assert not setups.same_setup(setup, {**setup, "app": {**setup["app"], "pool_size": 999}})


def test_the_report_prints_each_cells_setup_with_gc_and_tuning() -> None:
    setup = {"server": "uvicorn", "worker_class": "uvicorn (uvloop + httptools)", "processes": 1, "master": False,
             "workers": 1, "cores": [0], "gc_policy": "freeze (default)", "app": {"pool_size": 20, "event_queue_size": 256}}
    doc = {"cells": [{"stack": "rest-uvicorn", "scenario": "config", "setup": setup},
                     {"stack": "rest-uvicorn", "scenario": "card", "setup": setup},
                     {"stack": "flask-waitress", "scenario": "config", "setup": {"server": "waitress", "error": "gone"}}]}
    rows = setups_as_launched(doc)
    assert rows == [["rest-uvicorn", "uvicorn uvicorn (uvloop + httptools): 1 process on core 0, GC freeze (default)",
                     "event_queue_size=256, pool_size=20"]]
    assert environment_section(doc).blocks[3].rows == rows  # type: ignore[union-attr]
