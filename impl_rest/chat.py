"""The tutor chat: the answer streams from the upstream as server-sent events."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from flashcards.chat import ChatEvent
from flashcards.models import ChatIn, ChatMessageOut, Page
from flashcards.web import EVENT_STREAM_HEADERS
from impl_rest.dependencies import CurrentUser, PageQuery, ServiceDep
from impl_rest.responses import AUTHED, event_stream

router = APIRouter(tags=["chat"], responses=AUTHED)

CHAT_DATA = {
    "type": "object",
    "description": "`message`: {message, answer_id}; `token`: {index, content}; `done`: {message}; "
    "`error`: {code, detail, message} (the partial answer, stored as failed)",
}


@router.post("/chat", response_class=StreamingResponse, responses=event_stream(CHAT_DATA, "The answer, token by token"))
async def chat(body: ChatIn, user: CurrentUser, service: ServiceDep) -> StreamingResponse:
    events = service.chat(user, body)
    # The first event stores the question: run it now, so a database failure is a 503 problem
    # document instead of a broken stream after a 200.
    first = await anext(events)
    return StreamingResponse(_frames(first, events), media_type="text/event-stream", headers=EVENT_STREAM_HEADERS)


async def _frames(first: ChatEvent, events: AsyncGenerator[ChatEvent, None]) -> AsyncIterator[bytes]:
    try:
        yield first.sse()
        async for event in events:
            yield event.sse()
    finally:
        await events.aclose()  # the client left: store the partial answer


@router.get("/chat/history")
async def chat_history(user: CurrentUser, service: ServiceDep, page: PageQuery) -> Page[ChatMessageOut]:
    """Both sides of the conversation, newest first."""
    return await service.chat_history(user, page)
