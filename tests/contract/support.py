"""Helpers of the contract tests: the three apps on fresh databases, seed data, the committed
contract documents, budgets and the run summary (generated cases and time per part)."""

from __future__ import annotations

import copy
import importlib
import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from flashcards._sync.database import Database
from flashcards._sync.service import Service
from flashcards.settings import Settings
from tests.support import make_settings

CONTRACT = Path(__file__).resolve().parents[2] / "contract"
OPENAPI_PATH = CONTRACT / "openapi.json"
SDL_PATH = CONTRACT / "schema.graphql"

# `nox -s contract -- --thorough` sets this; anything else is the CI budget.
PROFILE = os.environ.get("STACKBENCH_CONTRACT_PROFILE", "default")
THOROUGH = PROFILE == "thorough"
if PROFILE not in ("default", "thorough"):
    raise RuntimeError(f"STACKBENCH_CONTRACT_PROFILE must be 'default' or 'thorough', not {PROFILE!r}")


@dataclass(frozen=True)
class Budget:
    """Examples per generated test: CI's bound, or the long run's."""

    fuzz_examples: int  # schemathesis fuzzing phase, per operation and app
    stateful_examples: int  # schemathesis stateful scenarios, per app
    stateful_steps: int
    live_examples: int  # against the uvicorn subprocess, per operation
    graphql_examples: int  # per GraphQL field
    parity_examples: int  # operation sequences, each run on the three apps
    parity_steps: int


BUDGET = (
    Budget(fuzz_examples=400, stateful_examples=300, stateful_steps=30, live_examples=100,
           graphql_examples=400, parity_examples=1000, parity_steps=60)
    if THOROUGH
    else Budget(fuzz_examples=12, stateful_examples=15, stateful_steps=12, live_examples=4,
                graphql_examples=12, parity_examples=40, parity_steps=30)
)  # fmt: skip


# --- the run summary ---------------------------------------------------------------------------
@dataclass
class Tally:
    cases: int = 0
    seconds: float = 0.0
    notes: set[str] = field(default_factory=set)


TALLIES: dict[str, Tally] = {}
# The test running now (set by the autouse fixture in conftest.py): what `count` adds to.
CURRENT: list[str] = ["(outside a test)"]


def count(n: int = 1) -> None:
    """One generated case (request, query or operation sequence) of the running test."""
    TALLIES.setdefault(CURRENT[0], Tally()).cases += n


def note(text: str) -> None:
    TALLIES.setdefault(CURRENT[0], Tally()).notes.add(text)


@contextmanager
def timed(part: str) -> Iterator[None]:
    """Time (setup, generation, calls, teardown) and count the cases of one test as `part`."""
    CURRENT[0] = part
    tally = TALLIES.setdefault(part, Tally())
    started = time.perf_counter()
    try:
        yield
    finally:
        tally.seconds += time.perf_counter() - started


def summary_lines() -> list[str]:
    lines = [f"contract profile: {PROFILE} ({BUDGET})"]
    total_cases = 0
    total_s = 0.0
    for part, tally in sorted(TALLIES.items()):
        total_cases += tally.cases
        total_s += tally.seconds
        extra = f"  [{'; '.join(sorted(tally.notes))}]" if tally.notes else ""
        lines.append(f"  {part:<44} {tally.cases:>7} cases {tally.seconds:>8.1f} s{extra}")
    lines.append(f"  {'total':<44} {total_cases:>7} cases {total_s:>8.1f} s")
    return lines


# --- the apps ------------------------------------------------------------------------------------
def flask_factory() -> Callable[..., Any]:
    """`impl_flask_baseline.create_app`, or a skip while that package does not exist yet."""
    try:
        module = importlib.import_module("impl_flask_baseline")
    except ModuleNotFoundError as exc:
        if exc.name != "impl_flask_baseline":
            raise  # the package exists but a dependency is missing: a real failure
        pytest.skip("impl_flask_baseline is not importable yet")
    return module.create_app  # type: ignore[no-any-return]


def flask_available() -> bool:
    try:
        importlib.import_module("impl_flask_baseline")
    except ModuleNotFoundError as exc:
        if exc.name != "impl_flask_baseline":
            raise
        return False
    return True


def contract_settings(dsn: str, **overrides: Any) -> Settings:
    # The fuzzers send many wrong passwords from one client: a limit would turn everything after
    # the first minute's failures into 429s (documented, so valid) and hide the handlers behind it.
    values: dict[str, Any] = {"login_rate_per_minute": 10_000, "login_client_rate_per_minute": 10_000}
    values.update(overrides)
    return make_settings(dsn, **values)


def fresh_database(settings: Settings) -> None:
    """Drop and create every table (the apps never create the schema themselves)."""
    db = Database(settings)
    try:
        db.drop_schema()
        db.create_schema()
    finally:
        db.dispose()


@dataclass(frozen=True)
class Seed:
    """A signed-in user with one deck and one card, so generated path ids sometimes exist."""

    token: str
    user_id: int
    deck_id: int
    card_id: int

    @property
    def authorization(self) -> str:
        return f"Bearer {self.token}"


SEED_USERNAME = "contract_user"
SEED_PASSWORD = "contract-password"


def seed(settings: Settings, username: str = SEED_USERNAME, password: str = SEED_PASSWORD) -> Seed:
    service = Service(settings)
    try:
        user = service.register({"username": username, "display_name": "Contract", "password": password})
        token = service.login({"username": username, "password": password}).access_token
        deck = service.create_deck(user.id, {"title": "Seeded deck", "description": "for the fuzzers"})
        card = service.create_card(user.id, deck.id, {"front": "seeded front", "back": "seeded back"})
        service.review_card(user.id, card.id, {"grade": 4})
        return Seed(token=token, user_id=user.id, deck_id=deck.id, card_id=card.id)
    finally:
        service.close()


# --- the committed OpenAPI document -----------------------------------------------------------
BEARER_SCHEME = "HTTPBearer"


def openapi_document() -> dict[str, Any]:
    """`contract/openapi.json`, plus the bearer security requirement where it is missing.

    The committed document documents a 401 on every authenticated operation but declares no
    `securitySchemes`, and schemathesis' `ignored_auth` check only probes operations that declare
    security. Until FastAPI documents its bearer dependency (then this adds nothing), the
    requirement is added here, identically for both REST apps, to exactly the operations that
    document 401 other than the login itself.
    """
    document: dict[str, Any] = json.loads(OPENAPI_PATH.read_text())
    return with_bearer_security(document)


def with_bearer_security(document: dict[str, Any]) -> dict[str, Any]:
    document = copy.deepcopy(document)
    schemes = document.setdefault("components", {}).setdefault("securitySchemes", {})
    declared = any(
        "security" in op for ops in document["paths"].values() for op in ops.values() if isinstance(op, dict)
    )
    if schemes or declared:
        return document  # the app documents it itself: use the committed document unchanged
    schemes[BEARER_SCHEME] = {"type": "http", "scheme": "bearer"}
    for path, operations in document["paths"].items():
        for operation in operations.values():
            if "401" in operation.get("responses", {}) and path != "/api/auth/token":
                operation["security"] = [{BEARER_SCHEME: []}]
    return document


def documents_bearer_security(document: dict[str, Any]) -> bool:
    return bool(document.get("components", {}).get("securitySchemes"))
