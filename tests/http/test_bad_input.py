"""Bad input on every endpoint: the same status and RFC 9457 problem document from every REST app,
and nothing written (every table's rows and the event bus are unchanged).

One table of cases. `test_bad_request` runs each case on every app (in-process and live) against
the expected status, code and invalid fields; `test_apps_answer_alike` sends each case to the
Flask and the FastAPI app on the same backend and compares the two answers whole (headers that
matter, and the document with ids masked).
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest

from flashcards import security
from flashcards.web import SECURITY_HEADERS
from tests.http.conftest import Targets
from tests.http.support import BACKENDS, PASSWORD, PROBLEM, Api, Variant, World

NOTHING: Any = object()
LONG = 10**9  # an id no test creates
TOO_BIG_ID = 2**63  # one past BIGINT: invalid, not unknown
PROBLEM_KEYS = {"type", "title", "status", "detail", "code", "instance"}


@dataclass(frozen=True)
class Case:
    id: str
    method: str
    path: str  # may name {alice_deck}, {bob_deck}, {alice_card}, {bob_card}
    status: int
    code: str
    body: Any = NOTHING  # a JSON document
    raw: bytes | None = None  # or raw bytes, with `content_type`
    content_type: str | None = None
    auth: str = "alice"  # see `authorization()`
    fields: frozenset[tuple[str, str]] | None = None  # 422: the (field, type) of every error
    allow: str | None = None  # 405: the Allow header


def fields(*pairs: tuple[str, str]) -> frozenset[tuple[str, str]]:
    return frozenset(pairs)


NEW_USER = {"username": "newcomer", "display_name": "New", "password": PASSWORD}
DECK_PATH = "/api/decks"
DECK = "/api/decks/{alice_deck}"
BOB_DECK = "/api/decks/{bob_deck}"
CARD = "/api/cards/{alice_card}"
BOB_CARD = "/api/cards/{bob_card}"
REVIEW = CARD + "/reviews"
JSON_DECK = json.dumps({"title": "ok"}).encode()
HUGE_DECK = json.dumps({"title": "big", "description": "x" * 70_000}).encode()  # > 64 KiB

CASES = [
    # --- users and tokens
    Case("register-missing-fields", "POST", "/api/auth/register", 422, "BAD_USER_INPUT", {}, auth="none",
         fields=fields(("username", "missing"), ("display_name", "missing"), ("password", "missing"))),
    Case("register-username-int", "POST", "/api/auth/register", 422, "BAD_USER_INPUT",
         {**NEW_USER, "username": 12345}, auth="none", fields=fields(("username", "string_type"))),
    Case("register-username-pattern", "POST", "/api/auth/register", 422, "BAD_USER_INPUT",
         {**NEW_USER, "username": "Not Allowed!"}, auth="none", fields=fields(("username", "string_pattern_mismatch"))),
    Case("register-password-short", "POST", "/api/auth/register", 422, "BAD_USER_INPUT",
         {**NEW_USER, "password": "short"}, auth="none", fields=fields(("password", "string_too_short"))),
    Case("register-display-name-65", "POST", "/api/auth/register", 422, "BAD_USER_INPUT",
         {**NEW_USER, "display_name": "d" * 65}, auth="none", fields=fields(("display_name", "string_too_long"))),
    Case("register-taken", "POST", "/api/auth/register", 409, "CONFLICT",
         {**NEW_USER, "username": "{alice_name}"}, auth="none", fields=fields(("username", "unique"))),
    Case("token-wrong-password", "POST", "/api/auth/token", 401, "UNAUTHENTICATED",
         {"username": "{alice_name}", "password": "not the password"}, auth="none"),
    Case("token-unknown-user", "POST", "/api/auth/token", 401, "UNAUTHENTICATED",
         {"username": "nobody_at_all", "password": PASSWORD}, auth="none"),
    Case("token-password-missing", "POST", "/api/auth/token", 422, "BAD_USER_INPUT",
         {"username": "{alice_name}"}, auth="none", fields=fields(("password", "missing"))),
    Case("token-password-bool", "POST", "/api/auth/token", 422, "BAD_USER_INPUT",
         {"username": "{alice_name}", "password": True}, auth="none", fields=fields(("password", "string_type"))),
    Case("me-no-token", "GET", "/api/me", 401, "UNAUTHENTICATED", auth="none"),
    Case("me-garbage-token", "GET", "/api/me", 401, "UNAUTHENTICATED", auth="garbage"),
    Case("me-empty-bearer", "GET", "/api/me", 401, "UNAUTHENTICATED", auth="empty"),
    Case("me-basic-auth", "GET", "/api/me", 401, "UNAUTHENTICATED", auth="basic"),
    Case("me-expired-token", "GET", "/api/me", 401, "UNAUTHENTICATED", auth="expired"),
    Case("me-forged-token", "GET", "/api/me", 401, "UNAUTHENTICATED", auth="forged"),
    Case("me-alg-none-token", "GET", "/api/me", 401, "UNAUTHENTICATED", auth="alg-none"),
    Case("me-ghost-user", "GET", "/api/me", 401, "UNAUTHENTICATED", auth="ghost"),
    # --- decks: bodies
    Case("deck-title-201", "POST", DECK_PATH, 422, "BAD_USER_INPUT", {"title": "t" * 201},
         fields=fields(("title", "string_too_long"))),
    Case("deck-title-empty", "POST", DECK_PATH, 422, "BAD_USER_INPUT", {"title": ""},
         fields=fields(("title", "string_too_short"))),
    Case("deck-title-int", "POST", DECK_PATH, 422, "BAD_USER_INPUT", {"title": 5},
         fields=fields(("title", "string_type"))),
    Case("deck-title-null", "POST", DECK_PATH, 422, "BAD_USER_INPUT", {"title": None},
         fields=fields(("title", "string_type"))),
    Case("deck-title-missing", "POST", DECK_PATH, 422, "BAD_USER_INPUT", {"description": "no title"},
         fields=fields(("title", "missing"))),
    Case("deck-description-2001", "POST", DECK_PATH, 422, "BAD_USER_INPUT", {"title": "ok", "description": "d" * 2001},
         fields=fields(("description", "string_too_long"))),
    Case("deck-title-nul", "POST", DECK_PATH, 422, "BAD_USER_INPUT", {"title": "a\x00b"},
         fields=fields(("title", "string_pattern_mismatch"))),
    Case("deck-unknown-field", "POST", DECK_PATH, 422, "BAD_USER_INPUT", {"title": "ok", "owner_id": 1},
         fields=fields(("owner_id", "extra_forbidden"))),
    Case("deck-every-bad-field", "POST", DECK_PATH, 422, "BAD_USER_INPUT", {"title": "", "description": 7},
         fields=fields(("title", "string_too_short"), ("description", "string_type"))),
    Case("deck-body-list", "POST", DECK_PATH, 422, "BAD_USER_INPUT", [], fields=fields(("body", "model_type"))),
    Case("deck-body-string", "POST", DECK_PATH, 422, "BAD_USER_INPUT", "title", fields=fields(("body", "model_type"))),
    Case("deck-body-null", "POST", DECK_PATH, 422, "BAD_USER_INPUT", None, fields=fields(("body", "model_type"))),
    Case("deck-no-body", "POST", DECK_PATH, 422, "BAD_USER_INPUT", fields=fields(("body", "missing"))),
    Case("deck-malformed-json", "POST", DECK_PATH, 400, "BAD_REQUEST", raw=b'{"title": ', content_type="application/json"),
    Case("deck-invalid-utf8", "POST", DECK_PATH, 400, "BAD_REQUEST", raw=b'{"title": "\xff\xfe"}', content_type="application/json"),
    Case("deck-text-plain", "POST", DECK_PATH, 415, "UNSUPPORTED_MEDIA_TYPE", raw=JSON_DECK, content_type="text/plain"),
    Case("deck-form-encoded", "POST", DECK_PATH, 415, "UNSUPPORTED_MEDIA_TYPE", raw=b"title=ok",
         content_type="application/x-www-form-urlencoded"),
    Case("deck-too-large", "POST", DECK_PATH, 413, "PAYLOAD_TOO_LARGE", raw=HUGE_DECK, content_type="application/json"),
    # the order of checks: 413 → 400 → 401 → 415 → 422
    Case("deck-too-large-no-token", "POST", DECK_PATH, 413, "PAYLOAD_TOO_LARGE", raw=HUGE_DECK,
         content_type="application/json", auth="none"),
    Case("deck-malformed-no-token", "POST", DECK_PATH, 400, "BAD_REQUEST", raw=b"{", content_type="application/json", auth="none"),
    Case("deck-text-plain-no-token", "POST", DECK_PATH, 401, "UNAUTHENTICATED", raw=JSON_DECK, content_type="text/plain", auth="none"),
    Case("deck-invalid-no-token", "POST", DECK_PATH, 401, "UNAUTHENTICATED", {"title": ""}, auth="none"),
    Case("deck-create-expired-token", "POST", DECK_PATH, 401, "UNAUTHENTICATED", {"title": "ok"}, auth="expired"),
    Case("deck-create-forged-token", "POST", DECK_PATH, 401, "UNAUTHENTICATED", {"title": "ok"}, auth="forged"),
    Case("deck-create-ghost-user", "POST", DECK_PATH, 401, "UNAUTHENTICATED", {"title": "ok"}, auth="ghost"),
    # --- decks: query and path
    Case("decks-limit-0", "GET", DECK_PATH + "?limit=0", 422, "BAD_USER_INPUT", fields=fields(("limit", "greater_than_equal"))),
    Case("decks-limit-101", "GET", DECK_PATH + "?limit=101", 422, "BAD_USER_INPUT", fields=fields(("limit", "less_than_equal"))),
    Case("decks-limit-text", "GET", DECK_PATH + "?limit=ten", 422, "BAD_USER_INPUT", fields=fields(("limit", "int_parsing"))),
    Case("decks-cursor-pattern", "GET", DECK_PATH + "?cursor=%21%21", 422, "BAD_USER_INPUT",
         fields=fields(("cursor", "string_pattern_mismatch"))),
    Case("decks-cursor-forged", "GET", DECK_PATH + "?cursor=bm90LWEtY3Vyc29y", 422, "BAD_USER_INPUT"),
    Case("decks-unknown-query", "GET", DECK_PATH + "?owner=1", 422, "BAD_USER_INPUT", fields=fields(("owner", "extra_forbidden"))),
    Case("decks-no-token", "GET", DECK_PATH, 401, "UNAUTHENTICATED", auth="none"),
    Case("deck-of-other-user", "GET", BOB_DECK, 404, "NOT_FOUND"),
    Case("deck-unknown", "GET", f"/api/decks/{LONG}", 404, "NOT_FOUND"),
    Case("deck-id-zero", "GET", "/api/decks/0", 422, "BAD_USER_INPUT", fields=fields(("deck_id", "greater_than_equal"))),
    Case("deck-id-negative", "GET", "/api/decks/-1", 422, "BAD_USER_INPUT", fields=fields(("deck_id", "greater_than_equal"))),
    Case("deck-id-text", "GET", "/api/decks/abc", 422, "BAD_USER_INPUT", fields=fields(("deck_id", "int_parsing"))),
    Case("deck-id-past-bigint", "GET", f"/api/decks/{TOO_BIG_ID}", 422, "BAD_USER_INPUT", fields=fields(("deck_id", "less_than_equal"))),
    Case("deck-patch-other-user", "PATCH", BOB_DECK, 404, "NOT_FOUND", {"title": "mine now"}),
    Case("deck-patch-title-201", "PATCH", DECK, 422, "BAD_USER_INPUT", {"title": "t" * 201}, fields=fields(("title", "string_too_long"))),
    Case("deck-patch-unknown-field", "PATCH", DECK, 422, "BAD_USER_INPUT", {"name": "x"}, fields=fields(("name", "extra_forbidden"))),
    Case("deck-patch-bad-id-and-body", "PATCH", "/api/decks/0", 422, "BAD_USER_INPUT", {"title": 1},
         fields=fields(("deck_id", "greater_than_equal"), ("title", "string_type"))),
    Case("deck-delete-other-user", "DELETE", BOB_DECK, 404, "NOT_FOUND"),
    Case("deck-delete-unknown", "DELETE", f"/api/decks/{LONG}", 404, "NOT_FOUND"),
    Case("deck-cards-of-other-user", "GET", BOB_DECK + "/cards", 404, "NOT_FOUND"),
    Case("deck-due-of-other-user", "GET", BOB_DECK + "/due", 404, "NOT_FOUND"),
    Case("deck-due-limit-0", "GET", DECK + "/due?limit=0", 422, "BAD_USER_INPUT", fields=fields(("limit", "greater_than_equal"))),
    # --- cards
    Case("card-into-other-users-deck", "POST", BOB_DECK + "/cards", 404, "NOT_FOUND", {"front": "f", "back": "b"}),
    Case("card-into-unknown-deck", "POST", f"/api/decks/{LONG}/cards", 404, "NOT_FOUND", {"front": "f", "back": "b"}),
    Case("card-back-missing", "POST", DECK + "/cards", 422, "BAD_USER_INPUT", {"front": "f"}, fields=fields(("back", "missing"))),
    Case("card-front-empty", "POST", DECK + "/cards", 422, "BAD_USER_INPUT", {"front": "", "back": "b"},
         fields=fields(("front", "string_too_short"))),
    Case("card-front-2001", "POST", DECK + "/cards", 422, "BAD_USER_INPUT", {"front": "f" * 2001, "back": "b"},
         fields=fields(("front", "string_too_long"))),
    Case("card-back-list", "POST", DECK + "/cards", 422, "BAD_USER_INPUT", {"front": "f", "back": ["b"]},
         fields=fields(("back", "string_type"))),
    Case("card-of-other-user", "GET", BOB_CARD, 404, "NOT_FOUND"),
    Case("card-unknown", "GET", f"/api/cards/{LONG}", 404, "NOT_FOUND"),
    Case("card-patch-other-user", "PATCH", BOB_CARD, 404, "NOT_FOUND", {"front": "mine now"}),
    Case("card-patch-front-empty", "PATCH", CARD, 422, "BAD_USER_INPUT", {"front": ""}, fields=fields(("front", "string_too_short"))),
    Case("card-delete-other-user", "DELETE", BOB_CARD, 404, "NOT_FOUND"),
    Case("card-id-text", "DELETE", "/api/cards/x1", 422, "BAD_USER_INPUT", fields=fields(("card_id", "int_parsing"))),
    # --- reviews
    Case("review-grade-string", "POST", REVIEW, 422, "BAD_USER_INPUT", {"grade": "5"}, fields=fields(("grade", "int_type"))),
    Case("review-grade-true", "POST", REVIEW, 422, "BAD_USER_INPUT", {"grade": True}, fields=fields(("grade", "int_type"))),
    Case("review-grade-false", "POST", REVIEW, 422, "BAD_USER_INPUT", {"grade": False}, fields=fields(("grade", "int_type"))),
    Case("review-grade-fraction", "POST", REVIEW, 422, "BAD_USER_INPUT", {"grade": 4.5}, fields=fields(("grade", "int_type"))),
    Case("review-grade-null", "POST", REVIEW, 422, "BAD_USER_INPUT", {"grade": None}, fields=fields(("grade", "int_type"))),
    Case("review-grade-6", "POST", REVIEW, 422, "BAD_USER_INPUT", {"grade": 6}, fields=fields(("grade", "less_than_equal"))),
    Case("review-grade-minus-1", "POST", REVIEW, 422, "BAD_USER_INPUT", {"grade": -1}, fields=fields(("grade", "greater_than_equal"))),
    Case("review-grade-missing", "POST", REVIEW, 422, "BAD_USER_INPUT", {}, fields=fields(("grade", "missing"))),
    Case("review-extra-field", "POST", REVIEW, 422, "BAD_USER_INPUT", {"grade": 5, "reviewed_at": "2020-01-01T00:00:00Z"},
         fields=fields(("reviewed_at", "extra_forbidden"))),
    Case("review-other-users-card", "POST", BOB_CARD + "/reviews", 404, "NOT_FOUND", {"grade": 5}),
    Case("review-unknown-card", "POST", f"/api/cards/{LONG}/reviews", 404, "NOT_FOUND", {"grade": 5}),
    Case("review-bad-id-and-grade", "POST", "/api/cards/abc/reviews", 422, "BAD_USER_INPUT", {"grade": 9},
         fields=fields(("card_id", "int_parsing"), ("grade", "less_than_equal"))),
    Case("review-text-plain", "POST", REVIEW, 415, "UNSUPPORTED_MEDIA_TYPE", raw=b'{"grade": 5}', content_type="text/plain"),
    Case("review-malformed", "POST", REVIEW, 400, "BAD_REQUEST", raw=b'{"grade": 5,}', content_type="application/json"),
    Case("review-no-token", "POST", REVIEW, 401, "UNAUTHENTICATED", {"grade": 5}, auth="none"),
    Case("reviews-of-other-users-card", "GET", BOB_CARD + "/reviews", 404, "NOT_FOUND"),
    # --- chat and events
    Case("chat-empty", "POST", "/api/chat", 422, "BAD_USER_INPUT", {"message": ""}, fields=fields(("message", "string_too_short"))),
    Case("chat-4001", "POST", "/api/chat", 422, "BAD_USER_INPUT", {"message": "m" * 4001}, fields=fields(("message", "string_too_long"))),
    Case("chat-int", "POST", "/api/chat", 422, "BAD_USER_INPUT", {"message": 5}, fields=fields(("message", "string_type"))),
    Case("chat-no-token", "POST", "/api/chat", 401, "UNAUTHENTICATED", {"message": "hi"}, auth="none"),
    Case("chat-ghost-user", "POST", "/api/chat", 401, "UNAUTHENTICATED", {"message": "hi"}, auth="ghost"),
    Case("chat-forged-token", "POST", "/api/chat", 401, "UNAUTHENTICATED", {"message": "hi"}, auth="forged"),
    Case("chat-history-limit-0", "GET", "/api/chat/history?limit=0", 422, "BAD_USER_INPUT",
         fields=fields(("limit", "greater_than_equal"))),
    Case("events-no-token", "GET", "/api/events", 401, "UNAUTHENTICATED", auth="none"),
    Case("events-expired-token", "GET", "/api/events", 401, "UNAUTHENTICATED", auth="expired"),
    # --- routing
    Case("unknown-route", "GET", "/api/nothing-here", 404, "NOT_FOUND"),
    Case("decks-put", "PUT", DECK_PATH, 405, "METHOD_NOT_ALLOWED", {"title": "x"}, allow="GET, POST"),
    Case("card-post", "POST", CARD, 405, "METHOD_NOT_ALLOWED", {"front": "x"}, allow="DELETE, GET, PATCH"),
]  # fmt: skip

assert len({c.id for c in CASES}) == len(CASES)


def authorization(kind: str, api: Api, world: World) -> str | None:
    settings = api.settings
    now = datetime.now(UTC)
    claims = {"sub": str(world.alice.id), "iat": int(now.timestamp()),
              "exp": int((now + timedelta(hours=1)).timestamp()), "iss": "stackbench"}  # fmt: skip
    if kind == "alice":
        return f"Bearer {world.alice.token}"
    if kind == "none":
        return None
    if kind == "garbage":
        return "Bearer not-a-jwt"
    if kind == "empty":  # the scheme alone ("Bearer " is refused by the HTTP client itself)
        return "Bearer"
    if kind == "basic":
        return "Basic " + base64.b64encode(f"{world.alice.username}:{PASSWORD}".encode()).decode()
    if kind == "expired":
        return "Bearer " + security.issue_token(settings, world.alice.id, now - timedelta(seconds=settings.jwt_ttl_s + 60))
    if kind == "forged":  # right claims, wrong key
        return "Bearer " + jwt.encode(claims, "an-attacker-secret-that-is-long-enough!", algorithm="HS256")
    if kind == "alg-none":
        def part(doc: dict[str, Any]) -> str:
            return base64.urlsafe_b64encode(json.dumps(doc).encode()).rstrip(b"=").decode()

        return f"Bearer {part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."
    if kind == "ghost":  # signed by the server, for a user that does not exist
        return "Bearer " + security.issue_token(settings, LONG)
    raise ValueError(kind)


def send(api: Api, case: Case) -> tuple[str, httpx.Response]:
    """Send `case` to `api` (as alice, unless the case says otherwise); returns (path, response)."""
    world = api.world()
    path = case.path.format(**world.ids)
    headers = {}
    auth = authorization(case.auth, api, world)
    if auth is not None:
        headers["Authorization"] = auth
    body = case.body
    if body is not NOTHING:
        body = json.loads(json.dumps(body).replace("{alice_name}", world.alice.username))
        response = api.request(case.method, path, json=body, headers=headers)
    else:
        if case.content_type:
            headers["Content-Type"] = case.content_type
        response = api.request(case.method, path, content=case.raw, headers=headers)
    return path, response


def check_problem(case: Case, path: str, response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == case.status, (case.id, response.status_code, response.text)
    assert response.headers["content-type"] == PROBLEM, response.headers
    doc: dict[str, Any] = response.json()
    assert PROBLEM_KEYS <= set(doc) <= PROBLEM_KEYS | {"errors"}, doc
    assert doc["status"] == case.status
    assert doc["code"] == case.code
    assert doc["type"] == "https://stackbench.dev/problems/" + case.code.lower().replace("_", "-")
    assert doc["instance"] == path.split("?")[0]
    assert isinstance(doc["title"], str) and doc["title"]
    assert isinstance(doc["detail"], str) and doc["detail"]
    if case.status == 422:
        assert doc["errors"], doc
        for err in doc["errors"]:
            assert set(err) == {"field", "message", "type"} and err["message"], err
        if case.fields is not None:
            assert {(e["field"], e["type"]) for e in doc["errors"]} == case.fields, doc["errors"]
    elif case.fields is not None:
        assert {(e["field"], e["type"]) for e in doc.get("errors", [])} == case.fields, doc
    if case.status == 401:
        assert response.headers["www-authenticate"].startswith("Bearer"), response.headers
    if case.status == 405:
        assert response.headers["allow"] == case.allow
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, name
    return doc


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_bad_request(http_client: Api, case: Case) -> None:
    api = http_client
    api.world()  # made before the snapshot
    before, published = api.snapshot(), api.bus.published
    path, response = send(api, case)
    check_problem(case, path, response)
    assert api.snapshot() == before, "a rejected request wrote to the database"
    assert api.bus.published == published, "a rejected request published an event"


def masked(response: httpx.Response, path: str) -> dict[str, Any]:
    """What must be identical between the apps: status, the headers that carry meaning, and
    the document with the path and ids (which differ between databases) masked."""
    doc = response.json()
    doc["instance"] = "<path>" if doc.get("instance") == path.split("?")[0] else doc.get("instance")
    doc["detail"] = re.sub(r"\d{1,19}", "<n>", doc["detail"]) if "id" in doc["detail"] else doc["detail"]
    headers = {k: response.headers.get(k) for k in ("content-type", "www-authenticate", "allow", "retry-after")}
    return {"status": response.status_code, "headers": headers, "body": doc}


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
@pytest.mark.parametrize("backend", BACKENDS)
def test_apps_answer_alike(targets: Targets, backend: str, case: Case) -> None:
    answers = {}
    for impl in ("flask", "fastapi"):
        api = Api(targets.get(Variant(impl, backend)))
        path, response = send(api, case)
        assert response.status_code == case.status, (impl, response.text)
        answers[impl] = masked(response, path)
    assert answers["flask"] == answers["fastapi"]
