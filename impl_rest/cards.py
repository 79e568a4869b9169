"""One card, and its reviews (SM-2)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from flashcards.models import CardOut, CardPatch, Page, ReviewIn, ReviewOut
from impl_rest.dependencies import CardId, CurrentUser, PageQuery, ServiceDep
from impl_rest.responses import AUTHED, problems

router = APIRouter(tags=["cards"], responses={**AUTHED, **problems(404)})


@router.get("/cards/{card_id}")
async def get_card(card_id: CardId, user: CurrentUser, service: ServiceDep) -> CardOut:
    return await service.get_card(user, card_id)


@router.patch("/cards/{card_id}")
async def update_card(card_id: CardId, body: CardPatch, user: CurrentUser, service: ServiceDep) -> CardOut:
    return await service.update_card(user, card_id, body)


@router.delete("/cards/{card_id}", status_code=204)
async def delete_card(card_id: CardId, user: CurrentUser, service: ServiceDep) -> Response:
    await service.delete_card(user, card_id)
    return Response(status_code=204)


@router.post("/cards/{card_id}/reviews", status_code=201)
async def review_card(card_id: CardId, body: ReviewIn, user: CurrentUser, service: ServiceDep) -> ReviewOut:
    """Grade the card (0–5); returns the review with the schedule before and after SM-2."""
    return await service.review_card(user, card_id, body)


@router.get("/cards/{card_id}/reviews")
async def list_reviews(card_id: CardId, user: CurrentUser, service: ServiceDep, page: PageQuery) -> Page[ReviewOut]:
    """The card's reviews, newest first."""
    return await service.list_reviews(user, card_id, page)
