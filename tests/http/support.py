"""Helpers of the HTTP scenario tests: every REST app (Flask, FastAPI) on every backend, driven
in-process and over a real server, behind ONE synchronous client API, so each test is written
once and runs against all of them (the style of Strawberry's own test suite).

* in-process: Flask through `httpx.WSGITransport`, FastAPI through Starlette's `TestClient`
  (its lifespan runs; responses stream, so held SSE streams work);
* live: FastAPI under uvicorn, Flask under Werkzeug's threaded WSGI server, each in a thread on a
  free TCP port of 127.0.0.1, reached by a plain `httpx.Client`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from sqlalchemy import select

from flashcards._sync.database import Database
from flashcards._sync.service import Service as SyncService
from flashcards.events import EventBus
from flashcards.settings import Settings
from flashcards.tables import ALL_TABLES
from tests.support import make_settings, postgres_dsn, sqlite_dsn

IMPLS = ("flask", "fastapi")
BACKENDS = ("postgresql", "sqlite")
PROBLEM = "application/problem+json"
EVENT_STREAM = "text/event-stream"
PASSWORD = "correct horse battery"
# Small, so a held stream in-process (whose reads block) wakes up often and a test's deadline
# is checked; also what the keep-alive test waits for.
KEEPALIVE_S = 0.25
READ_TIMEOUT_S = 15.0
# Lines the measurement tests print in the run's summary (conftest's terminal-summary hook).
MEASUREMENTS: list[str] = []


@dataclass(frozen=True)
class Variant:
    """One way of serving one REST app: which app, on which database, in-process or live."""

    impl: str
    backend: str
    live: bool = False

    @property
    def id(self) -> str:
        return f"{self.impl}-{self.backend}" + ("-live" if self.live else "")


VARIANTS = [Variant(i, b) for i in IMPLS for b in BACKENDS] + [
    Variant(i, "postgresql", live=True) for i in IMPLS
]
LIVE_VARIANTS = [v for v in VARIANTS if v.live]


def http_settings(dsn: str, upstream_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "upstream_url": upstream_url,
        "sse_keepalive_s": KEEPALIVE_S,
        # the bad-input table sends wrong passwords on purpose; no test here is about the limit
        "login_rate_per_minute": 10_000,
        "login_client_rate_per_minute": 10_000,
    }
    values.update(overrides)
    return make_settings(dsn, **values)


# --- real servers in threads -------------------------------------------------------------------
def _bound_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


class UvicornThread:
    """An ASGI app under uvicorn (lifespan on: the app builds and closes its own Service)."""

    def __init__(self, app: Any) -> None:
        self.sock = _bound_socket()
        self.port: int = self.sock.getsockname()[1]
        config = uvicorn.Config(app, lifespan="on", log_level="warning", ws_ping_interval=None)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, name="uvicorn", daemon=True
        )

    def start(self) -> UvicornThread:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()


class WerkzeugThread:
    """A WSGI app under Werkzeug's threaded server (a thread per connection, as a held SSE
    stream needs)."""

    def __init__(self, app: Any) -> None:
        from werkzeug.serving import make_server

        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.port: int = self.server.server_port
        self.thread = threading.Thread(target=self.server.serve_forever, name="werkzeug", daemon=True)

    def start(self) -> WerkzeugThread:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(10)
        self.server.server_close()


# --- one app under test --------------------------------------------------------------------------
class Target:
    """An app (of `variant`) on its own fresh database, with an open HTTP client to it."""

    def __init__(self, variant: Variant, upstream_url: str, tmp: Path) -> None:
        self.variant = variant
        if variant.backend == "postgresql":
            dsn = postgres_dsn(f"stackbench_test_http_{variant.impl}" + ("_live" if variant.live else ""))
        else:
            dsn = sqlite_dsn(tmp, f"http_{variant.impl}.sqlite3")
        self.settings = http_settings(dsn, upstream_url)
        self.db = Database(self.settings)  # the tests' own look at the tables
        self.db.drop_schema()
        self.db.create_schema()
        self._closers: list[Callable[[], None]] = [self.db.dispose]
        self._service: Any = None
        self.server: UvicornThread | WerkzeugThread | None = None
        self.client = self._start()
        self._world: World | None = None

    def _start(self) -> httpx.Client:
        timeout = httpx.Timeout(READ_TIMEOUT_S)
        if self.variant.impl == "fastapi":
            from impl_rest import create_app

            app = create_app(self.settings)
            self._service = lambda: app.state.service
            if self.variant.live:
                self.server = UvicornThread(app).start()
            else:
                with warnings.catch_warnings():  # Starlette would rather have httpx2 installed
                    warnings.simplefilter("ignore")
                    from starlette.testclient import TestClient

                # a 500 is an answer to look at, not an exception in the test
                test_client = TestClient(app, raise_server_exceptions=False)
                test_client.__enter__()  # runs the lifespan: the app's Service lives until exit
                self._closers.append(lambda: test_client.__exit__(None, None, None))
                return test_client
        else:
            from impl_flask_baseline import create_app as create_flask

            service = SyncService(self.settings)
            self._closers.append(service.close)
            flask_app = create_flask(self.settings, service=service)
            self._service = lambda: service
            if self.variant.live:
                self.server = WerkzeugThread(flask_app).start()
            else:
                client = httpx.Client(
                    transport=httpx.WSGITransport(app=flask_app), base_url="http://testserver", timeout=timeout
                )
                self._closers.append(client.close)
                return client
        assert self.server is not None
        self._closers.append(self.server.stop)
        client = httpx.Client(base_url=f"http://127.0.0.1:{self.server.port}", timeout=timeout)
        self._closers.append(client.close)  # closed first (closers run in reverse)
        return client

    @property
    def bus(self) -> EventBus:
        return self._service().bus  # type: ignore[no-any-return]

    def close(self) -> None:
        for close in reversed(self._closers):
            with contextlib.suppress(Exception):
                close()

    def world(self, api: Api) -> World:
        """Two users with a deck and a card each, made once per app (for the bad-input table)."""
        if self._world is None:
            alice, bob = api.signup("alice"), api.signup("bob")
            decks = [api.create_deck(u, "Deck of " + u.username) for u in (alice, bob)]
            cards = [api.create_card(u, d["id"]) for u, d in zip((alice, bob), decks, strict=True)]
            self._world = World(alice, bob, decks[0]["id"], decks[1]["id"], cards[0]["id"], cards[1]["id"])
        return self._world


@dataclass(frozen=True)
class User:
    id: int
    username: str
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass(frozen=True)
class World:
    alice: User
    bob: User
    alice_deck: int
    bob_deck: int
    alice_card: int
    bob_card: int

    @property
    def ids(self) -> dict[str, int]:
        return {"alice_deck": self.alice_deck, "bob_deck": self.bob_deck,
                "alice_card": self.alice_card, "bob_card": self.bob_card}  # fmt: skip


_NOTHING: Any = object()


class Api:
    """The uniform client every test is written against (sync, whatever serves the app)."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.http = target.client

    # --- what is under test
    @property
    def variant(self) -> Variant:
        return self.target.variant

    @property
    def impl(self) -> str:
        return self.variant.impl

    @property
    def live(self) -> bool:
        return self.variant.live

    @property
    def settings(self) -> Settings:
        return self.target.settings

    @property
    def bus(self) -> EventBus:
        return self.target.bus

    def world(self) -> World:
        return self.target.world(self)

    # --- plain requests
    def request(
        self,
        method: str,
        path: str,
        *,
        user: User | None = None,
        json: Any = _NOTHING,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
        params: dict[str, Any] | None = None,
    ) -> httpx.Response:
        return self.http.request(method, path, **self._kwargs(user, json, content, headers, params))

    def get(self, path: str, user: User | None = None, **kw: Any) -> httpx.Response:
        return self.request("GET", path, user=user, **kw)

    def post(self, path: str, user: User | None = None, **kw: Any) -> httpx.Response:
        return self.request("POST", path, user=user, **kw)

    def patch(self, path: str, user: User | None = None, **kw: Any) -> httpx.Response:
        return self.request("PATCH", path, user=user, **kw)

    def delete(self, path: str, user: User | None = None, **kw: Any) -> httpx.Response:
        return self.request("DELETE", path, user=user, **kw)

    @contextlib.contextmanager
    def stream(
        self,
        method: str,
        path: str,
        *,
        user: User | None = None,
        json: Any = _NOTHING,
        headers: dict[str, str] | None = None,
        params: dict[str, Any] | None = None,
    ) -> Iterator[httpx.Response]:
        """A response whose body is read as it arrives; closing it is the client hanging up."""
        with self.http.stream(method, path, **self._kwargs(user, json, None, headers, params)) as r:
            yield r

    @staticmethod
    def _kwargs(
        user: User | None, body: Any, content: bytes | None, headers: dict[str, str] | None,
        params: dict[str, Any] | None,
    ) -> dict[str, Any]:
        all_headers = dict(user.auth if user else {})
        all_headers.update(headers or {})
        kw: dict[str, Any] = {"headers": all_headers}
        if params is not None:
            kw["params"] = params
        if body is not _NOTHING:
            kw["content"] = json.dumps(body).encode()
            all_headers.setdefault("Content-Type", "application/json")
        elif content is not None:
            kw["content"] = content
        return kw

    # --- the steps every test needs
    def signup(self, prefix: str = "u") -> User:
        username = f"{prefix}_{uuid.uuid4().hex[:12]}"
        r = self.post("/api/auth/register", json={"username": username, "display_name": prefix.title(), "password": PASSWORD})
        assert r.status_code == 201, r.text
        r2 = self.post("/api/auth/token", json={"username": username, "password": PASSWORD})
        assert r2.status_code == 200, r2.text
        return User(r.json()["id"], username, r2.json()["access_token"])

    def create_deck(self, user: User, title: str = "Deck", description: str = "") -> dict[str, Any]:
        r = self.post("/api/decks", user, json={"title": title, "description": description})
        assert r.status_code == 201, r.text
        return r.json()  # type: ignore[no-any-return]

    def create_card(self, user: User, deck_id: int, front: str = "front", back: str = "back") -> dict[str, Any]:
        r = self.post(f"/api/decks/{deck_id}/cards", user, json={"front": front, "back": back})
        assert r.status_code == 201, r.text
        return r.json()  # type: ignore[no-any-return]

    def snapshot(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of every table: equal before and after means nothing was written."""
        out: dict[str, list[tuple[Any, ...]]] = {}
        with self.target.db.connect() as conn:
            for table in ALL_TABLES:
                rows = conn.execute(select(table).order_by(*table.primary_key.columns)).all()
                out[table.name] = [tuple(r) for r in rows]
        return out


def json_of(response: httpx.Response) -> Any:
    """The body as JSON, with the media type checked (JSON or a problem document)."""
    media = response.headers.get("content-type", "").split(";")[0].strip()
    assert media in ("application/json", PROBLEM), (response.status_code, media, response.text)
    return response.json()


def parse_time(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    assert parsed.tzinfo is not None, f"datetime without offset: {value}"
    return parsed


# --- server-sent events ------------------------------------------------------------------------
@dataclass
class Frame:
    """One SSE frame: an event (`event`, `data`, `id`) or a comment (`: keepalive`)."""

    event: str | None = None
    data_lines: list[str] = field(default_factory=list)
    id: str | None = None
    comment: str | None = None
    at: float = 0.0  # time.perf_counter() when the frame was complete

    @property
    def data(self) -> str:
        return "\n".join(self.data_lines)

    def json(self) -> Any:
        return json.loads(self.data)


class SseReader:
    """Frames of a streamed response, as they arrive (one line iterator for its whole life)."""

    def __init__(self, response: httpx.Response) -> None:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith(EVENT_STREAM), response.headers
        self._lines = response.iter_lines()

    def frame(self) -> Frame:
        """The next frame; EOFError when the stream ended."""
        current = Frame()
        started = False
        for line in self._lines:
            if line == "":
                if started:
                    current.at = time.perf_counter()
                    return current
                continue
            started = True
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "":
                current.comment = value
            elif name == "event":
                current.event = value
            elif name == "data":
                current.data_lines.append(value)
            elif name == "id":
                current.id = value
        raise EOFError("the stream ended")

    def event(self, within: float = 10.0) -> Frame:
        """The next event, skipping comments (keep-alives), within `within` seconds."""
        deadline = time.monotonic() + within
        while True:
            frame = self.frame()
            if frame.comment is None:
                return frame
            if time.monotonic() > deadline:
                raise AssertionError(f"no event within {within} s")

    def rest(self) -> list[Frame]:
        """Every frame until the stream ends (for finite streams: the chat)."""
        frames = []
        with contextlib.suppress(EOFError):
            while True:
                frames.append(self.frame())
        return frames


def eventually(check: Callable[[], bool], within: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not reached within {within} s")
        time.sleep(0.02)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]
