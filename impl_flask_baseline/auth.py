"""Registration, token login and the signed-in user."""

from __future__ import annotations

from flask import Blueprint, Response, request

from flashcards.models import LoginIn, RegisterIn
from impl_flask_baseline.edge import inputs, json_response, service

bp = Blueprint("auth", __name__, url_prefix="/api")


@bp.post("/auth/register")
def register() -> Response:
    req = inputs(body=RegisterIn, auth=False)
    return json_response(service().register(req.body), 201)


@bp.post("/auth/token")
def token() -> Response:
    """Failed attempts are limited per username and per client address (429 + Retry-After)."""
    req = inputs(body=LoginIn, auth=False)
    return json_response(service().login(req.body, client=request.remote_addr))


@bp.get("/me")
def me() -> Response:
    req = inputs()
    return json_response(service().me(req.user))
