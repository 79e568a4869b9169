"""Settings for every implementation, in one place (environment prefix `STACKBENCH_`)."""

from __future__ import annotations

import math
from collections import Counter
from functools import lru_cache
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SECRET = "stackbench-insecure-development-secret-change-me"
# Production secrets: at least 32 bytes that look random (an HS256 key should carry >= 128 bits).
MIN_SECRET_BYTES = 32
MIN_SECRET_BITS_PER_CHAR = 3.5  # token_urlsafe/token_hex give 4-6; "aaaa…", "secretsecret…" give < 2.6


def weak_secret(secret: str) -> str | None:
    """Why ``secret`` is too weak to sign production tokens, or None when it will do."""
    if secret == DEFAULT_SECRET:
        return "is the public development default"
    size = len(secret.encode())
    if size < MIN_SECRET_BYTES:
        return f"is {size} bytes long"
    counts = Counter(secret)
    bits = -sum(n / len(secret) * math.log2(n / len(secret)) for n in counts.values())
    if bits < MIN_SECRET_BITS_PER_CHAR:
        return f"is not random enough ({bits:.1f} bits per character)"
    return None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="STACKBENCH_", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    # Database: any SQLAlchemy URL without a driver (postgresql://…, sqlite:///path); the async
    # and sync drivers are chosen per service layer (asyncpg / psycopg, aiosqlite / sqlite3).
    dsn: str = "sqlite:///.stackbench/stackbench.sqlite3"
    # Per worker process: the harness prints these beside every result. The budget is held, not
    # overflowed: SQLAlchemy's QueuePool closes an overflow connection as soon as it is returned
    # to a full pool, so under more concurrent requests than `pool_size` (every closed loop of the
    # bench) each request paid a connect or a close (issue 18: 20 + 0 served 1.2-1.4x the card
    # reads of 10 + 10 on rest-uvicorn at c100, one window). asyncpg's and psycopg's own pools
    # keep what they open, so 20 + 0 is also what the database floors hold.
    pool_size: int = Field(default=20, ge=1, le=1000)
    pool_max_overflow: int = Field(default=0, ge=0, le=1000)
    pool_timeout_s: float = Field(default=10.0, gt=0)
    # A round trip on every pool checkout: without it, the first request after a database restart
    # fails in each process (its pooled connections are dead). Same for every app; the bench
    # records it (settings.app.pool_pre_ping).
    pool_pre_ping: bool = True
    # ...except on a connection checked in less than this long ago: it was alive then, so only a
    # restart in that window can have killed it (HikariCP's `aliveBypassWindowMs`, 500 ms by
    # default, is the same rule). A busy pool then pings nothing; a pool idle through a restart
    # pings every connection, as before. 0: ping on every checkout.
    pool_ping_bypass_s: float = Field(default=0.5, ge=0, le=60)
    # How long a process trusts that a token's user exists before asking the database again
    # (flashcards/knownusers.py): a deleted user's tokens stop working within this. 0: every request.
    user_check_ttl_s: float = Field(default=5.0, ge=0, le=3600)
    db_statement_timeout_ms: int = Field(default=10_000, ge=100)

    jwt_secret: str = DEFAULT_SECRET
    jwt_algorithm: Literal["HS256"] = "HS256"
    jwt_ttl_s: int = Field(default=3600, ge=1)
    # argon2id cost; tests lower it, production keeps the library's recommended defaults.
    password_time_cost: int = Field(default=3, ge=1)
    password_memory_kib: int = Field(default=65536, ge=8)
    password_parallelism: int = Field(default=4, ge=1)

    upstream_url: str = "http://127.0.0.1:8099/v1"
    upstream_model: str = "tutor-sim"
    upstream_connect_timeout_s: float = 5.0
    upstream_first_token_timeout_s: float = 15.0
    upstream_read_timeout_s: float = 15.0
    upstream_max_connections: int = 2000
    # The whole answer of one tutor chat (then an `error` event, the partial answer stored
    # `failed`): with the read timeout as the idle limit between tokens, no upstream holds a
    # worker longer than chat_deadline_s + upstream_read_timeout_s (flashcards/_async/upstream.py).
    chat_deadline_s: float = Field(default=120.0, gt=0)

    event_queue_size: int = Field(default=256, ge=1)
    event_history_size: int = Field(default=1024, ge=1)
    # The PostgreSQL event feed keeps events this long (Last-Event-ID resumes within it; older
    # resumes get a `feed.reset` event); each worker prunes about every event_prune_interval_s.
    event_retention_s: float = Field(default=24 * 3600, gt=0)
    event_prune_interval_s: float = Field(default=60.0, gt=0)
    sse_keepalive_s: float = Field(default=15.0, gt=0)
    # Streams one user may hold at once per worker process (then 429 TOO_MANY_STREAMS): on the
    # thread-per-stream servers each holds a thread (loadtests/servers.py sizes the thread pools
    # above max_streams_per_user + max_chats_per_user).
    max_streams_per_user: int = Field(default=4, ge=1)
    max_chats_per_user: int = Field(default=2, ge=1)

    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    # Failed logins allowed per minute, per username and per client address (then 429).
    # Per (address, username) and per address; per username over all addresses only against
    # addresses that have failed there (the owner is not locked out): flashcards/ratelimit.py.
    # X-Forwarded-For: NOT trusted. The client address is the TCP peer the server reports;
    # loadtests/servers.py runs uvicorn with --no-proxy-headers and gunicorn with
    # --forwarded-allow-ips "" (uvicorn's default trusts 127.0.0.1, so on loopback any client
    # could pick its address). Behind a real reverse proxy, list only that proxy there.
    login_rate_per_minute: int = Field(default=10, ge=1)
    login_client_rate_per_minute: int = Field(default=60, ge=1)
    # CORS (STACKBENCH_CORS_ORIGINS, a JSON list, e.g. '["https://app.example"]' or '["*"]'):
    # the origins whose browser pages may call the API, REST, Flask and GraphQL alike; preflight
    # (OPTIONS) is answered for them. Empty (the default): no CORS headers at all, so only
    # same-origin pages can read responses.
    cors_origins: list[str] = []
    # A stream ticket (`POST /api/events/ticket`, for EventSource, which cannot send headers)
    # opens one `GET /api/events?ticket=…` within this many seconds (flashcards/streamauth.py).
    stream_ticket_ttl_s: float = Field(default=30.0, gt=0, le=600)
    graphql_max_depth: int = 8
    graphql_max_aliases: int = 30
    # The most list items a GraphQL operation may return, estimated before execution from page
    # sizes × nesting (impl_graphql.cost); and the largest response body (JSON bytes).
    graphql_max_cost: int = Field(default=5000, ge=1)
    graphql_max_response_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    graphql_introspection: bool = True
    graphql_max_subscriptions_per_connection: int = 32

    @model_validator(mode="after")
    def _refuse_weak_secret_in_production(self) -> Settings:
        why = weak_secret(self.jwt_secret) if self.environment == "production" else None
        if why:
            raise ValueError(
                f"STACKBENCH_JWT_SECRET {why}: production needs {MIN_SECRET_BYTES} random bytes or more, e.g. "
                "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )
        return self

    @property
    def chat_stale_after_s(self) -> float:
        """An answer still `streaming` this long after it began has no live worker: longer than
        any chat may run (connect + deadline + one idle timeout), with a minute to spare."""
        return self.upstream_connect_timeout_s + self.chat_deadline_s + self.upstream_read_timeout_s + 60

    @property
    def backend(self) -> Literal["postgresql", "sqlite"]:
        return "sqlite" if self.dsn.startswith("sqlite") else "postgresql"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
