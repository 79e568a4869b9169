"""Validation parity (issue 19, finding 7): the same bad input gets the same refusal — code and
field errors, and for the REST apps the status — in Flask, FastAPI and GraphQL. One rule each:

* ids given as text are canonical decimal: `10481.0`, `+10481`, `010481`, `1_0481`, ` 5` and
  Unicode digits (`１００２１`) are invalid (`int_parsing`), never read as another id;
* text people read must contain a visible character (not only spaces, zero-width or control
  characters) and holds no control characters (multi-line text may hold tab and line breaks);
* a request body must say it is JSON: a body with no Content-Type is 415, like text/plain.

Table-driven: every case runs on all three apps (the `App` driver of test_app_protections).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest

from flashcards.settings import Settings
from tests.reliability.test_app_protections import IMPLS, App, Outcome, _fresh
from tests.support import make_settings, postgres_dsn

# the rules are patterns (the contracts publish them): one error type for both
NOT_VISIBLE = CONTROL = "string_pattern_mismatch"
BAD = "BAD_USER_INPUT"

# case: (field, value, expected (accepted, code, fields))
TEXT_CASES: dict[str, tuple[str, str, tuple[bool, str | None, set[tuple[str, str]]]]] = {
    "title spaces": ("title", "   ", (False, BAD, {("title", NOT_VISIBLE)})),
    "title no-break spaces": ("title", "\u00a0\u3000", (False, BAD, {("title", NOT_VISIBLE)})),
    "title zero-width": ("title", "\u200b\u200d\ufeff", (False, BAD, {("title", NOT_VISIBLE)})),
    "title tab": ("title", "\t", (False, BAD, {("title", CONTROL)})),
    "title bell inside": ("title", "a\x07b", (False, BAD, {("title", CONTROL)})),
    "title line break": ("title", "two\nlines", (False, BAD, {("title", CONTROL)})),
    "title padded word": ("title", "  word  ", (True, None, set())),
    "title accented": ("title", "e\u0301t\u00e9", (True, None, set())),
    "description escape": ("description", "a\x1b[31mred", (False, BAD, {("description", CONTROL)})),
    "description empty": ("description", "", (True, None, set())),
    "description lines": ("description", "one\r\ntwo\tthree", (True, None, set())),
    "front spaces": ("front", " \n\t ", (False, BAD, {("front", NOT_VISIBLE)})),
    "front lone combining mark": ("front", "\u0301", (False, BAD, {("front", NOT_VISIBLE)})),
    "back DEL": ("back", "b\x7f", (False, BAD, {("back", CONTROL)})),
    "back lines": ("back", "line one\nline two", (True, None, set())),
    "display_name zero-width": ("display_name", "\u200b", (False, BAD, {("display_name", NOT_VISIBLE)})),
}
ID_CASES = ["10481.0", "+10481", "010481", "1_0481", " 5", "5 ", "１００２１", "0x10", "1e3"]


@pytest.fixture(scope="module")
def settings() -> Settings:
    return _fresh(make_settings(postgres_dsn("stackbench_test_validation_parity"), upstream_url="http://127.0.0.1:9/v1"))


class Probe:
    def __init__(self, impl: str, settings: Settings) -> None:
        self.impl = impl
        self.app = App(impl, settings)
        name = f"parity_{impl}"
        self.app.register(name)
        login = self.app.login(name)
        self.token = login.data["login"]["access_token"] if impl == "graphql" else login.data["access_token"]
        deck = self.app.create_deck(self.token, "a deck").data
        self.deck_id = int(deck["create_deck"]["id"] if impl == "graphql" else deck["id"])
        self.count = 0

    def text(self, field: str, value: str) -> Outcome:
        self.count += 1
        if field == "display_name":
            return self.app.register(f"dn_{self.impl}_{self.count}", value)
        if field in ("title", "description"):
            return self.app.create_deck(self.token, value if field == "title" else "t", value if field == "description" else "")
        return self.app.create_card(self.token, self.deck_id, value if field == "front" else "f", value if field == "back" else "b")

    def deck_by_text_id(self, raw: str) -> Outcome:
        if self.impl == "graphql":
            return self.app.gql("query($i: ID!) { deck(deck_id: $i) { id } }", {"i": raw}, self.token)
        path = f"/api/decks/{quote(raw, safe='')}"
        if self.impl == "flask" and not raw.isascii():
            # httpx's WSGI transport puts the unquoted text in PATH_INFO, which WSGI says is
            # latin-1: Werkzeug's own client sends what a real server would
            r = self.app.flask.test_client().get(path, headers={"Authorization": f"Bearer {self.token}"})
            doc = r.get_json()
            return Outcome(False, doc["code"], frozenset((e["field"], e["type"]) for e in doc["errors"]), r.status_code)
        return self.app.rest("GET", path, self.token)


@pytest.fixture(scope="module")
def probes(settings: Settings) -> Iterator[dict[str, Probe]]:
    made = {impl: Probe(impl, settings) for impl in IMPLS}
    yield made
    for probe in made.values():
        probe.app.close()


def _same(probes: dict[str, Probe], call: Any, expected: tuple[bool, str | None, set[tuple[str, str]]]) -> None:
    for impl, probe in probes.items():
        outcome = call(probe)
        assert (outcome.accepted, outcome.code, set(outcome.fields)) == expected, (impl, outcome)
        if impl != "graphql" and not expected[0]:
            assert outcome.status == 422, (impl, outcome)


@pytest.mark.parametrize("case", list(TEXT_CASES))
def test_text_rules_are_the_same_in_all_three_apps(probes: dict[str, Probe], case: str) -> None:
    field, value, expected = TEXT_CASES[case]
    _same(probes, lambda p: p.text(field, value), expected)


@pytest.mark.parametrize("raw", ID_CASES)
def test_ids_are_canonical_decimal_in_all_three_apps(probes: dict[str, Probe], raw: str) -> None:
    _same(probes, lambda p: p.deck_by_text_id(raw.replace("5", str(p.deck_id))), (False, BAD, {("deck_id", "int_parsing")}))


def test_a_canonical_id_still_finds_the_deck(probes: dict[str, Probe]) -> None:
    _same(probes, lambda p: p.deck_by_text_id(str(p.deck_id)), (True, None, set()))


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
@pytest.mark.parametrize("body", [b'{"title": "typed?"}', b'{"title": '], ids=["json", "broken-json"])
def test_a_body_must_say_it_is_json(probes: dict[str, Probe], content_type: str | None, body: bytes) -> None:
    """REST apps: 415 whatever the body holds (Flask stored an untyped one; FastAPI said 422)."""
    for impl in ("flask", "rest"):
        app = probes[impl].app
        headers = {"Authorization": f"Bearer {probes[impl].token}"}
        if content_type:
            headers["Content-Type"] = content_type
        r = app.http.request("POST", "/api/decks", headers=headers, content=body)
        assert (r.status_code, r.headers["content-type"], r.json()["code"]) == (
            415, "application/problem+json", "UNSUPPORTED_MEDIA_TYPE"), (impl, r.text)  # fmt: skip
