"""The live event feed: server-sent events (with `Last-Event-ID` resume) and a WebSocket."""

from __future__ import annotations

import math
import time
from typing import Any

import anyio
from fastapi import APIRouter, Header, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import Response, StreamingResponse

from flashcards._async.service import Service
from flashcards.errors import Unauthenticated
from flashcards.events import Subscriber, parse_last_event_id
from flashcards.models import EventOut, StreamTicketOut
from flashcards.streamauth import TOKEN_EXPIRED
from flashcards.web import (
    EVENT_STREAM_HEADERS,
    SSE_CONNECTED,
    WS_POLICY_VIOLATION,
    WS_TOKEN_EXPIRED,
)
from impl_rest.dependencies import ServiceDep
from impl_rest.push import RAW_SEND_KEY, PushStream
from impl_rest.responses import AUTHED, event_stream

router = APIRouter(tags=["events"])
EVENTS_DESCRIPTION = (
    "The signed-in user's events. A client that reads too slowly for the server's bounded backlog "
    "(`event_queue_size` events) gets a last frame `event: dropped` with data "
    '`{"reason":"slow_reader"}`, and the stream ends: reconnect with `Last-Event-ID` for the rest. '
    "When the bearer token that opened the stream expires (its `exp`), the last frame is "
    '`event: expired` with data `{"reason":"token_expired"}` and the stream ends: sign in again '
    "and reconnect. Authenticated by the bearer token, or by a single-use `ticket` "
    "(`POST /api/events/ticket`) for browsers' EventSource, which cannot send headers; a ticket "
    "opens one stream only, so a reconnect takes a new ticket and `last_event_id`."
)
TICKET_DESCRIPTION = (
    "A single-use stream ticket for `GET /api/events?ticket=…` (EventSource cannot send an "
    "`Authorization` header, and the token must not go into a URL). It opens one stream within "
    "`expires_in` seconds (`stream_ticket_ttl_s`, never past the token's own expiry), for the "
    "token's user; that stream ends when the token expires. Used, or too late: 401."
)


@router.post("/events/ticket", status_code=201, responses=AUTHED, description=TICKET_DESCRIPTION)
async def events_ticket(request: Request, service: ServiceDep) -> StreamTicketOut:
    return await service.issue_ticket(request.headers.get("authorization"))


@router.get(
    "/events",
    response_class=StreamingResponse,
    responses={**AUTHED, **event_stream(EventOut.model_json_schema(), EVENTS_DESCRIPTION)},
)
async def events(
    request: Request,
    service: ServiceDep,
    last_event_id_header: str | None = Header(None, alias="Last-Event-ID"),
    last_event_id: str | None = Query(None, description="Resume after this event id (as Last-Event-ID)"),
    ticket: str | None = Query(None, description="A stream ticket (POST /api/events/ticket) instead of the bearer token"),
) -> Response:
    grant = await service.stream_grant(request.headers.get("authorization"), ticket)
    resume = parse_last_event_id(last_event_id_header if last_event_id_header is not None else last_event_id)
    # before the response: nothing published now is missed
    sub = service.subscribe(grant.user_id, resume, until=grant.until)
    return EventStreamResponse(service, sub)


class EventStreamResponse(Response):
    """A held event stream with the least per-connection state and no per-event wake-up: the
    subscriber's queue is replaced by a `PushStream` (impl_rest/push.py) that writes each
    published frame to the connection from the publisher's turn of the loop, and this request's
    own task only waits for the client to leave (or for the stream to end: the server then
    reports the request as over). No watcher task, no generator, no queue per stream."""

    media_type = "text/event-stream"

    def __init__(self, service: Service, sub: Subscriber) -> None:
        super().__init__(headers=EVENT_STREAM_HEADERS, media_type=self.media_type)
        self.raw_headers = [(k, v) for k, v in self.raw_headers if k != b"content-length"]  # open-ended
        self.service = service
        self.sub = sub

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        stream: PushStream | None = None
        try:
            await self.service.load_backlog(self.sub)
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            # Body frames skip the middlewares' send wrappers (they act on the start only).
            body_send = scope.get(RAW_SEND_KEY, send)
            await body_send({"type": "http.response.body", "body": SSE_CONNECTED, "more_body": True})
            bus, sub = self.service.bus, self.sub
            stream = PushStream(body_send, self.service.settings.event_queue_size, lambda: bus.unsubscribe(sub))
            stream.attach(self.sub)
            until = self.sub.until
            with anyio.move_on_after(math.inf if until is None else until - time.time()):
                await _until_ended(stream, receive)
            if not stream.ended:  # the token expired: the last frame, then the end
                self.sub.expired = True
                stream.expire()
                await _until_ended(stream, receive)
        finally:
            if stream is not None:
                stream.detach()
            self.service.bus.unsubscribe(self.sub)  # also when the stream never started


async def _until_ended(stream: PushStream, receive: Any) -> None:
    """Until the client leaves or the stream has ended (the server then reports the request
    as over)."""
    while not stream.ended and (await receive())["type"] != "http.disconnect":
        pass


@router.websocket("/events/ws")
async def events_ws(websocket: WebSocket, token: str | None = None, last_event_id: str | None = None) -> None:
    service: Service = websocket.app.state.service
    authorization = websocket.headers.get("authorization") or (f"Bearer {token}" if token else None)
    await websocket.accept()
    try:
        grant = await service.authenticate_stream(authorization)
    except Unauthenticated as exc:
        await websocket.close(WS_POLICY_VIOLATION, exc.detail[:120])
        return
    sub = service.subscribe(grant.user_id, parse_last_event_id(last_event_id), until=grant.until)

    async def pump() -> None:
        async for event in service.events(sub):
            if event is not None:  # the socket has its own pings; keep-alive ticks are for SSE
                await websocket.send_text(event.json.decode())
        if sub.expired:
            await websocket.close(WS_TOKEN_EXPIRED, TOKEN_EXPIRED)
        else:
            await websocket.close()

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(pump)
        try:
            while True:  # read until the client leaves; what it sends is ignored
                await websocket.receive_text()
        except (WebSocketDisconnect, RuntimeError):
            pass
        tasks.cancel_scope.cancel()
