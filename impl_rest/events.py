"""The live event feed: server-sent events (with `Last-Event-ID` resume) and a WebSocket."""

from __future__ import annotations

import asyncio
from typing import Any

import anyio
from fastapi import APIRouter, Header, Query, WebSocket, WebSocketDisconnect
from fastapi.responses import Response, StreamingResponse

from flashcards._async.service import Service
from flashcards.errors import Unauthenticated
from flashcards.events import Subscriber, parse_last_event_id
from flashcards.models import EventOut
from flashcards.web import EVENT_STREAM_HEADERS, SSE_CONNECTED, SSE_KEEPALIVE, WS_POLICY_VIOLATION
from impl_rest.dependencies import CurrentUser, ServiceDep
from impl_rest.responses import AUTHED, event_stream

router = APIRouter(tags=["events"])


@router.get(
    "/events",
    response_class=StreamingResponse,
    responses={**AUTHED, **event_stream(EventOut.model_json_schema(), "The signed-in user's events")},
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
    """A held event stream with the least per-connection state: one loop that sends what the
    subscriber's queue gives, and one small task that turns the client's disconnect into a
    CLOSED item in that queue. (`StreamingResponse` costs an anyio task group and two tasks per
    stream; with 10,000 held streams that is the difference the fan-out target is about.)"""

    media_type = "text/event-stream"

    def __init__(self, service: Service, sub: Subscriber) -> None:
        super().__init__(headers=EVENT_STREAM_HEADERS, media_type=self.media_type)
        self.raw_headers = [(k, v) for k, v in self.raw_headers if k != b"content-length"]  # open-ended
        self.service = service
        self.sub = sub

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        watcher = asyncio.ensure_future(self._watch(receive))
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            await send({"type": "http.response.body", "body": SSE_CONNECTED, "more_body": True})
            async for event in self.service.events(self.sub):  # unsubscribes when it ends
                frame = SSE_KEEPALIVE if event is None else event.sse
                await send({"type": "http.response.body", "body": frame, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            watcher.cancel()
            self.service.bus.unsubscribe(self.sub)  # also when the stream never started

    async def _watch(self, receive: Any) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        self.service.bus.close(self.sub)


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
