"""The spaced-repetition domain, written once.

`flashcards._async` is the source of truth for everything that does I/O; `flashcards._sync` is
generated from it by `tools/unasync.py` (never edit it by hand). Everything else here is pure:
validation rules (`models`), SM-2 (`sm2`), SQL statements (`statements`), tokens and hashes
(`security`), and the event bus core (`events`).
"""

from flashcards.errors import (
    Conflict,
    DomainError,
    Forbidden,
    InvalidInput,
    NotFound,
    RateLimited,
    Unauthenticated,
    Unavailable,
    UpstreamFailed,
)

__all__ = [
    "Conflict",
    "DomainError",
    "Forbidden",
    "InvalidInput",
    "NotFound",
    "RateLimited",
    "Unauthenticated",
    "Unavailable",
    "UpstreamFailed",
]
