"""Response documentation shared by the routes: problem documents and event streams in OpenAPI."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from flashcards.web import PROBLEM_MEDIA_TYPE


class Problem(BaseModel):
    """RFC 9457 problem document (every error of both REST apps)."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    instance: str | None = None
    errors: list[dict[str, Any]] | None = None


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    schema = {"$ref": "#/components/schemas/Problem"}
    return {s: {"description": _DESCRIPTIONS[s], "content": {PROBLEM_MEDIA_TYPE: {"schema": schema}}} for s in statuses}


_DESCRIPTIONS = {
    400: "Malformed request (the body is not valid JSON)",
    401: "Missing, invalid or expired bearer token",
    404: "No such object (or it belongs to another user)",
    409: "Conflict",
    413: "Request body too large",
    415: "The body is not application/json",
    422: "Invalid fields",
    429: "Too many attempts; see Retry-After",
    502: "The tutor upstream failed",
    503: "The database is unavailable",
}
# Every route can answer these (the edge runs before any route).
COMMON = problems(400, 413, 415, 422)
AUTHED = problems(401)


def event_stream(data_schema: dict[str, Any], description: str) -> dict[int | str, dict[str, Any]]:
    """A `text/event-stream` 200 response with an item schema (OpenAPI 3.2 style, as FastAPI's
    own `EventSourceResponse` documents it), so contract tests can check every frame."""
    item = {
        "type": "object",
        "properties": {
            "data": {"type": "string", "contentMediaType": "application/json", "contentSchema": data_schema},
            "event": {"type": "string"},
            "id": {"type": "string"},
            "retry": {"type": "integer", "minimum": 0},
        },
    }
    return {200: {"description": description, "content": {"text/event-stream": {"itemSchema": item}}}}
