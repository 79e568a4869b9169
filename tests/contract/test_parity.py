"""Parity: the same sequence of domain operations on the Flask, FastAPI and GraphQL apps gives the
same statuses, error codes, field errors, bodies and SM-2 schedules (see `parity.py` for how
ids, timestamps and tokens are normalised and how time is controlled).

Hypothesis draws sequences (`parity.sequences`: two signed-in users, then up to
`BUDGET.parity_steps` operations: registrations and logins, deck and card CRUD, reviews with
grades 0–5 and invalid ones, due queues, listings that follow their cursors, clock jumps, and
requests as another user, anonymous or with a forged token). Each sequence runs on all three
apps step by step; at the first step where they disagree the test fails with the shrunk
sequence, each app's outcome and the differing fields. The CI budget is small
(`STACKBENCH_CONTRACT_PROFILE=thorough`, i.e. `nox -s contract -- --thorough`, raises it).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings

from tests.contract import parity, support
from tests.contract.parity import (
    Advance,
    CreateCard,
    CreateDeck,
    DeleteCard,
    DeleteDeck,
    Due,
    GetCard,
    GetDeck,
    ListCards,
    ListDecks,
    ListReviews,
    Login,
    Me,
    Op,
    Outcome,
    ParityError,
    Ref,
    Register,
    Review,
    UpdateCard,
    UpdateDeck,
)

D0, D1, D2 = Ref("deck", 0), Ref("deck", 1), Ref("deck", 2)
C0, C1, C2 = Ref("card", 0), Ref("card", 1), Ref("card", 2)
BAD_DECK, BAD_CARD = Ref("deck", -1), Ref("card", -1)

# Every operation and the error paths the issue names, in one readable sequence (its own test, so
# that a broken app fails it at once and the generated test still shows its shrunk sequence).
SCRIPT: list[Op] = [
    Register(0),
    Login(0),
    Register(1),
    Login(1),
    Register(0),  # taken: 409
    Register(2, "bad_username"),
    Register(2, "short_password"),
    Login(2),  # not registered: 401
    Login(0, good_password=False),
    Me("u0"),
    Me("anon"),
    Me("forged"),
    CreateDeck("u0", "Spanish", "verbs"),
    CreateDeck("u0", "T" * 201),  # oversize title: 422
    CreateDeck("u0", ""),
    CreateDeck("u0", "nul\x00byte"),
    CreateDeck("u1", "漢字 kanji"),
    CreateDeck("u0", "t"),
    ListDecks("u0", limit=1),  # two pages
    ListDecks("u1"),
    GetDeck("u1", D0),  # another user's deck: 404
    GetDeck("u0", BAD_DECK),
    UpdateDeck("u0", D0, title="Spanish 2"),
    UpdateDeck("u0", D0),  # empty patch: unchanged
    UpdateDeck("u1", D0, title="mine now"),
    CreateCard("u0", D0, "hola", "hello"),
    CreateCard("u0", D0, "adiós", "goodbye"),
    CreateCard("u0", D0, "", "x" * 2001),  # two bad fields
    CreateCard("u1", D0, "intruder", "card"),
    CreateCard("u1", D1, "水", "water"),
    Due("u0", D0, limit=1),
    Review("u0", C0, 5),
    Advance(timedelta(days=1)),
    Review("u0", C0, 5),
    Advance(timedelta(days=6)),
    Review("u0", C0, 5),
    Review("u0", C0, 5),
    Review("u0", C0, 4),
    Review("u0", C1, 0),
    Review("u0", C1, 7),
    Review("u0", C1, -1),
    Review("u0", Ref("card", 6), 3),  # unknown card: 404
    Review("u1", C0, 3),  # another user's card: 404
    Review("u0", BAD_CARD, 7),  # invalid id and invalid grade
    Review("anon", C0, 3),
    GetCard("u0", C0),
    ListReviews("u0", C0, limit=2),
    ListCards("u0", D0),
    Advance(timedelta(days=30)),
    Due("u0", D0),
    UpdateCard("u0", C1, front="adiós!"),
    UpdateCard("u0", C1, back="X" * 2001),
    DeleteCard("u0", C1),
    GetCard("u0", C1),
    DeleteDeck("u1", D0),
    DeleteDeck("u0", D0),
    GetCard("u0", C0),  # gone with its deck
    ListDecks("u0", limit=0),
    ListCards("u1", D1, limit=101),
    DeleteDeck("u0", D2),
    ListDecks("u0"),
]


@pytest.fixture(scope="module")
def apps(tmp_path_factory: pytest.TempPathFactory) -> Iterator[parity.Apps]:
    """The three apps, created once for the module (a sequence resets the databases)."""
    created = parity.Apps(Path(tmp_path_factory.mktemp("parity")))
    try:
        yield created
    finally:
        created.close()


@pytest.fixture
def _operations_note(apps: parity.Apps) -> Iterator[None]:
    before = apps.operations
    yield
    support.note(f"{apps.operations - before} operations on each of the 3 apps")


# The `_tally` autouse fixture and `_operations_note` are function-scoped on purpose: they time
# and count the whole test, not one example; the apps themselves are reset per example.
# No `explain` phase: it traces every line of the three apps (a failing run took 5x longer) and
# the ParityError already names the step. The failure message carries the whole shrunk sequence
# itself: schemathesis' pytest plugin blanks Hypothesis' own "Falsifying example" printout (it
# swaps Hypothesis' printer for a no-op), so that line shows `ops=,` in this project.
PARITY = settings(
    max_examples=support.BUDGET.parity_examples,
    deadline=None,
    print_blob=True,
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.mark.usefixtures("_operations_note")
@PARITY
@given(ops=parity.sequences(support.BUDGET.parity_steps))
def test_three_apps_agree(apps: parity.Apps, ops: list[Op]) -> None:
    support.count()
    apps.check(ops)


@pytest.mark.usefixtures("_operations_note")
def test_scripted_sequence(apps: parity.Apps) -> None:
    support.count()
    apps.check(SCRIPT)


def test_a_divergence_is_reported(apps: parity.Apps) -> None:
    """The checker itself: one app answering differently (here GraphQL rounding an SM-2 interval
    up by a day, then FastAPI answering 400 for a 422) fails with the step and the fields."""

    def longer_interval(op: Op, outcome: Outcome) -> Outcome:
        if isinstance(op, Review) and outcome.body:
            schedule = {**outcome.body["schedule"], "interval_days": outcome.body["schedule"]["interval_days"] + 1}
            return dataclasses.replace(outcome, body={**outcome.body, "schedule": schedule})
        return outcome

    ops = [*parity.PRELUDE, Review("u0", C0, 4)]
    apps.drivers["graphql"].tamper = longer_interval
    try:
        with pytest.raises(ParityError) as caught:
            apps.check(ops)
    finally:
        apps.drivers["graphql"].tamper = None
    message = str(caught.value)
    assert "parity broken at step 7 of 7: Review(u0, card#0, grade=4)" in message
    assert "graphql  schedule.interval_days: flask=1 graphql=2" in message.replace("body.", "")

    def bad_request(op: Op, outcome: Outcome) -> Outcome:
        return dataclasses.replace(outcome, status=400) if outcome.status == 422 else outcome

    apps.drivers["fastapi"].tamper = bad_request
    try:
        with pytest.raises(ParityError) as caught:
            apps.check([*parity.PRELUDE, CreateDeck("u0", "")])
    finally:
        apps.drivers["fastapi"].tamper = None
    assert "fastapi  status: flask=422 fastapi=400" in str(caught.value)
    apps.check(ops)  # untampered, the same sequence agrees
