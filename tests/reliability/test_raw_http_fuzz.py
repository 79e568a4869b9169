"""Raw HTTP fuzzing of all three apps over real TCP sockets: zero 5xx, no hang, still healthy.

Hypothesis writes requests byte by byte (no HTTP client in between to tidy them up) and sends
them over a socket to each app served by a real server in a thread: the FastAPI and GraphQL
apps under uvicorn (`tests.graphql.support.ServerThread`, httptools parser), the Flask app
under Werkzeug's threaded server (`tests.http.support.WerkzeugThread`), each on its own
PostgreSQL database (NUL bytes and bad Unicode fail there, not on SQLite).

Three kinds of request, one test each (Hypothesis would not spread one test's examples evenly):
* legal: right method, token and JSON, values legal but odd (any Unicode but NUL and
  surrogates, lengths at the limits), so requests reach the service and the database;
* hostile: well-formed HTTP; real routes with the caller's ids, another user's, and garbage
  segments (percent-encoded bytes, past BIGINT, dot segments), query strings, good, forged and
  missing tokens, right, wrong and malformed Content-Types, odd Host headers, a huge header
  (16-64 KiB) or a long target now and then, a Content-Length exact or smaller than the body
  (the rest is pipelined garbage), chunked bodies; bodies of malformed JSON, JSON nested 10,000
  deep, invalid UTF-8, NUL bytes raw and escaped, lone surrogates, huge numbers, duplicate keys,
  the routes' own fields with hostile values, over-limit bodies, GraphQL documents malformed or
  deeply nested;
* wire: bytes no parser should accept: control bytes in headers, Content-Length not a number,
  broken chunk framing, junk request targets, unknown methods.
A Content-Length is never larger than the body, nor a chunk larger than what follows: a server
may rightly wait for the missing bytes.

Asserted for every request: the server answers with a complete HTTP response (status line,
headers, a body as long as its framing says) within `TIMEOUT_S`, every status is below 500,
a GraphQL JSON answer carries no INTERNAL_SERVER_ERROR, no traceback is logged by the server
or the app (an unhandled exception is a 500 even when nobody receives it), and afterwards the
server still answers its liveness probe. A held stream (SSE, multipart) counts as answered once
its head arrives with status 200. `PINNED` requests run on every app every time.

Oversized headers: Werkzeug (http.server) answers 431 for a header line over 65,536 bytes or
more than 100 headers, then closes; uvicorn's httptools parser has no header-size limit, so
the app sees the header. Neither drops a connection without an answer, so a dropped
connection fails this test in every case.

Budget: `EXAMPLES` per app (CI), split 35/40/25 % over the three kinds;
`STACKBENCH_CONTRACT_PROFILE=thorough` raises it. `--hypothesis-show-statistics` prints the
spread of statuses.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import re
import socket
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from flashcards import security
from flashcards._sync.service import Service as SyncService
from flashcards.settings import Settings
from tests.support import fresh_schema, make_settings, postgres_dsn

PROFILE = os.environ.get("STACKBENCH_CONTRACT_PROFILE", "default")
EXAMPLES = 1500 if PROFILE == "thorough" else 80
TIMEOUT_S = 5.0  # a complete answer within this, or the server hung
IMPLS = ["flask", "rest", "graphql"]
ORIGIN = "https://study.example"
MAX_BODY = 64 * 1024  # Settings.max_body_bytes (default)


# --- the apps, served -----------------------------------------------------------------------------
@dataclass
class Served:
    impl: str
    port: int
    # what a template may name: {token}, {other_token}, {expired}, {alg_none}, {own_deck}, …
    values: dict[str, str] = field(default_factory=dict)
    errors: ServerErrors = field(default_factory=lambda: ServerErrors())


class ServerErrors(logging.Handler):
    """Tracebacks the servers and apps log: an exception nobody handled is a 500 even when the
    client never sees it (it left, or the server had already answered 400)."""

    LOGGERS = ("uvicorn.error", "werkzeug", "impl_flask_baseline", "impl_rest", "impl_graphql", "flashcards")

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        # http.server logs its own 400/431 answers at ERROR too ("code 431, message …"): those
        # are answers, not failures. A traceback, or Werkzeug's "Error on request", is one.
        if record.exc_info or record.getMessage().startswith("Error on request"):
            self.records.append(record)

    @contextlib.contextmanager
    def watching(self) -> Iterator[ServerErrors]:
        loggers = [logging.getLogger(name) for name in self.LOGGERS]
        for logger in loggers:
            logger.addHandler(self)
        try:
            yield self
        finally:
            for logger in loggers:
                logger.removeHandler(self)

    def take(self) -> list[str]:
        found = [f"{r.name}: {r.getMessage()[:300]} ({r.exc_info[1]!r})" if r.exc_info else
                 f"{r.name}: {r.getMessage()[:300]}" for r in self.records]  # fmt: skip
        self.records.clear()
        return found


def _seed(settings: Settings) -> dict[str, str]:
    fresh_schema(settings)
    service = SyncService(settings)
    try:
        ids: dict[str, str] = {}
        for who in ("own", "other"):
            user = service.register({"username": f"fuzz_{who}", "display_name": who, "password": "password1"})
            deck = service.create_deck(user.id, {"title": f"{who} deck"})
            card = service.create_card(user.id, deck.id, {"front": "f", "back": "b"})
            service.review_card(user.id, card.id, {"grade": 4})
            ids |= {f"{who}_user": str(user.id), f"{who}_deck": str(deck.id), f"{who}_card": str(card.id)}
    finally:
        service.close()
    now = datetime.now(UTC)
    own = int(ids["own_user"])
    claims = {"sub": ids["own_user"], "iat": int(now.timestamp()), "iss": "stackbench",
              "exp": int((now + timedelta(hours=1)).timestamp())}  # fmt: skip

    def part(doc: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(doc).encode()).rstrip(b"=").decode()

    return {
        **ids,
        "token": security.issue_token(settings, own),
        "other_token": security.issue_token(settings, int(ids["other_user"])),
        "expired": security.issue_token(settings, own, now - timedelta(days=2)),
        "forged": jwt.encode(claims, "an-attacker-secret-that-is-long-enough!", algorithm="HS256"),
        "alg_none": f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}.",
        "ghost": security.issue_token(settings, 10**12),
    }


@pytest.fixture(scope="module", params=IMPLS)
def served(request: pytest.FixtureRequest) -> Iterator[Served]:
    impl: str = request.param
    # Port 9 (discard) refuses connections: a chat reaches its `error` event at once.
    settings = make_settings(postgres_dsn(f"stackbench_test_rawfuzz_{impl}"),
                             upstream_url="http://127.0.0.1:9/v1", cors_origins=[ORIGIN],
                             sse_keepalive_s=0.5, upstream_connect_timeout_s=1.0)  # fmt: skip
    values = _seed(settings)
    stop: Callable[[], None]
    if impl == "flask":
        from impl_flask_baseline import create_app as create_flask
        from tests.http.support import WerkzeugThread

        service = SyncService(settings)
        werkzeug = WerkzeugThread(create_flask(settings, service=service)).start()
        port = werkzeug.port

        def stop() -> None:
            werkzeug.stop()
            service.close()
    else:
        from tests.graphql.support import ServerThread

        if impl == "rest":
            from impl_rest import create_app as create_rest

            app: Any = create_rest(settings)
        else:
            from impl_graphql import create_app as create_graphql

            app = create_graphql(settings)
        uvicorn = ServerThread(app).start()
        port = uvicorn.port
        stop = uvicorn.stop
    served = Served(impl, port, values)
    try:
        with served.errors.watching():
            yield served
    finally:
        stop()


# --- one exchange over a socket -------------------------------------------------------------------
class Hung(AssertionError):
    pass


class Dropped(AssertionError):
    pass


@dataclass
class Answer:
    status: int
    headers: dict[str, str]  # lower-cased names; the last value of a repeated header
    body: bytes
    held: bool = False  # a stream left open after its head (SSE, multipart subscription)


class _Socket:
    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self.sock = sock
        self.deadline = deadline
        self.buffer = b""
        self.received = 0
        self.eof = False

    def fill(self) -> bool:
        """Read more; False at the end of the stream (closed or reset by the server)."""
        if self.eof:
            return False
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise Hung(f"no complete answer within {TIMEOUT_S} s; got {self.buffer[:200]!r}")
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(65536)
        except TimeoutError:
            raise Hung(f"no complete answer within {TIMEOUT_S} s; got {self.buffer[:200]!r}") from None
        except ConnectionError:
            chunk = b""
        if not chunk:
            self.eof = True
            return False
        self.buffer += chunk
        self.received += len(chunk)
        return True

    def until(self, marker: bytes) -> bytes | None:
        while marker not in self.buffer:
            if not self.fill():
                return None
        head, _, self.buffer = self.buffer.partition(marker)
        return head

    def exactly(self, n: int) -> bytes | None:
        while len(self.buffer) < n:
            if not self.fill():
                return None
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def rest(self) -> bytes:
        while self.fill():
            pass
        data, self.buffer = self.buffer, b""
        return data


STATUS_LINE = re.compile(rb"HTTP/1\.[01] (\d{3})(?: |$)")


def _read_answer(conn: _Socket, head_request: bool) -> Answer:
    while True:
        head = conn.until(b"\r\n\r\n")
        if head is None:
            if conn.received == 0:
                raise Dropped("the server closed the connection without an answer")
            raise AssertionError(f"incomplete response head: {conn.buffer[:300]!r}")
        lines = head.split(b"\r\n")
        matched = STATUS_LINE.match(lines[0])
        assert matched, f"not an HTTP status line: {lines[0][:200]!r}"
        status = int(matched.group(1))
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, colon, value = line.partition(b":")
            assert colon, f"malformed response header: {line[:200]!r}"
            headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
        if 100 <= status < 200:
            continue  # 100 Continue: the real answer follows
        break
    media = headers.get("content-type", "").split(";")[0].strip().lower()
    if head_request or status in (204, 304):
        return Answer(status, headers, b"")
    if status == 200 and media in ("text/event-stream", "multipart/mixed"):
        return Answer(status, headers, b"", held=True)
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = b""
        while True:
            size_line = conn.until(b"\r\n")
            assert size_line is not None, f"chunked body cut short after {len(body)} bytes"
            size = int(size_line.split(b";")[0].strip(), 16)
            if size == 0:
                while True:  # trailers, up to the empty line
                    trailer = conn.until(b"\r\n")
                    assert trailer is not None, "chunked body without its last CRLF"
                    if not trailer:
                        return Answer(status, headers, body)
            chunk = conn.exactly(size + 2)
            assert chunk is not None, f"chunked body cut short after {len(body)} bytes"
            body += chunk[:-2]
    if "content-length" in headers:
        length = int(headers["content-length"])
        data = conn.exactly(length)
        assert data is not None, f"body shorter than its Content-Length {length}"
        return Answer(status, headers, data)
    return Answer(status, headers, conn.rest())


def exchange(port: int, raw: bytes, head_request: bool = False) -> list[Answer]:
    """Send `raw`; the answer to it, and any answers to pipelined leftovers already received."""
    deadline = time.monotonic() + TIMEOUT_S
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S) as sock:
        # a server may answer early (413, 431) and close while the body is still being sent
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(raw)
        conn = _Socket(sock, deadline)
        answers = [_read_answer(conn, head_request)]
        while conn.buffer.startswith(b"HTTP/1."):  # answers to what followed a short body
            answers.append(_read_answer(conn, head_request=False))
        return answers


LIVE = b"GET /api/health/live HTTP/1.1\r\nHost: fuzz\r\nConnection: close\r\n\r\n"


# --- what is generated ----------------------------------------------------------------------------
@dataclass(frozen=True)
class RawRequest:
    """Templates (`{token}`, `{own_deck}`, … filled in per app) and how the body is framed."""

    method: str
    target: bytes
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes
    framing: str  # "exact" | "short" | "none" | "chunked" | "bad-length" | "bad-chunked"
    shortfall: int = 1  # "short": Content-Length is this many bytes less than the body
    bad_length: bytes = b""
    host: bytes | None = b"fuzz"  # None: no Host header at all

    def render(self, values: dict[str, str]) -> bytes:
        def fill(data: bytes) -> bytes:
            if b"{" not in data:
                return data
            for key, value in values.items():
                data = data.replace(b"{" + key.encode() + b"}", value.encode())
            return data

        body = fill(self.body)
        lines = [self.method.encode() + b" " + fill(self.target) + b" HTTP/1.1"]
        if self.host is not None:
            lines.append(b"Host: " + self.host)
        lines.append(b"Connection: close")
        lines += [name + b": " + fill(value) for name, value in self.headers]
        if self.framing == "exact":
            lines.append(b"Content-Length: " + str(len(body)).encode())
        elif self.framing == "short":
            lines.append(b"Content-Length: " + str(max(0, len(body) - self.shortfall)).encode())
        elif self.framing == "bad-length":
            lines.append(b"Content-Length: " + self.bad_length)
        elif self.framing == "chunked":
            lines.append(b"Transfer-Encoding: chunked")
            pieces = [body[i : i + 4096] for i in range(0, len(body), 4096)]
            body = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"
        elif self.framing == "bad-chunked":  # a broken size line or a chunk without its CRLF
            lines.append(b"Transfer-Encoding: chunked")
            body = self.bad_length + b"\r\n" + body + b"\r\n0\r\n\r\n"
        return b"\r\n".join(lines) + b"\r\n\r\n" + body


# Two kinds of request. "app": well-formed HTTP (the server's parser lets it through), so the
# app itself meets the hostile part (path, query, headers' meaning, body): most requests are of
# this kind. "wire": anything goes (bytes no parser accepts, bad framing, unknown methods).
METHODS = ["GET", "POST", "PATCH", "DELETE"]
RARE_METHODS = ["PUT", "OPTIONS", "HEAD", "QUERY", "TRACE", "BREW", "get", "M-SEARCH"]
# Every route: its methods and the body fields it takes (a body is mostly built from these).
REST_ROUTES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "/api/health/live": (("GET",), ()), "/api/health/ready": (("GET",), ()), "/api/config": (("GET",), ()),
    "/api/me": (("GET",), ()), "/api/auth/register": (("POST",), ("username", "display_name", "password")),
    "/api/auth/token": (("POST",), ("username", "password")),
    "/api/decks": (("GET", "POST"), ("title", "description")),
    "/api/decks/{id}": (("GET", "PATCH", "DELETE"), ("title", "description")),
    "/api/decks/{id}/cards": (("GET", "POST"), ("front", "back")), "/api/decks/{id}/due": (("GET",), ()),
    "/api/cards/{id}": (("GET", "PATCH", "DELETE"), ("front", "back")),
    "/api/cards/{id}/reviews": (("GET", "POST"), ("grade",)), "/api/chat": (("POST",), ("message",)),
    "/api/chat/history": (("GET",), ()), "/api/events": (("GET",), ()), "/api/events/ws": (("GET",), ()),
    "/api/events/ticket": (("POST",), ()), "/openapi.json": (("GET",), ()), "/docs": (("GET",), ()),
}  # fmt: skip
GRAPHQL_ROUTES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "/graphql": (("POST", "POST", "POST", "GET"), ()), "/graphql/": (("POST", "GET"), ()),
    "/api/health/live": (("GET",), ()), "/api/health/ready": (("GET",), ()), "/api/decks": (("POST",), ("title",)),
}  # fmt: skip
ID_SEGMENTS = [
    "{own_deck}", "{own_deck}", "{own_card}", "{own_card}", "{other_deck}", "{other_card}", "0", "-1", "1",
    "007", str(2**63 - 1), str(2**63), "9" * 40, "abc", "1.5", "1e3", "+1", "%201", "%00", "%FF", "%C0%AF",
    "%E2%80%AE", "%2e%2e", "..", "", "%0d%0a", "%25", "%ED%A0%80", "%F0%9F%98%80",
]  # fmt: skip
NASTY_STRINGS = [
    "", " ", "a", "a\x00b", "\x00", "\ud800", "\udfff", "\u202e", "\ufeff", "\U0001f600" * 10, "é" * 100,
    "'; DROP TABLE decks; --", "<script>", "../../etc/passwd",
    "%s%n", "\\", '"', "\r\n", "null", "true", "0", "-1", "1e999", "{own_deck}", "{token}", "fuzz_own",
    "password1", "correct horse battery",
]  # fmt: skip
QUERY_KEYS = ["limit", "cursor", "last_event_id", "ticket", "query", "variables", "operationName", "owner", "limit"]
QUERY_VALUES = ["1", "20", "0", "100", "101", "-5", "ten", "1e3", "", "%00", "%FF", "%", "bm90LWEtY3Vyc29y",
                "!!", "9" * 30, "{own_deck}", "%7B%7D"]  # fmt: skip
CONTENT_TYPES = [
    b"application/json", b"application/json", b"application/json", b"application/json; charset=utf-8",
    b"application/json; charset=latin-1", b"application/json; charset=bogus", b"application/problem+json",
    b"application/vnd.api+json", b"text/plain", b"text/html", b"application/x-www-form-urlencoded",
    b"multipart/form-data", b"multipart/form-data; boundary=x", b"multipart/form-data; boundary=",
    b"application/graphql", b"application/graphql-response+json", b"application/octet-stream",
    b"", b";", b"application/", b"/json", b"application/json;;;===", b"JSON", b"a" * 5000,
]  # fmt: skip
WIRE_CONTENT_TYPES = [b"\xff\xfe/\x80", b"application/json\x00", b"application/json\x01", b"\x7f"]
AUTHORIZATIONS = [
    b"Bearer {other_token}",
    b"Bearer {expired}", b"Bearer {forged}", b"Bearer {alg_none}", b"Bearer {ghost}", b"bearer {token}",
    b"Bearer  {token} ", b"Bearer {token}{token}", b"Bearer", b"Bearer garbage", b"Bearer a.b.c",
    b"Bearer ....", b"Basic ZnV6el9vd246cGFzc3dvcmQx", b"Bearer " + b"A" * 20_000, b"{token}",
]  # fmt: skip
WIRE_AUTHORIZATIONS = [b"Bearer \xff\xfe\x00", b"Bearer {token}\x00", b"Bearer \x80{token}"]
ACCEPTS = [b"*/*", b"application/json", b"text/event-stream", b"text/html",
           b"multipart/mixed;subscriptionSpec=1.0", b"application/graphql-response+json", b"nothing/here"]  # fmt: skip

nasty_text = st.one_of(
    st.sampled_from(NASTY_STRINGS), st.text(max_size=40),
    st.sampled_from([64, 200, 201, 2000, 2001, 4001]).map(lambda n: "x" * n),  # at and past the limits
)  # fmt: skip
json_leaf = st.one_of(
    st.none(), st.booleans(), nasty_text,
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0, 1, 5, 6, -1, 2**63, 2**64, 1.0, 4.5, 5.0, -0.0]),
)  # fmt: skip
json_values = st.recursive(
    json_leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.text(max_size=8), inner, max_size=5),
    ),
    max_leaves=12,
)


def _dumps(doc: Any, ascii_only: bool) -> bytes:
    # a lone surrogate: escaped (\ud800) with ensure_ascii, else raw (invalid UTF-8 on the wire)
    return json.dumps(doc, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


@st.composite
def shaped_documents(draw: st.DrawFn, fields: tuple[str, ...]) -> bytes:
    """An object with the route's own fields (each maybe missing) holding hostile values."""
    doc: dict[str, Any] = {}
    for name in fields:
        if draw(st.integers(0, 5)) == 0:
            continue
        if name == "grade":
            doc[name] = draw(st.one_of(st.integers(-1, 6), st.integers(-1, 6), json_leaf))
        else:
            doc[name] = draw(st.one_of(nasty_text, nasty_text, nasty_text, json_leaf, json_values))
    if draw(st.integers(0, 5)) == 0:
        doc[draw(st.sampled_from(["owner_id", "id", "reviewed_at", "", "title", "extra"]))] = draw(json_leaf)
    return _dumps(doc, draw(st.booleans()))


json_documents = st.builds(_dumps, json_values, st.booleans())

BROKEN_BYTES = [b"\xff", b"\xfe\xff", b"\xc3\x28", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80",
                b"\x80", b"\xe2\x82", b"\x00", b"\x1b[31m"]  # fmt: skip
SPECIAL_BODIES = [
    b'{"title": "a", "title": 5}', b'{"grade": 5, "grade": "five"}', b'{"grade": 1e999}',
    b'{"grade": -1e999}', b'{"grade": NaN}', b'{"grade": Infinity}', b'{"grade": 5.0000000000000001}',
    b'{"grade": 1' + b"0" * 5000 + b"}", b'{"title": ' + b"9" * 4400 + b"}", b'{"title": "a\\u0000b"}',
    b'{"title": "\\ud800"}', b'{"title": "\\udfff\\ud800"}', b'{"title": "a\x00b"}', b"\x00" * 64,
    b'{"title": "ok"}\x00', b"\xef\xbb\xbf" + b'{"title": "bom"}', b'{"title": "ok"} {"title": "two"}',
    b"[]", b"{}", b"null", b'"str"', b"5", b"true", b"{", b"}", b'{"title": }', b'{"title": "ok",}',
    b"{'title': 'ok'}", b'{"title": "ok"', b"title=ok&description=x", b"--x\r\nContent-Disposition: form-data; "
    b'name="title"\r\n\r\nok\r\n--x--\r\n', b'{"query": null}', b'{"query": 5}', b'{"query": ["{ me { id } }"]}',
    b'{"query": "{ me { id } }", "variables": "x"}', b'{"query": "{ me { id } }", "variables": [1]}',
    b'{"query": "{ me { id } }", "operationName": 5}', b'[{"query": "{ me { id } }"}]',
    b'{"query": "{ me { id } }", "extensions": 1}', b'{"query": "{ me { id } }", "query": "{ __typename }"}',
]  # fmt: skip


@st.composite
def malformed_json(draw: st.DrawFn, fields: tuple[str, ...]) -> bytes:
    doc = draw(st.one_of(json_documents, shaped_documents(fields)))
    how = draw(st.sampled_from(["truncate", "junk", "broken-bytes", "raw-nul"]))
    if how == "truncate" and len(doc) > 1:
        return doc[: draw(st.integers(1, len(doc) - 1))]
    at = draw(st.integers(0, len(doc)))
    if how == "junk":
        junk = draw(st.sampled_from([b",", b"}", b"]", b":", b'"', b"\\", b"'", b"//", b"/*", b"\n"]))
    elif how == "broken-bytes":
        junk = draw(st.sampled_from(BROKEN_BYTES))
    else:
        junk = b"\x00"
    return doc[:at] + junk + doc[at:]


@st.composite
def deeply_nested(draw: st.DrawFn) -> bytes:
    depth = draw(st.sampled_from([100, 1000, 5000, 10_000]))
    opener, closer = draw(st.sampled_from([(b"[", b"]"), (b'{"title":', b"}"), (b'{"a":[', b"]}"),
                                           (b'{"query": "{ me }", "variables": {"v":', b"}}")]))  # fmt: skip
    inner = draw(st.sampled_from([b"1", b'"x"', b"null", b"[]"]))
    complete = draw(st.booleans())
    return opener * depth + inner + (closer * depth if complete else b"")


# GraphQL documents: real operations with hostile literals, broken syntax, deep nesting.
GQL_OPERATIONS = [
    "{ me { id username } }", "{ config { service limits { max_body_bytes } } }",
    '{ deck(deck_id: "{ID}") { id title cards { items { id reviews { items { id } } } } } }',
    '{ card(card_id: "{ID}") { id front deck { id } } }', '{ reviews(card_id: "{ID}", limit: {N}) { items { id } } }',
    "{ decks(limit: {N}, cursor: {S}) { items { id } next_cursor } }", "{ chat_history(limit: {N}) { items { id } } }",
    "mutation { create_deck(input: {title: {S}, description: {S}}) { id } }",
    'mutation { update_deck(deck_id: "{ID}", input: {title: {S}}) { id } }', 'mutation { delete_deck(deck_id: "{ID}") }',
    'mutation { create_card(deck_id: "{ID}", input: {front: {S}, back: {S}}) { id } }',
    'mutation { review_card(card_id: "{ID}", input: {grade: {N}}) { id } }',
    "mutation { register(input: {username: {S}, display_name: {S}, password: {S}}) { id } }",
    "mutation { login(input: {username: {S}, password: {S}}) { access_token } }",
    "subscription { events { id type } }", "subscription { chat(input: {message: {S}}) { type } }",
    "query Q($d: ID!, $n: Int) { cards(deck_id: $d, limit: $n) { items { id } } }",
    "mutation M($t: String!) { create_deck(input: {title: $t}) { id } }",
    "mutation R($c: ID!, $g: Int!) { review_card(card_id: $c, input: {grade: $g}) { id } }",
    "query D($d: ID!) { deck(deck_id: $d) { id } due_cards(deck_id: $d) { items { id } } }",
    "{ __schema { types { name fields { name type { ofType { ofType { name } } } } } } }",
    "{ __typename }", "query A { me { id } } query B { config { service } }",
    "fragment F on Query { ...G } fragment G on Query { ...F } { ...F }",
    "{ me { id @include(if: true) @skip(if: false) @deprecated } }", "{ me { ...on Deck { id } } }",
]  # fmt: skip
GQL_SCALARS_N = ["0", "5", "-1", "101", "2147483648", "99999999999999999999", "1.5", "true", "null", '"5"', "[5]"]
GQL_SCALARS_S = ['""', '"ok"', '"a\\u0000b"', '"\\ud800"', '"\\uDFFF"', '"""block"""', "null", "5", '"' + "x" * 3000 + '"',
                 '"\\\\"', "{}", "[]", '"{own_deck}"', "$undeclared", '"fuzz_own"', '"password1"']  # fmt: skip
GQL_IDS = ["{own_deck}", "{own_card}", "{other_deck}", "{other_card}", "0", "-1", "abc", "9" * 30, "", "1e3", " 1"]
GQL_JUNK = [*"{}()[]:$@!.,=|&\"'#\n ", "...", "query", "mutation", "subscription", "fragment", "on", "me", "id",
            "deck", "input", "title", "\\u0000", "\x00", "\ufeff", "é"]  # fmt: skip
GQL_VARIABLES = {"d": st.sampled_from(GQL_IDS), "c": st.sampled_from(GQL_IDS), "t": nasty_text,
                 "g": st.one_of(st.integers(-1, 6), json_leaf), "n": json_leaf}  # fmt: skip


@st.composite
def graphql_documents(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["operation"] * 5 + ["junk", "truncated", "deep-selection",
                                 "deep-list", "deep-object", "aliases", "directives", "tokens"]))  # fmt: skip
    if kind in ("operation", "truncated"):
        doc = draw(st.sampled_from(GQL_OPERATIONS))
        while "{ID}" in doc or "{N}" in doc or "{S}" in doc:
            doc = doc.replace("{ID}", draw(st.sampled_from(GQL_IDS)), 1)
            doc = doc.replace("{N}", draw(st.sampled_from(GQL_SCALARS_N)), 1)
            doc = doc.replace("{S}", draw(st.sampled_from(GQL_SCALARS_S)), 1)
        if kind == "truncated":
            doc = doc[: draw(st.integers(0, max(0, len(doc) - 1)))]
        return doc
    if kind == "junk":
        return "".join(draw(st.lists(st.sampled_from(GQL_JUNK), max_size=60)))
    depth = draw(st.sampled_from([9, 50, 500, 3000, 10_000]))
    if kind == "deep-selection":
        return "{ decks { items " + "{ cards { items { deck " * depth + "{ id }" + " } } }" * depth + " } }"
    if kind == "deep-list":
        return "{ decks(cursor: " + "[" * depth + '"x"' + "]" * depth + ") { next_cursor } }"
    if kind == "deep-object":
        return "mutation { create_deck(input: " + "{title: " * depth + '"x"' + "}" * depth + ") { id } }"
    if kind == "aliases":
        return "{ " + " ".join(f"a{i}: me {{ id }}" for i in range(depth)) + " }"
    if kind == "directives":
        return "{ me " + "@include(if: true) " * depth + "{ id } }"
    return "{ config { " + "service " * depth + "} }"


@st.composite
def graphql_bodies(draw: st.DrawFn) -> bytes:
    doc = draw(graphql_documents())
    if draw(st.integers(0, 9)) == 0:
        return doc.encode("utf-8", "surrogatepass")  # a bare document (application/graphql)
    body: dict[str, Any] = {"query": doc}
    if draw(st.booleans()):
        body["variables"] = draw(st.one_of(
            st.fixed_dictionaries({}, optional=GQL_VARIABLES), st.fixed_dictionaries({}, optional=GQL_VARIABLES),
            json_values))  # fmt: skip
    if draw(st.integers(0, 3)) == 0:
        body["operationName"] = draw(st.one_of(st.sampled_from(["A", "B", "Q", "M", "R", "D", ""]), json_leaf))
    return _dumps(body, draw(st.booleans()))


@st.composite
def bodies(draw: st.DrawFn, graphql: bool, fields: tuple[str, ...]) -> bytes:
    options: list[st.SearchStrategy[bytes]] = [
        st.just(b""), json_documents, malformed_json(fields), deeply_nested(), st.sampled_from(SPECIAL_BODIES),
        st.binary(max_size=300),
        st.integers(MAX_BODY - 64, MAX_BODY + 4096).map(lambda n: b'{"title": "' + b"x" * n + b'"}'),
    ]  # fmt: skip
    favoured = graphql_bodies() if graphql else shaped_documents(fields)
    if fields or graphql:
        options = [favoured] * (2 * len(options)) + options
    return draw(st.one_of(options))


# "valid" requests: everything right but the values, which are legal yet odd (any Unicode but
# NUL and surrogates, lengths at the limits), so they reach the service and the database.
def _legal_text(min_size: int, max_size: int) -> st.SearchStrategy[str]:
    chars = st.characters(exclude_categories=["Cs"], exclude_characters="\x00")
    return st.one_of(
        st.text(chars, min_size=min_size, max_size=min(max_size, 40)),
        st.integers(max(min_size, max_size - 2), max_size).flatmap(
            lambda n: st.sampled_from(["x", "é", "\U0001f600", "\u202e", "\\"]).map(lambda c: c * n)),
    )  # fmt: skip


LEGAL_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "title": _legal_text(1, 200), "description": _legal_text(0, 2000), "front": _legal_text(1, 2000),
    "back": _legal_text(1, 2000), "message": _legal_text(1, 4000), "display_name": _legal_text(1, 64),
    "password": _legal_text(8, 128), "username": st.from_regex(r"\A[a-z0-9_]{3,32}\Z"),
    "grade": st.integers(0, 5),
}  # fmt: skip
OWN_IDS = st.sampled_from(["{own_deck}", "{own_card}", "{other_deck}", "{other_card}", "999999"])
LEGAL_GRAPHQL: list[tuple[str, dict[str, st.SearchStrategy[Any]]]] = [
    ("mutation M($t: String!, $d: String) { create_deck(input: {title: $t, description: $d}) { id title description } }",
     {"t": LEGAL_FIELDS["title"], "d": LEGAL_FIELDS["description"]}),
    ("mutation C($d: ID!, $f: String!, $b: String!) { create_card(deck_id: $d, input: {front: $f, back: $b}) { id front } }",
     {"d": OWN_IDS, "f": LEGAL_FIELDS["front"], "b": LEGAL_FIELDS["back"]}),
    ("mutation R($c: ID!, $g: Int!) { review_card(card_id: $c, input: {grade: $g}) { id grade card { ease } } }",
     {"c": OWN_IDS, "g": LEGAL_FIELDS["grade"]}),
    ("mutation U($c: ID!, $f: String) { update_card(card_id: $c, input: {front: $f}) { id front } }",
     {"c": OWN_IDS, "f": LEGAL_FIELDS["front"]}),
    ("mutation P($d: ID!, $t: String) { update_deck(deck_id: $d, input: {title: $t}) { id title } }",
     {"d": OWN_IDS, "t": LEGAL_FIELDS["title"]}),
    ("query D($d: ID!) { deck(deck_id: $d) { id title cards { items { id front reviews { items { id grade } } } } } "
     "due_cards(deck_id: $d) { items { id } } }", {"d": OWN_IDS}),
    ("query L($n: Int) { decks(limit: $n) { items { id title } next_cursor } chat_history(limit: $n) { items { id } } }",
     {"n": st.integers(1, 100)}),
    ("mutation G($u: String!, $n: String!, $p: String!) { register(input: {username: $u, display_name: $n, password: $p}) { id } }",
     {"u": LEGAL_FIELDS["username"], "n": LEGAL_FIELDS["display_name"], "p": LEGAL_FIELDS["password"]}),
    ("mutation I($u: String!, $p: String!) { login(input: {username: $u, password: $p}) { access_token } }",
     {"u": st.sampled_from(["fuzz_own", "fuzz_other", "nobody"]), "p": LEGAL_FIELDS["password"]}),
    ("{ me { id username display_name } config { service } }", {}),
]  # fmt: skip


@st.composite
def legal_bodies(draw: st.DrawFn, graphql: bool, fields: tuple[str, ...]) -> bytes:
    if graphql:
        query, variables = draw(st.sampled_from(LEGAL_GRAPHQL))
        return _dumps({"query": query, "variables": draw(st.fixed_dictionaries(variables))}, draw(st.booleans()))
    doc = draw(st.fixed_dictionaries({f: LEGAL_FIELDS[f] for f in fields}))
    if "password" in fields and "display_name" not in fields:  # the seeded users' names, to log in now and then
        doc.setdefault("username", draw(st.sampled_from(["fuzz_own", "fuzz_other"])))
    return _dumps(doc, draw(st.booleans()))


def _quote(text: str) -> str:
    return urllib.parse.quote(text.encode("utf-8", "surrogatepass"), safe="")


@st.composite
def query_strings(draw: st.DrawFn, graphql: bool) -> str:
    pairs = draw(st.lists(st.tuples(st.sampled_from(QUERY_KEYS), st.one_of(
        st.sampled_from(QUERY_VALUES), st.text(max_size=20).map(_quote),
    )), max_size=3))  # fmt: skip
    if graphql and draw(st.booleans()):
        pairs.insert(0, ("query", _quote(draw(graphql_documents()))))
        if draw(st.booleans()):
            pairs.append(("variables", _quote(json.dumps(draw(st.fixed_dictionaries({}, optional=GQL_VARIABLES))))))
    return "&".join(f"{k}={v}" for k, v in pairs)


@st.composite
def routes(draw: st.DrawFn, graphql: bool, legal: bool = False) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    """(target, methods, body fields) of a real route, its ids filled with good and bad ones
    (`legal`: ids of rows, and no garbage around them)."""
    table = GRAPHQL_ROUTES if graphql else REST_ROUTES
    names = list(table)
    route = draw(st.sampled_from(["/graphql"] * 8 + names if graphql else names))
    methods, fields = table[route]
    while "{id}" in route:
        segment = draw(OWN_IDS if legal else st.one_of(st.sampled_from(ID_SEGMENTS), st.integers().map(str)))
        route = route.replace("{id}", segment, 1)
    if legal:
        if draw(st.booleans()) and not graphql:
            route += f"?limit={draw(st.integers(1, 100))}"
        return route, methods, fields
    garbage = draw(st.integers(0, 9))
    if garbage == 0:
        route = draw(st.sampled_from(["/", "//", "/./", "/../", "/api/", "%2F"])) + route.lstrip("/")
    elif garbage == 1:
        route += draw(st.sampled_from(["/", "//", "/x", "/%00", "/..", ";x", "/%FF%FE", "?", "%23"]))
    if draw(st.integers(0, 2)) == 0 or (graphql and route.startswith("/graphql")):
        query = draw(query_strings(graphql))
        if query:
            route += "?" + query
    return route, methods, fields


printable = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60)
header_names = st.one_of(
    st.sampled_from([b"X-Fuzz", b"Accept-Encoding", b"Accept-Language", b"Cookie", b"Referer", b"User-Agent",
                     b"X-Forwarded-For", b"Forwarded", b"If-None-Match", b"Range", b"Expect", b"Content-Encoding",
                     b"Last-Event-ID", b"Access-Control-Request-Method", b"Access-Control-Request-Headers",
                     b"Sec-WebSocket-Protocol", b"X-Sim-Fault", b"X-HTTP-Method-Override"]),
    st.from_regex(rb"\A[A-Za-z][A-Za-z0-9-]{0,30}\Z"),
)  # fmt: skip
header_values = st.one_of(
    st.sampled_from([b"", b"100-continue", b"gzip", b"br", b"bytes=0-1", b"1", b"-1", b"%00", b"\xff\xfe",
                     b"POST", b"DELETE", b"authorization, x-evil", b"graphql-transport-ws", b"disconnect",
                     b"{own_deck}"]),
    printable.map(lambda text: text.strip().encode()),
)  # fmt: skip
wire_header_values = st.binary(max_size=80).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b"").strip())


@st.composite
def raw_requests(draw: st.DrawFn, graphql: bool, mode: str) -> RawRequest:
    wire = mode == "wire"
    target, methods, fields = draw(routes(graphql, legal=mode == "legal"))
    if mode == "legal":
        method = draw(st.sampled_from(methods))
        body = draw(legal_bodies(graphql, fields)) if method in ("POST", "PATCH") else b""
        if graphql and method == "GET" and target.startswith("/graphql"):  # a query in the URL
            query, variables = draw(st.sampled_from([q for q in LEGAL_GRAPHQL if not q[0].startswith("mutation")]))
            values = json.dumps(draw(st.fixed_dictionaries(variables)))
            target = target.split("?")[0] + f"?query={_quote(query)}&variables={_quote(values)}"
        if method == "PATCH" and body != b"{}":  # a patch names some of the fields
            doc = json.loads(body)
            body = _dumps({k: v for k, v in doc.items() if draw(st.booleans())}, True)
        headers = [(b"Authorization", b"Bearer {token}"), (b"Content-Type", b"application/json")]
        if draw(st.integers(0, 3)) == 0:
            headers.append((b"Accept", draw(st.sampled_from(ACCEPTS))))
        framing = draw(st.sampled_from(["exact", "exact", "chunked"]))
        return RawRequest(method, target.encode(), tuple(headers), body, framing)
    if draw(st.integers(0, 4)) == 0:
        method = draw(st.sampled_from(METHODS + RARE_METHODS))
    else:
        method = draw(st.sampled_from(methods))
    raw_target = target.encode("utf-8", "surrogatepass")
    if wire and draw(st.integers(0, 3)) == 0:  # any bytes but space and line ends: no valid target
        junk = draw(st.binary(min_size=1, max_size=60))
        raw_target = b"/" + junk.replace(b" ", b"").replace(b"\r", b"").replace(b"\n", b"")
    elif draw(st.integers(0, 15)) == 0:  # a long target: 8-80 KiB of path or query
        raw_target += (b"&x=" if b"?" in raw_target else b"?x=") if draw(st.booleans()) else b"/"
        raw_target += draw(st.sampled_from([b"a", b"%FF", b"/"])) * draw(st.integers(8 * 1024, 80 * 1024))
    host: bytes | None = b"fuzz"
    if draw(st.integers(0, 5)) == 0:  # the app builds redirect URLs and `instance` from it
        hosts = [b"", b"[::1", b"[::1]:8000", b"fuzz:99999", b"fuzz:abc", b"a b", b"evil.example/path", b"x" * 300,
                 b"fuzz, other", b"%00", b"@evil", b"fuzz\\x"]  # fmt: skip
        host = draw(st.sampled_from([*hosts, None, b"\xff\xfe", b"fuzz\x00"] if wire else hosts))
    headers = []
    auth = draw(st.integers(0, 9))
    if auth < 6:
        headers.append((b"Authorization", b"Bearer {token}"))
    elif auth < 9:
        headers.append((b"Authorization", draw(st.sampled_from(AUTHORIZATIONS + (WIRE_AUTHORIZATIONS if wire else [])))))
    if draw(st.integers(0, 9)) < 7:
        headers.append((b"Content-Type", b"application/json"))
    elif draw(st.integers(0, 5)):
        ctype = st.sampled_from(CONTENT_TYPES + (WIRE_CONTENT_TYPES if wire else []))
        headers.append((b"Content-Type", draw(st.one_of(ctype, ctype, ctype, header_values))))
    if draw(st.integers(0, 3)) == 0:
        headers.append((b"Accept", draw(st.sampled_from(ACCEPTS))))
    if draw(st.integers(0, 4)) == 0:
        headers.append((b"Origin", draw(st.sampled_from([ORIGIN.encode(), b"https://evil.example", b"null"]))))
    if draw(st.integers(0, 7)) == 0:  # one huge header: 16-64 KiB
        size = draw(st.integers(16 * 1024, 64 * 1024))
        headers.append((draw(st.sampled_from([b"X-Pad", b"Cookie", b"Authorization", b"Content-Type"])),
                        draw(st.sampled_from([b"a", b"%", b"\xff"])) * size))  # fmt: skip
    if draw(st.integers(0, 9)) == 0:  # many headers (http.server stops at 100)
        headers += [(b"X-Many-%d" % i, b"v") for i in range(draw(st.sampled_from([50, 101, 500])))]
    headers += draw(st.lists(st.tuples(header_names, st.one_of(header_values, wire_header_values)
                                       if wire else header_values), max_size=3))  # fmt: skip
    body = draw(bodies(graphql, fields)) if method not in ("GET", "HEAD") or draw(st.integers(0, 5)) == 0 else b""
    framings = ["exact"] * 5 + ["chunked", "short"] + (["none", "bad-length", "bad-chunked", "bad-chunked"] if wire else [])
    framing = draw(st.sampled_from(framings))
    shortfall = draw(st.integers(1, max(1, len(body)))) if framing == "short" else 1
    bad = b""
    if framing == "bad-length":
        bad = draw(st.sampled_from([b"abc", b"-1", b"1, 1", b"+5", b"0x10", b" ", b"\xff", b"1.0"]))
    elif framing == "bad-chunked":  # never a size larger than what follows: that would wait
        bad = draw(st.sampled_from([b"zz", b"-1", b"", b"1", b"g", b" 1", b"1;\x00", b"1\x00"]))
    return RawRequest(method, raw_target, tuple(headers), body, framing, shortfall, bad, host)


# --- the test -------------------------------------------------------------------------------------
def check(served: Served, request: RawRequest) -> list[Answer]:
    raw = request.render(served.values)
    served.errors.take()  # anything before this request is not its doing
    try:
        answers = exchange(served.port, raw, head_request=request.method == "HEAD")
    except Dropped:
        raise AssertionError(f"{served.impl}: connection dropped without an answer to {raw[:300]!r}") from None
    except Hung as exc:
        raise AssertionError(f"{served.impl}: hung on {raw[:300]!r}: {exc}") from None
    for answer in answers:
        assert answer.status < 500, f"{served.impl}: {answer.status} for {raw[:500]!r}: {answer.body[:500]!r}"
        json_answer = answer.headers.get("content-type", "").startswith("application/json")
        if served.impl == "graphql" and json_answer and answer.body:
            document = json.loads(answer.body)
            errors = document.get("errors") if isinstance(document, dict) else None
            codes = [(e.get("extensions") or {}).get("code") for e in errors or []]
            assert "INTERNAL_SERVER_ERROR" not in codes, f"masked internal error for {raw[:500]!r}: {document}"
    live = exchange(served.port, LIVE)
    assert live[0].status == 200, f"{served.impl}: not live after {raw[:300]!r}"
    logged = served.errors.take()
    assert not logged, f"{served.impl}: unhandled exception for {raw[:300]!r}: {logged}"
    return answers


def fuzz_settings(share: float) -> settings:
    return settings(
        max_examples=max(1, round(EXAMPLES * share)),
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
    )


def _fuzz(served: Served, data: st.DataObject, mode: str) -> None:
    request = data.draw(raw_requests(graphql=served.impl == "graphql", mode=mode), label="request")
    answers = check(served, request)
    event(f"status: {answers[0].status}")  # the spread, with --hypothesis-show-statistics


@fuzz_settings(0.35)
@given(data=st.data())
def test_legal_requests_with_odd_values(served: Served, data: st.DataObject) -> None:
    """Right method, token and type; legal but odd values (any Unicode, lengths at the limits)."""
    _fuzz(served, data, "legal")


@fuzz_settings(0.4)
@given(data=st.data())
def test_hostile_requests_below_500(served: Served, data: st.DataObject) -> None:
    """Well-formed HTTP; hostile paths, queries, headers, tokens and bodies."""
    _fuzz(served, data, "hostile")


@fuzz_settings(0.25)
@given(data=st.data())
def test_malformed_wire_bytes_below_500(served: Served, data: st.DataObject) -> None:
    """Bytes no HTTP parser should accept: control bytes in headers, bad lengths, junk targets."""
    _fuzz(served, data, "wire")


# The cases the generator reaches only by chance, sent to every app every run (the last five
# were 5xx or unhandled exceptions before their fixes).
TOKEN_JSON = ((b"Authorization", b"Bearer {token}"), (b"Content-Type", b"application/json"))
PINNED: dict[str, RawRequest] = {
    "json-nested-10000": RawRequest("POST", b"/api/decks", TOKEN_JSON, b"[" * 10_000 + b"]" * 10_000, "exact"),
    "graphql-nested-3000": RawRequest("POST", b"/graphql", ((b"Content-Type", b"application/json"),),
                                      b'{"query": "' + b"{ me " * 3000 + b'"}', "exact"),
    "json-unclosed-10000": RawRequest("POST", b"/graphql", ((b"Content-Type", b"application/json"),),
                                      b"[" * 10_000, "exact"),
    "invalid-utf8": RawRequest("POST", b"/api/decks", TOKEN_JSON, b'{"title": "\xff\xfe"}', "exact"),
    "nul-and-duplicate-key": RawRequest("POST", b"/api/decks", TOKEN_JSON, b'{"title": "a\\u0000b", "title": "c"}', "exact"),
    "huge-integer": RawRequest("POST", b"/api/cards/{own_card}/reviews", TOKEN_JSON,
                               b'{"grade": 1' + b"0" * 5000 + b"}", "exact"),
    "header-64k": RawRequest("GET", b"/api/me", ((b"Authorization", b"Bearer {token}"), (b"X-Pad", b"a" * 64 * 1024)),
                             b"", "none"),
    "header-16k": RawRequest("GET", b"/api/me", ((b"X-Pad", b"a" * 16 * 1024),), b"", "none"),
    "short-length-pipelined": RawRequest("POST", b"/api/decks", ((b"Authorization", b"Bearer {token}"),
                                         (b"Content-Type", b"text/plain")),
                                         b'{"title": "ok"}GET / HTTP/1.1\r\n\r\n', "short", shortfall=16),
    "chunked-over-limit": RawRequest("POST", b"/api/decks", ((b"Content-Type", b"application/json"),),
                                     b" " * (MAX_BODY + 10), "chunked"),
    "nul-in-path-and-query": RawRequest("GET", b"/api/decks/%00/cards?cursor=%FF&limit=%00",
                                        ((b"Authorization", b"Bearer {token}"),), b"", "none"),
    "nul-in-graphql-query": RawRequest("GET", b"/graphql?query=%7B%20me%20%7B%20id%20%7D%20%7D%00",
                                       ((b"Authorization", b"Bearer {token}"),), b"", "none"),
    # a subscription over plain HTTP: Strawberry ran it as a query (a masked internal error)
    "subscription-over-get": RawRequest("GET", b"/graphql?query=subscription%20%7B%20chat%28input%3A%20%7Bmessage%3A"
                                        b"%20%22%22%7D%29%20%7B%20type%20%7D%20%7D",
                                        ((b"Authorization", b"Bearer {token}"),), b"", "none"),
    "subscription-over-post": RawRequest("POST", b"/graphql", TOKEN_JSON, b'{"query": "subscription { events { id } }"}',
                                         "exact"),
    # a broken chunked body: Flask under Werkzeug or gunicorn reads an OSError from the stream
    "bad-chunk-size": RawRequest("POST", b"/api/decks", TOKEN_JSON, b'{"title": "ok"}', "bad-chunked", bad_length=b"zz"),
    "chunk-without-crlf": RawRequest("POST", b"/api/auth/token", ((b"Content-Type", b"application/json"),),
                                     b'{"username": "fuzz_own", "password": "password1"}', "bad-chunked",
                                     bad_length=b"2"),
    # … and uvicorn answers 400 itself, then tells the app the client is gone mid-body
    "negative-chunk-size": RawRequest("POST", b"/graphql", TOKEN_JSON, b'{"query": "{ me { id } }"}', "bad-chunked",
                                      bad_length=b"-1"),
}  # fmt: skip


@pytest.mark.parametrize("name", list(PINNED))
def test_pinned_raw_requests(served: Served, name: str) -> None:
    check(served, PINNED[name])


def test_exchange_reads_framed_answers(tmp_path: Path) -> None:
    """The reader itself: a Content-Length answer, a chunked one, and a drop are told apart."""
    import threading

    answers = [
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nno\r\n0\r\n\r\n",
        b"",
    ]
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]

    def serve() -> None:
        for answer in answers:
            conn, _ = server.accept()
            conn.recv(65536)
            conn.sendall(answer)
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        first = exchange(port, LIVE)
        assert (first[0].status, first[0].body) == (200, b"ok")
        second = exchange(port, LIVE)
        assert (second[0].status, second[0].body) == (404, b"no")
        with pytest.raises(Dropped):
            exchange(port, LIVE)
    finally:
        thread.join(5)
        server.close()


@pytest.mark.parametrize("declared", [1000, 10 * 1024 * 1024])
def test_client_leaving_mid_body_is_not_a_server_error(served: Served, declared: int) -> None:
    """A client that declares a body and leaves part-way (mid-upload, a killed browser tab): the
    server has nobody to answer, and the app must not raise an unhandled exception about it."""
    path = b"/graphql" if served.impl == "graphql" else b"/api/decks"
    token = served.values["token"].encode()
    for chunked in (False, True):
        framing = b"Transfer-Encoding: chunked\r\n\r\n400\r\n" if chunked else b"Content-Length: %d\r\n\r\n" % declared
        head = (b"POST " + path + b" HTTP/1.1\r\nHost: fuzz\r\nAuthorization: Bearer " + token
                + b"\r\nContent-Type: application/json\r\n" + framing)  # fmt: skip
        served.errors.take()
        with socket.create_connection(("127.0.0.1", served.port), timeout=TIMEOUT_S) as sock:
            sock.sendall(head + b'{"query": "{ me { id } }", "title": "')
            time.sleep(0.2)  # the app is reading the body now
        time.sleep(0.3)
        assert exchange(served.port, LIVE)[0].status == 200
        assert not served.errors.take(), f"{served.impl} (chunked={chunked}) logged an unhandled exception"
