"""What the load drivers send, at the byte level; standard library only.

The drivers' client processes (`loadtests.openloop`, `loadtests.realtime`) import this module,
not `loadtests.scenarios`: that one pulls in the seed module and SQLAlchemy (≈ 1 s of start-up
and 0.8 s of CPU that would be charged to the client).
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from dataclasses import dataclass, field

BODY_METHODS = ("POST", "PUT", "PATCH")


@dataclass(frozen=True)
class RequestSpec:
    """One request shape for the drivers: `{id}` in path or body is replaced by a random id from
    `ids`, `{grade}` by a random grade 0–5.

    `users` (optional): the load spread over several users, each `(token, ids)`: every request
    is sent as a user drawn uniformly from it, with that user's token (`Authorization: Bearer`)
    and one of that user's ids; `headers` and `ids` are then the first user's (what a one-user
    reader sees)."""

    method: str
    path: str
    body: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    ids: tuple[int, ...] = ()
    expect_status: int = 200
    users: tuple[tuple[str, tuple[int, ...]], ...] = ()

    def render(self, rng: random.Random) -> tuple[str, str | None]:
        """A random request's path and body (of the first user's ids; `render_as` spreads users)."""
        return self._fill(rng, self.ids)

    def render_as(self, rng: random.Random) -> tuple[dict[str, str], str, str | None]:
        """A random request's headers, path and body: as a random one of `users` when there are."""
        if not self.users:
            return self.headers, *self._fill(rng, self.ids)
        token, ids = rng.choice(self.users)
        return {**self.headers, "Authorization": f"Bearer {token}"}, *self._fill(rng, ids)

    def _fill(self, rng: random.Random, ids: tuple[int, ...]) -> tuple[str, str | None]:
        ident = str(rng.choice(ids)) if ids else ""
        path = self.path.replace("{id}", ident)
        body = self.body.replace("{id}", ident).replace("{grade}", str(rng.randint(0, 5))) if self.body else None
        return path, body

    def to_json(self) -> str:
        """The spec as JSON, how it reaches the drivers' client processes (`from_json` reads it)."""
        return json.dumps({"method": self.method, "path": self.path, "body": self.body,
                           "headers": dict(self.headers), "ids": list(self.ids),
                           "expect_status": self.expect_status,
                           "users": [[token, list(ids)] for token, ids in self.users]})

    @classmethod
    def from_json(cls, text: str) -> RequestSpec:
        """A spec from `to_json`'s JSON (the method upper-cased, header values as strings)."""
        doc = json.loads(text)
        return cls(
            method=str(doc["method"]).upper(), path=str(doc["path"]), body=doc.get("body"),
            headers={str(k): str(v) for k, v in (doc.get("headers") or {}).items()},
            ids=tuple(int(i) for i in doc.get("ids") or ()),
            expect_status=int(doc.get("expect_status", 200)),
            users=tuple((str(token), tuple(int(i) for i in ids)) for token, ids in doc.get("users") or ()),
        )


def http_request(method: str, host: str, target: str, headers: Mapping[str, str],
                 body: bytes | None = None) -> bytes:
    """One HTTP/1.1 request: request line, `Host`, `headers`, and `Content-Length` when there is
    a body or the method carries one (an empty POST says `Content-Length: 0`)."""
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}", *(f"{k}: {v}" for k, v in headers.items())]
    if body is not None or method in BODY_METHODS:
        lines.append(f"Content-Length: {len(body or b'')}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")
