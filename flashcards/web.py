"""What both REST adapters (Flask and FastAPI) share at the HTTP edge. Pure: no framework here.

The two apps must answer every bad request with the same status and the same problem document,
so the rules live once:

* the order of checks: body too large (413) → malformed JSON (400) → authentication (401) →
  non-JSON body (415) → invalid path ids, query and body fields together (422) → the service
  (404, 409, …). It is FastAPI's natural order (its JSON decoding runs before dependencies,
  field errors are collected after them); the Flask adapter follows it step by step;
* how a body is decoded and what "missing" or "not an object" says;
* how validation errors are named (`field` without a location prefix) and shaped;
* which headers go with which problem (`WWW-Authenticate`, `Retry-After`, `Allow`).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping, Sequence
from typing import Any

import orjson
from pydantic import BaseModel, TypeAdapter, ValidationError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as SATimeoutError

from flashcards.errors import (
    DomainError,
    Internal,
    InvalidInput,
    MalformedRequest,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    Unauthenticated,
    Unavailable,
    UnsupportedMediaType,
)
from flashcards.models import PageIn, TextId, field_errors, parse

# ASGI, typed as the servers type it (the FastAPI app's edge middleware, the GraphQL app).
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

PROBLEM_MEDIA_TYPE = "application/problem+json"
JSON_MEDIA_TYPE = "application/json"
# Sent with every response of both apps (OWASP secure headers for an API).
SECURITY_HEADERS: dict[str, str] = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
# The same, as ASGI header pairs (both ASGI apps append them to every response start).
SECURITY_HEADER_PAIRS: list[tuple[bytes, bytes]] = [(k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
# Event streams (chat answers, the event feed): the headers both apps send with them, and the
# first bytes of every feed (clients see the headers, and know they are subscribed, at once even
# if nothing happens for a while) and its keep-alive comment: exactly these frames in both apps.
EVENT_STREAM_HEADERS: dict[str, str] = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
SSE_CONNECTED = b": connected\n\n"
SSE_KEEPALIVE = b": keepalive\n\n"
# The last frame of a feed whose client read too slowly for its bounded backlog (the stream then
# ends; the client reconnects with Last-Event-ID to get what it missed). No `id:` field, so a
# browser's EventSource keeps the id of the last event it really received.
SSE_DROPPED = b'event: dropped\ndata: {"reason":"slow_reader"}\n\n'
# The last frame of a feed whose bearer token expired (flashcards/streamauth.py): the stream
# ends; the client signs in again and reconnects (new ticket, `last_event_id` of the last event
# it received). No `id:` field, for the same reason as above. Not `event: error`: a browser's
# EventSource dispatches its own connection failures as `error` events too.
SSE_EXPIRED = b'event: expired\ndata: {"reason":"token_expired"}\n\n'
# The close code of an event-feed WebSocket whose token is refused (after the accept).
WS_POLICY_VIOLATION = 1008
# The close code of every WebSocket (event feed, GraphQL) whose token expired while it was open
# (graphql-transport-ws' own code for "Unauthorized"), with the reason `token_expired`.
WS_TOKEN_EXPIRED = 4401
# CORS, when origins are configured: what a browser client of any of the three apps may send.
CORS_ALLOW_HEADERS = ["Authorization", "Content-Type", "Last-Event-ID"]
# Where FastAPI puts a field; the contract names fields without it.
_LOCATIONS = frozenset({"body", "query", "path", "header", "cookie"})
_ID = TypeAdapter(TextId)


def is_json_media_type(content_type: str | None) -> bool:
    """`application/json`, or any `application/*+json`, parameters ignored."""
    if not content_type:
        return False
    main = content_type.split(";", 1)[0].strip().lower()
    return main == JSON_MEDIA_TYPE or (main.startswith("application/") and main.endswith("+json"))


def body_missing() -> InvalidInput:
    return InvalidInput(
        "The request has invalid fields.",
        errors=[{"field": "body", "message": "Field required", "type": "missing"}],
    )


def body_not_object() -> InvalidInput:
    return InvalidInput(
        "The request has invalid fields.",
        errors=[{"field": "body", "message": "Input should be a JSON object", "type": "model_type"}],
    )


def malformed_json() -> MalformedRequest:
    return MalformedRequest("The request body is not valid JSON.")


def unreadable_body() -> MalformedRequest:
    """A body the server could not read: broken chunked framing, or the client left mid-body
    (Werkzeug and gunicorn raise OSError from the input stream; it is the client's fault, so
    400, never the 503 that `database_unavailable` would make of an OSError)."""
    return MalformedRequest("The request body could not be read.")


def unsupported_media_type(content_type: str | None) -> UnsupportedMediaType:
    return UnsupportedMediaType(
        f"The request body must be application/json, not {content_type}."
        if content_type
        else "The request body must be application/json; the request has no Content-Type."
    )


def route_not_found(path: str) -> NotFound:
    return NotFound(f"No resource at {path}.")


def too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"The request body is larger than {limit} bytes.")


def method_not_allowed(method: str, allow: Iterable[str]) -> MethodNotAllowed:
    methods = allowed_methods(allow)
    return MethodNotAllowed(f"{method} is not allowed here; use {', '.join(methods)}.", allow=methods)


def allowed_methods(methods: Iterable[str]) -> list[str]:
    """The `Allow` list both apps print: the route's own methods, sorted.

    HEAD and OPTIONS are not served (FastAPI's routes do not answer them; Flask's automatic ones
    are switched off), so they are never listed."""
    return sorted({m.upper() for m in methods} - {"HEAD", "OPTIONS"})


def decode_body_early(content_type: str | None, body: bytes) -> Any:
    """Step 2, before authentication (FastAPI decodes JSON before it runs dependencies): a body
    sent as JSON must parse (else 400). None when nothing was decoded (an untyped body is not
    JSON: step 4 refuses it, as FastAPI does)."""
    if body and is_json_media_type(content_type):
        return decode_json(body)
    return None


def check_media_type(content_type: str | None, body: bytes) -> None:
    """Step 4, after authentication: a non-empty body that is not typed JSON → 415, also with no
    Content-Type at all (FastAPI hands such a body to validation as bytes; its handler turns
    that into 415 before any 422)."""
    if body and not is_json_media_type(content_type):
        raise unsupported_media_type(content_type)


def decode_json(body: bytes) -> Any:
    """The stdlib parser on purpose: it is what Starlette's `Request.json()` uses, so both apps
    accept exactly the same documents (NaN, huge integers, duplicate keys)."""
    try:
        return json.loads(body)
    except (ValueError, RecursionError):  # JSONDecodeError, UnicodeDecodeError, deep nesting
        raise malformed_json() from None


def normalize_field_errors(errors: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """FastAPI's `RequestValidationError.errors()` → the contract's `[{field, message, type}]`."""
    out = []
    for err in errors:
        loc = [str(p) for p in err.get("loc", ())]
        if loc and loc[0] in _LOCATIONS:
            loc = loc[1:]
        if not loc and err.get("type") in {"model_attributes_type", "model_type", "dict_type"}:
            out.extend(body_not_object().errors)
            continue
        out.append({"field": ".".join(loc) or "body", "message": err.get("msg", ""), "type": err.get("type", "")})
    return out


def validation_error(errors: Sequence[Mapping[str, Any]]) -> DomainError:
    """A framework's validation errors → the one problem both apps return.

    A JSON decoding failure is 400 (malformed), everything else 422 with every bad field."""
    if any(err.get("type") == "json_invalid" for err in errors):
        return malformed_json()
    return InvalidInput("The request has invalid fields.", errors=normalize_field_errors(errors))


# `parse_request(body=NO_BODY)`: the request had no body at all (422 "Field required").
NO_BODY: Any = object()


def parse_request(
    ids: Mapping[str, str] | None = None,
    query: Mapping[str, str] | None = None,
    body: Any = NO_BODY,
    body_model: type[BaseModel] | None = None,
) -> tuple[dict[str, int], PageIn | None, Any]:
    """Validate path ids, paging query and body together, reporting every bad field at once
    (as FastAPI does: path, then query, then body); returns (ids, page, body model).

    `body` is the decoded JSON document, or `NO_BODY` when the request had none; a document that
    is not an object (`null`, a list, a string) is one error on `body`, as in FastAPI."""
    errors: list[dict[str, Any]] = []
    parsed_ids: dict[str, int] = {}
    for name, raw in (ids or {}).items():
        try:
            parsed_ids[name] = _ID.validate_python(raw)
        except ValidationError as exc:
            errors.extend({**e, "field": name} for e in field_errors(exc))
    page = None
    if query is not None:
        try:
            page = PageIn.model_validate(dict(query))
        except ValidationError as exc:
            errors.extend(field_errors(exc))
    model: BaseModel | None = None
    if body_model is not None:
        if body is NO_BODY:
            errors.extend(body_missing().errors)
        elif not isinstance(body, dict):
            errors.extend(body_not_object().errors)
        else:
            try:
                model = parse(body_model, body)
            except InvalidInput as exc:
                errors.extend(exc.errors)
    if errors:
        raise InvalidInput("The request has invalid fields.", errors=errors)
    return parsed_ids, page, model


# SQLSTATEs of a server that is going away or cannot take us: connection exceptions (08…),
# operator intervention (57P01 admin shutdown, 57P02 crash shutdown, 57P03 cannot connect now),
# too many connections (53300). asyncpg's are not OperationalErrors, and while PostgreSQL shuts
# down they were 500s.
_UNAVAILABLE_SQLSTATES = ("08", "57P", "53300")


def _sqlstate(exc: DBAPIError) -> str:
    return str(getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None) or "")


def database_unavailable(exc: BaseException) -> Unavailable | None:
    """A failure to reach the database (refused, dropped, shutting down, pool exhausted, timed
    out) → 503; None for anything else (a bug stays a 500, visibly)."""
    if isinstance(exc, (OperationalError, InterfaceError, SATimeoutError, OSError, TimeoutError)) or (
        isinstance(exc, DBAPIError) and (exc.connection_invalidated or _sqlstate(exc).startswith(_UNAVAILABLE_SQLSTATES))
    ):
        return Unavailable("The database is unavailable; try again shortly.")
    return None


def unexpected_error(exc: BaseException) -> DomainError:
    """An exception no handler claimed: 503 when the database is unreachable, else a 500 (which
    the adapter logs: `isinstance(error, Internal)`)."""
    return database_unavailable(exc) or Internal("An unexpected error occurred.")


def http_error(
    status: int, detail: str, *, path: str, method: str, allowed: Callable[[], Iterable[str]]
) -> DomainError:
    """A framework's own routing or body error (Starlette's or Werkzeug's) → the contract's
    problem: no route 404, 405 with every method served at `path` (`allowed()`), unparsable
    body 400; any other status is passed through with the framework's `detail`."""
    if status == 404:
        return route_not_found(path)
    if status == 405:
        return method_not_allowed(method, allowed())
    if status == 400:
        return malformed_json()
    error = DomainError(detail)
    error.status = status  # type: ignore[misc]  # a framework status with no problem type of its own
    return error


def problem_headers(error: DomainError) -> dict[str, str]:
    headers = {"Content-Type": PROBLEM_MEDIA_TYPE}
    if isinstance(error, Unauthenticated):
        headers["WWW-Authenticate"] = 'Bearer realm="stackbench"'
    elif isinstance(error, RateLimited):
        headers["Retry-After"] = str(error.retry_after)
    elif isinstance(error, MethodNotAllowed):
        headers["Allow"] = ", ".join(error.allow)
    return headers


def problem_body(error: DomainError, instance: str) -> bytes:
    return orjson.dumps(error.problem(instance))
