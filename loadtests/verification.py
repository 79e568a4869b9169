"""How a stack's answers are checked before it is measured (as TechEmpower does: a stack that
answers wrongly is refused), and the GraphQL operations the scenarios send.

Each `verify_*` function checks status, content type and body shape of real answers for one
kind of request, over REST or GraphQL; `loadtests.scenarios` names which one a scenario runs.
This module knows the public API (paths, operations, the seed plan), never an app's internals.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from loadtests.wire import RequestSpec
from provision.seed import SEED_PASSWORD, SeedPlan


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


def user_name(user_number: int) -> str:
    """The seeded username of user `user_number` (provision.seed: user00001, user00002, ...)."""
    return f"user{user_number:05d}"


def signed_user(plan: SeedPlan, env: Mapping[str, str], user_number: int = 1) -> BenchUser:
    """Seeded user `user_number` with a token signed as the app signs one at login (same claims,
    same secret: the one the run gives every stack); seeded user n has id n."""
    from flashcards.security import issue_token
    from flashcards.settings import DEFAULT_SECRET, Settings

    secret = env.get("STACKBENCH_JWT_SECRET", DEFAULT_SECRET)
    token = issue_token(Settings(jwt_secret=secret, environment="test"), user_number)
    decks, cards = owned_ids(plan, user_number)
    return BenchUser(user_name(user_number), token, decks, cards)


def bench_users(client: httpx.Client, api: str, plan: SeedPlan, env: Mapping[str, str],
                count: int | None = None) -> list[BenchUser]:
    """The first `count` seeded users (all of the plan's by default) with their ids and tokens:
    what a scenario that spreads its load over users (`Scenario.spread_users`) sends as.

    The first logs in through the API; the others carry tokens signed as the app signs them
    (`signed_user`), because a login is an argon2id hash (about 0.1 s here) and the plan's 100
    users would add 10 s to every cell. The app verifies each token per request, so a token the
    run's secret did not sign fails the cell (401s), it cannot pass unnoticed."""
    total = min(plan.users, count or plan.users)
    if total < 1:
        return []
    first_decks, first_cards = owned_ids(plan, 1)
    first = BenchUser(user_name(1), login(client, api, user_name(1)), first_decks, first_cards)
    return [first, *(signed_user(plan, env, n) for n in range(2, total + 1))]


# --- GraphQL operations (same data as the REST requests; field names are the contract's) ------
CARD_FIELDS = "id deck_id front back ease interval_days repetitions lapses due_at created_at updated_at"
DECK_FIELDS = "id title description card_count created_at updated_at"
_SCHEDULE = "ease interval_days repetitions lapses due_at"
GQL_CONFIG = (
    "query Config { config { service api_version features { chat event_feed graphql } "
    "limits { deck_title_max deck_description_max card_side_max chat_message_max page_max max_body_bytes } "
    "sm2 { new_card_ease min_ease min_grade max_grade passing_grade } } }"
)
GQL_CARD = f"query Card($id: ID!) {{ card(card_id: $id) {{ {CARD_FIELDS} }} }}"
GQL_DUE = f"query Due($id: ID!) {{ due_cards(deck_id: $id, limit: 20) {{ items {{ {CARD_FIELDS} }} next_cursor }} }}"
GQL_DECKS = (f"query Decks($limit: Int!, $cursor: String) {{ decks(limit: $limit, cursor: $cursor) "
             f"{{ items {{ {DECK_FIELDS} }} next_cursor }} }}")
GQL_REVIEW = (
    "mutation Review($id: ID!, $grade: Int!) { review_card(card_id: $id, input: {grade: $grade}) "
    f"{{ id card_id grade reviewed_at previous {{ {_SCHEDULE} }} schedule {{ {_SCHEDULE} }} }} }}"
)
GQL_LOGIN = (
    "mutation Login($u: String!, $p: String!) { login(input: {username: $u, password: $p}) "
    "{ access_token token_type } }"
)
DECKS_PAGE = 5  # decks per page in the load request: the seed plans own ≥ 2, so paging is real


def gql_body(query: str, variables: dict[str, Any] | None = None) -> str:
    # Placeholders stay as text: the driver substitutes {id} and {grade} per request.
    doc = json.dumps({"query": query, "variables": variables or {}})
    return doc.replace('"__ID__"', '"{id}"').replace('"__GRADE__"', "{grade}")


def auth_headers(user: BenchUser | None, body: bool = False) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {user.token}"} if user else {}
    return {**headers, "Content-Type": "application/json"} if body else headers


# --- checks ---------------------------------------------------------------------------------------
def check(cond: bool, message: str) -> None:
    if not cond:
        raise VerificationFailed(message)


def json_of(response: httpx.Response, status: int, what: str) -> Any:
    check(response.status_code == status, f"{what}: HTTP {response.status_code}, expected {status}: {response.text[:200]}")
    ctype = response.headers.get("content-type", "")
    check(ctype.startswith("application/json"), f"{what}: content-type {ctype!r}")
    try:
        return response.json()
    except ValueError:
        raise VerificationFailed(f"{what}: body is not JSON") from None


def login(client: httpx.Client, api: str, username: str) -> str:
    if api == "graphql":
        variables = {"u": username, "p": SEED_PASSWORD}
        doc = json_of(client.post("/graphql", json={"query": GQL_LOGIN, "variables": variables}), 200, "login")
        check(not doc.get("errors"), f"login: {doc.get('errors')}")
        return str(doc["data"]["login"]["access_token"])
    doc = json_of(client.post("/api/auth/token", json={"username": username, "password": SEED_PASSWORD}), 200, "login")
    check(doc.get("token_type") == "bearer", "login: token_type")
    return str(doc["access_token"])


def gql(client: httpx.Client, body: str, headers: dict[str, str], what: str) -> dict[str, Any]:
    doc = json_of(client.post("/graphql", content=body, headers=headers), 200, what)
    check(not doc.get("errors"), f"{what}: errors {doc.get('errors')}")
    return dict(doc["data"])


def gql_codes(client: httpx.Client, body: str, what: str) -> list[str | None]:
    """The error codes of an anonymous request (it must be refused)."""
    doc = json_of(client.post("/graphql", content=body, headers={"Content-Type": "application/json"}), 200, what)
    return [e.get("extensions", {}).get("code") for e in doc.get("errors") or []]


FLOOR_BODIES = ({"message": "hello"}, {"data": {"message": "hello"}})


def verify_floor(client: httpx.Client, floor_path: str) -> None:
    doc = json_of(client.get(floor_path), 200, "floor")
    check(doc in FLOOR_BODIES, f"floor body {doc!r}")


def verify_config(client: httpx.Client, api: str, spec: RequestSpec, user: BenchUser | None) -> None:
    if api == "graphql":
        data = gql(client, spec.render(random.Random(0))[1] or "", spec.headers, "config")
        check(data["config"]["service"] == "stackbench-flashcards", "config.service")
        return
    doc = json_of(client.get(spec.path), 200, "config")
    check(doc.get("service") == "stackbench-flashcards" and "limits" in doc, "config shape")


def verify_card(client: httpx.Client, api: str, spec: RequestSpec, user: BenchUser | None) -> None:
    path, body = spec.render(random.Random(0))
    if api == "graphql":
        data = gql(client, body or "", spec.headers, "card")
        check(int(data["card"]["id"]) in spec.ids and bool(data["card"]["front"]), "card shape")
        missing = client.post("/graphql", json={"query": GQL_CARD, "variables": {"id": "999999999"}}, headers=spec.headers)
        check(json_of(missing, 200, "unknown card").get("data", {}).get("card", "?") is None, "unknown card must be null")
        codes = gql_codes(client, body or "", "card without token")
        check("UNAUTHENTICATED" in codes, f"card without token: {codes}")
        return
    doc = json_of(client.get(path, headers=spec.headers), 200, "card")
    check({"id", "deck_id", "front", "back", "ease", "due_at"} <= doc.keys(), f"card keys {sorted(doc)}")
    check(str(doc["id"]) == path.rsplit("/", 1)[1], "card id")
    missing = client.get("/api/cards/999999999", headers=spec.headers)
    check(missing.status_code == 404 and missing.headers.get("content-type", "").startswith("application/problem+json"),
          f"unknown card: HTTP {missing.status_code}")
    check(client.get(path).status_code == 401, "card without token must be 401")


def verify_due(client: httpx.Client, api: str, spec: RequestSpec, user: BenchUser | None) -> None:
    path, body = spec.render(random.Random(0))
    if api == "graphql":
        items = gql(client, body or "", spec.headers, "due")["due_cards"]["items"]
    else:
        items = json_of(client.get(path, headers=spec.headers), 200, "due")["items"]
    check(0 < len(items) <= 20, f"due: {len(items)} items (the seed has due cards)")
    times = [_parse_time(c["due_at"]) for c in items]
    check(times == sorted(times), "due queue not ordered by due time")
    check(all(t <= datetime.now(UTC) for t in times), "due queue holds cards not yet due")


def _decks_page(client: httpx.Client, api: str, headers: dict[str, str], limit: int, cursor: str | None) -> dict[str, Any]:
    if api == "graphql":
        body = json.dumps({"query": GQL_DECKS, "variables": {"limit": limit, "cursor": cursor}})
        return dict(gql(client, body, {**headers, "Content-Type": "application/json"}, "decks")["decks"])
    params: dict[str, str | int] = {"limit": limit, **({"cursor": cursor} if cursor else {})}
    return dict(json_of(client.get("/api/decks", params=params, headers=headers), 200, "decks"))


def verify_decks(client: httpx.Client, api: str, spec: RequestSpec, user: BenchUser | None) -> None:
    """The load request's page has the deck shape; walking pages of one deck each returns the
    user's decks, oldest first, each once, and ends with no cursor; no token is refused."""
    assert user is not None
    headers = auth_headers(user)
    first = _decks_page(client, api, headers, DECKS_PAGE, None)
    check({"id", "title", "description", "card_count"} <= first["items"][0].keys() if first["items"] else False,
          f"decks: first page {str(first)[:200]}")
    check(len(first["items"]) == min(DECKS_PAGE, len(user.deck_ids)), f"decks: {len(first['items'])} on a page of {DECKS_PAGE}")
    seen: list[int] = []
    cursor: str | None = None
    for _ in range(len(user.deck_ids) + 100):  # room for decks other scenarios added
        page = _decks_page(client, api, headers, 1, cursor)
        check(len(page["items"]) <= 1, f"decks: {len(page['items'])} items on a page of 1")
        seen += [int(d["id"]) for d in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    check(cursor is None, f"decks: no last page after {len(seen)} decks")
    # Other scenarios on the same server may have added decks for this user (the fan-out
    # publisher creates one per event): the walk must hold every seeded deck, each once, in order.
    check(seen == sorted(set(seen)) and set(user.deck_ids) <= set(seen),
          f"decks paged one by one: {seen}, expected the seeded {sorted(user.deck_ids)} in id order, each once")
    if api == "graphql":
        anonymous = json.dumps({"query": GQL_DECKS, "variables": {"limit": 1}})
        codes = gql_codes(client, anonymous, "decks without token")
        check("UNAUTHENTICATED" in codes, f"decks without token: {codes}")
        return
    check(client.get("/api/decks").status_code == 401, "decks without token must be 401")
    bad = client.get("/api/decks", params={"limit": 0}, headers=headers)
    check(bad.status_code == 422, f"decks?limit=0 must be 422, got {bad.status_code}")


def verify_review(client: httpx.Client, api: str, spec: RequestSpec, user: BenchUser | None) -> None:
    path, body = spec.render(random.Random(0))
    if api == "graphql":
        data = gql(client, body or "", spec.headers, "review")
        check(data["review_card"]["schedule"]["interval_days"] >= 1, "review schedule")
        return
    doc = json_of(client.post(path, content=body, headers=spec.headers), 201, "review")
    check({"previous", "schedule", "grade"} <= doc.keys(), "review shape")
    card = json_of(client.get(f"/api/cards/{doc['card_id']}", headers=spec.headers), 200, "card after review")
    check(card["interval_days"] == doc["schedule"]["interval_days"], "review not stored")
    bad = client.post(path, content='{"grade": 9}', headers=spec.headers)
    check(bad.status_code == 422, f"grade 9 must be 422, got {bad.status_code}")


def verify_chat(client: httpx.Client, api: str, spec: RequestSpec | None, user: BenchUser | None) -> None:
    """One tutor answer streams completely: message → token… → done."""
    assert user is not None
    if api == "graphql":
        import asyncio

        from loadtests.realtime import one_chat

        outcome = asyncio.run(one_chat(str(client.base_url).rstrip("/"), user.token, api, "verify", 30.0))
        check(outcome.error is None and outcome.tokens > 0, f"chat: {outcome}")
        return
    headers = {"Authorization": f"Bearer {user.token}", "Accept": "text/event-stream"}
    with client.stream("POST", "/api/chat", json={"message": "verify"}, headers=headers, timeout=30) as response:
        check(response.status_code == 200, f"chat: HTTP {response.status_code}")
        ctype = response.headers.get("content-type", "")
        check(ctype.startswith("text/event-stream"), f"chat: content-type {ctype!r}")
        kinds = [line.split(":", 1)[1].strip() for line in response.iter_lines() if line.startswith("event:")]
    check(bool(kinds) and kinds[0] == "message" and kinds[-1] == "done" and "token" in kinds,
          f"chat: events {kinds[:3]}…{kinds[-2:]}")


def _parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))
