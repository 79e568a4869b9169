"""Parity of the three apps: one sequence of domain operations, run step by step against the
Flask app (WSGI), the FastAPI app (ASGI) and the GraphQL app (ASGI), each in-process on its own
fresh SQLite database, must give the same observable results.

* Operations (`Op` subclasses) are plain data with a short `repr`, so a shrunk sequence prints
  as something a person can replay by hand. Objects are referred to by ordinal handles:
  `deck#1` is the second deck created successfully in this sequence (by anyone); a handle past
  the ones created is an id that never existed (404); `deck:0` is the invalid id 0 (422).
  (SQLite hands the id of a deleted last row out again; it does so in all three databases, and
  a handle label always names the latest object with that id.)
* Every app answers with an `Outcome`: status (REST: the HTTP status; GraphQL: the status the
  contract gives its `extensions.code`, or the REST success status of the operation), error
  code, detail and field errors, and the body normalised per app: ids become handles (`deck#0`,
  `u1` for users), timestamps become offsets from the test clock (`T+1 day, 0:00:07`), tokens
  become the user they sign in (`<jwt u0>`), cursors `<cursor>`. REST-only details (problem
  `type`/`title`/`instance`, `Location`, `Content-Type`, `WWW-Authenticate`) are compared
  between the two REST apps only.
* Time: the service layer takes `now` but the adapters never pass one, so the test replaces
  `flashcards._async.service.utcnow` and `flashcards._sync.service.utcnow` (the one clock every
  service method falls back to) with `Clock`: it starts at a fixed instant, moves one second per
  step and jumps with `Advance`. All three apps therefore see the same "now" for the same step,
  timestamps compare exactly, and the due queue changes as time passes. JWTs keep real time
  (they are signed by `security.issue_token`, which the adapters call without a clock).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar, Literal

import httpx
import jwt
import pytest
from hypothesis import strategies as st
from pydantic import BaseModel

from flashcards._async.service import Service as AsyncService
from flashcards._sync.service import Service as SyncService
from flashcards.models import CardOut, DeckOut, ReviewOut, TokenOut, UserOut
from flashcards.ratelimit import LoginLimiter
from tests.contract import support
from tests.support import sqlite_dsn

APPS = ("flask", "fastapi", "graphql")
REST_APPS = ("flask", "fastapi")
PASSWORD = "parity-password-1"
UNKNOWN_ID_BASE = 10**9  # `deck#7` when fewer than 8 decks exist: an id no sequence reaches
MAX_PAGES = 6  # a listing follows `next_cursor` this many pages at most
# What the contract maps each GraphQL `extensions.code` to (REST.md, the problem's `code`).
STATUS_OF_CODE = {
    "BAD_REQUEST": 400,
    "BAD_USER_INPUT": 422,
    "UNAUTHENTICATED": 401,
    "FORBIDDEN": 403,
    "NOT_FOUND": 404,
    "CONFLICT": 409,
    "RATE_LIMITED": 429,
    "UNAVAILABLE": 503,
}


# --- the clock -----------------------------------------------------------------------------------
class Clock:
    """The "now" of every service call: a fixed start, +1 s per step, jumps by `Advance`."""

    START = datetime(2030, 1, 1, tzinfo=UTC)

    def __init__(self) -> None:
        self.now = self.START

    def reset(self) -> None:
        self.now = self.START

    def __call__(self) -> datetime:
        return self.now

    def mark(self, value: Any) -> str:
        """A timestamp from a response as its offset from the start: `T+0:00:05`."""
        try:
            moment = datetime.fromisoformat(value) if isinstance(value, str) else value
            return f"T+{moment - self.START}"
        except (TypeError, ValueError):
            return f"<not a timestamp: {value!r}>"


@contextmanager
def clock_installed(clock: Clock) -> Iterator[None]:
    """Both service layers (async for FastAPI/GraphQL, sync for Flask) read `utcnow()` from their
    own module: replace it there for the duration."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("flashcards._async.service.utcnow", clock)
        mp.setattr("flashcards._sync.service.utcnow", clock)
        yield


# --- operations ----------------------------------------------------------------------------------
def _short(value: Any) -> str:
    if isinstance(value, str) and len(value) > 24:
        head = value[:8]
        return f"{head!r}…({len(value)} chars)"
    if isinstance(value, timedelta):
        return str(value)
    return repr(value)


@dataclass(frozen=True)
class Ref:
    """A deck or card by handle (see the module docstring)."""

    kind: Literal["deck", "card"]
    index: int  # -1: the invalid id 0

    def __repr__(self) -> str:
        return f"{self.kind}:0" if self.index < 0 else f"{self.kind}#{self.index}"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))

    def resolve(self, state: AppState) -> str:
        if self.index < 0:
            return "0"
        handles = state.handles[self.kind]
        if self.index < len(handles):
            return str(handles[self.index])
        return str(UNKNOWN_ID_BASE + self.index)


@dataclass(frozen=True)
class Rest:
    method: str
    path: str
    body: Any = None  # None: no body
    params: dict[str, Any] | None = None


@dataclass(frozen=True)
class Gql:
    query: str
    variables: dict[str, Any]


def selection(model: type[BaseModel]) -> str:
    """A GraphQL selection set with exactly the fields of the REST model (nested models too):
    a field added to a model and not to the GraphQL schema shows up as a parity failure."""
    parts = []
    for name, info in model.model_fields.items():
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            parts.append(f"{name} {{ {selection(annotation)} }}")
        else:
            parts.append(name)
    return " ".join(parts)


SELECT = {
    "user": selection(UserOut),
    "token": selection(TokenOut),
    "deck": selection(DeckOut),
    "card": selection(CardOut),
    "review": selection(ReviewOut),
}


def _page_args(limit: int | None) -> tuple[str, str, dict[str, Any]]:
    """(variable declarations, arguments, variables) for `limit`/`cursor` (cursor set later)."""
    decl = ", $after: String"
    args = "cursor: $after"
    values: dict[str, Any] = {}
    if limit is not None:
        decl += ", $l: Int!"
        args += ", limit: $l"
        values["l"] = limit
    return decl, args, values


@dataclass(frozen=True, repr=False)
class Op:
    """One domain operation. `actor`: whose token is sent (`u0`..`u2`: that user's latest
    token, none when it never logged in; `anon`: no header; `forged`: a token that is not one)."""

    gql_field: ClassVar[str]  # the GraphQL root field
    result: ClassVar[str] = "none"  # user | token | deck | card | review | none
    status: ClassVar[int] = 200  # the REST success status
    creates: ClassVar[str | None] = None  # the handle kind a success adds
    paged: ClassVar[bool] = False

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))  # Hypothesis' printer: the short form, not every field

    def __repr__(self) -> str:
        parts = []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in ("actor", "slot") or isinstance(value, Ref):
                parts.append(f"u{value}" if f.name == "slot" else str(value))
            elif value is not None and value != f.default:
                parts.append(f"{f.name}={_short(value)}")
        return f"{type(self).__name__}({', '.join(parts)})"

    @property
    def who(self) -> str | None:
        """The actor, None for the operations that send no token (register, login)."""
        return getattr(self, "actor", None)

    def rest(self, state: AppState) -> Rest:
        raise NotImplementedError

    def graphql(self, state: AppState) -> Gql:
        raise NotImplementedError


def _patch(**values: str | None) -> dict[str, str]:
    return {k: v for k, v in values.items() if v is not None}


@dataclass(frozen=True, repr=False)
class Register(Op):
    slot: int
    variant: Literal["ok", "bad_username", "short_password"] = "ok"
    gql_field = "register"
    result = "user"
    status = 201

    def payload(self) -> dict[str, str]:
        return {
            "username": f"User {self.slot}!" if self.variant == "bad_username" else f"user_{self.slot}",
            "display_name": f"User {self.slot}",
            "password": "short" if self.variant == "short_password" else PASSWORD,
        }

    def rest(self, state: AppState) -> Rest:
        return Rest("POST", "/api/auth/register", self.payload())

    def graphql(self, state: AppState) -> Gql:
        q = f"mutation($i: RegisterInput!) {{ register(input: $i) {{ {SELECT['user']} }} }}"
        return Gql(q, {"i": self.payload()})


@dataclass(frozen=True, repr=False)
class Login(Op):
    slot: int
    good_password: bool = True
    gql_field = "login"
    result = "token"

    def payload(self) -> dict[str, str]:
        password = PASSWORD if self.good_password else "wrong-password"
        return {"username": f"user_{self.slot}", "password": password}

    def rest(self, state: AppState) -> Rest:
        return Rest("POST", "/api/auth/token", self.payload())

    def graphql(self, state: AppState) -> Gql:
        q = f"mutation($i: LoginInput!) {{ login(input: $i) {{ {SELECT['token']} }} }}"
        return Gql(q, {"i": self.payload()})


@dataclass(frozen=True, repr=False)
class Me(Op):
    actor: str
    gql_field = "me"
    result = "user"

    def rest(self, state: AppState) -> Rest:
        return Rest("GET", "/api/me")

    def graphql(self, state: AppState) -> Gql:
        return Gql(f"{{ me {{ {SELECT['user']} }} }}", {})


@dataclass(frozen=True, repr=False)
class CreateDeck(Op):
    actor: str
    title: str
    description: str | None = None
    gql_field = "create_deck"
    result = "deck"
    status = 201
    creates = "deck"

    def rest(self, state: AppState) -> Rest:
        return Rest("POST", "/api/decks", _patch(title=self.title, description=self.description))

    def graphql(self, state: AppState) -> Gql:
        q = f"mutation($i: DeckInput!) {{ create_deck(input: $i) {{ {SELECT['deck']} }} }}"
        return Gql(q, {"i": _patch(title=self.title, description=self.description)})


@dataclass(frozen=True, repr=False)
class ListDecks(Op):
    actor: str
    limit: int | None = None
    gql_field = "decks"
    result = "deck"
    paged = True

    def rest(self, state: AppState) -> Rest:
        return Rest("GET", "/api/decks", params=_patch(limit=None if self.limit is None else str(self.limit)))

    def graphql(self, state: AppState) -> Gql:
        decl, args, values = _page_args(self.limit)
        q = f"query({decl[2:]}) {{ decks({args}) {{ items {{ {SELECT['deck']} }} next_cursor }} }}"
        return Gql(q, values)


@dataclass(frozen=True, repr=False)
class GetDeck(Op):
    actor: str
    deck: Ref
    gql_field = "deck"
    result = "deck"

    def rest(self, state: AppState) -> Rest:
        return Rest("GET", f"/api/decks/{self.deck.resolve(state)}")

    def graphql(self, state: AppState) -> Gql:
        q = f"query($d: ID!) {{ deck(deck_id: $d) {{ {SELECT['deck']} }} }}"
        return Gql(q, {"d": self.deck.resolve(state)})


@dataclass(frozen=True, repr=False)
class UpdateDeck(Op):
    actor: str
    deck: Ref
    title: str | None = None
    description: str | None = None
    gql_field = "update_deck"
    result = "deck"

    def rest(self, state: AppState) -> Rest:
        body = _patch(title=self.title, description=self.description)
        return Rest("PATCH", f"/api/decks/{self.deck.resolve(state)}", body)

    def graphql(self, state: AppState) -> Gql:
        q = (
            "mutation($d: ID!, $i: DeckPatchInput!) "
            f"{{ update_deck(deck_id: $d, input: $i) {{ {SELECT['deck']} }} }}"
        )
        body = _patch(title=self.title, description=self.description)
        return Gql(q, {"d": self.deck.resolve(state), "i": body})


@dataclass(frozen=True, repr=False)
class DeleteDeck(Op):
    actor: str
    deck: Ref
    gql_field = "delete_deck"
    status = 204

    def rest(self, state: AppState) -> Rest:
        return Rest("DELETE", f"/api/decks/{self.deck.resolve(state)}")

    def graphql(self, state: AppState) -> Gql:
        return Gql("mutation($d: ID!) { delete_deck(deck_id: $d) }", {"d": self.deck.resolve(state)})


@dataclass(frozen=True, repr=False)
class CreateCard(Op):
    actor: str
    deck: Ref
    front: str
    back: str = "back"
    gql_field = "create_card"
    result = "card"
    status = 201
    creates = "card"

    def rest(self, state: AppState) -> Rest:
        body = {"front": self.front, "back": self.back}
        return Rest("POST", f"/api/decks/{self.deck.resolve(state)}/cards", body)

    def graphql(self, state: AppState) -> Gql:
        q = (
            "mutation($d: ID!, $i: CardInput!) "
            f"{{ create_card(deck_id: $d, input: $i) {{ {SELECT['card']} }} }}"
        )
        body = {"front": self.front, "back": self.back}
        return Gql(q, {"d": self.deck.resolve(state), "i": body})


@dataclass(frozen=True, repr=False)
class ListCards(Op):
    actor: str
    deck: Ref
    limit: int | None = None
    gql_field = "cards"
    result = "card"
    paged = True
    rest_suffix: ClassVar[str] = "cards"

    def rest(self, state: AppState) -> Rest:
        params = _patch(limit=None if self.limit is None else str(self.limit))
        return Rest("GET", f"/api/decks/{self.deck.resolve(state)}/{self.rest_suffix}", params=params)

    def graphql(self, state: AppState) -> Gql:
        decl, args, values = _page_args(self.limit)
        q = (
            f"query($d: ID!{decl}) {{ {self.gql_field}(deck_id: $d, {args}) "
            f"{{ items {{ {SELECT['card']} }} next_cursor }} }}"
        )
        return Gql(q, {"d": self.deck.resolve(state), **values})


@dataclass(frozen=True, repr=False)
class Due(ListCards):
    """The due queue of a deck (cards due at the test clock's now, earliest first)."""

    gql_field = "due_cards"
    rest_suffix = "due"


@dataclass(frozen=True, repr=False)
class GetCard(Op):
    actor: str
    card: Ref
    gql_field = "card"
    result = "card"

    def rest(self, state: AppState) -> Rest:
        return Rest("GET", f"/api/cards/{self.card.resolve(state)}")

    def graphql(self, state: AppState) -> Gql:
        q = f"query($c: ID!) {{ card(card_id: $c) {{ {SELECT['card']} }} }}"
        return Gql(q, {"c": self.card.resolve(state)})


@dataclass(frozen=True, repr=False)
class UpdateCard(Op):
    actor: str
    card: Ref
    front: str | None = None
    back: str | None = None
    gql_field = "update_card"
    result = "card"

    def rest(self, state: AppState) -> Rest:
        return Rest("PATCH", f"/api/cards/{self.card.resolve(state)}", _patch(front=self.front, back=self.back))

    def graphql(self, state: AppState) -> Gql:
        q = (
            "mutation($c: ID!, $i: CardPatchInput!) "
            f"{{ update_card(card_id: $c, input: $i) {{ {SELECT['card']} }} }}"
        )
        return Gql(q, {"c": self.card.resolve(state), "i": _patch(front=self.front, back=self.back)})


@dataclass(frozen=True, repr=False)
class DeleteCard(Op):
    actor: str
    card: Ref
    gql_field = "delete_card"
    status = 204

    def rest(self, state: AppState) -> Rest:
        return Rest("DELETE", f"/api/cards/{self.card.resolve(state)}")

    def graphql(self, state: AppState) -> Gql:
        return Gql("mutation($c: ID!) { delete_card(card_id: $c) }", {"c": self.card.resolve(state)})


@dataclass(frozen=True, repr=False)
class Review(Op):
    actor: str
    card: Ref
    grade: int
    gql_field = "review_card"
    result = "review"
    status = 201
    creates = "review"

    def rest(self, state: AppState) -> Rest:
        return Rest("POST", f"/api/cards/{self.card.resolve(state)}/reviews", {"grade": self.grade})

    def graphql(self, state: AppState) -> Gql:
        q = (
            "mutation($c: ID!, $i: ReviewInput!) "
            f"{{ review_card(card_id: $c, input: $i) {{ {SELECT['review']} }} }}"
        )
        return Gql(q, {"c": self.card.resolve(state), "i": {"grade": self.grade}})


@dataclass(frozen=True, repr=False)
class ListReviews(Op):
    actor: str
    card: Ref
    limit: int | None = None
    gql_field = "reviews"
    result = "review"
    paged = True

    def rest(self, state: AppState) -> Rest:
        params = _patch(limit=None if self.limit is None else str(self.limit))
        return Rest("GET", f"/api/cards/{self.card.resolve(state)}/reviews", params=params)

    def graphql(self, state: AppState) -> Gql:
        decl, args, values = _page_args(self.limit)
        q = (
            f"query($c: ID!{decl}) {{ reviews(card_id: $c, {args}) "
            f"{{ items {{ {SELECT['review']} }} next_cursor }} }}"
        )
        return Gql(q, {"c": self.card.resolve(state), **values})


@dataclass(frozen=True, repr=False)
class Advance(Op):
    """Move the test clock (no request): cards reviewed earlier come due."""

    by: timedelta
    gql_field = ""


# --- strategies ----------------------------------------------------------------------------------
# Weighted by repetition in `sampled_from`/`one_of`; the first choice is what shrinking goes to.
# `u0` acts most (it owns the prelude's deck and card), so reviews build real SM-2 histories.
actors = st.sampled_from(["u0", "u0", "u0", "u1", "u1", "u2", "anon", "forged"])
titles = st.sampled_from(["Spanish", "漢字 kanji", "t", "", "T" * 201, "nul\x00byte"])
descriptions = st.sampled_from([None, "", "verbs", "D" * 2001])
sides = st.sampled_from(["hola", "hello", "x" * 2000, "", "X" * 2001])
limits = st.sampled_from([None, 1, 2, 0, 101])
grades = st.sampled_from([5, 4, 3, 2, 1, 0, 5, 4, 3, 7, -1])
waits = st.sampled_from([timedelta(days=1), timedelta(hours=12), timedelta(days=6), timedelta(days=30)])
decks = st.builds(Ref, st.just("deck"), st.sampled_from([0, 0, 1, 2, 4, -1]))
cards = st.builds(Ref, st.just("card"), st.sampled_from([0, 0, 0, 1, 1, 2, 3, 7, -1]))
slots = st.integers(0, 2)

operation: st.SearchStrategy[Op] = st.one_of(
    st.builds(Review, actors, cards, grades),
    st.builds(CreateCard, actors, decks, sides, sides),
    st.builds(Review, actors, cards, grades),
    st.builds(CreateDeck, actors, titles, descriptions),
    st.builds(Due, actors, decks, limits),
    st.builds(Advance, waits),
    st.builds(ListDecks, actors, limits),
    st.builds(GetCard, actors, cards),
    st.builds(ListCards, actors, decks, limits),
    st.builds(ListReviews, actors, cards, limits),
    st.builds(UpdateCard, actors, cards, st.one_of(st.none(), sides), st.one_of(st.none(), sides)),
    st.builds(UpdateDeck, actors, decks, st.one_of(st.none(), titles), descriptions),
    st.builds(GetDeck, actors, decks),
    st.builds(DeleteCard, actors, cards),
    st.builds(DeleteDeck, actors, decks),
    st.builds(Me, actors),
    st.builds(Register, slots, st.sampled_from(["ok", "ok", "bad_username", "short_password"])),
    st.builds(Login, slots, st.sampled_from([True, True, False])),
)


def _session(actor: str, card: Ref, steps: list[tuple[int, timedelta | None]]) -> list[Op]:
    ops: list[Op] = []
    for grade, wait in steps:
        ops.append(Review(actor, card, grade))
        if wait is not None:
            ops.append(Advance(wait))
    return ops


# A study session: u0 (mostly) reviews one card 2–6 times, the clock sometimes moving in between.
# Single reviews alone rarely give a card the three passing reviews that reach I × EF.
session: st.SearchStrategy[list[Op]] = st.builds(
    _session,
    st.sampled_from(["u0", "u0", "u0", "u1", "anon"]),
    st.builds(Ref, st.just("card"), st.sampled_from([0, 0, 0, 1, 2, 7, -1])),
    st.lists(
        st.tuples(st.sampled_from([5, 4, 3, 5, 3, 2, 0, 7]), st.one_of(st.none(), st.none(), waits)),
        min_size=2,
        max_size=6,
    ),
)
group: st.SearchStrategy[list[Op]] = st.one_of(operation.map(lambda op: [op]), session)

# Two signed-in users and a deck with one card of u0's before the drawn operations, so most of
# them reach the service (another user's objects, 404s and 401s still come up: `u2` starts
# unregistered, `anon` and `forged` send no or a bad token).
PRELUDE: tuple[Op, ...] = (
    Register(0),
    Login(0),
    Register(1),
    Login(1),
    CreateDeck("u0", "Prelude"),
    CreateCard("u0", Ref("deck", 0), "front", "back"),
)


def sequences(max_steps: int) -> st.SearchStrategy[list[Op]]:
    """PRELUDE + up to `max_steps` drawn operations: single ones and study sessions, flattened.
    The number of groups is drawn first (a plain `st.lists` averages a handful of elements:
    too few to build SM-2 histories); shrinking still reduces it to the steps that matter."""
    return st.integers(1, max(1, max_steps // 2)).flatmap(
        lambda n: st.lists(group, min_size=n, max_size=n).map(
            lambda groups: [*PRELUDE, *[op for g in groups for op in g][:max_steps]]
        )
    )


# --- outcomes ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Outcome:
    status: int
    code: str | None = None
    detail: str | None = None
    errors: Any = None
    body: Any = None
    rest: Any = None  # REST-only details: compared between the two REST apps only

    def common(self) -> dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(self).items() if k != "rest"}

    def brief(self) -> str:
        if self.code is not None:
            errors = ""
            if self.errors:
                errors = " [" + ", ".join(f"{e.get('field')}: {e.get('type')}" for e in self.errors) + "]"
            return f"{self.status} {self.code} {self.detail!r}{errors}"
        return f"{self.status}"


@dataclass
class AppState:
    """One app's side of a sequence: its tokens and the real ids behind the handles."""

    tokens: dict[int, str] = field(default_factory=dict)
    users: dict[int, int] = field(default_factory=dict)  # user id → slot
    handles: dict[str, list[int]] = field(
        default_factory=lambda: {"deck": [], "card": [], "review": []}
    )

    def authorization(self, actor: str | None) -> str | None:
        if actor is None or actor == "anon":
            return None
        if actor == "forged":
            return "Bearer not-a-token"
        token = self.tokens.get(int(actor[1:]))
        return f"Bearer {token}" if token else None

    def label(self, kind: str, raw: Any) -> str:
        try:
            ident = int(raw)
        except (TypeError, ValueError):
            return f"{kind}?{raw!r}"
        if kind == "user":
            slot = self.users.get(ident)
            return f"u{slot}" if slot is not None else f"user?{ident}"
        ids = self.handles[kind]
        for i in range(len(ids) - 1, -1, -1):  # SQLite may hand a deleted row's id out again
            if ids[i] == ident:
                return f"{kind}#{i}"
        if ident >= UNKNOWN_ID_BASE:
            return f"{kind}#{ident - UNKNOWN_ID_BASE}"
        return f"{kind}?{ident}"


_ID_IN_TEXT = re.compile(r"\b(deck|card) with id (\d+)")
_ID_IN_PATH = re.compile(r"/(decks|cards)/(\d+)")


class Normalizer:
    def __init__(self, state: AppState, clock: Clock) -> None:
        self.state = state
        self.clock = clock

    def value(self, value: Any, kind: str) -> Any:
        if isinstance(value, list):
            return [self.value(v, kind) for v in value]
        if not isinstance(value, dict):
            return value
        out: dict[str, Any] = {}
        for key, item in value.items():
            if key == "id":
                out[key] = self.state.label(kind, item)
            elif key in ("deck_id", "card_id"):
                out[key] = self.state.label(key[:-3], item)
            elif key.endswith("_at"):
                out[key] = self.clock.mark(item)
            elif key == "access_token":
                out[key] = self.token(item)
            elif key == "next_cursor":
                out[key] = None if item is None else "<cursor>"
            elif key == "items":
                out[key] = self.value(item, kind)
            elif isinstance(item, dict):
                out[key] = self.value(item, "schedule")
            else:
                out[key] = item
        return dict(sorted(out.items()))

    def token(self, token: Any) -> str:
        try:
            claims = jwt.decode(token, options={"verify_signature": False})
            return f"<jwt {self.state.label('user', claims['sub'])}>"
        except (jwt.InvalidTokenError, KeyError, TypeError):
            return f"<not a token: {token!r}>"

    def text(self, text: Any) -> Any:
        if not isinstance(text, str):
            return text
        text = _ID_IN_TEXT.sub(lambda m: f"{m[1]} with id {self.state.label(m[1], m[2])}", text)
        return _ID_IN_PATH.sub(lambda m: f"/{m[1]}/{self.state.label(m[1][:-1], m[2])}", text)


# --- drivers -------------------------------------------------------------------------------------
Send = Callable[..., httpx.Response]


class Driver:
    name: str

    def __init__(self, send: Send, clock: Clock) -> None:
        self.send = send
        self.clock = clock
        self.state = AppState()
        self.norm = Normalizer(self.state, clock)
        # Tests of the checker itself set this to corrupt one app's answers on purpose.
        self.tamper: Callable[[Op, Outcome], Outcome] | None = None

    def reset(self) -> None:
        self.state = AppState()
        self.norm = Normalizer(self.state, self.clock)

    def run(self, op: Op) -> Outcome:
        outcome = self.perform(op)
        return self.tamper(op, outcome) if self.tamper is not None else outcome

    def perform(self, op: Op) -> Outcome:
        raise NotImplementedError

    def record(self, op: Op, data: Any) -> None:
        """Remember what a successful operation created (before its body is normalised)."""
        if isinstance(op, Register):
            self.state.users[int(data["id"])] = op.slot
        elif isinstance(op, Login):
            self.state.tokens[op.slot] = data["access_token"]
        elif op.creates is not None:
            self.state.handles[op.creates].append(int(data["id"]))

    def headers(self, op: Op) -> dict[str, str]:
        authorization = self.state.authorization(op.who)
        return {"Authorization": authorization} if authorization else {}


class RestDriver(Driver):
    def __init__(self, name: str, send: Send, clock: Clock) -> None:
        super().__init__(send, clock)
        self.name = name

    def perform(self, op: Op) -> Outcome:
        call = op.rest(self.state)
        params = dict(call.params or {})
        pages = []
        for _ in range(MAX_PAGES):
            response = self.send(
                call.method, call.path, json=call.body, params=params, headers=self.headers(op)
            )
            if response.status_code >= 400 or not op.paged:
                break
            page = response.json()
            pages.append(self.norm.value(page, op.result))
            if page.get("next_cursor") is None:
                return Outcome(response.status_code, body=pages)
            params["cursor"] = page["next_cursor"]
        else:
            return Outcome(response.status_code, body=pages)
        return self.single(op, response)

    def single(self, op: Op, response: httpx.Response) -> Outcome:
        status = response.status_code
        content_type = response.headers.get("content-type")
        data = response.json() if response.content else None
        if status >= 400:
            problem = data if isinstance(data, dict) else {}
            return Outcome(
                status,
                code=problem.get("code"),
                detail=self.norm.text(problem.get("detail")),
                errors=problem.get("errors"),
                rest={
                    "content_type": content_type,
                    "type": problem.get("type"),
                    "title": problem.get("title"),
                    "status": problem.get("status"),
                    "instance": self.norm.text(problem.get("instance")),
                    "www_authenticate": response.headers.get("www-authenticate"),
                },
            )
        if data is not None:
            self.record(op, data)
        location = response.headers.get("location")
        return Outcome(
            status,
            body=self.norm.value(data, op.result) if data is not None else None,
            rest={"content_type": content_type, "location": self.norm.text(location)},
        )


class GraphQLDriver(Driver):
    name = "graphql"

    def perform(self, op: Op) -> Outcome:
        call = op.graphql(self.state)
        variables = dict(call.variables)
        pages = []
        for _ in range(MAX_PAGES):
            response = self.send(
                "POST", "/graphql", json={"query": call.query, "variables": variables},
                headers=self.headers(op),
            )
            if response.status_code != 200:  # transport-level refusal: not a domain answer
                return Outcome(response.status_code, code="HTTP", detail=response.text[:200])
            payload = response.json()
            if payload.get("errors"):
                return self.error(payload["errors"])
            data = payload["data"][op.gql_field]
            if not op.paged:
                return self.success(op, data, variables)
            pages.append(self.norm.value(data, op.result))
            if data.get("next_cursor") is None:
                break
            variables["after"] = data["next_cursor"]
        return Outcome(op.status, body=pages)

    def error(self, errors: list[dict[str, Any]]) -> Outcome:
        first = errors[0]
        extensions = first.get("extensions") or {}
        code = extensions.get("code")
        return Outcome(
            # an unmapped (or missing) code is a parity failure, and a bug
            STATUS_OF_CODE.get(code, 500) if isinstance(code, str) else 500,
            code=code,
            detail=self.norm.text(first.get("message")),
            errors=extensions.get("errors"),
            body=None if len(errors) == 1 else {"more_errors": errors[1:]},
        )

    def success(self, op: Op, data: Any, variables: dict[str, Any]) -> Outcome:
        if op.status == 204:
            # REST answers 204 with no body; GraphQL returns the id it deleted: it must be the
            # id asked for.
            asked = variables.get("d", variables.get("c"))
            return Outcome(204, body=None if data == asked else {"deleted": data, "asked": asked})
        if data is not None:
            self.record(op, data)
        return Outcome(op.status, body=self.norm.value(data, op.result))


# --- the three apps ------------------------------------------------------------------------------
class AsgiLifespan:
    """Runs an ASGI app's lifespan on the runner's loop (httpx's ASGITransport sends none)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.to_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.from_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
        self.task = asyncio.create_task(self.app(scope, self.to_app.get, self.from_app.put))
        await self.to_app.put({"type": "lifespan.startup"})
        message = await self.from_app.get()
        assert message["type"] == "lifespan.startup.complete", message

    async def stop(self) -> None:
        await self.to_app.put({"type": "lifespan.shutdown"})
        message = await self.from_app.get()
        assert message["type"] == "lifespan.shutdown.complete", message
        assert self.task is not None
        await self.task


class ParityError(AssertionError):
    pass


class Apps:
    """The three apps, each on its own SQLite file, created once per test; `check()` resets the
    databases (emptied, ids from 1 again) and runs one sequence."""

    def __init__(self, directory: Path) -> None:
        self.clock = Clock()
        self.runner = asyncio.Runner()
        self.settings = {
            name: support.contract_settings(sqlite_dsn(directory, f"parity_{name}.sqlite3"))
            for name in APPS
        }
        for settings in self.settings.values():
            support.fresh_database(settings)
        self.operations = 0
        self._closers: list[Callable[[], None]] = []
        self.drivers: dict[str, Driver] = {}
        try:
            self._start()
        except BaseException:
            self.close()
            raise

    def _start(self) -> None:
        from impl_graphql import create_app as create_graphql
        from impl_rest import create_app as create_fastapi

        create_flask = support.flask_factory()
        run = self.runner.run

        # Flask: WSGI in-process over the sync service layer.
        self.flask_service = SyncService(self.settings["flask"])
        self._closers.append(self.flask_service.close)
        flask_client = httpx.Client(
            transport=httpx.WSGITransport(app=create_flask(self.settings["flask"], self.flask_service)),
            base_url="http://parity.test",
        )
        self._closers.append(flask_client.close)

        async def services() -> tuple[AsyncService, AsyncService]:
            return AsyncService(self.settings["fastapi"]), AsyncService(self.settings["graphql"])

        self.fastapi_service, self.graphql_service = run(services())
        self._closers.append(lambda: run(self.fastapi_service.close()))
        self._closers.append(lambda: run(self.graphql_service.close()))

        fastapi_app = create_fastapi(self.settings["fastapi"], self.fastapi_service)
        lifespan = AsgiLifespan(fastapi_app)
        run(lifespan.start())
        self._closers.append(lambda: run(lifespan.stop()))
        graphql_app = create_graphql(self.settings["graphql"], service=self.graphql_service)

        def asgi_client(app: Any) -> httpx.AsyncClient:
            client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://parity.test")
            self._closers.append(lambda: run(client.aclose()))
            return client

        fastapi_client = asgi_client(fastapi_app)
        graphql_client = asgi_client(graphql_app)

        def send_async(client: httpx.AsyncClient) -> Send:
            def send(*args: Any, **kwargs: Any) -> httpx.Response:
                return run(client.request(*args, **kwargs))

            return send

        self.drivers = {
            "flask": RestDriver("flask", flask_client.request, self.clock),
            "fastapi": RestDriver("fastapi", send_async(fastapi_client), self.clock),
            "graphql": GraphQLDriver(send_async(graphql_client), self.clock),
        }

    def close(self) -> None:
        while self._closers:
            closer = self._closers.pop()
            try:
                closer()
            except Exception:  # keep closing the rest
                pass
        self.runner.close()

    def reset(self) -> None:
        self.clock.reset()
        self.flask_service.db.reset()
        self.runner.run(self.fastapi_service.db.reset())
        self.runner.run(self.graphql_service.db.reset())
        for service in (self.flask_service, self.fastapi_service, self.graphql_service):
            # failed logins are counted per process: start every sequence from none
            service.login_limiter = LoginLimiter(
                service.settings.login_rate_per_minute, service.settings.login_client_rate_per_minute
            )
        for driver in self.drivers.values():
            driver.reset()

    def check(self, ops: list[Op]) -> None:
        """Run `ops` on the three apps, step by step; raise `ParityError` at the first step where
        their outcomes differ, with the whole sequence and the differences."""
        self.reset()
        done: list[tuple[Op, str]] = []
        with clock_installed(self.clock):
            for step, op in enumerate(ops, 1):
                self.clock.now += timedelta(seconds=1)
                if isinstance(op, Advance):
                    self.clock.now += op.by
                    done.append((op, f"now T+{self.clock.now - Clock.START}"))
                    continue
                outcomes = {name: driver.run(op) for name, driver in self.drivers.items()}
                self.operations += 1
                problems = differences(outcomes)
                if problems:
                    raise ParityError(report(ops, done, step, outcomes, problems))
                done.append((op, outcomes["flask"].brief()))


# --- reporting -----------------------------------------------------------------------------------
def differences(outcomes: dict[str, Outcome]) -> list[str]:
    """Every path where an app's outcome differs from Flask's (REST details: FastAPI only)."""
    reference = outcomes["flask"]
    found: list[str] = []
    for name, outcome in outcomes.items():
        if name == "flask":
            continue
        _diff(reference.common(), outcome.common(), name, "", found)
        if name in REST_APPS:
            _diff(reference.rest, outcome.rest, name, "rest", found)
    return found


def _diff(a: Any, b: Any, app: str, path: str, found: list[str]) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b), key=str):
            sub = f"{path}.{key}" if path else str(key)
            if key not in a or key not in b:
                which = "flask" if key not in a else app
                found.append(f"{app:<8} {sub}: missing in {which} (flask={a.get(key)!r}, {app}={b.get(key)!r})")
            else:
                _diff(a[key], b[key], app, sub, found)
        return
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _diff(x, y, app, f"{path}[{i}]", found)
        return
    if a != b or type(a) is not type(b):
        found.append(f"{app:<8} {path or '(outcome)'}: flask={_clip(a)} {app}={_clip(b)}")


def _clip(value: Any, limit: int = 300) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[:limit] + "…"


def report(
    ops: list[Op], done: list[tuple[Op, str]], step: int, outcomes: dict[str, Outcome], problems: list[str]
) -> str:
    lines = [
        f"parity broken at step {step} of {len(ops)}: {ops[step - 1]!r}",
        *(f"  {name:<8} → {outcome.brief()}" for name, outcome in outcomes.items()),
        "differences (against flask):",
        *(f"  {p}" for p in problems[:40]),
    ]
    if len(problems) > 40:
        lines.append(f"  … {len(problems) - 40} more")
    lines.append("the sequence (each app on its own fresh database; the clock starts at T+0, +1 s a step):")
    for i, (op, summary) in enumerate(done, 1):
        lines.append(f"  {i:>3}. {op!r} → {summary}")
    lines.append(f"→ {step:>3}. {ops[step - 1]!r}   <-- the apps disagree")
    lines.append("full outcomes at that step:")
    for name, outcome in outcomes.items():
        lines.append(f"  {name}: {_clip(dataclasses.asdict(outcome), 1500)}")
    return "\n".join(lines)
