"""Liveness, readiness, the config document and the committed OpenAPI document."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from flask import Blueprint, Response

from flashcards import web
from flashcards.errors import Unavailable
from flashcards.models import HealthOut
from impl_flask_baseline.edge import raw_json, service, state

bp = Blueprint("health", __name__, url_prefix="/api")
docs = Blueprint("docs", __name__)
# Readiness answers within this, database or not (a load balancer must not hang on it).
READY_TIMEOUT_S = 2.0
LIVE = HealthOut(status="ok").model_dump_json().encode()
OPENAPI_PATH = Path(__file__).resolve().parent.parent / "contract" / "openapi.json"
_openapi: list[bytes] = []


@bp.get("/health/live")
def live() -> Response:
    return raw_json(LIVE)


@bp.get("/health/ready")
def ready() -> Response:
    checks = _ping_within(READY_TIMEOUT_S)
    return raw_json(HealthOut(status="ok", checks=checks).model_dump_json().encode())


def _ping_within(timeout: float) -> dict[str, str]:
    """`service.ready()` in a helper thread, so a hung connect cannot hold the probe."""
    svc = service()
    result: dict[str, Any] = {}
    done = threading.Event()

    def ping() -> None:
        try:
            result["checks"] = svc.ready()
        except Exception as exc:
            result["error"] = exc
        finally:
            done.set()

    threading.Thread(target=ping, name="readiness-ping", daemon=True).start()
    if not done.wait(timeout) or "checks" not in result:
        raise Unavailable("The database does not answer.")
    return result["checks"]  # type: ignore[no-any-return]


@bp.get("/config")
def config() -> Response:
    # Encoded once at start-up: the "simple JSON" benchmark measures the stack, not pydantic.
    return raw_json(state().config_json)


@docs.get("/openapi.json")
def openapi() -> Response:
    """The committed contract (FastAPI generates it), encoded as FastAPI serves its own."""
    if not _openapi:
        try:
            document = json.loads(OPENAPI_PATH.read_bytes())
        except FileNotFoundError:
            raise web.route_not_found("/openapi.json") from None
        text = json.dumps(document, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        _openapi.append(text.encode())
    return raw_json(_openapi[0])
