"""Liveness, readiness and the config document."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request, Response

from flashcards.errors import Unavailable
from flashcards.models import ConfigOut, HealthOut
from impl_rest.dependencies import ServiceDep
from impl_rest.responses import problems

router = APIRouter(tags=["health"])
# Readiness answers within this, database or not (a load balancer must not hang on it).
READY_TIMEOUT_S = 2.0


@router.get("/health/live")
async def live() -> HealthOut:
    return HealthOut(status="ok")


@router.get("/health/ready", responses=problems(503))
async def ready(service: ServiceDep) -> HealthOut:
    try:
        checks = await asyncio.wait_for(service.ready(), READY_TIMEOUT_S)
    except Exception:
        raise Unavailable("The database does not answer.") from None
    return HealthOut(status="ok", checks=checks)


@router.get("/config", response_model=ConfigOut)
async def config(request: Request) -> Response:
    # Encoded once at start-up: the "simple JSON" benchmark measures the stack, not pydantic.
    return Response(request.app.state.config_json, media_type="application/json")
