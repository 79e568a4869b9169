"""The HTTP edge as one pure ASGI middleware: body size limit (413) and security headers.

Pure ASGI rather than `BaseHTTPMiddleware`: it adds no task per request and does not buffer
streaming responses (chat, event feed).
"""

from __future__ import annotations

from flashcards.web import (
    SECURITY_HEADER_PAIRS,
    ASGIApp,
    Message,
    Receive,
    Scope,
    Send,
    problem_body,
    problem_headers,
    too_large,
)

_SECURITY = SECURITY_HEADER_PAIRS


class _TooLarge(Exception):
    pass


class EdgeMiddleware:
    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_body_bytes
        declared, chunked = _framing(scope)
        if declared is not None and declared > limit:
            await _reject(scope, send, limit)
            return
        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = list(message.get("headers", ()))
                present = {name.lower() for name, _ in headers}
                # a response that sets one itself (the event streams' Cache-Control) keeps it once
                message["headers"] = headers + [h for h in _SECURITY if h[0] not in present]
            await send(message)

        if not chunked:
            # The server frames the body by Content-Length (checked above) or there is none:
            # nothing to count, so no receive wrapper on the common path.
            await self.app(scope, receive, send_with_headers)
            return
        received = 0

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:  # a chunked body over the limit
                    raise _TooLarge
            return message

        try:
            await self.app(scope, counted_receive, send_with_headers)
        except _TooLarge:
            if started:
                raise
            await _reject(scope, send, limit)


def _framing(scope: Scope) -> tuple[int | None, bool]:
    """The declared Content-Length (None: absent or not a number) and whether the body is
    chunked (Transfer-Encoding, or a Content-Length that is not a number: counted instead)."""
    declared: int | None = None
    chunked = False
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                declared = int(value)
            except ValueError:
                chunked = True
        elif name == b"transfer-encoding":
            chunked = True
    return declared, chunked


async def _reject(scope: Scope, send: Send, limit: int) -> None:
    error = too_large(limit)
    body = problem_body(error, scope["path"])
    headers = [(k.lower().encode(), v.encode()) for k, v in problem_headers(error).items()]
    headers += [(b"content-length", str(len(body)).encode()), (b"connection", b"close"), *_SECURITY]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
