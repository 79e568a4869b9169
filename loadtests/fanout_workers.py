"""Fan-out across server workers through the PostgreSQL event feed (issue 16).

Each worker process LISTENs on PostgreSQL and fans out to its own subscribers; an event is
written in the change's transaction and announced with `pg_notify`. This cell holds
`subscribers` SSE streams on a server with N workers, publishes through the public API (the
publishing request lands on whichever worker the kernel picks) and measures publish → receipt
at every subscriber (the same driver as the one-worker sse-fanout cells: loadtests/realtime.py),
so the path measured is publish → commit → NOTIFY → every worker → every subscriber.

Proof of the spread: while the streams are held, the ESTABLISHED TCP connections on the
server's port are counted per worker process (psutil, the server's own end of each connection);
the snapshot with the most connections is kept (`worker_split`). A multi-worker cell whose
subscribers all landed on one worker says so (`spread: false`, and a flag).

On one server core every worker shares that core: the cell measures the cross-worker delivery
path, not scaling. SQLite has no cross-process feed and the apps refuse several workers on it:
the cell is refused with that reason.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import httpx
import psutil

from loadtests import measure

if TYPE_CHECKING:
    from loadtests.bench import Bench
    from loadtests.launcher import RunningServer
    from loadtests.stacks import Stack

SQLITE_REFUSAL = ("SQLite has no cross-process event feed (the apps refuse several workers on it): "
                  "fan-out across workers needs PostgreSQL")


def worker_split(running: RunningServer) -> dict[str, int]:
    """pid → ESTABLISHED connections on the server's port held by that process (the server's
    end: local port = the server port). Processes holding none are listed with 0."""
    port = int(running.url.rsplit(":", 1)[1])
    out: dict[str, int] = {}
    for proc in running.processes():
        try:
            conns = proc.net_connections(kind="tcp")
        except psutil.Error:
            continue
        out[str(proc.pid)] = sum(1 for c in conns if c.status == psutil.CONN_ESTABLISHED
                                 and c.laddr and c.laddr.port == port)
    return out


class SplitSampler(threading.Thread):
    """Samples `worker_split` until stopped; keeps the snapshot with the most connections."""

    def __init__(self, running: RunningServer, interval_s: float = 0.25) -> None:
        super().__init__(daemon=True)
        self.running, self.interval_s = running, interval_s
        self.best: dict[str, int] = {}
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(self.interval_s):
            try:
                snap = worker_split(self.running)
            except Exception:  # a process that left mid-read: the next snapshot
                continue
            if sum(snap.values()) > sum(self.best.values()):
                self.best = snap

    def stop(self) -> dict[str, int]:
        self._stop_event.set()
        self.join(timeout=5)
        return self.best


def measure_cell(running: RunningServer, load: measure.Load, token: str, api: str, workers: int,
                 subscribers: int, events: int, rate: float, connect_timeout_s: float) -> dict[str, Any]:
    """One sample: the sse-fanout measurement with the per-worker subscriber split beside it."""
    sampler = SplitSampler(running)
    sampler.start()
    try:
        sample = measure.fanout(load, token, api, "sse", subscribers, events, rate, connect_timeout_s)
    finally:
        split = sampler.stop()
    serving = {pid: n for pid, n in split.items() if n > 0}
    extra = sample["extra"]
    extra["workers"] = workers
    extra["worker_split"] = split
    extra["workers_holding"] = len(serving)
    extra["spread"] = len(serving) >= min(workers, 2) if workers > 1 else True
    return sample


def run(bench: Bench) -> list[dict[str, Any]]:
    """Every (stack, worker count) of the profile; one entry each, in `doc["fanout_workers"]`."""
    from loadtests.bench import CONNECT_TIMEOUT_S
    from loadtests.launcher import ServerError

    profile = bench.plan.profile
    entries: list[dict[str, Any]] = bench.doc.setdefault("fanout_workers", [])
    sqlite = bench.db.dsn.startswith("sqlite")
    for stack in bench.plan.fanout_workers_stacks():  # the profile's stacks whose sse-fanout runs
        stack_id = stack.id
        for workers in profile.fanout_workers:
            entry: dict[str, Any] = {
                "stack": stack_id, "workers": workers, "subscribers": profile.fanout_workers_subscribers,
                "transport": "sse", "status": "ok", "error": None, "setup": None, "sample": None,
                "server_cpus": list(bench.server_cpus), "flags": []}
            entries.append(entry)
            bench.advance(f"{stack_id}/sse-fanout-workers/{workers}")
            if sqlite:
                entry["status"], entry["error"] = "refused", SQLITE_REFUSAL
                bench.save()
                continue
            if len(bench.server_cpus) < workers:
                entry["flags"].append("workers-share-cores")
            try:
                entry["sample"] = _one(bench, stack, workers, profile.fanout_workers_subscribers,
                                       CONNECT_TIMEOUT_S.get(profile.name, 60.0), entry)
                if not entry["sample"]["extra"]["spread"]:
                    entry["flags"].append("not-spread")
            except (ServerError, httpx.HTTPError, RuntimeError, OSError, KeyError, ValueError) as exc:
                entry["status"], entry["error"] = "failed", f"{type(exc).__name__}: {exc}"[:2000]
            bench.db.restore()
            bench.save()
    return entries


def _one(bench: Bench, stack: Stack, workers: int, subscribers: int, connect_timeout_s: float,
         entry: dict[str, Any]) -> dict[str, Any]:
    profile = bench.plan.profile
    info = bench.doc["stacks"].setdefault(stack.id, {})
    kept = info.get("fanout_server")
    try:
        with bench.server(stack, workers=workers) as running:
            entry["setup"] = dict(bench.setup or {})
            entry["server"] = info.get("fanout_server")
            load = measure.Load(running.url, running.pid, bench.client_cpus)
            with httpx.Client(base_url=running.url, timeout=30) as client:
                user = bench._user(stack, client)
            assert user is not None
            return measure_cell(running, load, user.token, stack.api, workers, subscribers,
                                profile.fanout_events, profile.fanout_rate, connect_timeout_s)
    finally:  # the one-worker sse-fanout cells' server description stays theirs
        if kept is None:
            info.pop("fanout_server", None)
        else:
            info["fanout_server"] = kept
