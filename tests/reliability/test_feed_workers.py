"""The event feed across worker processes, on PostgreSQL, under real servers with 3 workers
(gunicorn gthread for Flask, uvicorn for FastAPI): a subscriber on one worker gets every event
published through the others, in order, none twice; a resume on another worker loses nothing;
a worker killed mid-stream loses no committed event for a client that reconnects.

Which worker holds a connection is read from the OS (psutil: the worker process owning the
server end of the client's TCP connection), so "another worker" is checked, not assumed.
"""

from __future__ import annotations

import os
import queue
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import psutil
import pytest

from loadtests.launcher import RunningServer, ServerError, serving
from loadtests.servers import ServerSpec
from loadtests.stacks import APPS
from tests.support import FAST_HASH, fresh_schema, make_settings, postgres_dsn

pytestmark = pytest.mark.server

SERVERS = {"flask": "gunicorn-gthread", "rest": "uvicorn"}
FAST_HASH_ENV = {f"STACKBENCH_{k.upper()}": str(v) for k, v in FAST_HASH.items()}
PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def feed_dsn() -> str:
    dsn = postgres_dsn("stackbench_test_feed")
    fresh_schema(make_settings(dsn))
    return dsn


@pytest.fixture(scope="module", params=sorted(SERVERS))
def server(request: pytest.FixtureRequest, feed_dsn: str) -> Iterator[RunningServer]:
    impl = request.param
    env = {"STACKBENCH_DSN": feed_dsn, "STACKBENCH_ENVIRONMENT": "test", "STACKBENCH_SSE_KEEPALIVE_S": "1",
           **FAST_HASH_ENV}
    threads = 8 if impl == "flask" else None  # held streams occupy gthread threads
    spec = ServerSpec(SERVERS[impl], APPS[impl], port=0, workers=3, threads=threads, env=env)
    with serving(spec, timeout=90) as running:
        yield running


def worker_of(server: RunningServer, client_port: int) -> int | None:
    """The pid of the server process holding the other end of the client's connection."""
    for proc in server.processes():
        try:
            for conn in proc.net_connections(kind="tcp"):
                if conn.raddr and conn.raddr.port == client_port and conn.status == psutil.CONN_ESTABLISHED:
                    return proc.pid
        except psutil.Error:
            continue
    return None


def client_port(response: httpx.Response) -> int:
    return int(response.extensions["network_stream"].get_extra_info("socket").getsockname()[1])


class User:
    def __init__(self, server: RunningServer, name: str) -> None:
        self.url = server.url
        self.server = server
        with httpx.Client(base_url=self.url, timeout=30) as c:
            username = f"{name}_{os.getpid()}_{time.monotonic_ns() % 10**9}"
            r = c.post("/api/auth/register", json={"username": username, "display_name": name, "password": PASSWORD})
            assert r.status_code == 201, r.text
            r = c.post("/api/auth/token", json={"username": username, "password": PASSWORD})
            self.headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
            r = c.post("/api/decks", headers=self.headers, json={"title": "Feed"})
            self.deck_id = r.json()["id"]

    def publish(self, n: int) -> list[tuple[int, int | None]]:
        """`n` new cards, each on a fresh connection: (card id, the worker that served it)."""
        out = []
        for i in range(n):
            for attempt in range(5):  # a connection to a worker that was just killed: try again
                try:
                    with httpx.Client(base_url=self.url, timeout=30) as c:
                        r = c.post(f"/api/decks/{self.deck_id}/cards", headers=self.headers,
                                   json={"front": f"q{i}", "back": "a"})
                        assert r.status_code == 201, r.text
                        out.append((r.json()["id"], worker_of(self.server, client_port(r))))
                    break
                except httpx.TransportError:
                    if attempt == 4:
                        raise
                    time.sleep(0.2)
        return out


class Stream:
    """One SSE client, read in a thread: (id, type, data) per event; None when it ended."""

    def __init__(self, user: User, last_event_id: int | None = None, client: httpx.Client | None = None) -> None:
        headers = dict(user.headers)
        if last_event_id is not None:
            headers["Last-Event-ID"] = str(last_event_id)
        self.client = client or httpx.Client(base_url=user.url, timeout=httpx.Timeout(30.0))
        self._cm = self.client.stream("GET", "/api/events", headers=headers)
        self.response = self._cm.__enter__()
        assert self.response.status_code == 200
        self.lines = self.response.iter_lines()
        assert next(self.lines) == ": connected"
        self.worker = worker_of(user.server, client_port(self.response)) if user.server is not None else None
        self.items: queue.Queue[tuple[int, str, dict[str, Any]] | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        frame: dict[str, str] = {}
        try:
            for line in self.lines:
                if line == "":
                    if "id" in frame:
                        self.items.put((int(frame["id"]), frame["event"], orjson.loads(frame["data"])["data"]))
                    frame = {}
                elif not line.startswith(":"):
                    key, _, value = line.partition(": ")
                    frame[key] = value
        except Exception:  # the connection broke (a killed worker) or was closed by the test
            pass
        finally:
            self.items.put(None)

    def take(self, n: int, timeout: float = 15.0) -> list[tuple[int, str, dict[str, Any]]]:
        out = []
        deadline = time.monotonic() + timeout
        while len(out) < n:
            try:
                item = self.items.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                break
            if item is None:
                break
            out.append(item)
        return out

    def rest(self, timeout: float = 15.0) -> list[tuple[int, str, dict[str, Any]]]:
        """Everything until the stream ends."""
        out = []
        while (item := self.items.get(timeout=timeout)) is not None:
            out.append(item)
        return out

    def close(self) -> None:
        try:
            self._cm.__exit__(None, None, None)
        except Exception:
            pass
        self.client.close()


def open_stream(user: User, last_event_id: int | None = None, *, avoid: int | None = None) -> Stream:
    """A stream on a worker other than `avoid` (reconnecting until the kernel hands one over).

    The worker a connection landed on is found with a plain request first, and the stream is
    then opened on that same (kept-alive) connection. Not with streams: a stream closed by the
    client keeps one of the user's `max_streams_per_user` slots on its worker until the worker
    notices, at its next keep-alive write (WSGI has no other way to learn that a client left),
    so a few streams opened and closed on `avoid` in a row were refused with 429."""
    for _ in range(30):
        client = httpx.Client(base_url=user.url, timeout=httpx.Timeout(30.0))
        if avoid is not None:
            probe = client.get("/api/health/live")
            assert probe.status_code == 200, probe.text
            if worker_of(user.server, client_port(probe)) == avoid:
                client.close()
                continue
        stream = Stream(user, last_event_id, client)
        if avoid is None or (stream.worker is not None and stream.worker != avoid):
            return stream
        stream.close()  # the pooled connection was not reused (rare)
    pytest.fail(f"30 connections all landed on worker {avoid}")


def cards_of(events: list[tuple[int, str, dict[str, Any]]]) -> list[int]:
    assert all(t == "card.created" for _, t, _ in events), events
    return [d["card_id"] for _, _, d in events]


def assert_ordered_once(events: list[tuple[int, str, dict[str, Any]]]) -> None:
    ids = [i for i, _, _ in events]
    assert ids == sorted(set(ids)), ids  # increasing: in order, none twice


def test_a_subscriber_on_one_worker_gets_every_event_of_all_workers(server: RunningServer) -> None:
    user = User(server, "fan")
    streams = [open_stream(user)]
    streams.append(open_stream(user, avoid=streams[0].worker))  # subscribers on two workers
    try:
        published = user.publish(12)
        served_by = {w for _, w in published}
        for stream in streams:
            assert served_by - {stream.worker}, "every write landed on the subscriber's own worker"
            got = stream.take(12)
            assert cards_of(got) == [card for card, _ in published]
            assert_ordered_once(got)
            assert stream.take(1, timeout=1.5) == []  # and nothing more
    finally:
        for stream in streams:
            stream.close()


def test_resume_on_another_worker_loses_nothing(server: RunningServer) -> None:
    user = User(server, "resume")
    first = open_stream(user)
    before = user.publish(5)
    got = first.take(5)
    assert cards_of(got) == [c for c, _ in before]
    first.close()
    missed = user.publish(6)  # while no stream is open
    second = open_stream(user, got[-1][0], avoid=first.worker)
    try:
        after = user.publish(3)
        resumed = second.take(9)
        assert cards_of(resumed) == [c for c, _ in missed + after]
        assert_ordered_once(got + resumed)
    finally:
        second.close()


def test_a_worker_killed_mid_stream_loses_no_committed_event(server: RunningServer) -> None:
    user = User(server, "killed")
    stream = open_stream(user)
    assert stream.worker is not None
    published = user.publish(4)
    received = stream.take(2)
    os.kill(stream.worker, signal.SIGKILL)  # while events may still be queued for it
    received += stream.rest()
    stream.close()
    published += user.publish(4)  # through the surviving (and respawned) workers
    again = open_stream(user, received[-1][0])
    try:
        resumed = again.take(len(published) - len(received))
        assert cards_of(received + resumed) == [c for c, _ in published]
        assert_ordered_once(received + resumed)
    finally:
        again.close()


def test_a_multi_worker_app_server_on_sqlite_is_refused(tmp_path: Any) -> None:
    spec = ServerSpec("gunicorn-gthread", APPS["flask"], port=0, workers=3,
                      env={"STACKBENCH_DSN": f"sqlite:///{tmp_path / 'x.sqlite3'}"})
    with pytest.raises(ServerError, match="on SQLite: the event feed is per process"):
        RunningServer(spec).start()
