"""What the load drivers send, at the byte level; standard library only.

The drivers' client processes (`loadtests.openloop`, `loadtests.realtime`) import this module,
not `loadtests.scenarios`: that one pulls in the seed module and SQLAlchemy (≈ 1 s of start-up
and 0.8 s of CPU that would be charged to the client).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field

BODY_METHODS = ("POST", "PUT", "PATCH")


@dataclass(frozen=True)
class RequestSpec:
    """One request shape for the drivers: `{id}` in path or body is replaced by a random id from
    `ids`, `{grade}` by a random grade 0–5."""

    method: str
    path: str
    body: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    ids: tuple[int, ...] = ()
    expect_status: int = 200

    def render(self, rng: random.Random) -> tuple[str, str | None]:
        ident = str(rng.choice(self.ids)) if self.ids else ""
        path = self.path.replace("{id}", ident)
        body = self.body.replace("{id}", ident).replace("{grade}", str(rng.randint(0, 5))) if self.body else None
        return path, body


def http_request(method: str, host: str, target: str, headers: Mapping[str, str],
                 body: bytes | None = None) -> bytes:
    """One HTTP/1.1 request: request line, `Host`, `headers`, and `Content-Length` when there is
    a body or the method carries one (an empty POST says `Content-Length: 0`)."""
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}", *(f"{k}: {v}" for k, v in headers.items())]
    if body is not None or method in BODY_METHODS:
        lines.append(f"Content-Length: {len(body or b'')}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")
