"""The WSGI floor: a raw WSGI callable, no framework (server overhead only)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from flashcards.runtime import apply_gc_policy

BODY = b'{"message":"hello"}'
HEADERS = [("Content-Type", "application/json"), ("Content-Length", str(len(BODY)))]


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    length = environ.get("CONTENT_LENGTH")
    if length:
        environ["wsgi.input"].read(int(length))
    start_response("200 OK", HEADERS)
    return [BODY]


apply_gc_policy()  # the same GC policy as the apps (flashcards.runtime)
