"""The locust journey: parsing locust's statistics into a sample, and real runs against an app."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from loadtests import journey
from loadtests.accounting import ChildResult
from loadtests.launcher import serving
from loadtests.servers import ServerSpec
from loadtests.stacks import APPS
from provision.seed import SeedPlan, seed
from tests.support import FAST_HASH, make_settings

PLAN = SeedPlan(users=3, decks_per_user=2, cards_per_deck=500, seed=1)
FAST_HASH_ENV = {f"STACKBENCH_{k.upper()}": str(v) for k, v in FAST_HASH.items()}


def _child(cpu_s: float = 2.0, wall_s: float = 8.0) -> ChildResult:
    return ChildResult(argv=["locust"], returncode=0, stdout="", stderr="", wall_s=wall_s,
                       user_s=cpu_s, system_s=0.0, max_rss_bytes=80 << 20)


def _entry(name: str, method: str, times: dict[int, int], failures: int = 0) -> dict[str, Any]:
    n = sum(times.values())
    return {"name": name, "method": method, "num_requests": n, "num_failures": failures,
            "num_none_requests": 0, "total_response_time": sum(k * v for k, v in times.items()),
            "max_response_time": max(times), "min_response_time": min(times),
            "response_times": {str(k): v for k, v in times.items()},  # JSON keys are strings
            "start_time": 0.0, "last_request_timestamp": 1.0, "total_content_length": 0,
            "num_reqs_per_sec": {}, "num_fail_per_sec": {}}


def _marks(tmp_path: Path, lines: list[dict[str, Any]]) -> Path:
    path = tmp_path / "marks.jsonl"
    path.write_text("".join(json.dumps(m) + "\n" for m in lines))
    return path


def test_a_sample_from_locust_statistics(tmp_path: Path) -> None:
    entries = [_entry("due", "GET", {2: 500, 3: 300, 10: 190, 120: 10}, failures=3),
               _entry("review", "POST", {5: 95, 40: 5})]
    failures = [{"method": "GET", "name": "due", "error": "HTTP 500", "occurrences": 2},
                {"method": "GET", "name": "due",
                 "error": "ConnectionRefusedError(111, 'Connection refused')", "occurrences": 1}]
    window = journey.read_marks(_marks(tmp_path, [
        {"event": "reset", "pid": 1, "role": "local", "time": 100.0, "cpu_s": 1.0, "requests_before": 250},
        {"event": "stopping", "pid": 1, "role": "local", "time": 104.0, "cpu_s": 2.0},
    ]))
    assert window is not None and window["duration_s"] == 4.0
    sample = journey.to_sample(entries, failures, window, _child(), capacity=1,
                               fallback_duration_s=5.0)
    assert sample["requests"] == 1100 and sample["duration_s"] == 4.0
    assert sample["rps"] == pytest.approx(275.0)
    # merged histogram of both names: 1,100 responses
    assert sample["latency_ms"] == {"p50": 3.0, "p90": 10.0, "p99": 40.0, "p99_9": 120.0,
                                    "max": 120.0, "mean": pytest.approx(5675 / 1100)}  # exact sum ÷ n
    assert sample["errors"] == {"connect": 1, "read": 0, "write": 0, "timeout": 0, "status": 2}
    assert sample["client_cpu_pct"] == pytest.approx(25.0)  # rusage: 2 s over 8 s
    extra = sample["extra"]
    assert extra["client_cpu_pct_window"] == pytest.approx(25.0)  # 1 s in the 4 s window
    assert not extra["client_bound"] and extra["flags"] == []
    assert extra["answered_total"] == 1350  # the warmup's 250 and the window's 1,100
    due = extra["requests_by_name"]["due"]
    assert due["requests"] == 1000 and due["failures"] == 3 and due["p99_ms"] == 10.0
    assert due["p99_9_ms"] == 120.0
    assert due["rps"] == pytest.approx(250.0) and due["p50_ms"] == 2.0
    assert extra["requests_by_name"]["review"]["p90_ms"] == 5.0


def test_client_bound_from_the_window_cpu(tmp_path: Path) -> None:
    entries = [_entry("due", "GET", {1: 100})]
    marks = [{"event": "reset", "pid": 1, "role": "master", "time": 10.0, "cpu_s": 0.5},
             {"event": "stopping", "pid": 1, "role": "master", "time": 20.0, "cpu_s": 0.7},
             {"event": "reset", "pid": 2, "role": "worker", "time": 10.1, "cpu_s": 1.0},
             {"event": "stopping", "pid": 2, "role": "worker", "time": 20.1, "cpu_s": 9.9},
             {"event": "reset", "pid": 3, "role": "worker", "time": 10.1, "cpu_s": 1.0},
             {"event": "stopping", "pid": 3, "role": "worker", "time": 20.1, "cpu_s": 4.0}]
    window = journey.read_marks(_marks(tmp_path, marks))
    assert window is not None and window["duration_s"] == 10.0  # the master's window
    sample = journey.to_sample(entries, [], window, _child(), capacity=2, fallback_duration_s=9)
    extra = sample["extra"]
    assert extra["client_cpu_pct_window"] == pytest.approx(121.0)
    # 121% of two cores is not saturated, but worker 2 (single-threaded) used 89% of its core
    assert extra["client_bound"] and extra["flags"] == ["client-bound"]
    assert sorted(round(p) for p in extra["client_cpu_pct_by_process"]) == [2, 30, 89]


def test_without_marks_the_requested_duration_and_lifetime_cpu_are_used() -> None:
    sample = journey.to_sample([_entry("due", "GET", {1: 100})], [], None,
                               _child(cpu_s=7.0, wall_s=8.0), capacity=1, fallback_duration_s=5.0)
    assert sample["duration_s"] == 5.0 and sample["rps"] == 20.0
    assert sample["extra"]["answered_total"] is None
    assert sample["extra"]["client_bound"]  # 87.5% of its core over its life
    assert not sample["extra"]["window_marked"]


def test_failures_without_a_csv_row_are_still_errors() -> None:
    sample = journey.to_sample([_entry("due", "GET", {1: 10}, failures=4)], [], None, _child(),
                               capacity=1, fallback_duration_s=1.0)
    assert sum(sample["errors"].values()) == 4


def test_empty_statistics_give_null_latencies() -> None:
    sample = journey.to_sample([], [], None, _child(), capacity=1, fallback_duration_s=1.0)
    assert sample["requests"] == 0 and sample["latency_ms"]["p99"] is None


@pytest.mark.parametrize(("message", "kind"), [
    ("HTTP 500", "status"),
    ("graphql errors: [{'message': 'boom'}]", "status"),
    ("due: body is not JSON", "status"),
    ("ConnectionRefusedError(111, 'Connection refused')", "connect"),
    ("ConnectionTimeout('timed out')", "timeout"),
    ("timeout('timed out')", "timeout"),
    ("ConnectionResetError(104, 'Connection reset by peer')", "read"),
    ("RemoteDisconnected('Remote end closed connection')", "read"),
])
def test_failure_messages_are_classified(message: str, kind: str) -> None:
    assert journey.classify(message) == kind


def test_failures_csv(tmp_path: Path) -> None:
    path = tmp_path / "x_failures.csv"
    path.write_text('Method,Name,Error,Occurrences\nGET,due,HTTP 500,7\nPOST,review,"a, b",1\n')
    rows = journey.read_failures(path)
    assert rows == [{"method": "GET", "name": "due", "error": "HTTP 500", "occurrences": 7},
                    {"method": "POST", "name": "review", "error": "a, b", "occurrences": 1}]
    assert journey.read_failures(tmp_path / "missing.csv") == []


def test_command_and_environment() -> None:
    argv = journey.locust_command("http://h:1", 20, 5, 12, "/tmp/x", processes=2)
    assert argv[1:3] == ["-m", "locust"] and "--headless" in argv
    for flag, value in (("-u", "20"), ("-r", "5"), ("-t", "12s"), ("--host", "http://h:1"),
                        ("--json-file", "/tmp/x"), ("--csv", "/tmp/x"), ("--processes", "2")):
        assert argv[argv.index(flag) + 1] == value
    env = journey.journey_environment("graphql", 10, 5, warmup_s=2, duration_s=3, processes=2)
    assert "STACKBENCH_JOURNEY_TOKENS" not in env
    assert journey.journey_environment("rest", 1, 1, warmup_s=0, tokens="/t.json")["STACKBENCH_JOURNEY_TOKENS"] == "/t.json"
    assert env["STACKBENCH_JOURNEY_API"] == "graphql"
    assert env["STACKBENCH_JOURNEY_SEED_USERS"] == "10"
    assert env["STACKBENCH_JOURNEY_DURATION_S"] == "3.0"
    with pytest.raises(ValueError):
        journey.journey_environment("soap", 1, 1, warmup_s=0)


# -- real runs ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def seeded_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("journey") / "template.sqlite3"
    seed(make_settings(f"sqlite:///{path}"), PLAN)
    return path


@pytest.fixture
def seeded_sqlite(seeded_template: Path, tmp_path: Path) -> str:
    """A fresh copy per test: a journey reviews the due cards away."""
    path = tmp_path / "journey.sqlite3"
    shutil.copyfile(seeded_template, path)
    return f"sqlite:///{path}"


def _run(api: str, dsn: str, **options: Any) -> dict[str, Any]:
    spec = ServerSpec("uvicorn", APPS[api], port=0, workers=1,
                      env={"STACKBENCH_DSN": dsn, "STACKBENCH_ENVIRONMENT": "test", **FAST_HASH_ENV})
    with serving(spec) as server:
        return journey.run_journey(server.url, api=api, seed_users=PLAN.users,
                                   decks_per_user=PLAN.decks_per_user, **options)


def _check_real(sample: dict[str, Any], users: int) -> None:
    assert sample["requests"] > 0 and sample["rps"] > 0
    assert sample["errors"] == dict.fromkeys(journey.ERROR_KEYS, 0), sample["extra"]["failures_by_message"]
    names = sample["extra"]["requests_by_name"]
    assert {"due", "review"} <= set(names)
    assert "login" not in names  # logins happen in the warmup, before the reset
    assert sample["extra"]["answered_total"] > sample["requests"]  # the warmup's requests are counted
    assert sample["extra"]["window_marked"]
    assert sample["extra"]["users"] == users and sample["extra"]["user_exceptions"] == 0
    assert 0 < sample["latency_ms"]["p50"] <= sample["latency_ms"]["p99"] <= sample["latency_ms"]["max"]
    assert sample["client_cpu_pct"] > 0


@pytest.mark.server
def test_rest_journey_against_the_fastapi_app(seeded_sqlite: str) -> None:
    sample = _run("rest", seeded_sqlite, users=10, duration_s=3.0, warmup_s=1.0)
    _check_real(sample, 10)
    assert sample["duration_s"] == pytest.approx(3.0, abs=0.3)


@pytest.mark.server
def test_seeded_users_with_a_token_start_with_it_instead_of_a_login(seeded_sqlite: str) -> None:
    """The bench gives users 2… signed tokens (one argon2 login each would outlast the warmup):
    the locustfile must use them, so a forged one fails every request of its user."""
    from loadtests.verification import signed_user

    good = signed_user(PLAN, {}, 2).token
    sample = _run("rest", seeded_sqlite, users=3, duration_s=2.0, warmup_s=1.0,
                  tokens={"user00002": good, "user00003": good[:-4] + "AAAA"})
    names = sample["extra"]["requests_by_name"]
    assert sample["errors"]["status"] > 0  # user00003's forged token: 401s
    messages = sample["extra"]["failures_by_message"]
    assert messages and all("HTTP 401" in m for m in messages), messages
    # user00001 (no token given) logged in and user00002's signed token worked: most requests passed
    assert sum(r["requests"] - r["failures"] for r in names.values()) > 0


@pytest.mark.server
@pytest.mark.slow
def test_graphql_journey_with_two_locust_processes(seeded_sqlite: str) -> None:
    sample = _run("graphql", seeded_sqlite, users=10, duration_s=4.0, warmup_s=2.0, processes=2)
    _check_real(sample, 10)
    assert sample["extra"]["processes"] == 2
    assert len(sample["extra"]["client_cpu_pct_by_process"]) == 3  # master + 2 workers


@pytest.mark.server
def test_a_two_process_journey_adds_up_both_workers(seeded_sqlite: str) -> None:
    sample = _run("rest", seeded_sqlite, users=6, duration_s=2.0, warmup_s=1.0, processes=2)
    by_worker = sample["extra"]["requests_by_worker"]
    assert len(by_worker) == 2 and all(n > 0 for n in by_worker.values()), by_worker
    # the master's statistics are exactly the two workers' window reports added up
    assert sum(by_worker.values()) == sample["requests"] > 0
    assert sum(r["requests"] for r in sample["extra"]["requests_by_name"].values()) == sample["requests"]
