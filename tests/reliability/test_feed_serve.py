"""`stackbench serve --impl flask --server gunicorn-gthread --workers 3` on PostgreSQL: one SSE
client gets every event of a scripted session, whichever of the 3 workers served each write."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from types import SimpleNamespace

import httpx
import pytest

from loadtests.launcher import free_port, probe
from tests.reliability.test_feed_workers import Stream, feed_dsn  # noqa: F401 (a fixture)

# ~30 s here (the simulator, 3 workers, production-cost argon2): kept out of the default run.
pytestmark = [pytest.mark.server, pytest.mark.slow]
PASSWORD = "correct horse battery staple"


class Served:
    def __init__(self, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}"


@pytest.fixture
def served(feed_dsn: str) -> Iterator[Served]:  # noqa: F811
    port, upstream = free_port(), free_port()
    cmd = [sys.executable, "-c", "from stackbench.cli import app; app()", "serve", "--impl", "flask",
           "--server", "gunicorn-gthread", "--workers", "3", "--port", str(port), "--dsn", feed_dsn,
           "--seed-users", "0", "--upstream-port", str(upstream)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        while probe("127.0.0.1", port, "/api/health/live") != 200:
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
            assert time.monotonic() < deadline, "stackbench serve did not come up"
            time.sleep(0.3)
        yield Served(port)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_stackbench_serve_flask_with_three_workers_delivers_every_event(served: Served) -> None:
    with httpx.Client(base_url=served.url, timeout=30) as c:
        username = f"serve_{time.monotonic_ns() % 10**9}"
        assert c.post("/api/auth/register", json={"username": username, "display_name": "S", "password": PASSWORD}).status_code == 201
        token = c.post("/api/auth/token", json={"username": username, "password": PASSWORD}).json()["access_token"]

    who = SimpleNamespace(url=served.url, server=None, headers={"Authorization": f"Bearer {token}"})
    stream = Stream(who)  # type: ignore[arg-type]
    expected: list[str] = []

    def write(method: str, path: str, event: str, **kw: object) -> httpx.Response:
        with httpx.Client(base_url=served.url, timeout=30, headers=who.headers) as c:  # a fresh connection
            r = c.request(method, path, **kw)  # type: ignore[arg-type]
        assert r.status_code in (200, 201, 204), r.text
        expected.append(event)
        return r

    try:
        deck = write("POST", "/api/decks", "deck.created", json={"title": "Session"}).json()["id"]
        cards = [write("POST", f"/api/decks/{deck}/cards", "card.created", json={"front": f"q{i}", "back": "a"}).json()["id"]
                 for i in range(4)]
        for grade, card in zip((5, 3, 1, 4), cards, strict=True):
            write("POST", f"/api/cards/{card}/reviews", "review.created", json={"grade": grade})
        write("PATCH", f"/api/cards/{cards[0]}", "card.updated", json={"back": "b"})
        write("PATCH", f"/api/decks/{deck}", "deck.updated", json={"title": "Renamed"})
        write("DELETE", f"/api/cards/{cards[1]}", "card.deleted")
        write("DELETE", f"/api/decks/{deck}", "deck.deleted")
        got = stream.take(len(expected))
        assert [t for _, t, _ in got] == expected
        ids = [i for i, _, _ in got]
        assert ids == sorted(set(ids))
        assert stream.take(1, timeout=1.0) == []
    finally:
        stream.close()
