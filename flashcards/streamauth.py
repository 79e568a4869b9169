"""Who may hold a live stream, and until when (issue 20; issue 19, item 6). Pure: no I/O here.

* Every stream ends when the bearer token that opened it expires: its deadline is the token's
  `exp` claim (`StreamGrant.until`). The service's event generator stops there (`Service.events`),
  the FastAPI SSE response arms a timer for it, the GraphQL WebSocket closes at it. An SSE feed
  ends with the frame `flashcards.web.SSE_EXPIRED` (`event: expired`, data
  `{"reason":"token_expired"}`), a WebSocket with close code 4401 and reason `token_expired`.
* A browser's `EventSource` cannot send an `Authorization` header: it opens the feed with a
  stream ticket instead (`GET /api/events?ticket=…`). A ticket is a random string handed out by
  `POST /api/events/ticket` to a caller with a valid bearer token; it names that token's user and
  deadline, lives `stream_ticket_ttl_s` (never past the token's own `exp`) and opens ONE stream.
  Only its SHA-256 is stored (the `stream_tickets` table), and redeeming it is one
  `DELETE … RETURNING`, so a ticket is single-use across every worker process (and server)
  that shares the database. The long-lived token itself never goes into a URL.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

TOKEN_EXPIRED = "token_expired"
TICKET_BYTES = 32


@dataclass(frozen=True, slots=True)
class StreamGrant:
    """A stream's user, and the Unix time (the token's `exp`) at which the stream ends."""

    user_id: int
    until: float

    def remaining(self, now: float | None = None) -> float:
        return self.until - (time.time() if now is None else now)


def new_ticket() -> str:
    return secrets.token_urlsafe(TICKET_BYTES)


def ticket_id(ticket: str) -> str:
    """What is stored for a ticket (its SHA-256, hex): a copy of the table opens nothing."""
    return hashlib.sha256(ticket.encode()).hexdigest()


def ticket_expiry(grant: StreamGrant, now: datetime, ttl_s: float) -> datetime:
    """A ticket lives `ttl_s`, but never past the deadline of the token that asked for it."""
    return min(now + timedelta(seconds=ttl_s), datetime.fromtimestamp(grant.until, UTC))
