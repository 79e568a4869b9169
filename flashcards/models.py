"""Typed domain models and every validation rule, in one place.

The pydantic models below are the input and output shapes of the service layer. FastAPI uses
them for its OpenAPI document, the Flask adapter validates with the same models, and the
GraphQL adapter mirrors their field names. Service functions validate through `parse()`, so a
bad value raises `InvalidInput` whichever adapter (or test) called them.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
)
from pydantic_core import PydanticCustomError

from flashcards.errors import InvalidInput

# --- limits (the same in all three implementations) -------------------------------------------
USERNAME_PATTERN = r"^[a-z0-9_]{3,32}$"
DISPLAY_NAME_MAX = 64
PASSWORD_MIN, PASSWORD_MAX = 8, 128
DECK_TITLE_MAX = 200
DECK_DESCRIPTION_MAX = 2000
CARD_SIDE_MAX = 2000
CHAT_MESSAGE_MAX = 4000
PAGE_DEFAULT, PAGE_MAX = 20, 100
CURSOR_MAX = 200
# PostgreSQL text cannot hold NUL; refusing it here keeps both backends identical.
NO_NUL = r"^[^\x00]*$"

# Text people read (issue 19, finding 7: titles made of spaces, zero-width or control characters
# were stored): no control characters (multi-line text may hold tab, CR and LF), and required
# text holds at least one character that is not a space, separator, control, zero-width/format
# character or combining mark. Patterns, not validators, so the published contracts say it too
# (escapes every engine reads alike: pydantic's Rust regex, Python's re, ECMA-262).
_CONTROL = r"\x00-\x1f\x7f-\x9f"
_CONTROL_BUT_LINE_BREAKS = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"
_INVISIBLE = (
    r"\x00-\x20\x7f-\xa0\xad\u0300-\u036f\u061c\u115f\u1160\u1680\u17b4\u17b5\u180b-\u180f"
    r"\u2000-\u200f\u2028-\u202f\u205f-\u206f\u3000\u3164\ufe00-\ufe0f\ufeff\uffa0"
)
LINE_TEXT = rf"^[^{_CONTROL}]*[^{_INVISIBLE}][^{_CONTROL}]*$"
MULTILINE_TEXT = rf"^[^{_CONTROL_BUT_LINE_BREAKS}]*[^{_INVISIBLE}][^{_CONTROL_BUT_LINE_BREAKS}]*$"
MULTILINE_TEXT_OR_EMPTY = rf"^[^{_CONTROL_BUT_LINE_BREAKS}]*$"

Username = Annotated[str, StringConstraints(pattern=USERNAME_PATTERN)]
DisplayName = Annotated[str, StringConstraints(min_length=1, max_length=DISPLAY_NAME_MAX, pattern=LINE_TEXT)]
Password = Annotated[str, StringConstraints(min_length=PASSWORD_MIN, max_length=PASSWORD_MAX)]
DeckTitle = Annotated[str, StringConstraints(min_length=1, max_length=DECK_TITLE_MAX, pattern=LINE_TEXT)]
DeckDescription = Annotated[str, StringConstraints(max_length=DECK_DESCRIPTION_MAX, pattern=MULTILINE_TEXT_OR_EMPTY)]
CardSide = Annotated[str, StringConstraints(min_length=1, max_length=CARD_SIDE_MAX, pattern=MULTILINE_TEXT)]
ChatText = Annotated[str, StringConstraints(min_length=1, max_length=CHAT_MESSAGE_MAX, pattern=MULTILINE_TEXT)]


def _integral_number(value: Any) -> Any:
    """JSON Schema's `integer` admits `5.0`; take it as 5. Booleans and strings stay refused
    (strict mode below), as do fractions."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


Grade = Annotated[
    int, Field(ge=0, le=5, strict=True, description="SM-2 grade 0–5"), BeforeValidator(_integral_number)
]
PageLimit = Annotated[int, Field(ge=1, le=PAGE_MAX)]
ID_MAX = 2**63 - 1  # BIGINT: a larger id could never exist, so it is invalid, not unknown
ResourceId = Annotated[int, Field(ge=1, le=ID_MAX)]
# An id given as text (a path segment, a GraphQL `ID`) in canonical decimal only (issue 19,
# finding 7): `10481.0`, `+10481`, `010481`, `1_0481`, ` 5` or Unicode digits are not 10481.
CANONICAL_INTEGER = re.compile(r"-?(0|[1-9][0-9]*)")


def canonical_integer(value: Any) -> Any:
    if isinstance(value, str) and not CANONICAL_INTEGER.fullmatch(value):
        raise PydanticCustomError("int_parsing", "Input should be a valid integer, unable to parse string as an integer")
    return value


TextId = Annotated[int, BeforeValidator(canonical_integer), Field(ge=1, le=ID_MAX)]
Cursor = Annotated[str, StringConstraints(min_length=1, max_length=CURSOR_MAX, pattern=r"^[A-Za-z0-9_-]+$")]


class Input(BaseModel):
    """Inputs are strict (no `"5"` → 5, no `false` → 0) and refuse unknown fields."""

    model_config = ConfigDict(strict=True, extra="forbid")


class Output(BaseModel):
    model_config = ConfigDict(from_attributes=True)


# --- inputs ------------------------------------------------------------------------------------
class RegisterIn(Input):
    username: Username
    display_name: DisplayName
    password: Password


class LoginIn(Input):
    username: Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=NO_NUL)]
    password: Annotated[str, StringConstraints(min_length=1, max_length=PASSWORD_MAX)]


class DeckIn(Input):
    title: DeckTitle
    description: DeckDescription = ""


class DeckPatch(Input):
    title: DeckTitle | None = None
    description: DeckDescription | None = None


class CardIn(Input):
    front: CardSide
    back: CardSide


class CardPatch(Input):
    front: CardSide | None = None
    back: CardSide | None = None


class ReviewIn(Input):
    grade: Grade


class ChatIn(Input):
    message: ChatText


class PageIn(BaseModel):
    """Query parameters arrive as strings: this one model is lax (`"10"` → 10)."""

    model_config = ConfigDict(extra="forbid")
    limit: PageLimit = PAGE_DEFAULT
    cursor: Cursor | None = None


# --- outputs -----------------------------------------------------------------------------------
class UserOut(Output):
    id: int
    username: str
    display_name: str
    created_at: datetime


class TokenOut(Output):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int


class StreamTicketOut(Output):
    ticket: str = Field(description="Opens ONE `GET /api/events?ticket=…` (for EventSource, which cannot send headers)")
    expires_in: int = Field(description="Seconds within which to use it")


class DeckOut(Output):
    id: int
    title: str
    description: str
    card_count: int
    created_at: datetime
    updated_at: datetime


class ScheduleOut(Output):
    ease: float = Field(description="SM-2 easiness factor (EF), ≥ 1.3; a new card has 2.5")
    interval_days: int
    repetitions: int
    lapses: int
    due_at: datetime


class CardOut(Output):
    id: int
    deck_id: int
    front: str
    back: str
    ease: float
    interval_days: int
    repetitions: int
    lapses: int
    due_at: datetime
    created_at: datetime
    updated_at: datetime


class ReviewOut(Output):
    id: int
    card_id: int
    grade: int
    reviewed_at: datetime
    previous: ScheduleOut
    schedule: ScheduleOut


class ChatMessageOut(Output):
    id: int
    role: Literal["user", "assistant"]
    content: str
    status: Literal["complete", "streaming", "failed"]
    created_at: datetime


class EventOut(Output):
    id: int
    type: str
    data: dict[str, Any]
    published_at: datetime


T = TypeVar("T")


class Page(Output, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


class HealthOut(Output):
    status: Literal["ok", "unavailable"]
    checks: dict[str, str] = {}


M = TypeVar("M", bound=BaseModel)


def parse(model: type[M], data: Any) -> M:
    """Validate `data` (a mapping, or a model instance to re-check) into `model`.

    Raises `InvalidInput` listing every bad field, in the same shape all adapters return.
    """
    if type(data) is model:
        return data  # already validated by an adapter (FastAPI builds it from the same model)
    if isinstance(data, BaseModel):
        data = data.model_dump(exclude_unset=True)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput("The request has invalid fields.", errors=field_errors(exc)) from None


def field_errors(exc: ValidationError) -> list[dict[str, Any]]:
    """pydantic errors → `[{"field": "title", "message": "...", "type": "string_too_long"}]`."""
    out = []
    for err in exc.errors(include_url=False, include_context=False, include_input=False):
        out.append(
            {
                "field": ".".join(str(p) for p in err["loc"]) or "body",
                "message": err["msg"],
                "type": err["type"],
            }
        )
    return out


class ConfigOut(Output):
    """The public configuration document (the "simple JSON" benchmark)."""

    service: str
    api_version: str
    features: dict[str, bool]
    limits: dict[str, int]
    sm2: dict[str, float]


def config_document(settings: Any) -> ConfigOut:
    """Built once at start-up; every implementation serves the same document."""
    return ConfigOut(
        service="stackbench-flashcards",
        api_version="1",
        features={"chat": True, "event_feed": True, "graphql": True},
        limits={
            "deck_title_max": DECK_TITLE_MAX,
            "deck_description_max": DECK_DESCRIPTION_MAX,
            "card_side_max": CARD_SIDE_MAX,
            "chat_message_max": CHAT_MESSAGE_MAX,
            "page_max": PAGE_MAX,
            "max_body_bytes": settings.max_body_bytes,
        },
        sm2={"new_card_ease": 2.5, "min_ease": 1.3, "min_grade": 0, "max_grade": 5, "passing_grade": 3},
    )
