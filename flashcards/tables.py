"""SQLAlchemy 2 Core tables: the schema, identical on PostgreSQL and SQLite."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    TypeDecorator,
)

metadata = MetaData()

# BIGINT ids on PostgreSQL; SQLite only auto-increments a column declared INTEGER.
Id = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Stored as naive UTC on both backends, returned as aware UTC.

    SQLite has no time zone type; storing naive UTC everywhere keeps values and their ordering
    identical across backends (microsecond precision on both).
    """

    impl = DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use aware UTC")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):  # SQLite through raw SQL
            value = datetime.fromisoformat(value)
        return value.replace(tzinfo=UTC)


users = Table(
    "users",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("username", String(32), nullable=False, unique=True),
    Column("display_name", String(64), nullable=False),
    Column("password_hash", String(256), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    # A token names its user by id: SQLite would hand a deleted user's id (the highest) to the next
    # one registered, and the old token would act as the new user. AUTOINCREMENT never reuses an
    # id (PostgreSQL's identity sequences never do).
    sqlite_autoincrement=True,
)

decks = Table(
    "decks",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("owner_id", Id, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("title", Text, nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_decks_owner_id", "owner_id", "id"),
)

cards = Table(
    "cards",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("deck_id", Id, ForeignKey("decks.id", ondelete="CASCADE"), nullable=False),
    # Denormalised owner: a card read is one indexed lookup that also authorises.
    Column("owner_id", Id, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("front", Text, nullable=False),
    Column("back", Text, nullable=False),
    Column("ef_hundredths", Integer, nullable=False),
    Column("interval_days", Integer, nullable=False),
    Column("repetitions", Integer, nullable=False),
    Column("lapses", Integer, nullable=False),
    Column("due_at", UTCDateTime, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    CheckConstraint("ef_hundredths >= 130", name="ck_cards_ef_floor"),
    Index("ix_cards_deck_due", "deck_id", "due_at", "id"),
)

reviews = Table(
    "reviews",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("card_id", Id, ForeignKey("cards.id", ondelete="CASCADE"), nullable=False),
    Column("user_id", Id, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("grade", SmallInteger, nullable=False),
    Column("reviewed_at", UTCDateTime, nullable=False),
    Column("ef_before", Integer, nullable=False),
    Column("interval_before", Integer, nullable=False),
    Column("repetitions_before", Integer, nullable=False),
    Column("lapses_before", Integer, nullable=False),
    Column("due_before", UTCDateTime, nullable=False),
    Column("ef_after", Integer, nullable=False),
    Column("interval_after", Integer, nullable=False),
    Column("repetitions_after", Integer, nullable=False),
    Column("lapses_after", Integer, nullable=False),
    Column("due_after", UTCDateTime, nullable=False),
    CheckConstraint("grade BETWEEN 0 AND 5", name="ck_reviews_grade"),
    Index("ix_reviews_card", "card_id", "id"),
)

chat_messages = Table(
    "chat_messages",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("user_id", Id, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("role", String(16), nullable=False),
    Column("content", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_chat_messages_user", "user_id", "id"),
)

# The shared event feed (PostgreSQL): one row per event, written in the transaction of the change
# it describes; the global id orders a user's events in commit order (flashcards/_async/feed.py).
# Kept `event_retention_s` (pruned by id range, cheap). Unused on SQLite (one process, the bus).
events = Table(
    "events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("user_id", Id, nullable=False),  # no foreign key: a deleted user's feed just expires
    Column("type", String(32), nullable=False),
    Column("data", JSON, nullable=False),  # JSON, not JSONB: the key order of a resumed event stays
    Column("published_at", UTCDateTime, nullable=False),
    Index("ix_events_user", "user_id", "id"),
)

# Stream tickets (flashcards/streamauth.py): the SHA-256 of a ticket, whose user and stream
# deadline (the `exp` of the token that asked for it) it carries; single-use (redeemed by a
# DELETE … RETURNING), so shared by every worker on the database. Expired rows are pruned when
# tickets are handed out.
stream_tickets = Table(
    "stream_tickets",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("user_id", Id, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("stream_until", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Index("ix_stream_tickets_expires_at", "expires_at"),
)

ALL_TABLES = (users, decks, cards, reviews, chat_messages, events, stream_tickets)
