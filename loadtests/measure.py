"""One measured sample per driver: a load run against a started server, with the server's CPU and
memory taken over exactly the measured window.

The caller (bench.py) owns servers, database and cells; these functions only drive load and
turn what the drivers print into RESULTS_SCHEMA samples. Every driver runs as a separate process
pinned to the client CPUs, so its own CPU use comes from `wait4` and is recorded beside the
server's (a saturated client is flagged "client-bound" by stats.cell_flags).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from loadtests.accounting import ProcessTreeMonitor, run_measured
from loadtests.scenarios import RequestSpec
from loadtests.wrk import WrkJob

PYTHON = sys.executable


@dataclass(frozen=True)
class Load:
    """Where the load goes and from which CPUs."""

    url: str
    server_pid: int
    client_cpus: tuple[int, ...] | None


def wrk_job(load: Load, spec: RequestSpec, connections: int, duration_s: float, *,
            writes: bool = False, threads: int = 1) -> WrkJob:
    """The wrk run that sends `spec` (the Lua script follows from the request's shape)."""
    script = "post_json" if spec.body is not None else ("get_ids" if spec.ids else "get")
    return WrkJob(
        url=load.url + (spec.path if script == "get" else "/"),
        connections=connections, duration_s=duration_s, threads=threads, script=script,
        path=spec.path if script != "get" else None, ids=list(spec.ids) if spec.ids else None,
        body=spec.body, method=spec.method if script != "get" else None, headers=spec.headers,
        users=[(token, list(ids)) for token, ids in spec.users] or None,
        cpus=load.client_cpus, writes=writes,
        # a response slower than the window still arrives in it: record it (wrk drops responses
        # slower than --timeout from its latency figures and counts them as timeouts)
        timeout_s=max(WrkJob.timeout_s, float(round(duration_s))),  # wrk reads whole seconds
    )


def load_users(spec: RequestSpec) -> int:
    """How many users a spec's load is spread over (`sample.extra.load_users`): 1 unless `users`."""
    return len(spec.users) or 1


def _with_server(sample: dict[str, Any], monitor: ProcessTreeMonitor) -> dict[str, Any]:
    """The server tree's usage over the window: CPU % and seconds, peak RSS (summed: an upper
    bound), peak PSS and USS (the fair memory figures), processes alive."""
    usage = monitor.end()
    sample["server_cpu_pct"] = usage.cpu_pct
    sample["server_cpu_s"] = usage.cpu_s
    sample["server_peak_rss_bytes"] = usage.peak_rss_bytes
    sample["server_pss_bytes"] = usage.peak_pss_bytes
    sample["server_uss_bytes"] = usage.peak_uss_bytes
    sample["server_processes"] = usage.max_processes
    sample.setdefault("extra", {})["server"] = usage.as_dict()
    return sample


SERVER_FIELDS = ("server_cpu_pct", "server_cpu_s", "server_peak_rss_bytes", "server_pss_bytes",
                 "server_uss_bytes", "server_processes")


def closed_fields(sample: dict[str, Any], concurrency: int) -> dict[str, Any]:
    """The fields every closed-loop sample carries (RESULTS_SCHEMA v2): its concurrency, the
    latency mean beside the percentiles (wrk and locust report it), errors.timeout."""
    sample["concurrency"] = concurrency
    latency = sample.setdefault("latency_ms", {})
    if latency.get("mean") is None:
        latency["mean"] = (sample.get("extra") or {}).get("latency_mean_ms")
    sample.setdefault("errors", {}).setdefault("timeout", 0)
    return sample


def with_server_usage(load: Load, run: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run a driver that returns a sample and add the server's CPU and RSS over its run."""
    with ProcessTreeMonitor(load.server_pid) as monitor:
        monitor.begin()
        sample = run()
        return _with_server(sample, monitor)


def settled(count_rows: Callable[[], int], timeout_s: float = 10.0) -> int:
    """The row count once requests still in flight at wrk's cutoff have finished (two equal
    readings 200 ms apart): they were sent but never acknowledged."""
    last = count_rows()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        time.sleep(0.2)
        now = count_rows()
        if now == last:
            return now
        last = now
    return last


def closed_loop(load: Load, spec: RequestSpec, connections: int, warmup_s: float, duration_s: float,
                *, count_rows: Callable[[], int] | None = None, threads: int = 1) -> dict[str, Any]:
    """wrk at `connections` for `duration_s` after a discarded warmup. For a write scenario
    `count_rows` reads the table the writes land in: stored = rows after − rows before."""
    if warmup_s > 0:
        wrk_job(load, spec, connections, warmup_s, threads=threads).run()
    before = settled(count_rows) if count_rows else None
    with ProcessTreeMonitor(load.server_pid) as monitor:
        monitor.begin()
        sample = wrk_job(load, spec, connections, duration_s, writes=count_rows is not None,
                         threads=threads).run()
        sample = closed_fields(_with_server(sample, monitor), connections)
    sample["extra"]["load_users"] = load_users(spec)
    if count_rows is not None and before is not None:
        stored = settled(count_rows) - before
        acked = int(sample["writes"]["acknowledged"] or 0)
        sample["writes"] = {"acknowledged": acked, "stored": stored,
                            "in_flight_at_cutoff": max(0, stored - acked), "lost": max(0, acked - stored)}
    return sample


def _python_driver(load: Load, module: str, args: Sequence[str], timeout: float) -> tuple[dict[str, Any], Any]:
    """Run `python -m module args…` pinned to the client CPUs; parse the JSON line it prints."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    child = run_measured([PYTHON, "-m", module, *args], cpus=load.client_cpus, timeout=timeout, env=env)
    lines = [line for line in child.stdout.splitlines() if line.startswith("{")]
    if child.returncode != 0 or not lines:
        tail = "\n".join((child.stdout + child.stderr).splitlines()[-15:])
        why = "timed out" if child.timed_out else f"exit status {child.returncode}"
        raise RuntimeError(f"{module} failed ({why})\n{tail}")
    return json.loads(lines[-1]), child


def chat(load: Load, token: str, api: str, clients: int, timeout_s: float,
         upstream: dict[str, Any]) -> dict[str, Any]:
    """`clients` users each stream one tutor answer at once; times to first token and to the end."""
    with ProcessTreeMonitor(load.server_pid) as monitor:
        monitor.begin()
        out, child = _python_driver(load, "loadtests.realtime", [
            "chat", "--url", load.url, "--token", token, "--api", api, "--clients", str(clients),
            "--timeout", str(timeout_s)], timeout=timeout_s + 60)
        usage_sample: dict[str, Any] = {}
        _with_server(usage_sample, monitor)
    total = out["total_ms"]
    # The upstream alone needs ttft + tokens × inter-token delay: what is added is the stack's.
    floor_ms = upstream["ttft_ms"] + upstream["tokens"] * upstream["inter_token_ms"]
    ttft = out["ttft_ms"]
    slo_met = bool(out["completed"] == clients and ttft.get("p99") is not None
                   and ttft["p99"] <= 2 * upstream["ttft_ms"])
    return {
        "requests": out["completed"], "duration_s": out["duration_s"],
        "rps": out["completed"] / out["duration_s"] if out["duration_s"] else 0.0,
        "latency_ms": {k: total.get(k) for k in ("p50", "p90", "p99", "p99_9", "max")},
        "errors": {str(k): int(v) for k, v in out["errors"].items()},
        "client_cpu_pct": child.cpu_pct,
        **{k: usage_sample[k] for k in SERVER_FIELDS},
        "extra": {
            "driver": "chat", "clients": clients, "completed": out["completed"],
            "errors": out["errors"], "ttft_ms": ttft, "total_ms": total, "tokens": out["tokens"],
            "upstream": upstream, "upstream_floor_ms": floor_ms,
            "ttft_added_p50_ms": (ttft["p50"] - upstream["ttft_ms"]) if ttft.get("p50") is not None else None,
            "slo_met": slo_met, "server": usage_sample["extra"]["server"],
        },
    }


def fanout(load: Load, token: str, api: str, transport: str, subscribers: int, events: int,
           rate: float, connect_timeout_s: float) -> dict[str, Any]:
    """Hold `subscribers` event streams (SSE, WebSocket or GraphQL subscriptions), publish
    `events`, measure delivery latency, RSS per held connection and RSS after they all left."""
    monitor = ProcessTreeMonitor(load.server_pid)
    monitor.start()
    try:
        time.sleep(0.3)
        idle_rss = monitor.end().peak_rss_bytes
        monitor.begin()
        out, child = _python_driver(load, "loadtests.realtime", [
            "fanout", "--url", load.url, "--token", token, "--api", api, "--transport", transport,
            "--subscribers", str(subscribers), "--events", str(events), "--rate", str(rate),
            "--connect-timeout", str(connect_timeout_s)], timeout=connect_timeout_s + events / rate + 120)
        held = monitor.end()
        time.sleep(2.0)  # the server notices the disconnects and frees what they held
        monitor.begin()
        time.sleep(0.5)
        after = monitor.end()
    finally:
        monitor.stop()
    delivery = out["delivery_ms"]
    connected = out["connected"]
    per_conn = (held.peak_rss_bytes - idle_rss) / connected if connected else None
    return {
        "requests": out["delivered"], "duration_s": held.wall_s,
        "rps": out["connects_per_s"],
        "latency_ms": {k: delivery.get(k) for k in ("p50", "p90", "p99", "p99_9", "max")},
        "errors": {**{str(k): int(v) for k, v in out["errors"].items()},
                   "lost": int(out["lost"]), "publish": int(out["publish_errors"]),
                   "not_connected": int(subscribers - connected)},
        "client_cpu_pct": child.cpu_pct,
        "server_cpu_pct": held.cpu_pct, "server_cpu_s": held.cpu_s,
        "server_peak_rss_bytes": held.peak_rss_bytes, "server_pss_bytes": held.peak_pss_bytes,
        "server_uss_bytes": held.peak_uss_bytes, "server_processes": held.max_processes,
        "extra": {
            "driver": transport, **{k: out[k] for k in (
                "subscribers", "connected", "connect_s", "connects_per_s", "connect_ms", "published",
                "delivered", "expected", "lost", "open_files_limit")},
            "delivery_ms": delivery, "single_event": out.get("single_event"), "idle_rss_bytes": idle_rss,
            "rss_per_connection_bytes": per_conn,
            "rss_after_disconnect_delta_mib": (after.peak_rss_bytes - idle_rss) / 2**20,
            "server": held.as_dict(),
        },
    }


def ws_connect(load: Load, token: str, api: str, clients: int, warmup_s: float, duration_s: float) -> dict[str, Any]:
    """`clients` closed loops of WebSocket sessions (loadtests/wsconnect.py): connects/s, the
    time to an established session, failures by reason. The warm-up is a discarded run of its
    own (as wrk's), so the server's usage covers the measured run only; that run keeps a short
    ramp (`RAMP_S`) out of its window. The client's CPU is taken over its window: at or above
    `stats.CLIENT_CPU_SATURATED` % of its one core the sample says so (`extra.client_bound`) and
    stats.cell_flags flags the cell client-bound."""
    args = ["--url", load.url, "--token", token, "--api", api, "--clients", str(clients)]
    if warmup_s > 0:
        _python_driver(load, "loadtests.wsconnect", [*args, "--warmup", "0", "--duration", str(warmup_s)],
                       timeout=warmup_s + 60)
    with ProcessTreeMonitor(load.server_pid) as monitor:
        monitor.begin()
        out, child = _python_driver(load, "loadtests.wsconnect", [
            *args, "--warmup", str(RAMP_S), "--duration", str(duration_s)], timeout=duration_s + 60)
        usage: dict[str, Any] = {}
        _with_server(usage, monitor)
    connect = out["connect_ms"]
    reasons = {str(k): int(v) for k, v in out["failure_reasons"].items()}
    timeouts = reasons.get("timeout", 0)
    sample = {
        "requests": out["sessions"], "duration_s": out["duration_s"], "rps": out["sessions_per_s"],
        "latency_ms": {**{k: connect.get(k) for k in ("p50", "p90", "p99", "p99_9", "max")},
                       "mean": out["connect_mean_ms"]},
        "errors": {"session": int(out["failures"]) - timeouts, "timeout": timeouts},
        "client_cpu_pct": out["client_cpu_pct_window"],
        **{k: usage[k] for k in SERVER_FIELDS},
        "extra": {
            "driver": "wsconnect", "api": api, "clients": clients, "sessions": out["sessions"],
            "connects_per_s": out["sessions_per_s"], "connect_ms": connect, "failures": out["failures"],
            "failure_reasons": reasons, "warmup_s": warmup_s, "ramp_s": RAMP_S,
            "client_cpu_pct_window": out["client_cpu_pct_window"], "client_cpu_pct_process": child.cpu_pct,
            "client_bound": out["client_bound"], "flags": ["client-bound"] if out["client_bound"] else [],
            "client_ceiling_per_s": out.get("client_ceiling_per_s"),
            "server_cpu_ms_per_session": (1000 * usage["server_cpu_s"] / out["sessions"]) if out["sessions"] else None,
            "server": usage["extra"]["server"],
        },
    }
    return closed_fields(sample, clients)


RAMP_S = 0.25  # the measured run's first sessions start together: kept out of its window
