"""Decks, the cards of a deck and its due queue."""

from __future__ import annotations

from fastapi import APIRouter, Response

from flashcards.models import CardIn, CardOut, DeckIn, DeckOut, DeckPatch, Page
from impl_rest.dependencies import CurrentUser, DeckId, PageQuery, ServiceDep
from impl_rest.responses import AUTHED, problems

router = APIRouter(tags=["decks"], responses=AUTHED)
OWNED = problems(404)


@router.get("/decks")
async def list_decks(user: CurrentUser, service: ServiceDep, page: PageQuery) -> Page[DeckOut]:
    return await service.list_decks(user, page)


@router.post("/decks", status_code=201)
async def create_deck(body: DeckIn, user: CurrentUser, service: ServiceDep, response: Response) -> DeckOut:
    deck = await service.create_deck(user, body)
    response.headers["Location"] = f"/api/decks/{deck.id}"
    return deck


@router.get("/decks/{deck_id}", responses=OWNED)
async def get_deck(deck_id: DeckId, user: CurrentUser, service: ServiceDep) -> DeckOut:
    return await service.get_deck(user, deck_id)


@router.patch("/decks/{deck_id}", responses=OWNED)
async def update_deck(deck_id: DeckId, body: DeckPatch, user: CurrentUser, service: ServiceDep) -> DeckOut:
    return await service.update_deck(user, deck_id, body)


@router.delete("/decks/{deck_id}", status_code=204, responses=OWNED)
async def delete_deck(deck_id: DeckId, user: CurrentUser, service: ServiceDep) -> Response:
    await service.delete_deck(user, deck_id)
    return Response(status_code=204)


@router.get("/decks/{deck_id}/cards", responses=OWNED)
async def list_cards(deck_id: DeckId, user: CurrentUser, service: ServiceDep, page: PageQuery) -> Page[CardOut]:
    return await service.list_cards(user, deck_id, page)


@router.post("/decks/{deck_id}/cards", status_code=201, responses=OWNED)
async def create_card(
    deck_id: DeckId, body: CardIn, user: CurrentUser, service: ServiceDep, response: Response
) -> CardOut:
    card = await service.create_card(user, deck_id, body)
    response.headers["Location"] = f"/api/cards/{card.id}"
    return card


@router.get("/decks/{deck_id}/due", responses=OWNED)
async def due_cards(deck_id: DeckId, user: CurrentUser, service: ServiceDep, page: PageQuery) -> Page[CardOut]:
    """Cards of the deck due now, earliest first."""
    return await service.due_cards(user, deck_id, page)
