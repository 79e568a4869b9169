"""The tutor chat: the answer streams from the upstream as server-sent events."""

from __future__ import annotations

from collections.abc import Generator, Iterator

from flask import Blueprint, Response

from flashcards.chat import ChatEvent
from flashcards.models import ChatIn
from flashcards.web import EVENT_STREAM_HEADERS
from impl_flask_baseline.edge import inputs, json_response, service

bp = Blueprint("chat", __name__, url_prefix="/api")
EVENT_STREAM = "text/event-stream; charset=utf-8"


@bp.post("/chat")
def chat() -> Response:
    req = inputs(body=ChatIn)
    events = service().chat(req.user, req.body)
    # The first event stores the question: run it now, so a database failure is a 503 problem
    # document instead of a broken stream after a 200.
    first = next(events)
    response = Response(_frames(first, events), content_type=EVENT_STREAM, headers=EVENT_STREAM_HEADERS)
    # Every WSGI server calls close() on the response when it ends or the client goes away
    # (the next write fails): the service then stores the partial answer as failed. Also when
    # the server closes the response before iterating it at all.
    response.call_on_close(events.close)
    return response


def _frames(first: ChatEvent, events: Generator[ChatEvent, None]) -> Iterator[bytes]:
    try:
        yield first.sse()
        for event in events:
            yield event.sse()
    finally:
        events.close()


@bp.get("/chat/history")
def chat_history() -> Response:
    """Both sides of the conversation, newest first."""
    req = inputs(page=True)
    return json_response(service().chat_history(req.user, req.page))
