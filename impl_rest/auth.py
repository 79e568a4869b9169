"""Registration, token login and the signed-in user."""

from __future__ import annotations

from fastapi import APIRouter, Request

from flashcards.models import LoginIn, RegisterIn, TokenOut, UserOut
from impl_rest.dependencies import CurrentUser, ServiceDep
from impl_rest.responses import AUTHED, problems

router = APIRouter(tags=["users"])


@router.post("/auth/register", status_code=201, responses=problems(409))
async def register(body: RegisterIn, service: ServiceDep) -> UserOut:
    return await service.register(body)


@router.post("/auth/token", responses=problems(401, 429))
async def token(body: LoginIn, request: Request, service: ServiceDep) -> TokenOut:
    """Failed attempts are limited per username and per client address (429 + Retry-After)."""
    return await service.login(body, client=request.client.host if request.client else None)


@router.get("/me", responses=AUTHED)
async def me(user: CurrentUser, service: ServiceDep) -> UserOut:
    return await service.me(user)
