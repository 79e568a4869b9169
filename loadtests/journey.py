"""The locust journey: run ``loadtests/locustfile.py`` headless, pinned, and read its statistics.

``locust -f loadtests/locustfile.py --headless -u USERS -r RATE -t SECONDSs --host URL
--json-file X --csv X --only-summary`` runs as a child of `run_measured` (pinned to the client
CPUs; its CPU time, forked ``--processes`` workers included, from ``os.wait4``). Locust is a
closed-loop driver slower than the apps it drives (≈ 2,950 req/s per core with FastHttpUser,
FIELD-NOTES), so every sample says whether locust itself was the bottleneck: ``client-bound``
when its CPU inside the measurement window reached `CLIENT_BOUND_FRACTION` of the cores it
could use (or one of its single-threaded processes reached that share of a core).

The sample (RESULTS_SCHEMA.md) is computed from locust's JSON statistics (``X.json``: one entry
per request name, with its response-time histogram) and failures CSV (``X_failures.csv``):

* ``requests``/``rps``: every request after the warmup reset, over the window between the reset
  and the stop (both marked by the locustfile, see its docstring);
* ``latency_ms``: percentiles of the merged response-time histograms of all request names,
  and the mean from locust's sum of response times (``total_response_time``)
  (locust rounds times above 100 ms to two significant digits);
* ``errors``: failures by kind, classified from their messages (connect, timeout, read, status —
  a GraphQL answer with ``errors`` is a status error);
* ``extra.requests_by_name``: per request name (due, review, decks, config, login) its count,
  failures, rps and percentiles.
"""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from loadtests.accounting import ChildResult, run_measured
from loadtests.stats import latency_percentiles_from_counts

LOCUSTFILE = Path(__file__).resolve().parent / "locustfile.py"
REPO_ROOT = LOCUSTFILE.parent.parent
CLIENT_BOUND_FRACTION = 0.85
RUN_TIME_MARGIN_S = 30
ERROR_KEYS = ("connect", "read", "write", "timeout", "status")


class JourneyError(RuntimeError):
    """locust failed, or left no statistics."""


def journey_environment(api: str, seed_users: int, decks_per_user: int, *, warmup_s: float,
                        duration_s: float = 0.0, think_s: float = 0.0, processes: int = 1,
                        marks: str | None = None, tokens: str | None = None) -> dict[str, str]:
    """The STACKBENCH_JOURNEY_* variables the locustfile reads (``tokens``: the path of a JSON
    file of signed tokens by username, users that need no login)."""
    if api not in ("rest", "graphql"):
        raise ValueError(f"journey api must be 'rest' or 'graphql', got {api!r}")
    env = {
        "STACKBENCH_JOURNEY_API": api,
        "STACKBENCH_JOURNEY_SEED_USERS": str(seed_users),
        "STACKBENCH_JOURNEY_DECKS_PER_USER": str(decks_per_user),
        "STACKBENCH_JOURNEY_WARMUP_S": repr(float(warmup_s)),
        "STACKBENCH_JOURNEY_DURATION_S": repr(float(duration_s)),
        "STACKBENCH_JOURNEY_THINK_S": repr(float(think_s)),
        "STACKBENCH_JOURNEY_PROCESSES": str(max(1, processes)),
    }
    if marks:
        env["STACKBENCH_JOURNEY_MARKS"] = marks
    if tokens:
        env["STACKBENCH_JOURNEY_TOKENS"] = tokens
    return env


def locust_command(url: str, users: int, spawn_rate: float, run_time_s: int, prefix: str, *,
                   processes: int = 1, python: str = sys.executable) -> list[str]:
    argv = [python, "-m", "locust", "-f", str(LOCUSTFILE), "--headless",
            "-u", str(users), "-r", f"{spawn_rate:g}", "-t", f"{run_time_s}s", "--host", url,
            "--json-file", prefix, "--csv", prefix, "--only-summary", "--loglevel", "WARNING",
            "--exit-code-on-error", "0", "--stop-timeout", "1"]
    if processes > 1:
        argv += ["--processes", str(processes)]
    return argv


def run_journey(
    url: str,
    *,
    api: str,
    users: int,
    duration_s: float,
    warmup_s: float,
    seed_users: int,
    decks_per_user: int,
    spawn_rate: float | None = None,
    processes: int = 1,
    think_s: float = 0.0,
    cpus: Sequence[int] | None = None,
    python: str = sys.executable,
    tokens: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """``users`` locust users (``processes`` locust processes) play the journey against ``url``
    for ``warmup_s`` + ``duration_s``; a RESULTS_SCHEMA sample (no server metrics).

    ``seed_users``/``decks_per_user`` are the seed plan's (users log in as ``user00001`` … and
    study their own decks). ``spawn_rate`` defaults to spawning everyone within the first
    quarter of the warmup (at least 1 s). The locustfile stops the run warmup + duration after
    it started; the measured window is what it marked (its reset and its stop). Seeded users
    in ``tokens`` (username → token signed as the app signs one) start with it instead of a login.
    """
    if users < 1 or duration_s <= 0 or warmup_s < 0 or processes < 1:
        raise ValueError("journey needs users >= 1, duration_s > 0, warmup_s >= 0, processes >= 1")
    # the locustfile stops the run itself (locust's -t fires early, see locustfile.py): -t is
    # only a safety net
    run_time_s = math.ceil(warmup_s + duration_s) + RUN_TIME_MARGIN_S
    rate = spawn_rate or max(1.0, users / max(1.0, warmup_s / 4))
    with tempfile.TemporaryDirectory(prefix="stackbench-journey-") as work:
        tokens_file = None
        if tokens:
            tokens_file = os.path.join(work, "tokens.json")
            Path(tokens_file).write_text(json.dumps(dict(tokens)))
        env_vars = journey_environment(api, seed_users, decks_per_user, warmup_s=warmup_s,
                                       duration_s=duration_s, think_s=think_s, processes=processes,
                                       tokens=tokens_file)
        sample, argv, user_exceptions = run_locust(url, env_vars, users=users, spawn_rate=rate,
                                                   run_time_s=run_time_s, duration_s=duration_s,
                                                   processes=processes, cpus=cpus, python=python)
    sample["extra"].update({
        "api": api, "users": users, "spawn_rate": rate, "processes": processes,
        "think_s": think_s, "run_time_s": run_time_s, "warmup_s": warmup_s,
        "cpus": sorted(set(cpus)) if cpus else None, "command": argv,
        "user_exceptions": user_exceptions,
    })
    return sample


def run_locust(url: str, env_vars: dict[str, str], *, users: int, spawn_rate: float,
               run_time_s: int, duration_s: float, processes: int, cpus: Sequence[int] | None,
               python: str, extra_args: Sequence[str] = ()) -> tuple[dict[str, Any], list[str], int]:
    """One headless locust run of the locustfile (its mode set by `env_vars`), pinned to `cpus`:
    (the sample of its measured window, the command, the user exceptions it raised)."""
    work = tempfile.mkdtemp(prefix="stackbench-locust-")
    try:
        prefix = os.path.join(work, "stats")
        marks = os.path.join(work, "marks.jsonl")
        env = {**os.environ, **env_vars, "STACKBENCH_JOURNEY_MARKS": marks}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        argv = [*locust_command(url, users, spawn_rate, run_time_s, prefix, processes=processes,
                                python=python), *extra_args]
        child = run_measured(argv, cpus=cpus, env=env, cwd=str(REPO_ROOT),
                             timeout=run_time_s + 90)
        stats_path = Path(prefix + ".json")
        if child.returncode != 0 or not stats_path.exists():
            tail = "\n".join((child.stdout + child.stderr).splitlines()[-25:])
            why = "timed out" if child.timed_out else f"exit status {child.returncode}"
            raise JourneyError(f"locust failed ({why}): {argv}\n{tail}")
        entries = json.loads(stats_path.read_text())
        failures = read_final_errors(Path(marks))
        if failures is None:
            failures = read_failures(Path(prefix + "_failures.csv"))
        exceptions = read_failures(Path(prefix + "_exceptions.csv"), count_key="Count")
        window = read_marks(Path(marks))
        by_worker = read_requests_by_worker(Path(marks))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    capacity = min(processes, len(set(cpus)) if cpus else (os.cpu_count() or 1))
    sample = to_sample(entries, failures, window, child, capacity=capacity,
                       fallback_duration_s=duration_s)
    sample["extra"]["requests_by_worker"] = by_worker
    return sample, argv, sum(int(e.get("occurrences", 0)) for e in exceptions)


# -- parsing ----------------------------------------------------------------------------------


def read_failures(path: Path, count_key: str = "Occurrences") -> list[dict[str, Any]]:
    """Rows of locust's ``_failures.csv`` (or ``_exceptions.csv``) as dicts; [] when absent."""
    if not path.exists():
        return []
    rows = []
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            rows.append({
                "method": row.get("Method"), "name": row.get("Name"),
                "error": row.get("Error") or row.get("Message") or "",
                "occurrences": int(row.get(count_key) or row.get("Occurrences") or 0),
            })
    return rows


def read_final_errors(path: Path) -> list[dict[str, Any]] | None:
    """The failures the lead process (master or local) listed in the marks as it exited, in
    `read_failures`' shape; None without them. They are final, where locust's ``_failures.csv``
    (rewritten once a second, not at exit) can miss the last second of failures."""
    if not path.exists():
        return None
    marks = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    final = [m for m in marks if m["event"] == "errors" and m["role"] in ("master", "local")]
    if not final:
        return None
    return [{"method": e.get("method"), "name": e.get("name"), "error": str(e.get("error") or ""),
             "occurrences": int(e.get("occurrences") or 0)} for e in final[-1]["errors"]]


def read_requests_by_worker(path: Path) -> dict[str, int] | None:
    """Requests each worker reported to the master inside the window (master runs only)."""
    if not path.exists():
        return None
    marks = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    final = [m for m in marks if m["event"] == "errors" and m["role"] == "master"]
    return {str(k): int(v) for k, v in final[-1].get("requests_by_worker", {}).items()} if final else None


def read_marks(path: Path) -> dict[str, Any] | None:
    """The measurement window from the locustfile's marks: its start and end (the reset and
    the stop of the master or local runner), the CPU seconds every process spent in it and the
    requests the lead process had counted before its reset (the warmup's; None if not marked)."""
    if not path.exists():
        return None
    marks = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    lead = [m for m in marks if m["role"] in ("master", "local")]
    resets = [m for m in lead if m["event"] == "reset"]
    stops = [m for m in lead if m["event"] == "stopping"]
    if not resets or not stops:
        return None
    start, end = resets[0]["time"], stops[-1]["time"]
    cpu: dict[int, float] = {}
    for pid in {m["pid"] for m in marks}:
        mine = [m for m in marks if m["pid"] == pid]
        begin = [m["cpu_s"] for m in mine if m["event"] == "reset"]
        stop = [m["cpu_s"] for m in mine if m["event"] == "stopping"]
        if begin and stop:
            cpu[pid] = stop[-1] - begin[0]
    roles = {m["pid"]: m["role"] for m in marks}
    return {"start": start, "end": end, "duration_s": end - start, "cpu_s_by_pid": cpu,
            "roles": roles, "requests_before": resets[0].get("requests_before")}


def classify(message: str) -> str:
    """The results-schema error kind of a locust failure message."""
    text = message.lower()
    # the locustfile's own failures reach the statistics as CatchResponseError('HTTP 500'),
    # CatchResponseError('graphql errors: …'): wrong answers, except HTTP 0 (no answer at all)
    if text.startswith("catchresponseerror("):
        no_answer = text.startswith(("catchresponseerror('http 0'", 'catchresponseerror("http 0"'))
        return "read" if no_answer else "status"
    if "timeout" in text or "timed out" in text:
        return "timeout"
    if any(k in text for k in _CONNECT_MARKERS):
        return "connect"
    if text.startswith("http ") or any(k in text for k in _STATUS_MARKERS):
        return "status"
    return "read"  # reset, closed, incomplete: the connection broke before a full response


_CONNECT_MARKERS = ("refused", "connecterror", "connect call failed", "no route to host",
                    "name or service not known", "cannot assign requested address")
# "HTTP 500" and the locustfile's own failures (GraphQL errors, unexpected bodies)
_STATUS_MARKERS = ("badstatuscode", "graphql", "status", "body", "unexpected")


def merged_percentiles(entries: Iterable[Mapping[str, Any]]) -> tuple[dict[str, float | None], int]:
    """p50…p99.9 and max (ms) from locust's per-entry ``response_times`` ({ms: count})."""
    counts: dict[float, int] = {}
    maximum = 0.0
    for entry in entries:
        for key, n in (entry.get("response_times") or {}).items():
            counts[float(key)] = counts.get(float(key), 0) + int(n)
        maximum = max(maximum, float(entry.get("max_response_time") or 0.0))
    return latency_percentiles_from_counts(counts, maximum)


def to_sample(entries: Sequence[Mapping[str, Any]], failures: Sequence[Mapping[str, Any]],
              window: Mapping[str, Any] | None, child: ChildResult, *, capacity: int,
              fallback_duration_s: float) -> dict[str, Any]:
    """A RESULTS_SCHEMA sample from locust's statistics, the window marks and the rusage."""
    requests = sum(int(e.get("num_requests") or 0) for e in entries)
    failed = sum(int(e.get("num_failures") or 0) for e in entries)
    duration = float(window["duration_s"]) if window and window["duration_s"] > 0 else fallback_duration_s
    latency, _n = merged_percentiles(entries)
    # the mean from locust's exact sum of response times (mean claims are judged on it, never p50)
    total_ms = sum(float(e.get("total_response_time") or 0.0) for e in entries)
    latency = {**latency, "mean": total_ms / requests if requests else None}
    errors = dict.fromkeys(ERROR_KEYS, 0)
    by_message: dict[str, int] = {}
    for row in failures:
        n = int(row.get("occurrences") or 0)
        errors[classify(str(row.get("error") or ""))] += n
        key = f"{row.get('name')}: {row.get('error')}"
        by_message[key[:200]] = by_message.get(key[:200], 0) + n
    unclassified = failed - sum(errors.values())
    if unclassified > 0:  # failures the CSV did not list (it should): still errors
        errors["read"] += unclassified
    by_name: dict[str, Any] = {}
    for entry in entries:
        n = int(entry.get("num_requests") or 0)
        pct, _ = merged_percentiles([entry])
        by_name[str(entry.get("name"))] = {
            "method": entry.get("method"), "requests": n,
            "failures": int(entry.get("num_failures") or 0),
            "rps": n / duration if duration > 0 else 0.0,
            "mean_ms": (float(entry.get("total_response_time") or 0) / n) if n else None,
            **{f"{k}_ms": v for k, v in pct.items()},
        }
    # CPU inside the window (marks) where known, else over the child's whole life
    window_cpu_s = sum((window or {}).get("cpu_s_by_pid", {}).values()) if window else None
    if window and window_cpu_s is not None and duration > 0:
        window_pct: float | None = 100.0 * window_cpu_s / duration
        per_process = [100.0 * c / duration for c in window["cpu_s_by_pid"].values()]
    else:
        window_pct, per_process = None, []
    judged = window_pct if window_pct is not None else child.cpu_pct
    bound = (judged >= CLIENT_BOUND_FRACTION * 100.0 * capacity
             or any(p >= CLIENT_BOUND_FRACTION * 100.0 for p in per_process))
    return {
        "requests": requests,
        "duration_s": duration,
        "rps": requests / duration if duration > 0 else 0.0,
        "latency_ms": latency,
        "errors": errors,
        "client_cpu_pct": child.cpu_pct,
        "extra": {
            "driver": "locust",
            "failures": failed,
            "failures_by_message": by_message,
            "requests_by_name": by_name,
            "client_bound": bound,
            "flags": ["client-bound"] if bound else [],
            "client_cores": capacity,
            "client_cpu_pct_window": window_pct,
            "client_cpu_pct_by_process": per_process,
            "client_cpu_s": child.cpu_s,
            "client_wall_s": child.wall_s,
            "client_max_rss_bytes": child.max_rss_bytes,
            "window_marked": window is not None,
            # every request of the run, warmup included: the server's CPU is measured over the
            # whole run (measure.with_server_usage), so its cost per request divides by these
            "answered_total": requests + int(before) if (before := (window or {}).get("requests_before")) is not None
            else None,
        },
    }
