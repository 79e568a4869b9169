"""The service layer: every operation of the domain, once. (Async source of truth; see tools/unasync.py.)

Adapters (Flask, FastAPI, Strawberry) call these methods and map `DomainError` to their own
error shape. Each method is one short transaction; a method that rejects its input raises before
it writes anything. Time comes in as `now` (defaults to the current UTC time) so tests and seeds
are deterministic.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from time import monotonic
from typing import Any

from sqlalchemy.exc import IntegrityError

from flashcards import security, sm2, streamauth
from flashcards import statements as q
from flashcards._async.compat import (
    aclosing,
    get_until,
    make_queue,
    run_blocking,
    run_to_completion,
    sleep,
)
from flashcards._async.database import Database
from flashcards._async.feed import Feed
from flashcards._async.upstream import UpstreamClient
from flashcards.chat import ChatEvent, upstream_messages
from flashcards.errors import Conflict, NotFound, RateLimited, Unauthenticated, UpstreamFailed
from flashcards.events import CLOSED, EXPIRED, KEEPALIVE, Event, EventBus, Subscriber
from flashcards.knownusers import KnownUsers
from flashcards.models import (
    CardIn,
    CardOut,
    CardPatch,
    ChatIn,
    ChatMessageOut,
    DeckIn,
    DeckOut,
    DeckPatch,
    LoginIn,
    Page,
    PageIn,
    RegisterIn,
    ReviewIn,
    ReviewOut,
    StreamTicketOut,
    TokenOut,
    UserOut,
    config_document,
    parse,
)
from flashcards.ratelimit import LoginLimiter
from flashcards.settings import Settings
from flashcards.streamauth import StreamGrant
from flashcards.streamcap import ChatSlots, check_event_streams

Data = Mapping[str, Any] | Any


logger = logging.getLogger("flashcards")


def utcnow() -> datetime:
    return datetime.now(UTC)


class Service:
    def __init__(
        self,
        settings: Settings,
        *,
        database: Database | None = None,
        upstream: UpstreamClient | None = None,
        bus: EventBus | None = None,
    ) -> None:
        self.settings = settings
        self.db = database or Database(settings)
        self.upstream = upstream or UpstreamClient(settings)
        self.bus = bus or EventBus(
            make_queue, queue_size=settings.event_queue_size, history_size=settings.event_history_size
        )
        self.feed = Feed(settings, self.db, self.bus)
        self.config = config_document(settings)
        self._stale_chats_swept = False  # once per process, at its first chat
        self.chat_slots = ChatSlots(settings.max_chats_per_user)
        self.login_limiter = LoginLimiter(settings.login_rate_per_minute, settings.login_client_rate_per_minute)
        self.known_users = KnownUsers(settings.user_check_ttl_s)

    async def start_feed(self) -> None:
        """In each worker process, before it serves streams (PostgreSQL: its LISTEN connection).
        A database that is down does not stop the server: streams retry when they open."""
        try:
            await self.feed.start()
        except ConnectionError as exc:
            logger.warning("%s; event streams will retry", exc)

    async def close(self) -> None:
        self.bus.close_all()
        await self.feed.close()
        await self.upstream.aclose()
        await self.db.dispose()

    # --- health ---------------------------------------------------------------------------------
    async def ready(self) -> dict[str, str]:
        """Raises when the database does not answer (adapters turn that into 503)."""
        await self.db.ping()
        return {"database": "ok"}

    # --- users ----------------------------------------------------------------------------------
    async def register(self, data: Data, now: datetime | None = None) -> UserOut:
        new = parse(RegisterIn, data)
        now = now or utcnow()
        async with self.db.connect() as conn:
            taken = (await conn.execute(q.select_username_taken(new.username))).first()
        if taken is not None:
            raise _username_taken()
        password_hash = await run_blocking(security.hash_password, self.settings, new.password)
        try:
            async with self.db.begin() as conn:
                row = (
                    await conn.execute(q.insert_user(new.username, new.display_name, password_hash, now))
                ).one()
        except IntegrityError:  # registered concurrently between the check and the insert
            raise _username_taken() from None
        return q.user_out(row)

    async def login(self, data: Data, now: datetime | None = None, client: str | None = None) -> TokenOut:
        """`client` is the caller's address: failed attempts are limited per username and per
        client (429 with Retry-After), checked before any password is verified."""
        creds = parse(LoginIn, data)
        attempt = self.login_limiter.begin(creds.username, client or None, monotonic())
        if isinstance(attempt, int):  # checked and reserved in one step (ratelimit.LoginLimiter)
            raise RateLimited("Too many failed logins; try again later.", retry_after=attempt)
        try:
            async with self.db.connect() as conn:
                row = (await conn.execute(q.select_credentials(creds.username))).first()
            stored = row.password_hash if row is not None else None
            ok = await run_blocking(security.verify_password, self.settings, stored, creds.password)
        except BaseException:
            self.login_limiter.succeeded(attempt)  # no verdict (database down, cancelled): not a guess
            raise
        if not ok or row is None:
            raise Unauthenticated("Invalid username or password.")  # the reservation stays: a failure
        self.login_limiter.succeeded(attempt)
        token = security.issue_token(self.settings, row.id, now)
        return TokenOut(access_token=token, expires_in=self.settings.jwt_ttl_s)

    def authenticate(self, authorization: str | None) -> int:
        """`Authorization` header value → user id (no I/O: the token is signed)."""
        return security.verify_token(self.settings, security.bearer_token(authorization))

    async def authenticate_user(self, authorization: str | None) -> int:
        """`authenticate`, and the token's user still exists (knownusers.py: asked at most once
        per `user_check_ttl_s`); a deleted user's token is a 401 like an invalid one."""
        user_id = self.authenticate(authorization)
        if not self.known_users.fresh(user_id):
            async with self.db.connect() as conn:
                if (await conn.execute(q.select_user(user_id))).first() is None:
                    raise Unauthenticated("The token's user no longer exists.")
            self.known_users.saw(user_id)
        return user_id

    # --- stream auth (flashcards/streamauth.py) --------------------------------------------------
    async def authenticate_stream(self, authorization: str | None) -> StreamGrant:
        """`authenticate_user`, and the deadline of the stream it opens: the token's `exp`."""
        user_id = await self.authenticate_user(authorization)
        return StreamGrant(user_id, security.expires_at(security.bearer_token(authorization)))

    async def stream_grant(self, authorization: str | None, ticket: str | None) -> StreamGrant:
        """Who opens an event stream: a stream ticket when one is given (EventSource), else the
        bearer token."""
        if ticket is not None:
            return await self.redeem_ticket(ticket)
        return await self.authenticate_stream(authorization)

    async def issue_ticket(self, authorization: str | None, now: datetime | None = None) -> StreamTicketOut:
        grant = await self.authenticate_stream(authorization)
        now = now or utcnow()
        ticket = streamauth.new_ticket()
        expires_at = streamauth.ticket_expiry(grant, now, self.settings.stream_ticket_ttl_s)
        until = datetime.fromtimestamp(grant.until, UTC)
        try:
            async with self.db.begin() as conn:
                await conn.execute(q.prune_stream_tickets(now))
                await conn.execute(q.insert_stream_ticket(streamauth.ticket_id(ticket), grant.user_id, until, expires_at))
        except IntegrityError:  # the token's user was deleted meanwhile
            raise _no_such_user() from None
        return StreamTicketOut(ticket=ticket, expires_in=max(1, int((expires_at - now).total_seconds())))

    async def redeem_ticket(self, ticket: str, now: datetime | None = None) -> StreamGrant:
        """The grant of an unused, unexpired ticket, which is spent by this call (401 otherwise)."""
        now = now or utcnow()
        async with self.db.begin() as conn:
            row = (await conn.execute(q.redeem_stream_ticket(streamauth.ticket_id(ticket), now))).first()
        if row is None:
            raise Unauthenticated("The stream ticket is unknown, used already or expired.")
        return StreamGrant(row.user_id, row.stream_until.timestamp())

    async def me(self, user_id: int) -> UserOut:
        async with self.db.connect() as conn:
            row = (await conn.execute(q.select_user(user_id))).first()
        if row is None:
            raise _no_such_user()
        return q.user_out(row)

    # --- decks ----------------------------------------------------------------------------------
    async def create_deck(self, user_id: int, data: Data, now: datetime | None = None) -> DeckOut:
        new = parse(DeckIn, data)
        now = now or utcnow()
        try:
            async with self.db.begin() as conn:
                row = (await conn.execute(q.insert_deck(user_id, new.title, new.description, now))).one()
                event = await self.feed.record(conn, user_id, "deck.created", {"deck_id": row.id, "title": row.title}, now)
        except IntegrityError:  # the only constraint: a signed token whose user does not exist
            raise _no_such_user() from None
        await self.feed.committed(event)
        return q.deck_out(row, card_count=0)

    async def get_deck(self, user_id: int, deck_id: int) -> DeckOut:
        async with self.db.connect() as conn:
            row = (await conn.execute(q.select_deck(user_id, deck_id))).first()
        if row is None:
            raise _not_found("deck", deck_id)
        return q.deck_out(row)

    async def list_decks(self, user_id: int, page: Data = None) -> Page[DeckOut]:
        p = parse(PageIn, page or {})
        after = q.decode_cursor(p.cursor, (int,))
        async with self.db.connect() as conn:
            rows = (await conn.execute(q.select_decks(user_id, p.limit, after[0] if after else None))).all()
        rows, cursor = q.paginate(rows, p.limit, lambda r: (r.id,))
        return Page[DeckOut](items=[q.deck_out(r) for r in rows], next_cursor=cursor)

    async def update_deck(self, user_id: int, deck_id: int, data: Data, now: datetime | None = None) -> DeckOut:
        patch = parse(DeckPatch, data)
        values = patch.model_dump(exclude_unset=True, exclude_none=True)
        now = now or utcnow()
        async with self.db.begin() as conn:
            if values:
                if (await conn.execute(q.update_deck(user_id, deck_id, values, now))).first() is None:
                    raise _not_found("deck", deck_id)
            row = (await conn.execute(q.select_deck(user_id, deck_id))).first()
            if row is None:
                raise _not_found("deck", deck_id)
            if values:
                event = await self.feed.record(conn, user_id, "deck.updated", {"deck_id": deck_id, "fields": sorted(values)}, now)
        if values:
            await self.feed.committed(event)
        return q.deck_out(row)

    async def delete_deck(self, user_id: int, deck_id: int) -> None:
        async with self.db.begin() as conn:
            if (await conn.execute(q.delete_deck(user_id, deck_id))).first() is None:
                raise _not_found("deck", deck_id)
            event = await self.feed.record(conn, user_id, "deck.deleted", {"deck_id": deck_id}, utcnow())
        await self.feed.committed(event)

    # --- cards ----------------------------------------------------------------------------------
    async def create_card(self, user_id: int, deck_id: int, data: Data, now: datetime | None = None) -> CardOut:
        new = parse(CardIn, data)
        now = now or utcnow()
        async with self.db.begin() as conn:
            if (await conn.execute(q.select_deck_owned(user_id, deck_id))).first() is None:
                raise _not_found("deck", deck_id)
            row = (await conn.execute(q.insert_card(user_id, deck_id, new.front, new.back, now))).one()
            event = await self.feed.record(conn, user_id, "card.created", {"deck_id": deck_id, "card_id": row.id}, now)
        await self.feed.committed(event)
        return q.card_out(row)

    async def get_card(self, user_id: int, card_id: int) -> CardOut:
        async with self.db.connect() as conn:
            row = (await conn.execute(q.SELECT_CARD, q.card_params(user_id, card_id))).first()
        if row is None:
            raise _not_found("card", card_id)
        return q.card_out(row)

    async def list_cards(self, user_id: int, deck_id: int, page: Data = None) -> Page[CardOut]:
        p = parse(PageIn, page or {})
        after = q.decode_cursor(p.cursor, (int,))
        async with self.db.connect() as conn:
            if (await conn.execute(q.select_deck_owned(user_id, deck_id))).first() is None:
                raise _not_found("deck", deck_id)
            stmt = q.select_cards(user_id, deck_id, p.limit, after[0] if after else None)
            rows = (await conn.execute(stmt)).all()
        rows, cursor = q.paginate(rows, p.limit, lambda r: (r.id,))
        return Page[CardOut](items=[q.card_out(r) for r in rows], next_cursor=cursor)

    async def update_card(self, user_id: int, card_id: int, data: Data, now: datetime | None = None) -> CardOut:
        patch = parse(CardPatch, data)
        values = patch.model_dump(exclude_unset=True, exclude_none=True)
        now = now or utcnow()
        async with self.db.begin() as conn:
            if values:
                row = (await conn.execute(q.update_card_content(user_id, card_id, values, now))).first()
            else:
                row = (await conn.execute(q.select_card(user_id, card_id))).first()
            if row is None:
                raise _not_found("card", card_id)
            if values:
                event = await self.feed.record(conn, user_id, "card.updated", {"deck_id": row.deck_id, "card_id": card_id}, now)
        if values:
            await self.feed.committed(event)
        return q.card_out(row)

    async def delete_card(self, user_id: int, card_id: int) -> None:
        async with self.db.begin() as conn:
            if (await conn.execute(q.delete_card(user_id, card_id))).first() is None:
                raise _not_found("card", card_id)
            event = await self.feed.record(conn, user_id, "card.deleted", {"card_id": card_id}, utcnow())
        await self.feed.committed(event)

    async def due_cards(
        self, user_id: int, deck_id: int, page: Data = None, now: datetime | None = None
    ) -> Page[CardOut]:
        """Cards of a deck due now, earliest first."""
        p = parse(PageIn, page or {})
        after = q.decode_cursor(p.cursor, (datetime, int))
        now = now or utcnow()
        async with self.db.connect() as conn:
            if (await conn.execute(q.select_deck_owned(user_id, deck_id))).first() is None:
                raise _not_found("deck", deck_id)
            rows = (await conn.execute(q.select_due(user_id, deck_id, now, p.limit, after))).all()  # type: ignore[arg-type]
        rows, cursor = q.paginate(rows, p.limit, lambda r: (r.due_at, r.id))
        return Page[CardOut](items=[q.card_out(r) for r in rows], next_cursor=cursor)

    # --- reviews --------------------------------------------------------------------------------
    async def review_card(self, user_id: int, card_id: int, data: Data, now: datetime | None = None) -> ReviewOut:
        """Apply SM-2. The card row is locked for the transaction (SELECT … FOR UPDATE on
        PostgreSQL, BEGIN IMMEDIATE on SQLite), so concurrent reviews of one card serialize."""
        grade = parse(ReviewIn, data).grade
        now = now or utcnow()
        async with self.db.begin() as conn:
            row = (await conn.execute(q.select_card(user_id, card_id, for_update=True))).first()
            if row is None:
                raise _not_found("card", card_id)
            before = q.schedule_of(row)
            after = sm2.review(before, grade, now)
            await conn.execute(q.update_card_schedule(card_id, after, now))
            saved = (await conn.execute(q.insert_review(user_id, card_id, grade, before, after, now))).one()
            event = await self.feed.record(
                conn,
                user_id,
                "review.created",
                {"card_id": card_id, "deck_id": row.deck_id, "grade": grade, "review_id": saved.id},
                now,
            )
        await self.feed.committed(event)
        return q.review_out(saved)

    async def list_reviews(self, user_id: int, card_id: int, page: Data = None) -> Page[ReviewOut]:
        p = parse(PageIn, page or {})
        before = q.decode_cursor(p.cursor, (int,))
        async with self.db.connect() as conn:
            if (await conn.execute(q.select_card(user_id, card_id))).first() is None:
                raise _not_found("card", card_id)
            rows = (await conn.execute(q.select_reviews(card_id, p.limit, before[0] if before else None))).all()
        rows, cursor = q.paginate(rows, p.limit, lambda r: (r.id,))
        return Page[ReviewOut](items=[q.review_out(r) for r in rows], next_cursor=cursor)

    # --- batch loads (GraphQL DataLoaders: one statement per batch, never one per item) ---------
    async def decks_by_ids(self, user_id: int, deck_ids: Sequence[int]) -> list[DeckOut | None]:
        async with self.db.connect() as conn:
            rows = (await conn.execute(q.select_decks_by_ids(user_id, list(deck_ids)))).all()
        found = {r.id: q.deck_out(r) for r in rows}
        return [found.get(i) for i in deck_ids]

    async def cards_of_decks(
        self, user_id: int, deck_ids: Sequence[int], limit: int | None = None
    ) -> list[list[CardOut]]:
        async with self.db.connect() as conn:
            rows = (await conn.execute(q.select_cards_of_decks(user_id, list(deck_ids), limit))).all()
        grouped: dict[int, list[CardOut]] = {i: [] for i in deck_ids}
        for r in rows:
            grouped[r.deck_id].append(q.card_out(r))
        return [grouped[i] for i in deck_ids]

    async def reviews_of_cards(
        self, user_id: int, card_ids: Sequence[int], limit: int | None = None
    ) -> list[list[ReviewOut]]:
        async with self.db.connect() as conn:
            rows = (await conn.execute(q.select_reviews_of_cards(user_id, list(card_ids), limit))).all()
        grouped: dict[int, list[ReviewOut]] = {i: [] for i in card_ids}
        for r in rows:
            grouped[r.card_id].append(q.review_out(r))
        return [grouped[i] for i in card_ids]

    # --- tutor chat -----------------------------------------------------------------------------
    async def chat(self, user_id: int, data: Data, now: datetime | None = None) -> AsyncGenerator[ChatEvent, None]:
        """`_chat` within the user's cap of concurrent chats (429 TOO_MANY_STREAMS beyond it,
        raised by the first step, before anything is stored: flashcards/streamcap.py)."""
        self.chat_slots.acquire(user_id)
        try:
            if not self._stale_chats_swept:  # answers of a worker that died before this one started
                await self._fail_stale_chats(None)
                self._stale_chats_swept = True
            async with aclosing(self._chat(user_id, data, now)) as events:
                async for event in events:
                    yield event
        finally:
            self.chat_slots.release(user_id)

    async def _chat(self, user_id: int, data: Data, now: datetime | None = None) -> AsyncGenerator[ChatEvent, None]:
        """Store the question, relay the upstream's answer token by token, store the answer.

        No database connection is held while tokens stream (a pool of 10 serves 1,000 streams).
        If the upstream fails, an `error` event carries the reason and the partial answer is
        stored with status `failed`; if the client goes away, the partial answer is stored
        `failed` too (the generator's cleanup runs to completion even when cancelled).
        """
        message = parse(ChatIn, data).message
        now = now or utcnow()
        try:
            async with self.db.begin() as conn:
                question = (await conn.execute(q.insert_chat_message(user_id, "user", message, "complete", now))).one()
                answer = (await conn.execute(q.insert_chat_message(user_id, "assistant", "", "streaming", now))).one()
        except IntegrityError:  # the only constraint: a signed token whose user does not exist
            raise _no_such_user() from None
        yield ChatEvent("message", {"message": q.chat_message_out(question).model_dump(mode="json"), "answer_id": answer.id})
        parts: list[str] = []
        stored: ChatMessageOut | None = None
        try:
            try:
                async for token in self.upstream.stream(upstream_messages(message)):
                    parts.append(token)
                    yield ChatEvent("token", {"index": len(parts) - 1, "content": token})
            except UpstreamFailed as exc:
                stored = await run_to_completion(self._finish_chat, user_id, answer, parts, "failed")
                yield ChatEvent(
                    "error", {"code": exc.code, "detail": exc.detail, "message": stored.model_dump(mode="json")}
                )
                return
            stored = await run_to_completion(self._finish_chat, user_id, answer, parts, "complete")
            yield ChatEvent("done", {"message": stored.model_dump(mode="json")})
        finally:
            if stored is None:  # the client went away mid-stream: keep what was said, as failed
                await run_to_completion(self._finish_chat, user_id, answer, parts, "failed")

    async def _finish_chat(self, user_id: int, answer: Any, parts: list[str], status: str) -> ChatMessageOut:
        content = "".join(parts)
        async with self.db.begin() as conn:
            await conn.execute(q.finish_chat_message(answer.id, content, status))
            event = await self.feed.record(conn, user_id, "chat.completed", {"message_id": answer.id, "status": status}, utcnow())
        await self.feed.committed(event)
        stored = ChatMessageOut(
            id=answer.id, role="assistant", content=content, status=status, created_at=answer.created_at  # type: ignore[arg-type]
        )
        return stored

    async def chat_history(self, user_id: int, page: Data = None) -> Page[ChatMessageOut]:
        p = parse(PageIn, page or {})
        before = q.decode_cursor(p.cursor, (int,))
        async with self.db.connect() as conn:
            rows = (await conn.execute(q.select_chat_history(user_id, p.limit, before[0] if before else None))).all()
        rows, cursor = q.paginate(rows, p.limit, lambda r: (r.id,))
        items = [q.chat_message_out(r) for r in rows]
        cutoff = utcnow() - timedelta(seconds=self.settings.chat_stale_after_s)
        if any(m.status == "streaming" and m.created_at < cutoff for m in items):  # its worker died
            await self._fail_stale_chats(user_id)
            items = [m.model_copy(update={"status": "failed"}) if m.status == "streaming" and m.created_at < cutoff
                     else m for m in items]  # fmt: skip
        return Page[ChatMessageOut](items=items, next_cursor=cursor)

    async def _fail_stale_chats(self, user_id: int | None) -> None:
        cutoff = utcnow() - timedelta(seconds=self.settings.chat_stale_after_s)
        async with self.db.begin() as conn:
            await conn.execute(q.fail_stale_chat_messages(cutoff, user_id))

    # --- event feed -----------------------------------------------------------------------------
    def subscribe(self, user_id: int, last_event_id: int | None = None, until: float | None = None) -> Subscriber:
        """`until`: the Unix time the stream ends at (`StreamGrant.until`, the token's `exp`).

        The user's cap of held streams (429 TOO_MANY_STREAMS beyond it): counted from the bus'
        subscriber table, so any way a stream ends gives its slot back."""
        check_event_streams(len(self.bus._subscribers.get(user_id, ())), self.settings.max_streams_per_user)
        if not self.feed.shared:
            sub = self.bus.subscribe(user_id, last_event_id)
        else:
            sub = self.bus.subscribe(user_id)  # live events queue up from now on
            sub.resume_after = last_event_id  # the backlog is read from the table in `events`
            sub.seen_through = self.feed.written_through(user_id)
        sub.until = until
        return sub

    async def load_backlog(self, sub: Subscriber) -> None:
        """Before a stream sends anything: the resume backlog into `sub.backlog` (read from the
        events table when the feed is shared) and `sub.skip_through`, the id through which live
        events are not to be sent (in the backlog already, or committed before the subscription)."""
        await self.feed.start()  # idempotent; the apps start it before serving
        if sub.resume_after is not None:
            sub.backlog = await self.feed.backlog(sub.user_id, sub.resume_after)
        last = sub.seen_through if sub.resume_after is None else None
        sub.skip_through = sub.backlog[-1].id if sub.backlog else last

    async def events(self, sub: Subscriber) -> AsyncGenerator[Event | None, None]:
        """A subscriber's events, in order, none twice; `None` is a keep-alive tick. Ends at
        `sub.until` (then `sub.expired` is set). Unsubscribes when closed."""
        try:
            await self.load_backlog(sub)
            backlog, sub.backlog, last = sub.backlog, [], sub.skip_through
            for event in backlog:
                yield event
            while True:
                item = await get_until(sub.queue, sub.until, EXPIRED)
                if item is CLOSED:
                    return
                if item is EXPIRED:
                    sub.expired = True  # the token expired: the adapter says so, and the stream ends
                    return
                if item is KEEPALIVE:
                    yield None
                elif last is None or item.id > last:  # queued while the backlog was read: sent already
                    yield item
                if sub.overflowed and sub.queue.empty():
                    return  # too slow: the client reconnects with Last-Event-ID
        finally:
            self.bus.unsubscribe(sub)

    async def keepalive_loop(self) -> None:
        """Tick every subscriber every `sse_keepalive_s` (one timer for all of them)."""
        while True:
            await sleep(self.settings.sse_keepalive_s)
            self.bus.keepalive()


def _not_found(kind: str, ident: int) -> NotFound:
    return NotFound(f"No {kind} with id {ident}.")


def _no_such_user() -> Unauthenticated:
    return Unauthenticated("The token's user does not exist.")


def _username_taken() -> Conflict:
    return Conflict(
        "That username is taken.",
        errors=[{"field": "username", "message": "already registered", "type": "unique"}],
    )
