"""Per-request (HTTP) or per-connection (WebSocket) context: service, caller, DataLoaders."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel
from strawberry.dataloader import DataLoader

from flashcards import security
from flashcards.errors import InvalidInput, Unauthenticated
from flashcards.models import CardOut, DeckOut, ReviewOut, parse
from flashcards.streamauth import TOKEN_EXPIRED
from flashcards.web import WS_TOKEN_EXPIRED

if TYPE_CHECKING:
    from flashcards._async.service import Service
    from impl_graphql.types import Config

MAX_ID = 2**63 - 1
T = TypeVar("T")


class Loaders:
    """The DataLoaders of one context, created on first use.

    Over HTTP a context lives for one request, so the loaders cache (the usual per-request
    DataLoader). A WebSocket context lives as long as the connection and is shared by every
    operation on it, so there the loaders only batch (`cache=False`): a cache would serve
    rows that a later mutation changed.
    """

    __slots__ = ("_cache", "_cards", "_ctx", "_deck", "_reviews")

    def __init__(self, ctx: Context, *, cache: bool) -> None:
        self._ctx = ctx
        self._cache = cache
        self._deck: DataLoader[int, DeckOut | None] | None = None
        self._cards: DataLoader[tuple[int, int], list[CardOut]] | None = None
        self._reviews: DataLoader[tuple[int, int], list[ReviewOut]] | None = None

    @property
    def deck(self) -> DataLoader[int, DeckOut | None]:
        if self._deck is None:
            ctx = self._ctx

            async def load(ids: list[int]) -> list[DeckOut | None]:
                return await ctx.service.decks_by_ids(ctx.user_id, ids)

            self._deck = DataLoader(load_fn=load, cache=self._cache)
        return self._deck

    @property
    def cards_of_deck(self) -> DataLoader[tuple[int, int], list[CardOut]]:
        """Keys: (deck id, limit); one statement per distinct limit in a batch."""
        if self._cards is None:
            ctx = self._ctx

            async def load(keys: list[tuple[int, int]]) -> list[list[CardOut]]:
                return await _per_limit(keys, lambda ids, n: ctx.service.cards_of_decks(ctx.user_id, ids, n))

            self._cards = DataLoader(load_fn=load, cache=self._cache)
        return self._cards

    @property
    def reviews_of_card(self) -> DataLoader[tuple[int, int], list[ReviewOut]]:
        """Keys: (card id, limit)."""
        if self._reviews is None:
            ctx = self._ctx

            async def load(keys: list[tuple[int, int]]) -> list[list[ReviewOut]]:
                return await _per_limit(keys, lambda ids, n: ctx.service.reviews_of_cards(ctx.user_id, ids, n))

            self._reviews = DataLoader(load_fn=load, cache=self._cache)
        return self._reviews


async def _per_limit(
    keys: list[tuple[int, int]], fetch: Callable[[list[int], int], Awaitable[list[list[T]]]]
) -> list[list[T]]:
    """Group (parent id, limit) keys by limit: usually one group, so one statement."""
    by_limit: dict[int, list[int]] = {}
    for ident, limit in keys:
        by_limit.setdefault(limit, []).append(ident)
    found: dict[tuple[int, int], list[T]] = {}
    for limit, ids in by_limit.items():
        for ident, rows in zip(ids, await fetch(ids, limit), strict=True):
            found[(ident, limit)] = rows
    return [found[k] for k in keys]


class Context:
    """What every resolver gets as `info.context`.

    The caller is authenticated lazily: `config` never verifies a token, every other field
    reads `user_id`, which verifies the bearer token once per context (or raises
    `Unauthenticated`, which becomes `extensions.code = UNAUTHENTICATED`).
    """

    # Strawberry's WebSocket handlers set `connection_params` (the connection_init payload)
    # on a context object that has the attribute.
    connection_params: Mapping[str, Any] | None = None
    # Where the context of a WebSocket connection is kept in its ASGI scope (`ViewHooks.run`
    # stops the expiry timer there when the connection ends).
    SCOPE_KEY = "stackbench.graphql_context"

    def __init__(
        self,
        service: Service,
        config: Config,
        authorization: str | None,
        *,
        long_lived: bool = False,
        client: str | None = None,
    ) -> None:
        self.client = client  # the caller's address (failed logins are limited per client)
        self.service = service
        self.config = config
        self.authorization = authorization
        self.long_lived = long_lived
        self._user_id: int | None = None
        self._auth_error: Exception | None = None
        self._expires_at: float | None = None  # a WebSocket's token: operations after it are refused
        self._loaders: Loaders | None = None
        # A WebSocket connection: its socket (Starlette's), closed with 4401 when the token
        # expires (`close_at_expiry`).
        self.websocket: Any = None
        self._expiry: asyncio.Task[None] | None = None

    @property
    def user_id(self) -> int:
        if self._auth_error is not None:
            raise self._auth_error
        if self._expires_at is not None and time.time() >= self._expires_at:
            # a connection outlives its token: every operation after `exp` is refused, as over HTTP
            raise Unauthenticated("The token has expired.")
        uid = self._user_id
        if uid is None:
            uid = self._user_id = self.service.authenticate(self.authorization)
        return uid

    async def check_user(self) -> None:
        """With a token: verify it and that its user exists (I/O, so before the resolvers run);
        a failure (401, or the database down: 503) is kept and raised by `user_id`, inside a
        resolver, where errors become GraphQL errors; `config` still answers."""
        if self.authorization is None:
            return
        try:
            self._user_id = await self.service.authenticate_user(self.authorization)
            if self.long_lived:
                self._expires_at = security.expires_at(security.bearer_token(self.authorization))
        except Exception as exc:  # re-raised by user_id, in a resolver
            self._auth_error = exc

    async def sign_in(self, authorization: str | None) -> None:
        """WebSocket `connection_init`: verify the token and its user now (raises `Unauthenticated`)."""
        self.authorization = authorization
        self._user_id, self._auth_error, self._expires_at = None, None, None
        self._user_id = await self.service.authenticate_user(authorization)
        self._expires_at = security.expires_at(security.bearer_token(authorization))

    def close_at_expiry(self) -> None:
        """After `connection_init`: the connection is closed (4401 `token_expired`) when its
        token expires (flashcards/streamauth.py); operations sent after that are refused
        (`user_id`) should one still arrive."""
        self.stop_expiry()
        if self._expires_at is None or self.websocket is None:
            return
        self._expiry = asyncio.get_running_loop().create_task(self._close_at(self._expires_at))

    async def _close_at(self, deadline: float) -> None:
        await asyncio.sleep(max(0.0, deadline - time.time()))
        with contextlib.suppress(Exception):  # the connection may be closing already
            await self.websocket.close(WS_TOKEN_EXPIRED, TOKEN_EXPIRED)

    def stop_expiry(self) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None

    @property
    def loaders(self) -> Loaders:
        if self._loaders is None:
            self._loaders = Loaders(self, cache=not self.long_lived)
        return self._loaders


def authorization_from_params(params: Mapping[str, Any] | None) -> str | None:
    """The bearer token of a `connection_init` payload.

    Accepted: `{"Authorization": "Bearer …"}` (any case, as Apollo and urql examples send it),
    `{"headers": {"Authorization": …}}` and `{"token": "…"}`.
    """
    if not params:
        return None
    for key, value in params.items():
        if isinstance(key, str) and key.lower() == "authorization" and isinstance(value, str):
            return value
    headers = params.get("headers")
    if isinstance(headers, Mapping):
        found = authorization_from_params({k: v for k, v in headers.items() if k != "headers"})
        if found is not None:
            return found
    token = params.get("token")
    if isinstance(token, str):
        return f"Bearer {token}"
    return None


def parse_id(value: object, field: str, along: tuple[type[BaseModel], object] | None = None) -> int:
    """An `ID` argument as a database id: an integer 1..2^63-1, else BAD_USER_INPUT.

    Same rule and words as the REST path parameters (pydantic's messages). `along`: the other
    arguments of the field as (service model, data), e.g. `(ReviewIn, {"grade": 7})`: with a bad
    id their bad fields are reported in the same error, as REST reports path, query and body
    fields together (the service validates them itself when the id is good).
    """
    if isinstance(value, str) and value.isascii() and value.isdigit() and value[0] != "0" and len(value) <= 19:
        number = int(value)
        if 1 <= number <= MAX_ID:
            return number
    return _reject_id(value, field, along)


def _reject_id(value: object, field: str, along: tuple[type[BaseModel], object] | None) -> int:
    from pydantic import TypeAdapter, ValidationError

    from flashcards.models import TextId, field_errors

    adapter: TypeAdapter[int] = TypeAdapter(TextId)  # the REST path ids' rule and words
    try:
        adapter.validate_python(value)
    except ValidationError as exc:
        errors = field_errors(exc)
        for err in errors:
            err["field"] = field
    else:
        # pydantic accepted something the fast path did not (e.g. "+5", " 7"): refuse it anyway,
        # ids are canonical decimal strings.
        errors = [{"field": field, "message": "Input should be a valid integer", "type": "int_type"}]
    if along is not None:
        model, data = along
        try:
            parse(model, data)
        except InvalidInput as exc:
            errors.extend(exc.errors)
    raise InvalidInput("The request has invalid fields.", errors=errors)
