"""The claims registry (loadtests/claims.py, claims.toml): every claim present, quotes verbatim,
validation catches malformed entries, stacks exist in the harness."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

import pytest

from loadtests import claims as c
from loadtests import verdicts as v

REGISTRY = v.load_registry()
SEED_FILES = {
    "000_57fe9695099fbf4f.txt",
    "001_c1d9f0b10a155135.txt",
    "002_c50e471482f2e288.txt",
    "003_57fb5b1820bfb984.txt",
    "004_33c9147706d47a04.txt",
}

def test_registry_holds_every_claim_with_verdict_or_reason() -> None:
    claims = REGISTRY.claims
    assert len(claims) >= 20
    assert len({c.id for c in claims}) == len(claims)
    assert {c.source for c in claims} == SEED_FILES
    for claim in claims:
        assert claim.source_title
        if claim.testable:
            assert claim.scenarios and claim.metric not in ("none",)
        else:
            assert claim.reason and len(claim.reason) > 20
    assert sum(c.testable for c in claims) >= 20
    # the setups the documents name
    assert REGISTRY.by_id("eas-simple-json-5x").baseline == "flask-gunicorn-gevent"
    assert REGISTRY.by_id("mindweb-3-5x-faster").baseline == "flask-waitress"
    assert all(s.scaling for s in REGISTRY.sources.values())


def test_every_quote_is_verbatim_in_its_seed() -> None:
    seeds = v.seeds_dir()
    if not seeds.is_dir():
        pytest.skip(f"seed documents not found at {seeds}; set ${v.SEEDS_ENV} to their folder")
    assert v.check_quotes(REGISTRY, seeds) == []


def test_check_quotes_reports_a_paraphrase(tmp_path: Path) -> None:
    claim = REGISTRY.claims[0]
    (tmp_path / claim.source).write_text("nothing quoted here", encoding="utf-8")
    bad = v.Registry(REGISTRY.sources, (claim,))
    problems = v.check_quotes(bad, tmp_path)
    assert problems and claim.id in problems[0]


def _raw() -> dict[str, Any]:
    return tomllib.loads(v.REGISTRY_PATH.read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d["claim"].append(copy.deepcopy(d["claim"][0])), "duplicate id"),
        (lambda d: d["claim"][0].update(scenarios=["homepage"]), "unknown scenario"),
        (lambda d: d["claim"][0].update(baseline="flask-dev-server"), "not a known stack"),
        (lambda d: d["claim"][0].update(kind="vibes"), "kind"),
        (lambda d: d["claim"][0].pop("quote"), "missing quote"),
        (lambda d: d["claim"][0].update(testable=False), "needs a reason"),
        (lambda d: d["claim"][0].update(cliamed=3), "unknown fields"),
        (lambda d: d["claim"][0].update(source="999.txt"), "unknown source"),
    ],
)
def test_validation_catches(mutate: Any, expected: str) -> None:
    raw = _raw()
    assert v.validate_registry_doc(raw) == []
    mutate(raw)
    problems = v.validate_registry_doc(raw)
    assert any(expected in p for p in problems), problems


def test_load_registry_raises_on_invalid_file(tmp_path: Path) -> None:
    path = tmp_path / "claims.toml"
    path.write_text(
        v.REGISTRY_PATH.read_text(encoding="utf-8").replace(
            'scenarios = ["chat"]', 'scenarios = ["chats"]', 1
        ),
        encoding="utf-8",
    )
    with pytest.raises(v.RegistryError, match="unknown scenario"):
        v.load_registry(path)


def test_display_quote_repairs_mojibake() -> None:
    assert v.display_quote("20 ‚Üí 1000+") == "20 → 1000+"  # Mac Roman
    assert v.display_quote("2k req/s â†’ FastAPI") == "2k req/s → FastAPI"  # cp1252
    assert v.display_quote("2-10s → 0.5-2s") == "2-10s → 0.5-2s"  # already fine
    assert v.display_quote("plain ASCII") == "plain ASCII"


# --------------------------------------------------------------------------- ratio claims
CLAIM_5X = REGISTRY.by_id("eas-simple-json-5x")  # config rps, gevent → uvicorn, 5x
BASE, CAND = CLAIM_5X.baseline or "", CLAIM_5X.candidate or ""



def test_registry_stacks_exist_in_the_harness() -> None:
    stacks = pytest.importorskip("loadtests.stacks", reason="harness stacks not importable").STACKS
    used = {
        s
        for c in REGISTRY.claims
        if "micro" not in c.scenarios
        for s in (c.baseline, c.candidate)
        if s
    }
    used |= {s for src in REGISTRY.sources.values() for s in (src.baseline, src.candidate)}
    assert used <= set(stacks), sorted(used - set(stacks))
    assert {s for s in c.STACKS if not s.startswith("hello-")} <= set(stacks)

def test_document_levels_and_metrics_in_the_registry() -> None:
    # c100 means c100: the documents' own load levels are registered
    assert REGISTRY.by_id("eas-wrk-list-5x").concurrency == 100
    assert REGISTRY.by_id("mandarin-rps-50pct-more").concurrency == 100
    # memory claims read PSS (RSS where absent), users held read the capacity searches
    assert {x.metric for x in REGISTRY.claims if "memory" in x.id} == {"memory"}
    assert all(x.metric == "capacity" for x in REGISTRY.claims if "users" in x.id and x.testable)
    assert REGISTRY.by_id("mandarin-30pct-performance").at_least


def test_facade_names_stay_importable() -> None:
    for name in ("load_registry", "judge_all", "judge", "Verdict", "rules_markdown", "STATUSES",
                 "verdicts_markdown", "verdicts_json", "display_quote", "format_measured"):
        assert hasattr(v, name), name
