"""CORS for configured origins, answering exactly as the FastAPI app's Starlette
`CORSMiddleware(allow_origins=…, allow_methods=["*"], allow_headers=CORS_ALLOW_HEADERS)` does.

Not flask-cors: it answers preflights through Flask's automatic OPTIONS responses, which this app
switches off (OPTIONS is not served, so `Allow` stays the same in both apps), and it differs from
Starlette in what it sends for a refused preflight.
"""

from __future__ import annotations

from collections.abc import Sequence

from flask import Response
from werkzeug.datastructures import Headers

from flashcards.web import CORS_ALLOW_HEADERS

ALL_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "QUERY")
SAFELISTED_HEADERS = {"Accept", "Accept-Language", "Content-Language", "Content-Type"}
MAX_AGE_S = 600


class Cors:
    def __init__(self, origins: Sequence[str], allow_headers: Sequence[str] = CORS_ALLOW_HEADERS) -> None:
        self.origins = frozenset(origins)
        self.allow_all = "*" in self.origins
        headers = sorted(SAFELISTED_HEADERS | set(allow_headers))
        self.allow_headers = {h.lower() for h in headers}
        self.preflight_headers = {
            "Vary": "Origin, Access-Control-Request-Method, Access-Control-Request-Headers, "
            "Access-Control-Request-Private-Network",
            **({"Access-Control-Allow-Origin": "*"} if self.allow_all else {}),
            "Access-Control-Allow-Methods": ", ".join(ALL_METHODS),
            "Access-Control-Max-Age": str(MAX_AGE_S),
            "Access-Control-Allow-Headers": ", ".join(headers),
        }

    def allowed(self, origin: str) -> bool:
        return self.allow_all or origin in self.origins

    @staticmethod
    def is_preflight(method: str, headers: Headers) -> bool:
        return method == "OPTIONS" and "Origin" in headers and "Access-Control-Request-Method" in headers

    def preflight(self, headers: Headers) -> Response:
        out = dict(self.preflight_headers)
        failures = []
        origin = headers["Origin"]
        if not self.allowed(origin):
            failures.append("origin")
        elif not self.allow_all:
            out["Access-Control-Allow-Origin"] = origin
        if headers["Access-Control-Request-Method"] not in ALL_METHODS:
            failures.append("method")
        requested = headers.get("Access-Control-Request-Headers")
        if requested is not None and any(
            h.strip() not in self.allow_headers for h in requested.lower().split(",")
        ):
            failures.append("headers")
        if headers.get("Access-Control-Request-Private-Network") is not None:
            failures.append("private-network")
        text = "Disallowed CORS " + ", ".join(failures) if failures else "OK"
        return Response(text, status=400 if failures else 200, headers=out, mimetype="text/plain")

    def decorate(self, origin: str | None, headers: Headers) -> None:
        """Headers of an ordinary (non-preflight) response: the origin echoed when allowed, and
        `Vary: Origin` always (Starlette adds it even when no Origin was sent)."""
        if origin is not None and self.allowed(origin):
            headers["Access-Control-Allow-Origin"] = "*" if self.allow_all else origin
        headers["Vary"] = ", ".join([*headers.getlist("Vary"), "Origin"])
