"""The live event feed: server-sent events (with `Last-Event-ID` resume) and a WebSocket."""

from __future__ import annotations

from typing import Any

import anyio
from fastapi import APIRouter, Header, Query, WebSocket, WebSocketDisconnect
from fastapi.responses import Response, StreamingResponse

from flashcards._async.service import Service
from flashcards.errors import Unauthenticated
from flashcards.events import Subscriber, parse_last_event_id
from flashcards.models import EventOut
from flashcards.web import EVENT_STREAM_HEADERS, SSE_CONNECTED, WS_POLICY_VIOLATION
from impl_rest.dependencies import CurrentUser, ServiceDep
from impl_rest.push import RAW_SEND_KEY, PushStream
from impl_rest.responses import AUTHED, event_stream

router = APIRouter(tags=["events"])
EVENTS_DESCRIPTION = (
    "The signed-in user's events. A client that reads too slowly for the server's bounded backlog "
    "(`event_queue_size` events) gets a last frame `event: dropped` with data "
    '`{"reason":"slow_reader"}`, and the stream ends: reconnect with `Last-Event-ID` for the rest.'
)


@router.get(
    "/events",
    response_class=StreamingResponse,
    responses={**AUTHED, **event_stream(EventOut.model_json_schema(), EVENTS_DESCRIPTION)},
)
async def events(
    user: CurrentUser,
    service: ServiceDep,
    last_event_id_header: str | None = Header(None, alias="Last-Event-ID"),
    last_event_id: str | None = Query(None, description="Resume after this event id (as Last-Event-ID)"),
) -> Response:
    resume = parse_last_event_id(last_event_id_header if last_event_id_header is not None else last_event_id)
    sub = service.subscribe(user, resume)  # before the response: nothing published now is missed
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
            while not stream.ended and (await receive())["type"] != "http.disconnect":
                pass
        finally:
            if stream is not None:
                stream.detach()
            self.service.bus.unsubscribe(self.sub)  # also when the stream never started


@router.websocket("/events/ws")
async def events_ws(websocket: WebSocket, token: str | None = None, last_event_id: str | None = None) -> None:
    service: Service = websocket.app.state.service
    authorization = websocket.headers.get("authorization") or (f"Bearer {token}" if token else None)
    await websocket.accept()
    try:
        user = await service.authenticate_user(authorization)
    except Unauthenticated as exc:
        await websocket.close(WS_POLICY_VIOLATION, exc.detail[:120])
        return
    sub = service.subscribe(user, parse_last_event_id(last_event_id))

    async def pump() -> None:
        async for event in service.events(sub):
            if event is not None:  # the socket has its own pings; keep-alive ticks are for SSE
                await websocket.send_text(event.json.decode())
        await websocket.close()

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(pump)
        try:
            while True:  # read until the client leaves; what it sends is ignored
                await websocket.receive_text()
        except (WebSocketDisconnect, RuntimeError):
            pass
        tasks.cancel_scope.cancel()
