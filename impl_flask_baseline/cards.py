"""One card, and its reviews (SM-2)."""

from __future__ import annotations

from flask import Blueprint, Response

from flashcards.models import CardPatch, ReviewIn
from impl_flask_baseline.edge import inputs, json_response, no_content, service

bp = Blueprint("cards", __name__, url_prefix="/api")


@bp.get("/cards/<card_id>")
def get_card(card_id: str) -> Response:
    req = inputs(ids={"card_id": card_id})
    return json_response(service().get_card(req.user, req.ids["card_id"]))


@bp.patch("/cards/<card_id>")
def update_card(card_id: str) -> Response:
    req = inputs(ids={"card_id": card_id}, body=CardPatch)
    return json_response(service().update_card(req.user, req.ids["card_id"], req.body))


@bp.delete("/cards/<card_id>")
def delete_card(card_id: str) -> Response:
    req = inputs(ids={"card_id": card_id})
    service().delete_card(req.user, req.ids["card_id"])
    return no_content()


@bp.post("/cards/<card_id>/reviews")
def review_card(card_id: str) -> Response:
    """Grade the card (0–5); returns the review with the schedule before and after SM-2."""
    req = inputs(ids={"card_id": card_id}, body=ReviewIn)
    return json_response(service().review_card(req.user, req.ids["card_id"], req.body), 201)


@bp.get("/cards/<card_id>/reviews")
def list_reviews(card_id: str) -> Response:
    """The card's reviews, newest first."""
    req = inputs(ids={"card_id": card_id}, page=True)
    return json_response(service().list_reviews(req.user, req.ids["card_id"], req.page))
