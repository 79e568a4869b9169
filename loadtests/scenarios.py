"""Benchmark scenarios: what each sends, and how a stack's answers are verified first.

A scenario knows the public API (REST paths, GraphQL operations) and the seed plan, never an
app's internals. Before a stack is measured, `verify()` checks status, content type and body
shape of real answers, as TechEmpower does; a stack that answers wrongly is refused.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from loadtests.wire import RequestSpec
from stackbench.seed import SEED_PASSWORD, SeedPlan

SCENARIOS = ("config", "card", "due", "review", "chat", "sse-fanout", "ws", "journey")
WRK_SCENARIOS = ("config", "card", "due", "review")


class VerificationFailed(Exception):
    """The stack answered wrongly: it is not measured."""


@dataclass
class BenchUser:
    """The seeded user the load runs as, and the ids it owns (derived from the seed plan)."""

    username: str
    token: str
    deck_ids: list[int]
    card_ids: list[int]


def owned_ids(plan: SeedPlan, user_number: int = 1) -> tuple[list[int], list[int]]:
    decks_before = (user_number - 1) * plan.decks_per_user
    deck_ids = list(range(decks_before + 1, decks_before + plan.decks_per_user + 1))
    cards_before = decks_before * plan.cards_per_deck
    card_ids = list(range(cards_before + 1, cards_before + plan.decks_per_user * plan.cards_per_deck + 1))
    return deck_ids, card_ids


# --- GraphQL operations (same data as the REST requests; field names are the contract's) ------
_CARD_FIELDS = "id deck_id front back ease interval_days repetitions lapses due_at created_at updated_at"
_SCHEDULE = "ease interval_days repetitions lapses due_at"
GQL_CONFIG = (
    "query Config { config { service api_version features { chat event_feed graphql } "
    "limits { deck_title_max deck_description_max card_side_max chat_message_max page_max max_body_bytes } "
    "sm2 { new_card_ease min_ease min_grade max_grade passing_grade } } }"
)
GQL_CARD = f"query Card($id: ID!) {{ card(card_id: $id) {{ {_CARD_FIELDS} }} }}"
GQL_DUE = f"query Due($id: ID!) {{ due_cards(deck_id: $id, limit: 20) {{ items {{ {_CARD_FIELDS} }} next_cursor }} }}"
GQL_REVIEW = (
    "mutation Review($id: ID!, $grade: Int!) { review_card(card_id: $id, input: {grade: $grade}) "
    f"{{ id card_id grade reviewed_at previous {{ {_SCHEDULE} }} schedule {{ {_SCHEDULE} }} }} }}"
)
GQL_LOGIN = (
    "mutation Login($u: String!, $p: String!) { login(input: {username: $u, password: $p}) "
    "{ access_token token_type } }"
)


def _gql_body(query: str, variables: dict[str, str] | None = None) -> str:
    # Placeholders stay as text: the driver substitutes {id} and {grade} per request.
    doc = json.dumps({"query": query, "variables": variables or {}})
    return doc.replace('"__ID__"', '"{id}"').replace('"__GRADE__"', "{grade}")


def request_spec(scenario: str, api: str, user: BenchUser | None, floor_path: str | None = None) -> RequestSpec:
    """The request a wrk/open-loop driver sends for `scenario` against an `api` ("rest",
    "graphql"); a floor (`floor_path` given) answers one GET."""
    if floor_path is not None:
        return RequestSpec("GET", floor_path)
    auth = {"Authorization": f"Bearer {user.token}"} if user else {}
    json_headers = {**auth, "Content-Type": "application/json"}
    if api == "graphql":
        if scenario == "config":
            return RequestSpec("POST", "/graphql", _gql_body(GQL_CONFIG), {"Content-Type": "application/json"})
        assert user is not None
        if scenario == "card":
            return RequestSpec("POST", "/graphql", _gql_body(GQL_CARD, {"id": "__ID__"}), json_headers, tuple(user.card_ids))
        if scenario == "due":
            return RequestSpec("POST", "/graphql", _gql_body(GQL_DUE, {"id": "__ID__"}), json_headers, tuple(user.deck_ids))
        if scenario == "review":
            body = _gql_body(GQL_REVIEW, {"id": "__ID__", "grade": "__GRADE__"})
            return RequestSpec("POST", "/graphql", body, json_headers, tuple(user.card_ids))
        raise ValueError(scenario)
    if scenario == "config":
        return RequestSpec("GET", "/api/config")
    assert user is not None
    if scenario == "card":
        return RequestSpec("GET", "/api/cards/{id}", None, auth, tuple(user.card_ids))
    if scenario == "due":
        return RequestSpec("GET", "/api/decks/{id}/due?limit=20", None, auth, tuple(user.deck_ids))
    if scenario == "review":
        return RequestSpec("POST", "/api/cards/{id}/reviews", '{"grade": {grade}}', json_headers,
                           tuple(user.card_ids), expect_status=201)
    raise ValueError(scenario)


# --- verification ------------------------------------------------------------------------------
def _check(cond: bool, message: str) -> None:
    if not cond:
        raise VerificationFailed(message)


def _json(response: httpx.Response, status: int, what: str) -> Any:
    _check(response.status_code == status, f"{what}: HTTP {response.status_code}, expected {status}: {response.text[:200]}")
    ctype = response.headers.get("content-type", "")
    _check(ctype.startswith("application/json"), f"{what}: content-type {ctype!r}")
    try:
        return response.json()
    except ValueError:
        raise VerificationFailed(f"{what}: body is not JSON") from None


def login(client: httpx.Client, api: str, username: str) -> str:
    if api == "graphql":
        variables = {"u": username, "p": SEED_PASSWORD}
        doc = _json(client.post("/graphql", json={"query": GQL_LOGIN, "variables": variables}), 200, "login")
        _check(not doc.get("errors"), f"login: {doc.get('errors')}")
        return str(doc["data"]["login"]["access_token"])
    doc = _json(client.post("/api/auth/token", json={"username": username, "password": SEED_PASSWORD}), 200, "login")
    _check(doc.get("token_type") == "bearer", "login: token_type")
    return str(doc["access_token"])


def _gql(client: httpx.Client, spec: RequestSpec, rng: random.Random, what: str) -> dict[str, Any]:
    _path, body = spec.render(rng)
    doc = _json(client.post("/graphql", content=body, headers=spec.headers), 200, what)
    _check(not doc.get("errors"), f"{what}: errors {doc.get('errors')}")
    return dict(doc["data"])


FLOOR_BODIES = ({"message": "hello"}, {"data": {"message": "hello"}})


def verify(scenario: str, api: str, client: httpx.Client, user: BenchUser | None,
           floor_path: str | None = None) -> None:
    """Raise VerificationFailed unless the stack answers `scenario` correctly."""
    rng = random.Random(0)
    if floor_path is not None:
        doc = _json(client.get(floor_path), 200, "floor")
        _check(doc in FLOOR_BODIES, f"floor body {doc!r}")
        return
    if scenario == "chat":
        assert user is not None
        verify_chat(client, api, user)
        return
    if scenario in ("sse-fanout", "ws"):
        return  # the realtime driver checks every subscriber's handshake and counts deliveries
    spec = request_spec(scenario, api, user)
    if api == "graphql":
        _verify_graphql(scenario, client, spec, rng)
        return
    path, body = spec.render(rng)
    if scenario == "config":
        doc = _json(client.get(path), 200, "config")
        _check(doc.get("service") == "stackbench-flashcards" and "limits" in doc, "config shape")
    elif scenario == "card":
        doc = _json(client.get(path, headers=spec.headers), 200, "card")
        _check({"id", "deck_id", "front", "back", "ease", "due_at"} <= doc.keys(), f"card keys {sorted(doc)}")
        _check(str(doc["id"]) == path.rsplit("/", 1)[1], "card id")
        missing = client.get("/api/cards/999999999", headers=spec.headers)
        _check(missing.status_code == 404 and missing.headers.get("content-type", "").startswith("application/problem+json"),
               f"unknown card: HTTP {missing.status_code}")
        _check(client.get(path).status_code == 401, "card without token must be 401")
    elif scenario == "due":
        doc = _json(client.get(path, headers=spec.headers), 200, "due")
        _check(0 < len(doc["items"]) <= 20, f"due: {len(doc['items'])} items (the seed has due cards)")
        _verify_due([_parse_time(c["due_at"]) for c in doc["items"]], datetime.now(UTC))
    elif scenario == "review":
        doc = _json(client.post(path, content=body, headers=spec.headers), 201, "review")
        _check({"previous", "schedule", "grade"} <= doc.keys(), "review shape")
        card = _json(client.get(f"/api/cards/{doc['card_id']}", headers=spec.headers), 200, "card after review")
        _check(card["interval_days"] == doc["schedule"]["interval_days"], "review not stored")
        bad = client.post(path, content='{"grade": 9}', headers=spec.headers)
        _check(bad.status_code == 422, f"grade 9 must be 422, got {bad.status_code}")
    else:
        raise ValueError(scenario)


def _verify_graphql(scenario: str, client: httpx.Client, spec: RequestSpec, rng: random.Random) -> None:
    data = _gql(client, spec, rng, scenario)
    if scenario == "config":
        _check(data["config"]["service"] == "stackbench-flashcards", "config.service")
    elif scenario == "card":
        _check(int(data["card"]["id"]) in spec.ids and bool(data["card"]["front"]), "card shape")
        missing = client.post("/graphql", json={"query": GQL_CARD, "variables": {"id": "999999999"}}, headers=spec.headers)
        _check(_json(missing, 200, "unknown card").get("data", {}).get("card", "?") is None, "unknown card must be null")
        anonymous = _json(client.post("/graphql", content=spec.render(rng)[1], headers={"Content-Type": "application/json"}),
                          200, "card without token")
        codes = [e.get("extensions", {}).get("code") for e in anonymous.get("errors") or []]
        _check("UNAUTHENTICATED" in codes, f"card without token: {codes}")
    elif scenario == "due":
        items = data["due_cards"]["items"]
        _check(0 < len(items) <= 20, f"due: {len(items)} items (the seed has due cards)")
        _verify_due([_parse_time(c["due_at"]) for c in items], datetime.now(UTC))
    elif scenario == "review":
        _check(data["review_card"]["schedule"]["interval_days"] >= 1, "review schedule")
    else:
        raise ValueError(scenario)


def verify_chat(client: httpx.Client, api: str, user: BenchUser) -> None:
    """One tutor answer streams completely: message → token… → done."""
    if api == "graphql":
        import asyncio

        from loadtests.realtime import one_chat

        outcome = asyncio.run(one_chat(str(client.base_url).rstrip("/"), user.token, api, "verify", 30.0))
        _check(outcome.error is None and outcome.tokens > 0, f"chat: {outcome}")
        return
    headers = {"Authorization": f"Bearer {user.token}", "Accept": "text/event-stream"}
    with client.stream("POST", "/api/chat", json={"message": "verify"}, headers=headers, timeout=30) as response:
        _check(response.status_code == 200, f"chat: HTTP {response.status_code}")
        ctype = response.headers.get("content-type", "")
        _check(ctype.startswith("text/event-stream"), f"chat: content-type {ctype!r}")
        kinds = [line.split(":", 1)[1].strip() for line in response.iter_lines() if line.startswith("event:")]
    _check(bool(kinds) and kinds[0] == "message" and kinds[-1] == "done" and "token" in kinds,
           f"chat: events {kinds[:3]}…{kinds[-2:]}")


def _parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _verify_due(times: list[datetime], now: datetime) -> None:
    _check(times == sorted(times), "due queue not ordered by due time")
    _check(all(t <= now for t in times), "due queue holds cards not yet due")
