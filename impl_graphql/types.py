"""The GraphQL object and input types: the REST contract's models, field for field.

Names are snake_case (`auto_camel_case=False`), so a GraphQL response field has exactly the name
of the REST JSON field it mirrors (`display_name`, `next_cursor`, `interval_days`, …) and the
parity tests compare them without a name map. Differences with REST, on purpose:

* ids are `ID` (GraphQL serializes them as strings: `"12"` where REST says `12`); schemathesis'
  stateful GraphQL testing links operations through `ID`-typed fields and arguments;
* the `config` document's three maps are typed objects instead of free-form JSON objects;
* an event's `data` is the `JSON` scalar (its keys vary by event type).

Resolvers return the service layer's pydantic models (`DeckOut`, `CardOut`, …) and the event
bus' `Event` objects directly: Strawberry resolves plain fields with `getattr`, so nothing is
copied into these classes on the way out. The classes below describe the schema; the
`graphql_type=` of each resolver says which one a returned model stands for.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry.scalars import JSON

from flashcards.models import (
    PAGE_DEFAULT,
    CardOut,
    ChatMessageOut,
    DeckOut,
    PageIn,
    ReviewOut,
    parse,
)

if TYPE_CHECKING:
    from impl_graphql.context import Context

    Info = strawberry.Info[Context, None]
else:
    Info = strawberry.Info


def nested_limit(limit: int) -> int:
    """A nested list's `limit`: the REST page rule (1..PAGE_MAX), BAD_USER_INPUT otherwise."""
    return parse(PageIn, {"limit": limit}).limit


# --- outputs ----------------------------------------------------------------------------------
@strawberry.type(description="A registered user (REST: UserOut).")
class User:
    id: strawberry.ID
    username: str
    display_name: str
    created_at: datetime


@strawberry.type(description="A bearer token for `Authorization: Bearer …` (REST: TokenOut).")
class Token:
    access_token: str
    token_type: str
    expires_in: int


@strawberry.type(description="A deck of cards owned by the signed-in user (REST: DeckOut).")
class Deck:
    id: strawberry.ID
    title: str
    description: str
    card_count: int
    created_at: datetime
    updated_at: datetime

    @strawberry.field(
        graphql_type=list[Annotated["Card", strawberry.lazy("impl_graphql.types")]],
        description="The deck's first `limit` cards, oldest first (batched: one query for all "
        "decks). Page through the rest with `cards(deck_id, cursor)`.",
    )
    async def cards(self, info: Info, limit: int = PAGE_DEFAULT) -> list[CardOut]:
        return await info.context.loaders.cards_of_deck.load((int(self.id), nested_limit(limit)))


@strawberry.type(description="A card and its SM-2 schedule (REST: CardOut).")
class Card:
    id: strawberry.ID
    deck_id: strawberry.ID
    front: str
    back: str
    ease: float = strawberry.field(
        description="SM-2 easiness factor (EF), ≥ 1.3; a new card has 2.5"
    )
    interval_days: int
    repetitions: int
    lapses: int
    due_at: datetime
    created_at: datetime
    updated_at: datetime

    @strawberry.field(graphql_type=Deck | None, description="The card's deck (batched).")
    async def deck(self, info: Info) -> DeckOut | None:
        return await info.context.loaders.deck.load(int(self.deck_id))

    @strawberry.field(
        graphql_type=list[Annotated["Review", strawberry.lazy("impl_graphql.types")]],
        description="The card's `limit` newest reviews (batched: one query for all cards). "
        "Page through the rest with `reviews(card_id, cursor)`.",
    )
    async def reviews(self, info: Info, limit: int = PAGE_DEFAULT) -> list[ReviewOut]:
        return await info.context.loaders.reviews_of_card.load((int(self.id), nested_limit(limit)))


@strawberry.type(description="A card's SM-2 state before or after a review (REST: ScheduleOut).")
class Schedule:
    ease: float
    interval_days: int
    repetitions: int
    lapses: int
    due_at: datetime


@strawberry.type(
    description="One review: the grade and the schedule before and after (REST: ReviewOut)."
)
class Review:
    id: strawberry.ID
    card_id: strawberry.ID
    grade: int
    reviewed_at: datetime
    previous: Schedule
    schedule: Schedule


@strawberry.type(description="One message of the tutor chat (REST: ChatMessageOut).")
class ChatMessage:
    id: strawberry.ID
    role: str = strawberry.field(description="user | assistant")
    content: str
    status: str = strawberry.field(description="complete | streaming | failed")
    created_at: datetime


@strawberry.type(description="A page of decks, oldest first (REST: Page[DeckOut]).")
class DeckPage:
    items: list[Deck]
    next_cursor: str | None


@strawberry.type(description="A page of cards (REST: Page[CardOut]).")
class CardPage:
    items: list[Card]
    next_cursor: str | None


@strawberry.type(description="A page of reviews, newest first (REST: Page[ReviewOut]).")
class ReviewPage:
    items: list[Review]
    next_cursor: str | None


@strawberry.type(description="A page of chat messages, newest first (REST: Page[ChatMessageOut]).")
class ChatMessagePage:
    items: list[ChatMessage]
    next_cursor: str | None


@strawberry.type(description="One event of the signed-in user's feed (REST: EventOut).")
class Event:
    id: strawberry.ID = strawberry.field(
        description="Pass the last one seen as `last_event_id` to resume."
    )
    type: str = strawberry.field(
        description="deck.created | deck.updated | deck.deleted | card.created | card.updated | "
        "card.deleted | review.created | chat.completed"
    )
    data: JSON
    published_at: datetime


@strawberry.type(
    description="One frame of a tutor chat stream (REST: the SSE events of POST /api/chat). "
    "`type` says which fields are set: message → message, answer_id; token → index, content; "
    "done → message; error → code, detail, message (the partial answer, stored as failed)."
)
class ChatEvent:
    type: str
    message: ChatMessage | None = None
    answer_id: strawberry.ID | None = None
    index: int | None = None
    content: str | None = None
    code: str | None = None
    detail: str | None = None


@strawberry.type
class ConfigFeatures:
    chat: bool
    event_feed: bool
    graphql: bool


@strawberry.type
class ConfigLimits:
    deck_title_max: int
    deck_description_max: int
    card_side_max: int
    chat_message_max: int
    page_max: int
    max_body_bytes: int


@strawberry.type
class ConfigSm2:
    new_card_ease: float
    min_ease: float
    min_grade: float
    max_grade: float
    passing_grade: float


@strawberry.type(description="The public configuration document (REST: ConfigOut).")
class Config:
    service: str
    api_version: str
    features: ConfigFeatures
    limits: ConfigLimits
    sm2: ConfigSm2


# --- inputs (validated by the service layer's pydantic models: same rules, same messages) ------
@strawberry.input(description="REST: RegisterIn")
class RegisterInput:
    username: str
    display_name: str
    password: str


@strawberry.input(description="REST: LoginIn")
class LoginInput:
    username: str
    password: str


@strawberry.input(description="REST: DeckIn")
class DeckInput:
    title: str
    description: str = ""


@strawberry.input(description="REST: DeckPatch (omitted or null fields are left unchanged)")
class DeckPatchInput:
    title: str | None = strawberry.UNSET
    description: str | None = strawberry.UNSET


@strawberry.input(description="REST: CardIn")
class CardInput:
    front: str
    back: str


@strawberry.input(description="REST: CardPatch (omitted or null fields are left unchanged)")
class CardPatchInput:
    front: str | None = strawberry.UNSET
    back: str | None = strawberry.UNSET


@strawberry.input(description="REST: ReviewIn")
class ReviewInput:
    grade: int = strawberry.field(description="SM-2 grade 0–5")


@strawberry.input(description="REST: ChatIn")
class ChatInput:
    message: str


def input_dict(value: object) -> dict[str, object]:
    """An input object as the mapping the service validates (fields left out stay out)."""
    return {k: v for k, v in vars(value).items() if v is not strawberry.UNSET}


def chat_event(type_: str, data: dict[str, object]) -> ChatEvent:
    """A service `ChatEvent` (type + JSON-ready data) as the GraphQL `ChatEvent`."""
    message = data.get("message")
    return ChatEvent(
        type=type_,
        message=ChatMessageOut.model_validate(message) if message is not None else None,  # type: ignore[arg-type]
        answer_id=data.get("answer_id"),  # type: ignore[arg-type]
        index=data.get("index"),  # type: ignore[arg-type]
        content=data.get("content"),  # type: ignore[arg-type]
        code=data.get("code"),  # type: ignore[arg-type]
        detail=data.get("detail"),  # type: ignore[arg-type]
    )
