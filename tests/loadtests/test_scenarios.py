"""The scenario registry, and the `decks` scenario (the proof that adding a read scenario is one
registry entry): its verification passes on all three apps, in-process on a seeded SQLite
database, and refuses an answer whose paging or auth is wrong."""

from __future__ import annotations

import dataclasses
import json
import random
import re
import warnings
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from loadtests import scenarios
from loadtests.profiles import PROFILES
from loadtests.scenarios import BenchUser, VerificationFailed
from provision.seed import SeedPlan, seed
from tests.support import make_settings, sqlite_dsn

REPO_ROOT = Path(__file__).resolve().parents[2]
PLAN = SeedPlan(users=2, decks_per_user=7, cards_per_deck=3, seed=1)  # 7 decks: pages of 5 are real pages
APPS = {"flask": "rest", "rest": "rest", "graphql": "graphql"}
APP_ENV: dict[str, str] = {}  # the apps here keep the default secret, which signed_user falls back to


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> str:
    dsn = sqlite_dsn(tmp_path_factory.mktemp("scenarios"), "decks.sqlite3")
    seed(make_settings(dsn), PLAN)
    return dsn


@pytest.fixture(params=list(APPS))
def app_client(request: pytest.FixtureRequest, seeded: str) -> Iterator[tuple[str, httpx.Client]]:
    impl = request.param
    settings = make_settings(seeded)
    if impl == "flask":
        from impl_flask_baseline import create_app as create_flask

        with httpx.Client(transport=httpx.WSGITransport(app=create_flask(settings)), base_url="http://app") as client:
            yield APPS[impl], client
        return
    from impl_graphql import create_app as create_graphql
    from impl_rest import create_app as create_rest

    app = create_rest(settings) if impl == "rest" else create_graphql(settings)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient
    with TestClient(app, raise_server_exceptions=False) as client:
        yield APPS[impl], client


def _user(api: str, client: httpx.Client) -> BenchUser:
    token = scenarios.login(client, api, "user00001")
    decks, cards = scenarios.owned_ids(PLAN, 1)
    return BenchUser("user00001", token, decks, cards)


def test_decks_verifies_and_its_load_request_answers_a_page(app_client: tuple[str, httpx.Client]) -> None:
    api, client = app_client
    user = _user(api, client)
    decks = scenarios.get("decks")
    decks.verify(api, client, user)  # shape, paging one by one over all 7 decks, auth, bad limit
    spec = decks.request(api, user)
    path, body = spec.render(random.Random(0))
    response = client.request(spec.method, path, content=body, headers=spec.headers)
    assert response.status_code == spec.expect_status
    doc = response.json()
    page = doc["data"]["decks"] if api == "graphql" else doc
    assert [int(d["id"]) for d in page["items"]] == user.deck_ids[:5] and page["next_cursor"]


class Broken(httpx.BaseTransport):
    """The real app behind a transport that spoils one kind of answer."""

    def __init__(self, inner: httpx.BaseTransport, spoil: str) -> None:
        self.inner, self.spoil = inner, spoil

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self.spoil == "no-auth" and "decks" in (request.url.path + request.content.decode()):
            request.headers.pop("authorization", None)
            request = httpx.Request(request.method, request.url, headers={
                k: v for k, v in request.headers.items() if k != "authorization"}, content=request.content)
        response = self.inner.handle_request(request)
        if self.spoil == "no-paging" and request.url.path == "/api/decks" and response.status_code == 200:
            response.read()
            doc = json.loads(response.content)
            doc["next_cursor"] = None
            return httpx.Response(200, json=doc)
        return response


@pytest.mark.parametrize("spoil", ["no-paging", "no-auth"])
def test_decks_verification_refuses_wrong_answers(seeded: str, spoil: str) -> None:
    from impl_flask_baseline import create_app as create_flask

    inner = httpx.WSGITransport(app=create_flask(make_settings(seeded)))
    with httpx.Client(transport=inner, base_url="http://app") as good:
        user = _user("rest", good)
    with httpx.Client(transport=Broken(inner, spoil), base_url="http://app") as client, \
            pytest.raises(VerificationFailed):
        scenarios.get("decks").verify("rest", client, user)


def test_registry_is_consistent() -> None:
    assert list(scenarios.SCENARIOS) == [s.name for s in scenarios.SCENARIOS.values()]
    for sc in scenarios.closed_loop():
        assert sc.rest and sc.graphql and sc.check, sc.name
        for profile in PROFILES.values():
            assert sc.levels(profile), (sc.name, profile.name)
    assert "decks" in scenarios.WRK_SCENARIOS  # measured in every profile, quick included
    assert all(s.counts_writes <= s.writes for s in scenarios.SCENARIOS.values())


COMPARED = re.compile(r"""==\s*["'](review|decks)["']|["'](review|decks)["']\s*==""")
LISTED = re.compile(r"""["'](config|card|due|review)["'],\s*["']decks["']|["']decks["'],\s*["'](due|review)["']""")


def _loadtests_sources() -> Iterator[Path]:
    yield from (p for p in (REPO_ROOT / "loadtests").rglob("*.py") if p.name != "scenarios.py")


def test_scenario_names_are_not_special_cased_outside_the_registry() -> None:
    """No `== "review"` (or any other write-scenario test by name) outside the registry, and the
    newest scenario's name is written nowhere else in loadtests/."""
    offenders = []
    for path in _loadtests_sources():
        text = path.read_text()
        if COMPARED.search(text) or LISTED.search(text):
            offenders.append(str(path.relative_to(REPO_ROOT)))
    assert offenders == []


def test_review_load_spreads_over_the_seeded_users_and_every_write_is_counted(
        app_client: tuple[str, httpx.Client], seeded: str) -> None:
    import sqlite3

    api, client = app_client
    users = scenarios.bench_users(client, api, PLAN, APP_ENV)
    assert [u.username for u in users] == ["user00001", "user00002"]
    # user 2's token is signed, not logged in: a secret the app does not hold is refused (401)
    forged = scenarios.bench_users(client, api, PLAN, {"STACKBENCH_JWT_SECRET": "not-the-run-secret" * 3})[1]
    refused = scenarios.get("review").request(api, forged, users=[forged, forged])
    headers, path, body = refused.render_as(random.Random(1))
    response = client.request(refused.method, path, content=body, headers=headers)
    assert response.status_code == 401 or (api == "graphql" and response.json().get("errors")), response.text
    review = scenarios.get("review")
    assert review.spread_users and not scenarios.get("card").spread_users
    spec = review.request(api, users[0], users=users)
    assert [(f"Bearer {token}", ids) for token, ids in spec.users] == [
        (f"Bearer {u.token}", tuple(u.card_ids)) for u in users]
    assert len({token for token, _ in spec.users}) == 2
    assert set(users[0].card_ids).isdisjoint(users[1].card_ids)
    # a scenario that does not spread keeps the one-user request
    assert scenarios.get("card").request(api, users[0], users=users).users == ()

    def stored() -> int:
        with sqlite3.connect(seeded.removeprefix("sqlite:///")) as db:
            return int(db.execute("select count(*) from reviews").fetchone()[0])

    before, acknowledged, as_user = stored(), 0, set()
    rng = random.Random(3)
    for _ in range(30):
        headers, path, body = spec.render_as(rng)
        response = client.request(spec.method, path, content=body, headers=headers)
        doc = response.json()
        # 201 / no GraphQL errors: the card is the token's user's (another user's card is not found)
        assert response.status_code == spec.expect_status, doc
        assert not doc.get("errors"), doc
        acknowledged += 1
        as_user.add(headers["Authorization"])
    assert len(as_user) == 2
    assert stored() - before == acknowledged  # what the writes check (count_reviews) compares
    # the pairing matters: user 2's card with user 1's token is refused
    other = dataclasses.replace(spec, users=((spec.users[0][0], spec.users[1][1]),))
    headers, path, body = other.render_as(rng)
    response = client.request(spec.method, path, content=body, headers=headers)
    assert response.status_code == 404 or response.json().get("errors")
