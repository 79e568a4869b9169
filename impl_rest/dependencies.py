"""`Annotated` dependency aliases used by every route (FastAPI's idiom).

Both dependencies are `async def`: FastAPI runs a plain `def` dependency in the anyio thread
pool (a thread hop per dependency per request), and neither does blocking I/O — the service is
a plain attribute of the app, and the bearer token is checked by its signature alone.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Query, Request
from pydantic import BeforeValidator

from flashcards._async.service import Service
from flashcards.models import ID_MAX, PageIn, canonical_integer


async def get_service(request: Request) -> Service:
    return request.app.state.service  # type: ignore[no-any-return]


ServiceDep = Annotated[Service, Depends(get_service)]


async def current_user(request: Request, service: ServiceDep) -> int:
    """The bearer token's user id, the user still existing (checked now and then: the token is
    signed). 401 otherwise."""
    return await service.authenticate_user(request.headers.get("authorization"))


CurrentUser = Annotated[int, Depends(current_user)]
# canonical decimal only (no `+5`, `05`, `5.0`): flashcards.models.TextId, as Flask and GraphQL
DeckId = Annotated[int, Path(ge=1, le=ID_MAX, description="A deck's id"), BeforeValidator(canonical_integer)]
CardId = Annotated[int, Path(ge=1, le=ID_MAX, description="A card's id"), BeforeValidator(canonical_integer)]
PageQuery = Annotated[PageIn, Query()]
