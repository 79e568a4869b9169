"""Micro-benchmarks behind the "Pydantic v2 vs v1", "orjson vs json" and SM-2 cost claims.

Run (not part of the default test run, which only collects `tests/`):

    /work/venv/bin/python -m pytest benchmarks --benchmark-json out.json -p no:cacheprovider -o addopts=""
    /work/venv/bin/python -m benchmarks.summarize out.json

Every benchmark sits in a group of two (`benchmark.group`), tagged `extra_info["role"]`
"baseline" (Pydantic v1 API, stdlib json) or "candidate" (Pydantic v2, orjson), so
`benchmarks/summarize.py` can pair them. The SM-2 groups have one member each (absolute cost).

The v1 twins below use `pydantic.v1` (shipped inside pydantic 2) with the same limits as
`flashcards.models`: strict types, `extra = forbid`, the same lengths and patterns. One pattern
detail: Python's `re` lets `$` match before a trailing newline (v1 would accept "alice\\n" as a
username) while pydantic-core's Rust regex does not, so the v1 twins end patterns with `\\Z`.
`test_twins_agree` checks the twins accept and refuse the same payloads as the v2 models.
"""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from pydantic import BaseModel, ValidationError
from pydantic import v1 as pv1
from pytest_benchmark.fixture import BenchmarkFixture

from flashcards import models as m
from flashcards import sm2

BASELINE, CANDIDATE = "baseline", "candidate"

# Most calls here take 0.5–50 µs. With the default min_time (5 µs) a round is one call, so the
# timer's own cost and resolution dominate and the medians come out quantized. 100 µs rounds
# average many calls each; a short warm-up fills caches before the first timed round.
# (Marker options win over the matching --benchmark-* command-line options.)
# The time per benchmark: 1 s by default; the bench runner sets it per profile, since it runs
# this file several times (independent processes) and pays for every run.
pytestmark = pytest.mark.benchmark(
    min_time=100e-6, max_time=float(os.environ.get("STACKBENCH_MICRO_MAX_TIME_S", "1.0")), warmup=True,
    warmup_iterations=1000,
)


def _v1_pattern(pattern: str) -> re.Pattern[str]:
    assert pattern.endswith("$")
    return re.compile(pattern[:-1] + r"\Z")


# --- Pydantic v1 twins of the domain models ------------------------------------------------------
class V1Username(pv1.ConstrainedStr):
    strict = True
    regex = _v1_pattern(m.USERNAME_PATTERN)


class V1DisplayName(pv1.ConstrainedStr):
    strict = True
    min_length, max_length = 1, m.DISPLAY_NAME_MAX
    regex = _v1_pattern(m.NO_NUL)


class V1Password(pv1.ConstrainedStr):
    strict = True
    min_length, max_length = m.PASSWORD_MIN, m.PASSWORD_MAX


class V1DeckTitle(pv1.ConstrainedStr):
    strict = True
    min_length, max_length = 1, m.DECK_TITLE_MAX
    regex = _v1_pattern(m.NO_NUL)


class V1DeckDescription(pv1.ConstrainedStr):
    strict = True
    max_length = m.DECK_DESCRIPTION_MAX
    regex = _v1_pattern(m.NO_NUL)


class V1CardSide(pv1.ConstrainedStr):
    strict = True
    min_length, max_length = 1, m.CARD_SIDE_MAX
    regex = _v1_pattern(m.NO_NUL)


class V1Grade(pv1.ConstrainedInt):
    strict = True
    ge, le = 0, 5


class V1Input(pv1.BaseModel):
    class Config:
        extra = pv1.Extra.forbid


class RegisterInV1(V1Input):
    username: V1Username
    display_name: V1DisplayName
    password: V1Password


class DeckInV1(V1Input):
    title: V1DeckTitle
    description: V1DeckDescription = V1DeckDescription("")


class CardInV1(V1Input):
    front: V1CardSide
    back: V1CardSide


class ReviewInV1(V1Input):
    grade: V1Grade


class CardOutV1(pv1.BaseModel):
    id: int
    deck_id: int
    front: str
    back: str
    ease: float
    interval_days: int
    repetitions: int
    lapses: int
    due_at: datetime
    created_at: datetime
    updated_at: datetime

    class Config:
        orm_mode = True


class CardPageV1(pv1.BaseModel):
    items: list[CardOutV1]
    next_cursor: str | None = None


# --- payloads ------------------------------------------------------------------------------------
T0 = datetime(2024, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)


def card_row(i: int) -> dict[str, Any]:
    """A CardOut as the service builds it from a row: aware datetimes, realistic text sizes."""
    return {
        "id": 1000 + i,
        "deck_id": 7,
        "front": f"Card {i}: what does the SM-2 easiness factor start at for a new card?",
        "back": "2.5 — it changes after every review and never drops below 1.3 (card text here).",
        "ease": 2.36,
        "interval_days": 14 + i,
        "repetitions": 3,
        "lapses": i % 2,
        "due_at": T0 + timedelta(days=14 + i),
        "created_at": T0 - timedelta(days=30),
        "updated_at": T0,
    }


PAYLOADS: dict[str, tuple[type[BaseModel], type[pv1.BaseModel], dict[str, Any]]] = {
    "register": (
        m.RegisterIn,
        RegisterInV1,
        {"username": "alice_01", "display_name": "Alice Example", "password": "correct horse 42"},
    ),
    "deck": (
        m.DeckIn,
        DeckInV1,
        {
            "title": "Spanish verbs — irregular preterite",
            "description": "Irregular preterite forms of the 60 most common Spanish verbs. " * 3,
        },
    ),
    "card": (
        m.CardIn,
        CardInV1,
        {"front": "tener (yo, pretérito)", "back": "tuve — e.g. «Ayer tuve que trabajar.»"},
    ),
    "review": (m.ReviewIn, ReviewInV1, {"grade": 4}),
    "card-out": (m.CardOut, CardOutV1, card_row(0)),
}
KINDS = list(PAYLOADS)
APIS = ["v1", "v2"]
ROLE = {"v1": BASELINE, "v2": CANDIDATE, "json": BASELINE, "orjson": CANDIDATE}

PAGE20 = [card_row(i) for i in range(20)]
CURSOR = "MjAyNC0wMy0yMVQxMjowMDowMFp8MTAxOQ"
# The typical response body: a page of 20 cards, JSON-ready (datetimes already ISO strings).
PAGE20_DOC = m.Page[m.CardOut](
    items=[m.CardOut.model_validate(r) for r in PAGE20], next_cursor=CURSOR
).model_dump(mode="json")
CONFIG_DOC = m.config_document(SimpleNamespace(max_body_bytes=64 * 1024)).model_dump(mode="json")
DOCS = {"page20": PAGE20_DOC, "config": CONFIG_DOC}


def stdlib_dumps(obj: Any) -> bytes:
    """What Starlette's JSONResponse does: compact separators, UTF-8, bytes out."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


def _dump(model: BaseModel | pv1.BaseModel) -> dict[str, Any]:
    return model.dict() if isinstance(model, pv1.BaseModel) else model.model_dump()


def _setup(benchmark: BenchmarkFixture, group: str, api: str) -> None:
    benchmark.group = group
    benchmark.extra_info["role"] = ROLE[api]


# --- (a) Pydantic v1 API vs v2 -------------------------------------------------------------------
@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("kind", KINDS)
def test_validate_dict(benchmark: BenchmarkFixture, kind: str, api: str) -> None:
    v2, v1, data = PAYLOADS[kind]
    _setup(benchmark, f"validate-dict-{kind}", api)
    fn = v1.parse_obj if api == "v1" else v2.model_validate
    out = benchmark(fn, data)
    assert _dump(out) == data


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("kind", KINDS)
def test_validate_json(benchmark: BenchmarkFixture, kind: str, api: str) -> None:
    v2, v1, data = PAYLOADS[kind]
    raw = orjson.dumps(data)
    _setup(benchmark, f"validate-json-{kind}", api)
    fn = v1.parse_raw if api == "v1" else v2.model_validate_json
    out = benchmark(fn, raw)
    assert _dump(out) == data


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("what", ["card-out", "page20"])
def test_serialize_json(benchmark: BenchmarkFixture, what: str, api: str) -> None:
    _setup(benchmark, f"serialize-json-{what}", api)
    model: BaseModel | pv1.BaseModel
    if api == "v1":
        model = (
            CardOutV1.parse_obj(PAGE20[0])
            if what == "card-out"
            else CardPageV1(items=[CardOutV1.parse_obj(r) for r in PAGE20], next_cursor=CURSOR)
        )
        out = benchmark(model.json)
    else:
        model = (
            m.CardOut.model_validate(PAGE20[0])
            if what == "card-out"
            else m.Page[m.CardOut](
                items=[m.CardOut.model_validate(r) for r in PAGE20], next_cursor=CURSOR
            )
        )
        out = benchmark(model.model_dump_json)
    decoded = json.loads(out)
    if what == "page20":
        assert len(decoded["items"]) == 20
        decoded = decoded["items"][0]
    assert datetime.fromisoformat(decoded["due_at"]) == PAGE20[0]["due_at"]


def test_twins_agree() -> None:
    """The v1 twins accept and refuse what the v2 models do (a benchmark of equals)."""
    bad: dict[str, list[dict[str, Any]]] = {
        "register": [
            {"username": "alice\n", "display_name": "A", "password": "12345678"},
            {"username": "Alice", "display_name": "A", "password": "12345678"},
            {"username": "al", "display_name": "A", "password": "12345678"},
            {"username": "alice", "display_name": "", "password": "12345678"},
            {"username": "alice", "display_name": "A\x00", "password": "12345678"},
            {"username": "alice", "display_name": "A", "password": "1234567"},
            {"username": "alice", "display_name": "A" * 65, "password": "12345678"},
        ],
        "deck": [
            {"title": ""},
            {"title": "x" * 201},
            {"title": "t", "description": "d" * 2001},
            {"title": "t\x00"},
            {"title": 5},
            {"title": "t", "extra": 1},
        ],
        "card": [{"front": "", "back": "b"}, {"front": "f"}, {"front": "f", "back": b"b"}],
        "review": [{"grade": g} for g in (True, False, 6, -1, 2.0, "3", None)],
    }
    for kind, (v2, v1, good) in PAYLOADS.items():
        assert v1.parse_obj(good).dict() == v2.model_validate(good).model_dump()
        for data in bad.get(kind, []):
            with pytest.raises(ValidationError):
                v2.model_validate(data)
            with pytest.raises(pv1.ValidationError):
                v1.parse_obj(data)
    assert DeckInV1.parse_obj({"title": "t"}).dict() == m.DeckIn(title="t").model_dump()


# --- (b) orjson vs stdlib json -------------------------------------------------------------------
@pytest.mark.parametrize("lib", ["json", "orjson"])
@pytest.mark.parametrize("doc", list(DOCS))
def test_json_dumps(benchmark: BenchmarkFixture, doc: str, lib: str) -> None:
    _setup(benchmark, f"json-dumps-{doc}", lib)
    out = benchmark(stdlib_dumps if lib == "json" else orjson.dumps, DOCS[doc])
    assert orjson.loads(out) == DOCS[doc]


@pytest.mark.parametrize("lib", ["json", "orjson"])
@pytest.mark.parametrize("doc", list(DOCS))
def test_json_loads(benchmark: BenchmarkFixture, doc: str, lib: str) -> None:
    _setup(benchmark, f"json-loads-{doc}", lib)
    raw = orjson.dumps(DOCS[doc])
    out = benchmark(json.loads if lib == "json" else orjson.loads, raw)
    assert out == DOCS[doc]


# --- (c) SM-2 ------------------------------------------------------------------------------------
# 50 reviews that stay in datetime's range: 10 grades (one lapse, one hard fail) repeated 5 times.
HISTORY_50 = [
    (q, T0 + timedelta(days=3 * i)) for i, q in enumerate([5, 4, 3, 5, 2, 4, 5, 3, 4, 1] * 5)
]
MID_STATE = sm2.replay(HISTORY_50[:4])  # repetitions 4: the ceil(I × EF) branch


def test_sm2_review_step(benchmark: BenchmarkFixture) -> None:
    benchmark.group = "sm2-review-step"
    out = benchmark(sm2.review, MID_STATE, 4, T0)
    assert out.repetitions == MID_STATE.repetitions + 1


def test_sm2_replay_50(benchmark: BenchmarkFixture) -> None:
    benchmark.group = "sm2-replay-50"
    out = benchmark(sm2.replay, HISTORY_50)
    assert out.lapses == 10
