"""Decks, the cards of a deck and its due queue."""

from __future__ import annotations

from flask import Blueprint, Response

from flashcards.models import CardIn, DeckIn, DeckPatch
from impl_flask_baseline.edge import inputs, json_response, no_content, service

bp = Blueprint("decks", __name__, url_prefix="/api")


@bp.get("/decks")
def list_decks() -> Response:
    req = inputs(page=True)
    return json_response(service().list_decks(req.user, req.page))


@bp.post("/decks")
def create_deck() -> Response:
    req = inputs(body=DeckIn)
    deck = service().create_deck(req.user, req.body)
    return json_response(deck, 201, location=f"/api/decks/{deck.id}")


@bp.get("/decks/<deck_id>")
def get_deck(deck_id: str) -> Response:
    req = inputs(ids={"deck_id": deck_id})
    return json_response(service().get_deck(req.user, req.ids["deck_id"]))


@bp.patch("/decks/<deck_id>")
def update_deck(deck_id: str) -> Response:
    req = inputs(ids={"deck_id": deck_id}, body=DeckPatch)
    return json_response(service().update_deck(req.user, req.ids["deck_id"], req.body))


@bp.delete("/decks/<deck_id>")
def delete_deck(deck_id: str) -> Response:
    req = inputs(ids={"deck_id": deck_id})
    service().delete_deck(req.user, req.ids["deck_id"])
    return no_content()


@bp.get("/decks/<deck_id>/cards")
def list_cards(deck_id: str) -> Response:
    req = inputs(ids={"deck_id": deck_id}, page=True)
    return json_response(service().list_cards(req.user, req.ids["deck_id"], req.page))


@bp.post("/decks/<deck_id>/cards")
def create_card(deck_id: str) -> Response:
    req = inputs(ids={"deck_id": deck_id}, body=CardIn)
    card = service().create_card(req.user, req.ids["deck_id"], req.body)
    return json_response(card, 201, location=f"/api/cards/{card.id}")


@bp.get("/decks/<deck_id>/due")
def due_cards(deck_id: str) -> Response:
    """Cards of the deck due now, earliest first."""
    req = inputs(ids={"deck_id": deck_id}, page=True)
    return json_response(service().due_cards(req.user, req.ids["deck_id"], req.page))
