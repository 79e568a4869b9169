"""The live event feed: server-sent events (with `Last-Event-ID` resume) and a WebSocket
(flask-sock; it needs a server that hands over the socket: gunicorn or werkzeug).

Each held stream occupies one worker thread (or greenlet under gevent) blocked on its
subscriber's queue; one keep-alive ticker thread per worker process wakes them all every
`sse_keepalive_s`, which is also when a stream notices that its client has gone.
"""

from __future__ import annotations

import os
import socket
import threading
import weakref
from collections.abc import Iterator

from flask import Blueprint, Response, request
from flask_sock import ConnectionClosed, Sock

from flashcards._sync.service import Service
from flashcards.errors import Unauthenticated
from flashcards.events import Subscriber, parse_last_event_id
from flashcards.streamauth import TOKEN_EXPIRED
from flashcards.web import (
    EVENT_STREAM_HEADERS,
    SSE_CONNECTED,
    SSE_DROPPED,
    SSE_EXPIRED,
    SSE_KEEPALIVE,
    WS_POLICY_VIOLATION,
    WS_TOKEN_EXPIRED,
)
from impl_flask_baseline.chat import EVENT_STREAM
from impl_flask_baseline.edge import inputs, json_response, service

bp = Blueprint("events", __name__, url_prefix="/api")
sock = Sock()
WS_PATH = "/api/events/ws"


@bp.post("/events/ticket")
def events_ticket() -> Response:
    inputs(auth=False)  # the service authenticates (it needs the token's expiry too)
    return json_response(service().issue_ticket(request.headers.get("Authorization")), status=201)


def _last(name: str) -> str | None:
    """A query parameter as Starlette reads it: a repeated name counts once, its last value."""
    values = request.args.getlist(name)
    return values[-1] if values else None


@bp.get("/events")
def events() -> Response:
    inputs(auth=False)
    svc = service()
    grant = svc.stream_grant(request.headers.get("Authorization"), _last("ticket"))
    header = request.headers.get("Last-Event-ID")
    resume = parse_last_event_id(header if header is not None else _last("last_event_id"))
    start_ticker(svc)
    # before the response: nothing published now is missed
    sub = svc.subscribe(grant.user_id, resume, until=grant.until)
    response = Response(_frames(svc, sub), content_type=EVENT_STREAM, headers=EVENT_STREAM_HEADERS)
    response.call_on_close(lambda: svc.bus.unsubscribe(sub))  # also if never iterated
    return response


def _frames(svc: Service, sub: Subscriber) -> Iterator[bytes]:
    yield SSE_CONNECTED
    stream = svc.events(sub)
    try:
        for event in stream:
            yield SSE_KEEPALIVE if event is None else event.sse
        if sub.overflowed:
            yield SSE_DROPPED
        elif sub.expired:
            yield SSE_EXPIRED
    finally:
        stream.close()  # unsubscribes


@sock.route("/events/ws", bp=bp)
def events_ws(ws: object) -> None:
    svc = service()
    token = request.args.get("token")
    authorization = request.headers.get("Authorization") or (f"Bearer {token}" if token else None)
    try:
        grant = svc.authenticate_stream(authorization)
    except Unauthenticated as exc:  # accepted already (as in FastAPI): close with the reason
        _close(ws, WS_POLICY_VIOLATION, exc.detail[:120])
        return
    start_ticker(svc)
    sub = svc.subscribe(grant.user_id, parse_last_event_id(request.args.get("last_event_id")), until=grant.until)
    threading.Thread(target=_watch, args=(ws, svc, sub), name="ws-watch", daemon=True).start()
    stream = svc.events(sub)
    try:
        for event in stream:
            if event is not None:  # the socket has its own pings; keep-alive ticks are for SSE
                ws.send(event.json.decode())  # type: ignore[attr-defined]
    finally:
        stream.close()
    if sub.expired:
        _close(ws, WS_TOKEN_EXPIRED, TOKEN_EXPIRED)
    else:
        _close(ws)  # the client left, or the stream ended (slow reader, shutdown)


# How long a server-initiated close waits for the client's close frame before it drops the
# connection (the websockets client's own default `close_timeout` is 10 s).
WS_CLOSE_TIMEOUT_S = 5.0


def _close(ws: object, code: int | None = None, reason: str | None = None) -> None:
    """Send a close frame, then return only once simple-websocket's reader thread has received
    the client's close frame (or the socket is dropped after `WS_CLOSE_TIMEOUT_S`).

    Why wait: once the route returns, Werkzeug's request handler drains the socket before it
    ends the request (`rfile.read`, until EOF), on the same socket as the still-running reader
    thread. If the drain gets the client's close frame first, the reader waits for it forever,
    the drain waits for an EOF that a client waiting for the server's TCP close never sends:
    the client sees no close until its own close timeout (issue 20, the flaky expiry close)."""
    if ws.connected:  # type: ignore[attr-defined]
        try:
            ws.close(reason=code, message=reason)  # type: ignore[attr-defined]
        except ConnectionClosed:  # the client's close frame came meanwhile
            pass
    reader: threading.Thread = ws.thread  # type: ignore[attr-defined]
    reader.join(WS_CLOSE_TIMEOUT_S)
    if reader.is_alive():  # no close frame back: end the connection; the reader sees EOF and ends
        try:
            ws.sock.shutdown(socket.SHUT_RDWR)  # type: ignore[attr-defined]
        except OSError:
            pass
        reader.join(WS_CLOSE_TIMEOUT_S)


def _watch(ws: object, svc: Service, sub: Subscriber) -> None:
    """Read until the client leaves (what it sends is ignored), then end the stream at once."""
    try:
        while True:
            ws.receive()  # type: ignore[attr-defined]
    except ConnectionClosed:
        pass
    finally:
        svc.bus.close(sub)


# --- one keep-alive ticker per service per worker process -------------------------------------
_tickers: weakref.WeakKeyDictionary[Service, int] = weakref.WeakKeyDictionary()
_tickers_lock = threading.Lock()


def start_ticker(svc: Service) -> None:
    """Started lazily by the first stream, so it runs in the worker process that serves it
    (also when a server imports the app before forking its workers). The event feed's LISTEN
    thread (PostgreSQL) starts here too, before the stream subscribes."""
    svc.start_feed()  # idempotent, per process
    pid = os.getpid()
    if _tickers.get(svc) == pid:
        return
    with _tickers_lock:
        if _tickers.get(svc) == pid:
            return
        _tickers[svc] = pid
        threading.Thread(target=svc.keepalive_loop, name="sse-keepalive", daemon=True).start()
