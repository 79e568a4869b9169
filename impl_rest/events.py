"""The live event feed: server-sent events (with `Last-Event-ID` resume) and a WebSocket."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
from fastapi import APIRouter, Header, Query, WebSocket, WebSocketDisconnect
from fastapi.responses import StreamingResponse

from flashcards._async.service import Service
from flashcards.errors import Unauthenticated
from flashcards.events import Subscriber, parse_last_event_id
from flashcards.models import EventOut
from impl_rest.chat import STREAM_HEADERS
from impl_rest.dependencies import CurrentUser, ServiceDep
from impl_rest.responses import AUTHED, event_stream

router = APIRouter(tags=["events"])
# The first bytes of every event stream: clients see the headers (and know they are subscribed)
# at once, even if nothing happens for a while. Both REST apps send exactly these frames.
CONNECTED = b": connected\n\n"
KEEPALIVE = b": keepalive\n\n"
WS_POLICY_VIOLATION = 1008


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
) -> StreamingResponse:
    resume = parse_last_event_id(last_event_id_header if last_event_id_header is not None else last_event_id)
    sub = service.subscribe(user, resume)  # before the response: nothing published now is missed
    return StreamingResponse(_frames(service, sub), media_type="text/event-stream", headers=STREAM_HEADERS)


async def _frames(service: Service, sub: Subscriber) -> AsyncIterator[bytes]:
    yield CONNECTED
    async for event in service.events(sub):  # unsubscribes when the client goes away
        yield KEEPALIVE if event is None else event.sse


@router.websocket("/events/ws")
async def events_ws(websocket: WebSocket, token: str | None = None, last_event_id: str | None = None) -> None:
    service: Service = websocket.app.state.service
    authorization = websocket.headers.get("authorization") or (f"Bearer {token}" if token else None)
    await websocket.accept()
    try:
        user = service.authenticate(authorization)
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
