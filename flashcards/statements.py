"""Every SQL statement the service layer runs, built in one place (no I/O here).

The async service and its generated sync twin both execute these, so the two can never disagree
about a query. Row → model mapping and pagination cursors live here too.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Delete,
    Insert,
    Select,
    TextClause,
    Update,
    and_,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.engine import Row
from sqlalchemy.sql.dml import ReturningDelete

from flashcards import sm2
from flashcards.errors import InvalidInput
from flashcards.events import Event, make_event
from flashcards.models import CardOut, ChatMessageOut, DeckOut, ReviewOut, ScheduleOut, UserOut
from flashcards.tables import cards, chat_messages, decks, events, reviews, stream_tickets, users

# --- users -------------------------------------------------------------------------------------
USER_COLUMNS = (users.c.id, users.c.username, users.c.display_name, users.c.created_at)


def insert_user(username: str, display_name: str, password_hash: str, now: datetime) -> Insert:
    return (
        insert(users)
        .values(username=username, display_name=display_name, password_hash=password_hash, created_at=now)
        .returning(*USER_COLUMNS)
    )


def select_user(user_id: int) -> Select[Any]:
    return select(*USER_COLUMNS).where(users.c.id == user_id)


def select_credentials(username: str) -> Select[Any]:
    return select(users.c.id, users.c.password_hash).where(users.c.username == username)


def select_username_taken(username: str) -> Select[Any]:
    return select(users.c.id).where(users.c.username == username)


def user_out(row: Row[Any]) -> UserOut:
    return UserOut(id=row.id, username=row.username, display_name=row.display_name, created_at=row.created_at)


# --- decks -------------------------------------------------------------------------------------
_card_count = (
    select(func.count(cards.c.id)).where(cards.c.deck_id == decks.c.id).scalar_subquery().label("card_count")
)
DECK_COLUMNS = (decks.c.id, decks.c.title, decks.c.description, decks.c.created_at, decks.c.updated_at)


def insert_deck(owner_id: int, title: str, description: str, now: datetime) -> Insert:
    return (
        insert(decks)
        .values(owner_id=owner_id, title=title, description=description, created_at=now, updated_at=now)
        .returning(*DECK_COLUMNS)
    )


def select_deck(owner_id: int, deck_id: int) -> Select[Any]:
    return select(*DECK_COLUMNS, _card_count).where(decks.c.id == deck_id, decks.c.owner_id == owner_id)


def select_deck_owned(owner_id: int, deck_id: int, *, for_update: bool = False) -> Select[Any]:
    stmt = select(decks.c.id).where(decks.c.id == deck_id, decks.c.owner_id == owner_id)
    return stmt.with_for_update() if for_update else stmt


def select_decks(owner_id: int, limit: int, after_id: int | None) -> Select[Any]:
    stmt = select(*DECK_COLUMNS, _card_count).where(decks.c.owner_id == owner_id)
    if after_id is not None:
        stmt = stmt.where(decks.c.id > after_id)
    return stmt.order_by(decks.c.id).limit(limit + 1)


def select_decks_by_ids(owner_id: int, deck_ids: Sequence[int]) -> Select[Any]:
    return select(*DECK_COLUMNS, _card_count).where(decks.c.owner_id == owner_id, decks.c.id.in_(deck_ids))


def update_deck(owner_id: int, deck_id: int, values: dict[str, Any], now: datetime) -> Update:
    return (
        update(decks)
        .where(decks.c.id == deck_id, decks.c.owner_id == owner_id)
        .values(**values, updated_at=now)
        .returning(decks.c.id)
    )


# `Delete.returning()` gives a `ReturningDelete`, which SQLAlchemy's typing declares as a
# subclass of `Update` (not `Delete`), hence the precise return type on the two deletes.
def delete_deck(owner_id: int, deck_id: int) -> ReturningDelete[Any]:
    return delete(decks).where(decks.c.id == deck_id, decks.c.owner_id == owner_id).returning(decks.c.id)


def deck_out(row: Row[Any], card_count: int | None = None) -> DeckOut:
    count = card_count if card_count is not None else getattr(row, "card_count", 0)
    return DeckOut(
        id=row.id,
        title=row.title,
        description=row.description,
        card_count=count or 0,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


# --- cards -------------------------------------------------------------------------------------
CARD_COLUMNS = (
    cards.c.id,
    cards.c.deck_id,
    cards.c.front,
    cards.c.back,
    cards.c.ef_hundredths,
    cards.c.interval_days,
    cards.c.repetitions,
    cards.c.lapses,
    cards.c.due_at,
    cards.c.created_at,
    cards.c.updated_at,
)


def insert_card(owner_id: int, deck_id: int, front: str, back: str, now: datetime) -> Insert:
    new = sm2.Schedule()
    return (
        insert(cards)
        .values(
            owner_id=owner_id,
            deck_id=deck_id,
            front=front,
            back=back,
            ef_hundredths=new.ef_hundredths,
            interval_days=new.interval_days,
            repetitions=new.repetitions,
            lapses=new.lapses,
            due_at=now,  # a new card is due at once
            created_at=now,
            updated_at=now,
        )
        .returning(*CARD_COLUMNS)
    )


def select_card(owner_id: int, card_id: int, *, for_update: bool = False) -> Select[Any]:
    stmt = select(*CARD_COLUMNS).where(cards.c.id == card_id, cards.c.owner_id == owner_id)
    return stmt.with_for_update() if for_update else stmt


# The hot read (GET one card), built once: `select_card` builds the statement and its cache key
# on every call (py-spy, rest-uvicorn card: 4.4% and 3.0% of samples); this one's key is
# memoized and only its parameters change. Execute with `card_params`.
SELECT_CARD = select(*CARD_COLUMNS).where(
    cards.c.id == bindparam("card_id"), cards.c.owner_id == bindparam("owner_id")
)


def card_params(owner_id: int, card_id: int) -> dict[str, int]:
    return {"card_id": card_id, "owner_id": owner_id}


def select_cards(owner_id: int, deck_id: int, limit: int, after_id: int | None) -> Select[Any]:
    stmt = select(*CARD_COLUMNS).where(cards.c.deck_id == deck_id, cards.c.owner_id == owner_id)
    if after_id is not None:
        stmt = stmt.where(cards.c.id > after_id)
    return stmt.order_by(cards.c.id).limit(limit + 1)


def select_cards_of_decks(owner_id: int, deck_ids: Sequence[int], limit: int | None = None) -> Select[Any]:
    """Batch load for GraphQL DataLoaders: one statement whatever the number of decks.
    `limit`: at most that many cards per deck, oldest first (a window function)."""
    where = (cards.c.owner_id == owner_id, cards.c.deck_id.in_(deck_ids))
    if limit is not None:
        return _first_per(CARD_COLUMNS, where, cards.c.deck_id, cards.c.id, limit)
    return select(*CARD_COLUMNS).where(*where).order_by(cards.c.deck_id, cards.c.id)


def _first_per(columns: Sequence[Any], where: Sequence[Any], group: Any, order: Any, limit: int) -> Select[Any]:
    """The first `limit` rows of each `group` in `order`: row_number() over a partition."""
    rank = func.row_number().over(partition_by=group, order_by=order).label("rank_in_group")
    inner = select(*columns, rank).where(*where).subquery()
    outer = [inner.c[c.name] for c in columns]
    return select(*outer).where(inner.c.rank_in_group <= limit).order_by(inner.c[group.name], inner.c.rank_in_group)


def select_due(
    owner_id: int, deck_id: int, now: datetime, limit: int, after: tuple[datetime, int] | None
) -> Select[Any]:
    """Cards of a deck due at `now`, by due time then id, keyset-paginated on (due_at, id)."""
    stmt = select(*CARD_COLUMNS).where(
        cards.c.deck_id == deck_id, cards.c.owner_id == owner_id, cards.c.due_at <= now
    )
    if after is not None:
        due_at, card_id = after
        stmt = stmt.where(or_(cards.c.due_at > due_at, and_(cards.c.due_at == due_at, cards.c.id > card_id)))
    return stmt.order_by(cards.c.due_at, cards.c.id).limit(limit + 1)


def update_card_content(owner_id: int, card_id: int, values: dict[str, Any], now: datetime) -> Update:
    return (
        update(cards)
        .where(cards.c.id == card_id, cards.c.owner_id == owner_id)
        .values(**values, updated_at=now)
        .returning(*CARD_COLUMNS)
    )


def update_card_schedule(card_id: int, state: sm2.Schedule, now: datetime) -> Update:
    return (
        update(cards)
        .where(cards.c.id == card_id)
        .values(
            ef_hundredths=state.ef_hundredths,
            interval_days=state.interval_days,
            repetitions=state.repetitions,
            lapses=state.lapses,
            due_at=state.due_at,
            updated_at=now,
        )
    )


def delete_card(owner_id: int, card_id: int) -> ReturningDelete[Any]:
    return delete(cards).where(cards.c.id == card_id, cards.c.owner_id == owner_id).returning(cards.c.id)


def schedule_of(row: Row[Any]) -> sm2.Schedule:
    return sm2.Schedule(
        ef_hundredths=row.ef_hundredths,
        interval_days=row.interval_days,
        repetitions=row.repetitions,
        lapses=row.lapses,
        due_at=row.due_at,
    )


def schedule_out(state: sm2.Schedule) -> ScheduleOut:
    assert state.due_at is not None
    return ScheduleOut(
        ease=state.ease,
        interval_days=state.interval_days,
        repetitions=state.repetitions,
        lapses=state.lapses,
        due_at=state.due_at,
    )


def card_out(row: Row[Any]) -> CardOut:
    return CardOut(
        id=row.id,
        deck_id=row.deck_id,
        front=row.front,
        back=row.back,
        ease=row.ef_hundredths / 100,
        interval_days=row.interval_days,
        repetitions=row.repetitions,
        lapses=row.lapses,
        due_at=row.due_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


# --- reviews -----------------------------------------------------------------------------------
REVIEW_COLUMNS = tuple(reviews.c[name] for name in reviews.c.keys() if name != "user_id")


def insert_review(
    user_id: int, card_id: int, grade: int, before: sm2.Schedule, after: sm2.Schedule, now: datetime
) -> Insert:
    return (
        insert(reviews)
        .values(
            card_id=card_id,
            user_id=user_id,
            grade=grade,
            reviewed_at=now,
            ef_before=before.ef_hundredths,
            interval_before=before.interval_days,
            repetitions_before=before.repetitions,
            lapses_before=before.lapses,
            due_before=before.due_at,
            ef_after=after.ef_hundredths,
            interval_after=after.interval_days,
            repetitions_after=after.repetitions,
            lapses_after=after.lapses,
            due_after=after.due_at,
        )
        .returning(*REVIEW_COLUMNS)
    )


def select_reviews(card_id: int, limit: int, before_id: int | None) -> Select[Any]:
    """A card's reviews, newest first."""
    stmt = select(*REVIEW_COLUMNS).where(reviews.c.card_id == card_id)
    if before_id is not None:
        stmt = stmt.where(reviews.c.id < before_id)
    return stmt.order_by(reviews.c.id.desc()).limit(limit + 1)


def select_reviews_of_cards(user_id: int, card_ids: Sequence[int], limit: int | None = None) -> Select[Any]:
    where = (reviews.c.user_id == user_id, reviews.c.card_id.in_(card_ids))
    if limit is not None:  # at most `limit` per card, newest first
        return _first_per(REVIEW_COLUMNS, where, reviews.c.card_id, reviews.c.id.desc(), limit)
    return select(*REVIEW_COLUMNS).where(*where).order_by(reviews.c.card_id, reviews.c.id.desc())


def count_reviews(card_id: int) -> Select[Any]:
    return select(func.count()).select_from(reviews).where(reviews.c.card_id == card_id)


def review_out(row: Row[Any]) -> ReviewOut:
    def side(suffix: str) -> ScheduleOut:
        return ScheduleOut(
            ease=getattr(row, f"ef_{suffix}") / 100,
            interval_days=getattr(row, f"interval_{suffix}"),
            repetitions=getattr(row, f"repetitions_{suffix}"),
            lapses=getattr(row, f"lapses_{suffix}"),
            due_at=getattr(row, f"due_{suffix}"),
        )

    return ReviewOut(
        id=row.id,
        card_id=row.card_id,
        grade=row.grade,
        reviewed_at=row.reviewed_at,
        previous=side("before"),
        schedule=side("after"),
    )


# --- chat --------------------------------------------------------------------------------------
CHAT_COLUMNS = (
    chat_messages.c.id,
    chat_messages.c.role,
    chat_messages.c.content,
    chat_messages.c.status,
    chat_messages.c.created_at,
)


def insert_chat_message(user_id: int, role: str, content: str, status: str, now: datetime) -> Insert:
    return (
        insert(chat_messages)
        .values(user_id=user_id, role=role, content=content, status=status, created_at=now)
        .returning(*CHAT_COLUMNS)
    )


def finish_chat_message(message_id: int, content: str, status: str) -> Update:
    return (
        update(chat_messages)
        .where(chat_messages.c.id == message_id)
        .values(content=content, status=status)
    )


def fail_stale_chat_messages(started_before: datetime, user_id: int | None = None) -> Update:
    """Answers still `streaming` that began before `started_before`: their worker died mid-answer
    (killed, crashed), so nothing else will ever end them (issue 19, finding 4)."""
    stale = and_(chat_messages.c.status == "streaming", chat_messages.c.created_at < started_before)
    if user_id is not None:
        stale = and_(stale, chat_messages.c.user_id == user_id)
    return update(chat_messages).where(stale).values(status="failed")


def select_chat_history(user_id: int, limit: int, before_id: int | None) -> Select[Any]:
    """Newest first."""
    stmt = select(*CHAT_COLUMNS).where(chat_messages.c.user_id == user_id)
    if before_id is not None:
        stmt = stmt.where(chat_messages.c.id < before_id)
    return stmt.order_by(chat_messages.c.id.desc()).limit(limit + 1)


def chat_message_out(row: Row[Any]) -> ChatMessageOut:
    return ChatMessageOut(
        id=row.id, role=row.role, content=row.content, status=row.status, created_at=row.created_at
    )


# --- pagination cursors --------------------------------------------------------------------------
def encode_cursor(*parts: object) -> str:
    raw = "|".join(p.isoformat() if isinstance(p, datetime) else str(p) for p in parts)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None, kinds: tuple[type, ...]) -> tuple[Any, ...] | None:
    """Decode an opaque cursor into values of `kinds` (int or datetime); bad ones are 422."""
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        parts = raw.split("|")
        if len(parts) != len(kinds):
            raise ValueError(cursor)
        values: list[Any] = []
        for kind, part in zip(kinds, parts, strict=True):
            if kind is datetime:
                value = datetime.fromisoformat(part)
                if value.tzinfo is None:
                    raise ValueError(part)
                values.append(value)
            else:
                number = int(part)
                if not 0 <= number < 2**63:
                    raise ValueError(part)
                values.append(number)
        return tuple(values)
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise InvalidInput(
            "The cursor is not valid.",
            errors=[{"field": "cursor", "message": "not a cursor from this API", "type": "cursor"}],
        ) from None


def paginate(rows: Sequence[Row[Any]], limit: int, key: Any) -> tuple[Sequence[Row[Any]], str | None]:
    """Rows were fetched with limit + 1: the extra row says whether there is a next page."""
    if len(rows) <= limit:
        return rows, None
    page = rows[:limit]
    last = page[-1]
    parts: Iterable[object] = key(last)
    return page, encode_cursor(*parts)


# --- event feed (PostgreSQL; flashcards/_async/feed.py) ----------------------------------------
FEED_CHANNEL = "stackbench_events"
# pg_advisory_xact_lock(namespace, key): one transaction at a time takes a user's next event id,
# and holds it to commit, so a user's ids increase in commit order (the order NOTIFY delivers).
FEED_LOCK_NAMESPACE = 16
EVENT_SEQUENCE = "events_id_seq"  # the BIGSERIAL of events.id
EVENT_COLUMNS = (events.c.id, events.c.user_id, events.c.type, events.c.data, events.c.published_at)


def reserve_event_id(user_id: int) -> TextClause:
    # OFFSET 0 keeps the subquery (the lock) from being flattened: lock first, then nextval.
    return text(
        f"SELECT nextval('{EVENT_SEQUENCE}') AS id "
        "FROM (SELECT pg_advisory_xact_lock(:namespace, :key) OFFSET 0) AS locked"
    ).bindparams(namespace=FEED_LOCK_NAMESPACE, key=user_id % 2**31)


def insert_event(event: Event, payload: str) -> Select[Any]:
    """The row and its NOTIFY in one round trip (NOTIFY is delivered when the transaction commits)."""
    written = (
        insert(events)
        .values(id=event.id, user_id=event.user_id, type=event.type, data=event.data, published_at=event.published_at)
        .cte("written")
    )
    return select(func.pg_notify(FEED_CHANNEL, payload)).add_cte(written)


def select_events_after(user_id: int, after_id: int, limit: int) -> Select[Any]:
    return (
        select(*EVENT_COLUMNS)
        .where(events.c.user_id == user_id, events.c.id > after_id)
        .order_by(events.c.id)
        .limit(limit)
    )


def select_event_bounds() -> TextClause:
    """`horizon`: the oldest id still kept (or the next id when none is); `newest`: the last id
    handed out. A resume before the horizon or after the newest gets a reset."""
    return text(
        "SELECT coalesce((SELECT min(id) FROM events), "
        "CASE WHEN is_called THEN last_value + 1 ELSE last_value END) AS horizon, "
        "CASE WHEN is_called THEN last_value ELSE 0 END AS newest "
        f"FROM {EVENT_SEQUENCE}"
    )


def prune_events(cutoff: datetime) -> Delete:
    """Events published before `cutoff`, deleted by id range: the index walk stops at the first
    kept row, so a prune costs what it deletes."""
    first_kept = (
        select(events.c.id).where(events.c.published_at >= cutoff).order_by(events.c.id).limit(1).scalar_subquery()
    )
    after_newest = select(func.max(events.c.id) + 1).scalar_subquery()
    return delete(events).where(events.c.id < func.coalesce(first_kept, after_newest))


def event_of(row: Row[Any]) -> Event:
    return make_event(row.id, row.user_id, row.type, row.data, row.published_at)


# --- stream tickets (flashcards/streamauth.py) ---------------------------------------------------
def insert_stream_ticket(ticket_id: str, user_id: int, stream_until: datetime, expires_at: datetime) -> Insert:
    return insert(stream_tickets).values(
        id=ticket_id, user_id=user_id, stream_until=stream_until, expires_at=expires_at
    )


def prune_stream_tickets(now: datetime) -> Delete:
    return delete(stream_tickets).where(stream_tickets.c.expires_at <= now)


def redeem_stream_ticket(ticket_id: str, now: datetime) -> ReturningDelete[Any]:
    """Single use: the row is gone once one statement has it (whichever process runs it)."""
    return (
        delete(stream_tickets)
        .where(stream_tickets.c.id == ticket_id, stream_tickets.c.expires_at > now)
        .returning(stream_tickets.c.user_id, stream_tickets.c.stream_until)
    )
