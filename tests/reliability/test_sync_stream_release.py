"""Held streams on the thread-per-stream servers (issue 19, finding 3), over real sockets.

* A client that goes away: the next keep-alive write fails, the stream ends and its slot (a
  thread, and one of the user's `max_streams_per_user`) is free again within a couple of
  `sse_keepalive_s` ticks, on gunicorn gthread, gunicorn gevent and waitress.
* The same for a tutor chat: the next token's write fails, the relay closes its upstream stream
  (the real simulator sees the client go) and the user's chat slot is free.
* The thread counts: with one user holding every stream the caps allow, another request still
  finds a thread at once (gthread and waitress run `2 × CPU + max_streams + max_chats` threads).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from flashcards._sync.database import Database
from flashcards.settings import Settings
from loadtests.launcher import RunningServer
from loadtests.servers import ServerSpec, held_streams_per_user
from loadtests.stacks import APPS, HEALTH
from tests.support import FAST_HASH, make_settings
from upstream_sim.server import SimulatorHandle, running_simulator

KEEPALIVE_S = 0.2
SERVERS = ["gunicorn-gthread", "gunicorn-gevent", "waitress"]


def _env(dsn: str, **extra: object) -> dict[str, str]:
    values = {"dsn": dsn, "environment": "test", "sse_keepalive_s": KEEPALIVE_S, **FAST_HASH, **extra}
    return {f"STACKBENCH_{k.upper()}": str(v) for k, v in values.items()}


@pytest.fixture
def dsn(tmp_path: Path) -> str:
    dsn = f"sqlite:///{tmp_path / 'streams.sqlite3'}"
    db = Database(make_settings(dsn))
    db.create_schema()
    db.dispose()
    return dsn


def _server(server: str, dsn: str, **extra: object) -> RunningServer:
    spec = ServerSpec(server=server, app=APPS["flask"], port=0, workers=None if server == "waitress" else 1,
                      env=_env(dsn, **extra))  # fmt: skip
    return RunningServer(spec)


def _token(base: str, username: str = "holder") -> str:
    creds = {"username": username, "password": "correct horse battery"}
    with httpx.Client(base_url=base, timeout=10) as client:
        assert client.post("/api/auth/register", json={**creds, "display_name": username}).status_code == 201
        return str(client.post("/api/auth/token", json=creds).json()["access_token"])


def _open_stream(port: int, token: str) -> tuple[socket.socket, bytes]:
    """A raw SSE request; returns the socket and the status line."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(f"GET /api/events HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {token}\r\n\r\n".encode())
    head = b""
    while b"\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            break
        head += chunk
    return sock, head.split(b"\r\n", 1)[0]


def _held_streams(port: int, token: str, n: int) -> Iterator[socket.socket]:
    for _ in range(n):
        sock, status = _open_stream(port, token)
        assert status == b"HTTP/1.1 200 OK", status
        yield sock


@pytest.mark.parametrize("server", SERVERS)
def test_a_gone_client_frees_its_stream_within_two_keepalives(server: str, dsn: str) -> None:
    cap = 2
    with _server(server, dsn, max_streams_per_user=cap) as running:
        token = _token(running.url)
        held = list(_held_streams(running.spec.port, token, cap))
        extra, status = _open_stream(running.spec.port, token)
        extra.close()
        assert b"429" in status  # the cap is full while the clients are there
        for sock in held:
            sock.close()  # the clients go away without a word
        gone = time.monotonic()
        while True:
            sock, status = _open_stream(running.spec.port, token)
            sock.close()
            if b"200" in status:
                break
            assert time.monotonic() - gone < 10 * KEEPALIVE_S + 2, f"{server}: slots not freed: {status!r}"
            time.sleep(KEEPALIVE_S / 2)
        # a failed write ends the stream: at most ~2 ticks (the first write can still succeed)
        assert time.monotonic() - gone < 4 * KEEPALIVE_S + 2.5


@pytest.mark.parametrize("server", ["gunicorn-gthread", "waitress"])
def test_one_users_streams_never_take_the_last_thread(server: str, dsn: str) -> None:
    defaults = Settings.model_fields
    assert held_streams_per_user() == defaults["max_streams_per_user"].default + defaults["max_chats_per_user"].default
    with _server(server, dsn) as running:
        assert running.spec.settings()["threads"] >= held_streams_per_user() + 2
        token = _token(running.url)
        # every event stream the caps allow, plus the chats' share (a chat holds a thread the
        # same way) as event streams of a second account
        streams = list(_held_streams(running.spec.port, token, defaults["max_streams_per_user"].default))
        second = _token(running.url, "second")
        streams += _held_streams(running.spec.port, second, defaults["max_chats_per_user"].default)
        try:
            with httpx.Client(base_url=running.url, timeout=5) as client:
                started = time.monotonic()
                assert client.get(HEALTH).status_code == 200
                assert time.monotonic() - started < 2
        finally:
            for sock in streams:
                sock.close()


@pytest.fixture(scope="module")
def upstream() -> Iterator[SimulatorHandle]:
    with running_simulator(ttft_ms=5, inter_token_ms=1, tokens=12) as sim:
        yield sim


def _open_chat(port: int, token: str, message: str) -> tuple[socket.socket, bytes]:
    body = f'{{"message": "{message}"}}'.encode()
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(f"POST /api/chat HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {token}\r\n"
                 f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)  # fmt: skip
    received = b""
    while b"event: token" not in received and b"429" not in received[:20]:
        chunk = sock.recv(4096)
        if not chunk:
            break
        received += chunk
    return sock, received.split(b"\r\n", 1)[0]


@pytest.mark.parametrize("server", SERVERS)
def test_a_gone_chat_client_frees_the_upstream_and_its_slot(server: str, dsn: str, upstream: SimulatorHandle) -> None:
    with _server(server, dsn, max_chats_per_user=1, upstream_url=upstream.url) as running:
        token = _token(running.url)
        before = upstream.stats()
        # 600 tokens 20 ms apart: twelve seconds of answer, of which the client reads one token
        sock, status = _open_chat(running.spec.port, token, "[[inter_token_ms:20 tokens:600]] tell me all")
        assert status == b"HTTP/1.1 200 OK", status
        sock.close()
        gone = time.monotonic()
        while True:
            stats = upstream.stats()
            if stats["streams_active"] == 0 and stats["client_disconnects"] > before["client_disconnects"]:
                break
            assert time.monotonic() - gone < 5, f"{server}: the relay still holds its upstream stream: {stats}"
            time.sleep(0.05)
        again, status = _open_chat(running.spec.port, token, "[[tokens:2]] hello")
        again.close()
        assert status == b"HTTP/1.1 200 OK", status  # the chat slot came back
