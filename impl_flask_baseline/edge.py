"""The HTTP edge of a request, step by step in the order of `flashcards.web`:

body too large (413) → malformed JSON (400) → authentication (401) → non-JSON body (415) → path
ids, query and body fields together (422) → the service (404, 409, …). FastAPI gets this order
from its request pipeline; here every view calls `inputs(...)`, which walks the same steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

from flask import Response, current_app, request
from pydantic import BaseModel
from werkzeug.exceptions import HTTPException

from flashcards import web
from flashcards._sync.service import Service
from flashcards.models import PageIn
from flashcards.settings import Settings

EXTENSION = "stackbench"
JSON = web.JSON_MEDIA_TYPE


@dataclass(frozen=True, slots=True)
class State:
    """What the views need, built once per app (per worker process)."""

    settings: Settings
    service: Service
    config_json: bytes  # the config document, encoded once at start-up


def state() -> State:
    return current_app.extensions[EXTENSION]  # type: ignore[no-any-return]


def service() -> Service:
    return state().service


class Inputs(NamedTuple):
    user: int  # 0 when the route is public
    ids: dict[str, int]
    page: PageIn | None
    body: Any  # the validated body model, or None


def check_declared_length() -> None:
    """Step 1 for every request, before routing (as the FastAPI app's outer middleware): a
    declared `Content-Length` over the limit is refused without reading the body."""
    length = request.content_length
    limit = state().settings.max_body_bytes
    if length is not None and length > limit:
        raise web.too_large(limit)


def read_body() -> bytes:
    """The body, at most `max_body_bytes` (a chunked body is counted as it is read)."""
    limit = state().settings.max_body_bytes
    try:
        data = request.stream.read(limit + 1)
    except HTTPException:  # Werkzeug's own answers (ClientDisconnected: 400)
        raise
    except Exception:  # the server's error for broken chunked framing or a client gone mid-body:
        # OSError from Werkzeug and gunicorn's NoMoreData, gunicorn's ParseException for a bad
        # chunk size; left alone, the first would be a 503 ("database unavailable"), the second a 500
        raise web.unreadable_body() from None
    if len(data) > limit:
        raise web.too_large(limit)
    return data


def inputs(
    *,
    ids: dict[str, str] | None = None,
    page: bool = False,
    body: type[BaseModel] | None = None,
    auth: bool = True,
) -> Inputs:
    """Decode, authenticate and validate one request; raises the first `DomainError` due."""
    content_type = request.headers.get("Content-Type")
    raw = b""
    decoded: Any = None
    if body is not None:
        raw = read_body()  # 413 for chunked bodies (declared lengths were checked already)
        decoded = web.decode_body_early(content_type, raw)  # 400
    user = service().authenticate_user(request.headers.get("Authorization")) if auth else 0  # 401
    if body is not None:
        web.check_media_type(content_type, raw)  # 415
    query = None
    if page:
        # Starlette's QueryParams: a repeated name counts once, with its last value.
        query = {name: values[-1] for name, values in request.args.lists()}
    parsed_ids, parsed_page, model = web.parse_request(  # 422, every bad field at once
        ids=ids,
        query=query,
        body=decoded if raw else web.NO_BODY,
        body_model=body,
    )
    return Inputs(user, parsed_ids, parsed_page, model)


def json_response(model: BaseModel, status: int = 200, location: str | None = None) -> Response:
    """A pydantic model as FastAPI sends it: pydantic's own JSON encoder (ISO 8601 datetimes
    with `Z`), `application/json`."""
    response = Response(model.__pydantic_serializer__.to_json(model), status=status, mimetype=JSON)
    if location is not None:
        response.headers["Location"] = location
    return response


def raw_json(body: bytes, status: int = 200) -> Response:
    return Response(body, status=status, mimetype=JSON)


def no_content() -> Response:
    response = Response(status=204)
    del response.headers["Content-Type"]  # Werkzeug's default text/html; FastAPI sends none
    return response
