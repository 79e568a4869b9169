"""Exception handlers: every failure becomes the RFC 9457 problem document of `flashcards.web`,
byte for byte what the Flask app returns for the same request."""

from __future__ import annotations

import logging
import re

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException
from starlette.routing import compile_path

from flashcards import web
from flashcards.errors import DomainError, Internal, MalformedRequest

logger = logging.getLogger("impl_rest")


def problem_response(request: Request, error: DomainError) -> Response:
    return Response(
        web.problem_body(error, request.url.path), status_code=error.status, headers=web.problem_headers(error)
    )


async def on_domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DomainError)
    return problem_response(request, exc)


async def on_validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    content_type = request.headers.get("content-type")
    body_error = any(tuple(e.get("loc", ()))[:1] == ("body",) for e in errors)
    if body_error and not web.is_json_media_type(content_type) and await request.body():
        # FastAPI hands a non-JSON body to validation as bytes; the contract says 415.
        return problem_response(request, web.unsupported_media_type(content_type))
    return problem_response(request, web.validation_error(errors))


async def on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    error = web.http_error(  # Starlette's 400: a body it could not parse
        exc.status_code, str(exc.detail), path=request.url.path, method=request.method,
        allowed=lambda: _methods_at(request),
    )
    return problem_response(request, error)


async def on_unexpected(request: Request, exc: Exception) -> Response:
    error = web.unexpected_error(exc)
    if isinstance(error, Internal):
        logger.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem_response(request, error)


def _methods_at(request: Request) -> list[str]:
    """Every method served on this path. Starlette's own 405 names only the first matching
    route's methods (GET and POST /api/decks are two routes), so the table is built once from
    the OpenAPI document's paths, the public description of the routes."""
    table: list[tuple[re.Pattern[str], set[str]]] | None = getattr(request.app.state, "methods_by_path", None)
    if table is None:
        table = [
            (compile_path(path)[0], {m.upper() for m in operations})
            for path, operations in request.app.openapi().get("paths", {}).items()
        ]
        request.app.state.methods_by_path = table
    path = request.url.path
    return sorted(m for pattern, methods in table if pattern.match(path) for m in methods)


def install(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, on_domain_error)
    app.add_exception_handler(MalformedRequest, on_domain_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(HTTPException, on_http_error)
    app.add_exception_handler(Exception, on_unexpected)
