"""Protections checked the same way in all three apps (Flask, FastAPI, GraphQL), in-process:

* owners only: another user's deck, cards, due queue, card, review history, chat history and
  event feed are invisible (404 / NOT_FOUND, never 200 or 500), and stay unchanged;
* the same input limits everywhere: string lengths, page sizes and the body size, each at the
  limit (accepted) and one past it (refused, with the same field errors in every app);
* failed logins limited per user and per client address: 429 with `Retry-After` (REST),
  `RATE_LIMITED` with `retry_after` (GraphQL);
* slow password hashing: argon2id at its production cost, and only the hash is stored.

REST answers are read as status + problem document, GraphQL answers as `extensions`; both are
turned into one `Outcome` so the three apps are compared directly.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from flashcards import security
from flashcards._sync.database import Database
from flashcards._sync.service import Service as SyncService
from flashcards.settings import Settings
from flashcards.tables import users
from tests.graphql.support import InProcessDriver
from tests.support import fresh_schema, make_settings, postgres_dsn

IMPLS = ["flask", "rest", "graphql"]
PASSWORD = "correct horse battery"


# --- the three apps behind one small API -------------------------------------------------------------
@dataclass(frozen=True)
class Outcome:
    """What an answer means, whatever the API: accepted, or refused with a code and fields."""

    accepted: bool
    code: str | None = None
    fields: frozenset[tuple[str, str]] = frozenset()
    status: int = 200  # HTTP status (GraphQL: 200 unless the transport refused the request)
    retry_after: int | None = None
    data: Any = None


class App:
    """One app in-process: Flask through `httpx.WSGITransport`, the ASGI apps through Starlette's
    `TestClient` (lifespan run). `client` is the caller's address (login limits are per client)."""

    def __init__(self, impl: str, settings: Settings, client: str = "10.0.0.1") -> None:
        self.impl = impl
        if impl == "flask":
            from impl_flask_baseline import create_app as create_flask

            self.service: SyncService | None = SyncService(settings)
            self.flask = create_flask(settings, service=self.service)
            transport = httpx.WSGITransport(app=self.flask, remote_addr=client)
            self.http: Any = httpx.Client(transport=transport, base_url="http://testserver")
        else:
            from starlette.testclient import TestClient

            self.service = None
            if impl == "rest":
                from impl_rest import create_app as create_rest

                asgi: Any = create_rest(settings)
            else:
                from impl_graphql import create_app as create_graphql

                asgi = create_graphql(settings)
            self.http = TestClient(asgi, raise_server_exceptions=False, client=(client, 50000))
            self.http.__enter__()

    def from_address(self, client: str) -> None:
        """Send what follows from another client address, to the same app (same process, so
        the same failed-login windows)."""
        if self.impl == "flask":
            self.http.close()
            transport = httpx.WSGITransport(app=self.flask, remote_addr=client)
            self.http = httpx.Client(transport=transport, base_url="http://testserver")
        else:  # Starlette's TestClient puts its transport's `client` into every scope
            self.http._transport.client = (client, 50000)

    def close(self) -> None:
        if self.impl == "flask":
            self.http.close()
            assert self.service is not None
            self.service.close()
        else:
            self.http.__exit__(None, None, None)

    # --- raw requests
    def rest(self, method: str, path: str, token: str | None = None, body: Any = None, raw: bytes | None = None) -> Outcome:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        content = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        if content is not None:
            headers["Content-Type"] = "application/json"
        r = self.http.request(method, path, headers=headers, content=content)
        assert r.status_code < 500, (self.impl, method, path, r.status_code, r.text)
        if r.status_code < 400:
            return Outcome(True, status=r.status_code, data=r.json() if r.content else None)
        doc = r.json()
        fields = frozenset((e["field"], e["type"]) for e in doc.get("errors", []))
        retry = int(r.headers["Retry-After"]) if "Retry-After" in r.headers else None
        return Outcome(False, doc["code"], fields, r.status_code, retry)

    def gql(self, query: str, variables: dict[str, Any] | None = None, token: str | None = None,
            raw: bytes | None = None) -> Outcome:  # fmt: skip
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        content = raw if raw is not None else json.dumps({"query": query, "variables": variables or {}}).encode()
        r = self.http.post("/graphql", headers={**headers, "Content-Type": "application/json"}, content=content)
        assert r.status_code < 500, (self.impl, query, r.status_code, r.text)
        doc = r.json()
        errors = doc.get("errors")
        if not errors:
            return Outcome(True, status=r.status_code, data=doc["data"])
        ext = errors[0].get("extensions", {})
        fields = frozenset((e["field"], e["type"]) for e in ext.get("errors", []))
        return Outcome(False, ext.get("code"), fields, r.status_code, ext.get("retry_after"))

    # --- the operations the tests need, in the app's own API
    def register(self, username: str, display_name: str = "U", password: str = PASSWORD) -> Outcome:
        data = {"username": username, "display_name": display_name, "password": password}
        if self.impl == "graphql":
            return self.gql("mutation($i: RegisterInput!) { register(input: $i) { id } }", {"i": data})
        return self.rest("POST", "/api/auth/register", body=data)

    def login(self, username: str, password: str = PASSWORD) -> Outcome:
        data = {"username": username, "password": password}
        if self.impl == "graphql":
            return self.gql("mutation($i: LoginInput!) { login(input: $i) { access_token } }", {"i": data})
        return self.rest("POST", "/api/auth/token", body=data)

    def create_deck(self, token: str, title: str, description: str = "") -> Outcome:
        data = {"title": title, "description": description}
        if self.impl == "graphql":
            return self.gql("mutation($i: DeckInput!) { create_deck(input: $i) { id } }", {"i": data}, token)
        return self.rest("POST", "/api/decks", token, data)

    def create_card(self, token: str, deck_id: int, front: str, back: str) -> Outcome:
        data = {"front": front, "back": back}
        if self.impl == "graphql":
            query = "mutation($d: ID!, $i: CardInput!) { create_card(deck_id: $d, input: $i) { id } }"
            return self.gql(query, {"d": str(deck_id), "i": data}, token)
        return self.rest("POST", f"/api/decks/{deck_id}/cards", token, data)

    def list_decks(self, token: str, limit: int | None = None) -> Outcome:
        if self.impl == "graphql":
            args = f"(limit: {limit})" if limit is not None else ""
            return self.gql(f"{{ decks{args} {{ items {{ id title }} }} }}", token=token)
        return self.rest("GET", "/api/decks" + (f"?limit={limit}" if limit is not None else ""), token)

    def chat(self, token: str, message: str) -> Outcome:
        """Only the refusal matters here (an accepted chat would call the upstream)."""
        if self.impl != "graphql":
            return self.rest("POST", "/api/chat", token, {"message": message})
        with self.http.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as ws:
            ws.send_json({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}})
            assert ws.receive_json()["type"] == "connection_ack"
            query = "subscription($m: String!) { chat(input: {message: $m}) { type } }"
            ws.send_json({"id": "1", "type": "subscribe", "payload": {"query": query, "variables": {"m": message}}})
            reply = ws.receive_json()
        if reply["type"] == "next" and reply["payload"].get("errors"):
            ext = reply["payload"]["errors"][0]["extensions"]
            return Outcome(False, ext["code"], frozenset((e["field"], e["type"]) for e in ext.get("errors", [])))
        return Outcome(True, data=reply)


def _fresh(settings: Settings) -> Settings:
    return fresh_schema(settings)


@pytest.fixture(scope="module")
def dsn() -> str:
    return postgres_dsn("stackbench_test_app_protections")


@pytest.fixture(params=IMPLS)
def impl(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# --- owners only ---------------------------------------------------------------------------------------
@dataclass
class Owned:
    alice: str  # tokens
    bob: str
    deck: int  # alice's
    card: int
    bob_deck: int
    alice_chat: list[int]  # ids of alice's chat messages


@pytest.fixture
def owned(dsn: str) -> Iterator[tuple[Settings, Owned]]:
    # port 9 refuses at once: each chat stores a question and a failed answer
    settings = _fresh(make_settings(dsn, upstream_url="http://127.0.0.1:9/v1", upstream_connect_timeout_s=1.0))
    service = SyncService(settings)
    try:
        alice = service.register({"username": "alice", "display_name": "A", "password": PASSWORD})
        bob = service.register({"username": "bob", "display_name": "B", "password": PASSWORD})
        deck = service.create_deck(alice.id, {"title": "alice's deck"})
        card = service.create_card(alice.id, deck.id, {"front": "secret front", "back": "b"})
        service.review_card(alice.id, card.id, {"grade": 4})
        bob_deck = service.create_deck(bob.id, {"title": "bob's deck"})
        for user in (alice, bob):
            list(service.chat(user.id, {"message": f"question of {user.username}"}))
        alice_chat = [m.id for m in service.chat_history(alice.id).items]
    finally:
        service.close()
    yield settings, Owned(security.issue_token(settings, alice.id), security.issue_token(settings, bob.id),
                          deck.id, card.id, bob_deck.id, alice_chat)  # fmt: skip


REST_FOREIGN = [
    ("GET", "/api/decks/{deck}", None), ("PATCH", "/api/decks/{deck}", {"title": "mine now"}),
    ("DELETE", "/api/decks/{deck}", None), ("GET", "/api/decks/{deck}/cards", None),
    ("POST", "/api/decks/{deck}/cards", {"front": "f", "back": "b"}), ("GET", "/api/decks/{deck}/due", None),
    ("GET", "/api/cards/{card}", None), ("PATCH", "/api/cards/{card}", {"front": "mine now"}),
    ("DELETE", "/api/cards/{card}", None), ("POST", "/api/cards/{card}/reviews", {"grade": 5}),
    ("GET", "/api/cards/{card}/reviews", None),
]  # fmt: skip
GRAPHQL_FOREIGN = [
    '{ deck(deck_id: "{deck}") { id title } }', '{ cards(deck_id: "{deck}") { items { id } } }',
    '{ due_cards(deck_id: "{deck}") { items { id } } }', '{ card(card_id: "{card}") { id front } }',
    '{ reviews(card_id: "{card}") { items { id grade } } }',
    'mutation { update_deck(deck_id: "{deck}", input: {title: "mine now"}) { id } }',
    'mutation { delete_deck(deck_id: "{deck}") }',
    'mutation { create_card(deck_id: "{deck}", input: {front: "f", back: "b"}) { id } }',
    'mutation { update_card(card_id: "{card}", input: {front: "mine now"}) { id } }',
    'mutation { delete_card(card_id: "{card}") }',
    'mutation { review_card(card_id: "{card}", input: {grade: 5}) { id } }',
]  # fmt: skip


def test_another_users_rows_are_invisible_and_untouched(impl: str, owned: tuple[Settings, Owned]) -> None:
    settings, o = owned
    app = App(impl, settings)
    try:
        ids = {"deck": str(o.deck), "card": str(o.card)}
        if impl == "graphql":
            for query in GRAPHQL_FOREIGN:
                text = query.replace("{deck}", ids["deck"]).replace("{card}", ids["card"])
                outcome = app.gql(text, token=o.bob)
                assert (outcome.accepted, outcome.code) == (False, "NOT_FOUND"), (text, outcome)
            # the owner still sees it: the refusals above are about ownership, not the query
            assert app.gql(f'{{ deck(deck_id: "{o.deck}") {{ title }} }}', token=o.alice).data == {"deck": {"title": "alice's deck"}}
            decks = app.gql("{ decks { items { id } } }", token=o.bob).data["decks"]["items"]
            history = app.gql("{ chat_history { items { id content } } }", token=o.bob).data["chat_history"]["items"]
        else:
            for method, path, body in REST_FOREIGN:
                outcome = app.rest(method, path.format(**ids), o.bob, body)
                assert (outcome.status, outcome.code) == (404, "NOT_FOUND"), (method, path, outcome)
            assert app.rest("GET", f"/api/decks/{o.deck}", o.alice).data["title"] == "alice's deck"
            decks = app.rest("GET", "/api/decks", o.bob).data["items"]
            history = app.rest("GET", "/api/chat/history", o.bob).data["items"]
        assert [int(d["id"]) for d in decks] == [o.bob_deck]
        assert len(history) == 2 and not {int(m["id"]) for m in history} & set(o.alice_chat)
        assert all("alice" not in m["content"] for m in history)
    finally:
        app.close()
    # nothing of alice's changed
    service = SyncService(settings)
    try:
        alice = security.verify_token(settings, o.alice)
        assert service.get_deck(alice, o.deck).title == "alice's deck"
        card = service.get_card(alice, o.card)
        assert card.front == "secret front" and card.repetitions == 1
        assert len(service.list_reviews(alice, o.card).items) == 1
        assert len(service.list_cards(alice, o.deck).items) == 1
    finally:
        service.close()


async def test_graphql_event_feed_carries_only_the_subscribers_events(owned: tuple[Settings, Owned]) -> None:
    """The REST feeds: tests/http/test_events.py::test_a_user_sees_only_their_own_events."""
    from impl_graphql import create_app

    settings, o = owned
    app = create_app(settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        driver = InProcessDriver(app, client)
        try:
            async with driver.subscribe("subscription { events { type data } }", None, o.bob) as feed:
                # the subscription starts with the first read: wait for it before publishing
                first_event = asyncio.ensure_future(feed.__anext__())
                bus = app.service.bus
                for _ in range(100):
                    if bus.subscriber_count or first_event.done():
                        break
                    await asyncio.sleep(0.01)
                await driver.execute('mutation { create_deck(input: {title: "alice 2"}) { id } }', token=o.alice)
                await driver.execute(f'mutation {{ update_deck(deck_id: "{o.deck}", input: {{title: "x"}}) {{ id }} }}',
                                     token=o.alice)  # fmt: skip
                mine = await driver.execute('mutation { create_deck(input: {title: "bob 2"}) { id } }', token=o.bob)
                first = await asyncio.wait_for(first_event, 5)
        finally:
            await app.holder.close()
    assert first["events"]["type"] == "deck.created"
    assert first["events"]["data"]["deck_id"] == int(mine["create_deck"]["id"])


# --- tokens: forged, expired, wrong algorithm ----------------------------------------------------------
def _tokens_for(settings: Settings, user_id: int, other_id: int) -> dict[str, str]:
    """Tokens naming a user who exists, so only the token itself can be the reason for a refusal
    (a token for a user id that does not exist is refused whatever its signature)."""
    import base64
    from datetime import UTC, datetime, timedelta

    import jwt

    now = datetime.now(UTC)
    good = {"sub": str(user_id), "iat": int(now.timestamp()), "iss": "stackbench",
            "exp": int((now + timedelta(hours=1)).timestamp())}  # fmt: skip

    def part(doc: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(doc).encode()).rstrip(b"=").decode()

    secret = settings.jwt_secret
    header, _, signature = security.issue_token(settings, user_id).split(".")
    return {
        "expired": security.issue_token(settings, user_id, now - timedelta(seconds=settings.jwt_ttl_s + 5)),
        "wrong secret": jwt.encode(good, "an-attacker-secret-that-is-long-enough!", "HS256"),
        "alg none": f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(good)}.",
        "wrong algorithm (HS512)": jwt.encode(good, secret, "HS512"),
        "no exp": jwt.encode({k: v for k, v in good.items() if k != "exp"}, secret, "HS256"),
        "wrong issuer": jwt.encode({**good, "iss": "elsewhere"}, secret, "HS256"),
        "no issuer": jwt.encode({k: v for k, v in good.items() if k != "iss"}, secret, "HS256"),
        # another user's claims under this user's signature
        "tampered claims": ".".join([header, part({**good, "sub": str(other_id)}), signature]),
    }


def test_forged_expired_and_wrong_algorithm_tokens_of_a_real_user_are_refused(impl: str, owned: tuple[Settings, Owned]) -> None:
    settings, o = owned
    alice, bob = security.verify_token(settings, o.alice), security.verify_token(settings, o.bob)
    app = App(impl, settings)
    try:
        def me(token: str) -> Outcome:
            if impl == "graphql":
                return app.gql("{ me { id } }", token=token)
            return app.rest("GET", "/api/me", token)

        assert me(o.alice).accepted  # the same user with a good token: the refusals are the token's
        for name, token in _tokens_for(settings, alice, bob).items():
            outcome = me(token)
            assert (outcome.accepted, outcome.code) == (False, "UNAUTHENTICATED"), (impl, name, outcome)
            if impl != "graphql":
                assert outcome.status == 401, (name, outcome)
    finally:
        app.close()


# --- the same limits in all three apps -------------------------------------------------------------------
@pytest.fixture(scope="module")
def limits_settings(dsn: str) -> Settings:
    return _fresh(make_settings(dsn, upstream_url="http://127.0.0.1:9/v1"))


@pytest.fixture(scope="module")
def limit_outcomes(limits_settings: Settings) -> dict[str, dict[str, Outcome]]:
    """Every limit case on every app: {case: {impl: outcome}}."""
    outcomes: dict[str, dict[str, Outcome]] = {}
    for impl in IMPLS:
        app = App(impl, limits_settings)
        try:
            for case, outcome in _limit_cases(app, impl).items():
                outcomes.setdefault(case, {})[impl] = outcome
        finally:
            app.close()
    return outcomes


def _limit_cases(app: App, impl: str) -> dict[str, Outcome]:
    n = IMPLS.index(impl)
    out: dict[str, Outcome] = {
        "username 32": app.register(f"u{n}" + "a" * 30),
        "username 33": app.register(f"u{n}" + "a" * 31),
        "display_name 64": app.register(f"dn64_{n}", "d" * 64),
        "display_name 65": app.register(f"dn65_{n}", "d" * 65),
        "password 8": app.register(f"pw8_{n}", password="p" * 8),
        "password 7": app.register(f"pw7_{n}", password="p" * 7),
        "password 128": app.register(f"pw128_{n}", password="p" * 128),
        "password 129": app.register(f"pw129_{n}", password="p" * 129),
    }
    app.register(f"limits_{n}")
    login = app.login(f"limits_{n}")
    token = login.data["login"]["access_token"] if impl == "graphql" else login.data["access_token"]
    out |= {
        "deck title 200": app.create_deck(token, "t" * 200),
        "deck title 201": app.create_deck(token, "t" * 201),
        "deck description 2000": app.create_deck(token, "t", "d" * 2000),
        "deck description 2001": app.create_deck(token, "t", "d" * 2001),
    }
    deck = out["deck title 200"].data
    deck_id = int(deck["create_deck"]["id"] if impl == "graphql" else deck["id"])
    out |= {
        "card front 2000": app.create_card(token, deck_id, "f" * 2000, "b"),
        "card front 2001": app.create_card(token, deck_id, "f" * 2001, "b"),
        "card back 2000": app.create_card(token, deck_id, "f", "b" * 2000),
        "card back 2001": app.create_card(token, deck_id, "f", "b" * 2001),
        "chat message 4001": app.chat(token, "m" * 4001),
        "page 100": app.list_decks(token, 100),
        "page 101": app.list_decks(token, 101),
        "page 0": app.list_decks(token, 0),
    }
    # the body: exactly max_body_bytes is read, one byte more is 413 (padded with JSON whitespace)
    limit = 64 * 1024
    for size, case in ((limit, "body at the limit"), (limit + 1, "body one byte over")):
        if impl == "graphql":
            doc = json.dumps({"query": "{ config { service } }"}).encode()
            out[case] = app.gql("", raw=doc + b" " * (size - len(doc)))
        else:
            doc = json.dumps({"title": "padded"}).encode()
            out[case] = app.rest("POST", "/api/decks", token, raw=doc + b" " * (size - len(doc)))
    return out


LIMIT_CASES = {
    # case: (accepted, code, fields)
    "username 32": (True, None, set()),
    "username 33": (False, "BAD_USER_INPUT", {("username", "string_pattern_mismatch")}),
    "display_name 64": (True, None, set()),
    "display_name 65": (False, "BAD_USER_INPUT", {("display_name", "string_too_long")}),
    "password 8": (True, None, set()),
    "password 7": (False, "BAD_USER_INPUT", {("password", "string_too_short")}),
    "password 128": (True, None, set()),
    "password 129": (False, "BAD_USER_INPUT", {("password", "string_too_long")}),
    "deck title 200": (True, None, set()),
    "deck title 201": (False, "BAD_USER_INPUT", {("title", "string_too_long")}),
    "deck description 2000": (True, None, set()),
    "deck description 2001": (False, "BAD_USER_INPUT", {("description", "string_too_long")}),
    "card front 2000": (True, None, set()),
    "card front 2001": (False, "BAD_USER_INPUT", {("front", "string_too_long")}),
    "card back 2000": (True, None, set()),
    "card back 2001": (False, "BAD_USER_INPUT", {("back", "string_too_long")}),
    "chat message 4001": (False, "BAD_USER_INPUT", {("message", "string_too_long")}),
    "page 100": (True, None, set()),
    "page 101": (False, "BAD_USER_INPUT", {("limit", "less_than_equal")}),
    "page 0": (False, "BAD_USER_INPUT", {("limit", "greater_than_equal")}),
    "body at the limit": (True, None, set()),
    "body one byte over": (False, "PAYLOAD_TOO_LARGE", set()),
}


@pytest.mark.parametrize("case", list(LIMIT_CASES))
def test_the_same_limits_in_all_three_apps(limit_outcomes: dict[str, dict[str, Outcome]], case: str) -> None:
    accepted, code, fields = LIMIT_CASES[case]
    for impl, outcome in limit_outcomes[case].items():
        assert (outcome.accepted, outcome.code, set(outcome.fields)) == (accepted, code, fields), (impl, outcome)
        if code == "PAYLOAD_TOO_LARGE":
            assert outcome.status == 413, (impl, outcome)


# --- failed logins: per user and per client ------------------------------------------------------------
@pytest.fixture
def limited(dsn: str) -> Iterator[Settings]:
    settings = _fresh(make_settings(dsn, login_rate_per_minute=3, login_client_rate_per_minute=5))
    service = SyncService(settings)
    try:
        for name in ("alice", "bob"):
            service.register({"username": name, "display_name": name, "password": PASSWORD})
    finally:
        service.close()
    yield settings


def _refused_for_rate(impl: str, outcome: Outcome) -> None:
    assert (outcome.accepted, outcome.code) == (False, "RATE_LIMITED"), (impl, outcome)
    assert outcome.retry_after is not None and 1 <= outcome.retry_after <= 60, (impl, outcome)
    if impl != "graphql":
        assert outcome.status == 429


def test_login_guesses_per_user_get_429_with_retry_after(impl: str, limited: Settings) -> None:
    """Three wrong passwords for alice from one address; then even the right one from that
    address is refused for a while; alice from another address (the owner) is not locked out
    (issue 19), nor is bob from a third."""
    app = App(impl, limited, client="10.0.0.1")
    try:
        for _ in range(3):
            assert app.login("alice", "wrong guess!").code == "UNAUTHENTICATED"
        _refused_for_rate(impl, app.login("alice"))
        app.from_address("10.0.0.2")
        assert app.login("alice").accepted
        app.from_address("10.0.0.3")
        assert app.login("bob").accepted
    finally:
        app.close()


def test_login_guesses_per_client_across_usernames_get_429(impl: str, limited: Settings) -> None:
    """Five wrong guesses from one address, each for another username: that address is refused
    even with bob's right password; bob from another address is not."""
    app = App(impl, limited, client="10.9.9.9")
    try:
        for i in range(5):
            assert app.login(f"nobody{i}", "wrong guess!").code == "UNAUTHENTICATED"
        _refused_for_rate(impl, app.login("bob"))
        app.from_address("10.1.1.1")
        assert app.login("bob").accepted
    finally:
        app.close()


# --- password hashing ------------------------------------------------------------------------------------
def test_passwords_are_hashed_slowly_with_argon2id() -> None:
    """The production cost (Settings' defaults): argon2id, 64 MiB, 3 passes, 4 lanes, which takes
    tens of milliseconds per guess; a fast hash (or none) would fail here."""
    settings = Settings()
    started = time.perf_counter()
    stored = security.hash_password(settings, PASSWORD)
    elapsed = time.perf_counter() - started
    assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$"), stored
    assert PASSWORD not in stored
    assert elapsed > 0.02, f"hashing took {elapsed * 1000:.1f} ms: not slow"
    assert security.verify_password(settings, stored, PASSWORD)
    assert not security.verify_password(settings, stored, PASSWORD + "!")


def test_each_app_stores_only_an_argon2id_hash(impl: str, dsn: str) -> None:
    settings = _fresh(make_settings(dsn))
    app = App(impl, settings)
    try:
        assert app.register("hashed").accepted
    finally:
        app.close()
    db = Database(settings)
    try:
        with db.connect() as conn:
            stored = conn.execute(select(users.c.password_hash).where(users.c.username == "hashed")).scalar_one()
    finally:
        db.dispose()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored


# --- security headers: the set itself ---------------------------------------------------------------------
def test_security_header_set_is_the_owasp_api_set(impl: str, dsn: str) -> None:
    """test_security.py checks every app sends `SECURITY_HEADERS`; this pins what that set is,
    so emptying it (or weakening a value) fails too."""
    from flashcards.web import SECURITY_HEADERS

    expected = {"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
                "Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}  # fmt: skip
    assert expected == SECURITY_HEADERS
    app = App(impl, _fresh(make_settings(dsn)))
    try:
        response = app.http.get("/api/health/live")
    finally:
        app.close()
    for name, value in expected.items():
        assert response.headers.get(name) == value, (impl, name)
