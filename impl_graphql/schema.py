"""The Strawberry schema: queries, mutations and subscriptions over the async service layer.

Every resolver is `async def` and awaits the async `Service` (Strawberry runs sync resolvers
on the event loop itself, issue #3187). Nested fields (deck → cards → reviews, card → deck)
go through DataLoaders (`impl_graphql.context.Loaders`), one SQL statement per level whatever
the number of items.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Iterable, Iterator
from typing import TYPE_CHECKING, Any

import strawberry
from graphql import GraphQLError, GraphQLSyntaxError
from strawberry.extensions import (
    AddValidationRules,
    DisableIntrospection,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    SchemaExtension,
    ValidationCache,
)
from strawberry.extensions.query_depth_limiter import IgnoreContext
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.schema.schema import DEFAULT_ALLOWED_OPERATION_TYPES
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType
from strawberry.utils.aio import aclosing

from flashcards.errors import DomainError, RateLimited
from flashcards.events import parse_last_event_id
from flashcards.models import (
    CardIn,
    CardOut,
    CardPatch,
    ChatMessageOut,
    DeckOut,
    DeckPatch,
    Page,
    PageIn,
    ReviewIn,
    ReviewOut,
    TokenOut,
    UserOut,
)
from flashcards.settings import Settings
from flashcards.web import database_unavailable
from impl_graphql.context import parse_id
from impl_graphql.cost import cost_limit_rule
from impl_graphql.types import (
    Card,
    CardInput,
    CardPage,
    CardPatchInput,
    ChatEvent,
    ChatInput,
    ChatMessagePage,
    Config,
    Deck,
    DeckInput,
    DeckPage,
    DeckPatchInput,
    Event,
    Info,
    LoginInput,
    RegisterInput,
    Review,
    ReviewInput,
    ReviewPage,
    Token,
    User,
    chat_event,
    input_dict,
)

if TYPE_CHECKING:
    from flashcards.events import Event as BusEvent

logger = logging.getLogger("impl_graphql")

# Parser and validation caches: entries are whole query texts, so 256 covers every operation a
# benchmark or a real client sends while bounding memory against a flood of distinct queries.
CACHE_SIZE = 256
# The lexer stops after this many tokens (GraphiQL's introspection query is ~600).
MAX_TOKENS = 2000


def _page(limit: int, cursor: str | None) -> dict[str, Any]:
    return {"limit": limit, "cursor": cursor}


@strawberry.type
class Query:
    @strawberry.field(graphql_type=User, description="The signed-in user (REST: GET /api/me).")
    async def me(self, info: Info) -> UserOut:
        ctx = info.context
        return await ctx.service.me(ctx.user_id)

    @strawberry.field(description="The public configuration document (REST: GET /api/config).")
    async def config(self, info: Info) -> Config:
        return info.context.config

    @strawberry.field(graphql_type=DeckPage, description="The user's decks (REST: GET /api/decks).")
    async def decks(self, info: Info, limit: int = 20, cursor: str | None = None) -> Page[DeckOut]:
        ctx = info.context
        return await ctx.service.list_decks(ctx.user_id, _page(limit, cursor))

    @strawberry.field(graphql_type=Deck | None, description="REST: GET /api/decks/{deck_id}")
    async def deck(self, info: Info, deck_id: strawberry.ID) -> DeckOut:
        ctx = info.context
        return await ctx.service.get_deck(ctx.user_id, parse_id(deck_id, "deck_id"))

    @strawberry.field(graphql_type=CardPage, description="REST: GET /api/decks/{deck_id}/cards")
    async def cards(
        self, info: Info, deck_id: strawberry.ID, limit: int = 20, cursor: str | None = None
    ) -> Page[CardOut]:
        ctx = info.context
        page = _page(limit, cursor)
        return await ctx.service.list_cards(ctx.user_id, parse_id(deck_id, "deck_id", (PageIn, page)), page)

    @strawberry.field(
        graphql_type=CardPage,
        description="Cards of a deck due now, earliest first (REST: GET /api/decks/{deck_id}/due).",
    )
    async def due_cards(
        self, info: Info, deck_id: strawberry.ID, limit: int = 20, cursor: str | None = None
    ) -> Page[CardOut]:
        ctx = info.context
        page = _page(limit, cursor)
        return await ctx.service.due_cards(ctx.user_id, parse_id(deck_id, "deck_id", (PageIn, page)), page)

    @strawberry.field(graphql_type=Card | None, description="REST: GET /api/cards/{card_id}")
    async def card(self, info: Info, card_id: strawberry.ID) -> CardOut:
        ctx = info.context
        return await ctx.service.get_card(ctx.user_id, parse_id(card_id, "card_id"))

    @strawberry.field(
        graphql_type=ReviewPage,
        description="Newest first (REST: GET /api/cards/{card_id}/reviews).",
    )
    async def reviews(
        self, info: Info, card_id: strawberry.ID, limit: int = 20, cursor: str | None = None
    ) -> Page[ReviewOut]:
        ctx = info.context
        page = _page(limit, cursor)
        return await ctx.service.list_reviews(ctx.user_id, parse_id(card_id, "card_id", (PageIn, page)), page)

    @strawberry.field(
        graphql_type=ChatMessagePage, description="Newest first (REST: GET /api/chat/history)."
    )
    async def chat_history(
        self, info: Info, limit: int = 20, cursor: str | None = None
    ) -> Page[ChatMessageOut]:
        ctx = info.context
        return await ctx.service.chat_history(ctx.user_id, _page(limit, cursor))


@strawberry.type
class Mutation:
    @strawberry.mutation(graphql_type=User, description="REST: POST /api/auth/register")
    async def register(self, info: Info, input: RegisterInput) -> UserOut:
        return await info.context.service.register(input_dict(input))

    @strawberry.mutation(graphql_type=Token, description="REST: POST /api/auth/token")
    async def login(self, info: Info, input: LoginInput) -> TokenOut:
        return await info.context.service.login(input_dict(input), client=info.context.client)

    @strawberry.mutation(graphql_type=Deck, description="REST: POST /api/decks")
    async def create_deck(self, info: Info, input: DeckInput) -> DeckOut:
        ctx = info.context
        return await ctx.service.create_deck(ctx.user_id, input_dict(input))

    @strawberry.mutation(graphql_type=Deck, description="REST: PATCH /api/decks/{deck_id}")
    async def update_deck(
        self, info: Info, deck_id: strawberry.ID, input: DeckPatchInput
    ) -> DeckOut:
        ctx = info.context
        data = input_dict(input)
        return await ctx.service.update_deck(
            ctx.user_id, parse_id(deck_id, "deck_id", (DeckPatch, data)), data
        )

    @strawberry.mutation(
        description="The id of the deleted deck (REST: DELETE /api/decks/{deck_id})."
    )
    async def delete_deck(self, info: Info, deck_id: strawberry.ID) -> strawberry.ID:
        ctx = info.context
        user = ctx.user_id  # authentication first (401 before 422), as in REST
        ident = parse_id(deck_id, "deck_id")
        await ctx.service.delete_deck(user, ident)
        return strawberry.ID(str(ident))

    @strawberry.mutation(graphql_type=Card, description="REST: POST /api/decks/{deck_id}/cards")
    async def create_card(self, info: Info, deck_id: strawberry.ID, input: CardInput) -> CardOut:
        ctx = info.context
        data = input_dict(input)
        return await ctx.service.create_card(
            ctx.user_id, parse_id(deck_id, "deck_id", (CardIn, data)), data
        )

    @strawberry.mutation(graphql_type=Card, description="REST: PATCH /api/cards/{card_id}")
    async def update_card(
        self, info: Info, card_id: strawberry.ID, input: CardPatchInput
    ) -> CardOut:
        ctx = info.context
        data = input_dict(input)
        return await ctx.service.update_card(
            ctx.user_id, parse_id(card_id, "card_id", (CardPatch, data)), data
        )

    @strawberry.mutation(
        description="The id of the deleted card (REST: DELETE /api/cards/{card_id})."
    )
    async def delete_card(self, info: Info, card_id: strawberry.ID) -> strawberry.ID:
        ctx = info.context
        user = ctx.user_id  # authentication first (401 before 422), as in REST
        ident = parse_id(card_id, "card_id")
        await ctx.service.delete_card(user, ident)
        return strawberry.ID(str(ident))

    @strawberry.mutation(
        graphql_type=Review,
        description="Apply SM-2 to the card (REST: POST /api/cards/{card_id}/reviews).",
    )
    async def review_card(
        self, info: Info, card_id: strawberry.ID, input: ReviewInput
    ) -> ReviewOut:
        ctx = info.context
        data = input_dict(input)
        return await ctx.service.review_card(
            ctx.user_id, parse_id(card_id, "card_id", (ReviewIn, data)), data
        )


@strawberry.type
class Subscription:
    @strawberry.subscription(
        graphql_type=Event,
        description="The signed-in user's events (REST: GET /api/events). With `last_event_id`, "
        "events after it still in the server's history come first. The stream completes when "
        "the client falls too far behind or the server shuts down: resubscribe with the last id. "
        "When the connection's token expires the server closes the connection (4401 "
        "`token_expired`): reconnect with a fresh token and the last id.",
    )
    async def events(
        self, info: Info, last_event_id: strawberry.ID | None = None
    ) -> AsyncGenerator[BusEvent, None]:
        ctx = info.context
        service = ctx.service
        sub = service.subscribe(ctx.user_id, parse_last_event_id(last_event_id))
        try:
            async with aclosing(service.events(sub)) as stream:
                async for event in stream:
                    if event is not None:  # None: a keep-alive tick (not used by GraphQL)
                        yield event
        finally:
            service.bus.unsubscribe(sub)  # idempotent; also covers a close before the first step

    @strawberry.subscription(
        description="Ask the tutor; the answer streams token by token (REST: POST /api/chat).",
    )
    async def chat(self, info: Info, input: ChatInput) -> AsyncGenerator[ChatEvent, None]:
        ctx = info.context
        async with aclosing(ctx.service.chat(ctx.user_id, input_dict(input))) as stream:
            async for ev in stream:
                yield chat_event(ev.type, ev.data)


# --- errors -----------------------------------------------------------------------------------
PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
BAD_USER_INPUT = "BAD_USER_INPUT"
BAD_REQUEST = "BAD_REQUEST"
INTERNAL = "INTERNAL_SERVER_ERROR"
UNAVAILABLE = "UNAVAILABLE"


def annotate_error(error: GraphQLError) -> None:
    """Give every error an `extensions.code` (Apollo's names where Apollo has one).

    Domain errors carry their own (`BAD_USER_INPUT` with `errors: [{field, message, type}]`
    as in REST, `UNAUTHENTICATED`, `FORBIDDEN`, `NOT_FOUND`, `CONFLICT`, …); syntax errors and
    the token limit → `GRAPHQL_PARSE_FAILED`; validation, depth and alias limits →
    `GRAPHQL_VALIDATION_FAILED`; bad variable values → `BAD_USER_INPUT`; an operation type the
    transport does not carry → `BAD_REQUEST`; a database that does
    not answer → `UNAVAILABLE`; anything else → `INTERNAL_SERVER_ERROR` with a masked message
    (logged with its traceback).
    """
    extensions = error.extensions
    if extensions and "code" in extensions:
        return  # already annotated (cached validation errors are shared between requests)
    original = error.original_error
    if isinstance(original, DomainError):
        ext: dict[str, Any] = {"code": original.code}
        if original.errors:
            ext["errors"] = original.errors
        if isinstance(original, RateLimited):
            ext["retry_after"] = original.retry_after
        error.extensions = ext
        return
    if original is None or isinstance(original, GraphQLError):
        if isinstance(error, GraphQLSyntaxError):
            code = PARSE_FAILED
        elif error.path is None:
            code = BAD_USER_INPUT if error.message.startswith("Variable '$") else VALIDATION_FAILED
        else:
            code = INTERNAL
        error.extensions = {**(extensions or {}), "code": code}
        return
    if isinstance(original, (InvalidOperationTypeError, CannotGetOperationTypeError)):
        # e.g. a query sent over the legacy graphql-ws protocol (Strawberry runs subscriptions
        # only there): the message already says what is wrong.
        error.extensions = {"code": BAD_REQUEST}
        return
    if database_unavailable(original) is not None:  # the REST apps' rule: same cases, 503 there
        logger.warning("database unavailable: %s", type(original).__name__)
        error.message = "The database is unavailable."
        error.extensions = {"code": UNAVAILABLE}
        return
    logger.error("unexpected error in %s", error.path, exc_info=original)
    error.message = "Internal server error."
    error.extensions = {"code": INTERNAL}


class StackbenchSchema(strawberry.Schema):
    async def execute(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        allowed_operation_types: Iterable[OperationType] | None = None,
        operation_extensions: dict[str, Any] | None = None,
    ) -> ExecutionResult:
        # One result, so never a subscription. Strawberry's HTTP view allows subscriptions on
        # POST and GET (for its multipart transport) and, without that transport, runs one here
        # as a query: "Cannot return null for non-nullable field Subscription.chat", a masked
        # internal error. Without SUBSCRIPTION the view answers 400 ("subscriptions are not
        # allowed when using POST"); subscriptions are served over WebSocket.
        allowed = set(allowed_operation_types or DEFAULT_ALLOWED_OPERATION_TYPES) - {OperationType.SUBSCRIPTION}
        return await super().execute(
            query, variable_values, context_value, root_value, operation_name, allowed, operation_extensions
        )

    def process_errors(self, errors: list[GraphQLError], execution_context: Any = None) -> None:
        # Replaces Strawberry's default, which logs every error with a traceback (a wrong
        # password or a 404 is not a server problem). Strawberry calls this for every result
        # that has errors, before the response is built, subscriptions included.
        for error in errors:
            annotate_error(error)


# --- assembly ---------------------------------------------------------------------------------
def _ignore_introspection(ctx: IgnoreContext) -> bool:
    # GraphiQL's introspection query is ~13 levels deep: count only the data graph.
    return ctx.field_name.startswith("__")


def extensions_for(settings: Settings) -> list[Any]:
    """The extension list, in the order it runs.

    The depth and alias limits are `AddValidationRules` over rule classes built ONCE here.
    `QueryDepthLimiter(...)` and `MaxAliasesLimiter(...)` create a new rule class per instance,
    and Strawberry now builds extensions per request from factories, so passing them as
    `lambda: QueryDepthLimiter(...)` would give `ValidationCache` a new cache key (the rule
    tuple) on every request: it would never hit.
    """
    rules = [
        *QueryDepthLimiter(
            max_depth=settings.graphql_max_depth, should_ignore=_ignore_introspection
        ).validation_rules,
        *MaxAliasesLimiter(max_alias_count=settings.graphql_max_aliases).validation_rules,
        cost_limit_rule(settings.graphql_max_cost),
    ]
    if not settings.graphql_introspection:
        rules.extend(DisableIntrospection().validation_rules)
    stable_rules = tuple(rules)

    def limits() -> SchemaExtension:
        return AddValidationRules(list(stable_rules))

    return [
        lambda: MaxTokensLimiter(max_token_count=MAX_TOKENS),
        limits,
        lambda: ReportingParserCache(maxsize=CACHE_SIZE),
        lambda: ValidationCache(maxsize=CACHE_SIZE),
    ]


class ReportingParserCache(ParserCache):
    """Strawberry's ParserCache parses in its hook, outside the `try` that turns a syntax error
    into an error result: over graphql-transport-ws the error escaped `subscribe` and the client
    got a bare `complete` (issue 19, finding 8). A document that does not parse is left to
    Strawberry's own parse inside that `try`, which reports it (errors are never cached anyway)."""

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        try:
            context.graphql_document = self.cached_parse_document(context.query, **context.parse_options)
        except GraphQLError:
            pass
        yield


def build_schema(settings: Settings | None = None) -> StackbenchSchema:
    settings = settings or Settings()
    return StackbenchSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=extensions_for(settings),
        config=StrawberryConfig(auto_camel_case=False),
    )


def schema_settings(settings: Settings) -> dict[str, Any]:
    """The schema part of what the benchmark report prints."""
    return {
        "auto_camel_case": False,
        "extensions": ["MaxTokensLimiter", "AddValidationRules", "ParserCache", "ValidationCache"],
        "parser_cache_size": CACHE_SIZE,
        "validation_cache_size": CACHE_SIZE,
        "max_tokens": MAX_TOKENS,
        "max_depth": settings.graphql_max_depth,
        "max_aliases": settings.graphql_max_aliases,
        "max_cost": settings.graphql_max_cost,
        "max_response_bytes": settings.graphql_max_response_bytes,
        "introspection": settings.graphql_introspection,
        "resolvers": "async def only (over flashcards._async.Service)",
        "dataloaders": "deck, cards_of_deck, reviews_of_card (per request over HTTP; "
        "batching without cache per WebSocket connection)",
    }
