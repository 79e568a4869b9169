"""The Strawberry floor: Strawberry's own ASGI view answering the config scenario's request as
our GraphQL app is set up to answer it, with nothing of ours in between.

Like with like (issue 18): the app's config cell is `POST /graphql` with the `query Config {…}`
document (loadtests/verification.py: `GQL_CONFIG`), anonymous, parsed and validated from
Strawberry's caches after the first request, resolved field by field through graphql-core and
serialized with orjson. So `app` here is:

* the same request: POST `/graphql`, JSON body, the same document, answered with the same
  `{"data": {"config": {…}}}` (the values the app serves by default; a test compares the bodies);
* the same schema extensions, in the same order, as `impl_graphql.schema.extensions_for`:
  `MaxTokensLimiter`, `AddValidationRules` (depth and alias limits, rules built once so the
  validation cache's key is stable), `ParserCache`, `ValidationCache` (256 entries each);
  tests/loadtests/test_strawberry_floor.py fails if the app gains an extension this lacks;
* the same JSON choice: orjson both ways (Strawberry's default is the stdlib `json`);
* `auto_camel_case=False`, as the app.

What the app adds and this lacks is what app ÷ floor measures: its context (service holder,
`check_user`), security headers, the body limit, the response-size limit, its error annotation
(on errors only) and its own `execute` wrapper.

`app_bare` is the plain hello world (no extensions, stdlib JSON, GET `/?query={message}`): the
floor the committed 2026-12-03 run measured (811 req/s against the app's 2,505 on uvicorn).
Without a validation cache graphql-core builds and runs its ~30 validation rules on every
request, ~1 ms on this machine even for `{message}`, so it was no floor for a cached app.
"""

from __future__ import annotations

from typing import Any

import orjson
import strawberry
from starlette.responses import Response
from strawberry.asgi import GraphQL
from strawberry.extensions import (
    AddValidationRules,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    ValidationCache,
)
from strawberry.schema.config import StrawberryConfig

from flashcards.runtime import apply_gc_policy

QUERY_PATH = "/?query=%7Bmessage%7D"  # the readiness probe (GET), answered by both apps
GRAPHQL_PATH = "/graphql"
CACHE_SIZE = 256
MAX_TOKENS = 2000
MAX_DEPTH = 8  # flashcards.settings defaults: graphql_max_depth, graphql_max_aliases
MAX_ALIASES = 30


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


@strawberry.type
class Config:
    service: str
    api_version: str
    features: ConfigFeatures
    limits: ConfigLimits
    sm2: ConfigSm2


# The app's default config document (flashcards.models.ConfigOut under default settings), as
# constants: the floor does no work to find it (the app builds it once per process, too).
CONFIG = Config(
    service="stackbench-flashcards",
    api_version="1",
    features=ConfigFeatures(chat=True, event_feed=True, graphql=True),
    limits=ConfigLimits(deck_title_max=200, deck_description_max=2000, card_side_max=2000,
                        chat_message_max=4000, page_max=100, max_body_bytes=65536),
    sm2=ConfigSm2(new_card_ease=2.5, min_ease=1.3, min_grade=0, max_grade=5, passing_grade=3),
)


@strawberry.type
class Query:
    @strawberry.field
    async def message(self) -> str:
        return "hello"

    @strawberry.field
    async def config(self) -> Config:
        return CONFIG


_RULES = (*QueryDepthLimiter(max_depth=MAX_DEPTH).validation_rules,
          *MaxAliasesLimiter(max_alias_count=MAX_ALIASES).validation_rules)


def extensions() -> list[Any]:
    """The app's extension list, in its order (factories: Strawberry builds them per request)."""
    return [
        lambda: MaxTokensLimiter(max_token_count=MAX_TOKENS),
        lambda: AddValidationRules(list(_RULES)),
        lambda: ParserCache(maxsize=CACHE_SIZE),
        lambda: ValidationCache(maxsize=CACHE_SIZE),
    ]


class OrjsonGraphQL(GraphQL[Any, Any]):
    """Strawberry's ASGI view with orjson both ways (what our app chose)."""

    def decode_json(self, data: str | bytes) -> object:
        return orjson.loads(data)

    def encode_json(self, data: object) -> str:
        return orjson.dumps(data).decode()

    def create_response(self, response_data: Any, sub_response: Response) -> Response:
        response = Response(orjson.dumps(response_data), media_type="application/json")
        if sub_response.status_code:
            response.status_code = sub_response.status_code
        return response


config = StrawberryConfig(auto_camel_case=False)
schema = strawberry.Schema(query=Query, extensions=extensions(), config=config)
app = OrjsonGraphQL(schema, graphql_ide=None)

bare_schema = strawberry.Schema(query=Query, config=config)
app_bare = GraphQL(bare_schema, graphql_ide=None)

apply_gc_policy()  # the same GC policy as the apps (flashcards.runtime)
