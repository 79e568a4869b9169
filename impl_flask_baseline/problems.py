"""Error handlers: every failure becomes the RFC 9457 problem document of `flashcards.web`,
byte for byte what the FastAPI app returns for the same request."""

from __future__ import annotations

import logging

from flask import Flask, Response, current_app, request
from werkzeug.exceptions import HTTPException
from werkzeug.routing.exceptions import WebsocketMismatch

from flashcards import web
from flashcards.errors import DomainError, Internal

logger = logging.getLogger("impl_flask_baseline")


def problem_response(error: DomainError) -> Response:
    return Response(
        web.problem_body(error, request.path), status=error.status, headers=web.problem_headers(error)
    )


def allowed_methods_here() -> list[str]:
    """Every method some route serves at this path (Werkzeug's own view, HEAD/OPTIONS dropped)."""
    adapter = current_app.url_map.bind_to_environ(request.environ)
    return web.allowed_methods(adapter.allowed_methods())


def on_domain_error(exc: DomainError) -> Response:
    return problem_response(exc)


def on_http_error(exc: HTTPException) -> Response:
    """Werkzeug's routing and body errors, mapped as the FastAPI app maps Starlette's."""
    websocket_only = request.path in current_app.config["WEBSOCKET_PATHS"]
    if exc.code == 404 or isinstance(exc, WebsocketMismatch) or websocket_only:
        # A WebSocket route does not exist for plain HTTP requests (Starlette: no match → 404).
        error: DomainError = web.route_not_found(request.path)
    elif exc.code == 413:
        error = web.too_large(current_app.config["MAX_BODY_BYTES"])
    else:
        error = web.http_error(
            exc.code or 500, exc.description or exc.name, path=request.path, method=request.method,
            allowed=allowed_methods_here,
        )
    return problem_response(error)


def on_unexpected(exc: Exception) -> Response:
    error = web.unexpected_error(exc)
    if isinstance(error, Internal):
        logger.exception("unhandled error on %s %s", request.method, request.path)
    return problem_response(error)


def install(app: Flask) -> None:
    app.register_error_handler(DomainError, on_domain_error)
    app.register_error_handler(HTTPException, on_http_error)
    app.register_error_handler(Exception, on_unexpected)
