"""The claims registry (loadtests/claims.toml) and the verdict engine (loadtests/verdicts.py)."""

from __future__ import annotations

import copy
import math
import tomllib
from pathlib import Path
from typing import Any

import pytest

from loadtests import verdicts as v

REGISTRY = v.load_registry()
SEED_FILES = {
    "000_57fe9695099fbf4f.txt",
    "001_c1d9f0b10a155135.txt",
    "002_c50e471482f2e288.txt",
    "003_57fb5b1820bfb984.txt",
    "004_33c9147706d47a04.txt",
}


# --------------------------------------------------------------------------- hand-made results
def sample(
    rps: float = 1000.0,
    p50: float = 10.0,
    p99: float = 40.0,
    *,
    requests: int = 5000,
    errors: int = 0,
    rss: int = 100 << 20,
    cpu: float = 99.0,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "requests": requests,
        "duration_s": 5.0,
        "rps": rps,
        "latency_ms": {"p50": p50, "p90": p50 * 2, "p99": p99, "p99_9": p99 * 2, "max": p99 * 3},
        "errors": {"connect": 0, "read": 0, "write": 0, "timeout": errors, "status": 0},
        "server_cpu_pct": cpu,
        "server_peak_rss_bytes": rss,
        "client_cpu_pct": 50.0,
        "extra": extra or {},
    }


def cell(
    stack: str,
    scenario: str,
    samples: list[dict[str, Any]],
    *,
    driver: str = "wrk",
    concurrency: int = 64,
    status: str = "ok",
    flags: list[str] | None = None,
    mode: str = "closed",
) -> dict[str, Any]:
    return {
        "id": f"{stack}/{scenario}/{driver}/c{concurrency}",
        "stack": stack,
        "scenario": scenario,
        "driver": driver,
        "mode": mode,
        "concurrency": concurrency,
        "target_rate": None,
        "status": status,
        "error": None,
        "samples": samples,
        "summary": {},
        "flags": flags or [],
    }


def rps_cells(stack: str, scenario: str, values: list[float], **kw: Any) -> dict[str, Any]:
    return cell(stack, scenario, [sample(rps=x) for x in values], **kw)


def doc(*cells: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "run_id": "test",
        "profile": "standard",
        "cells": list(cells),
        "stacks": {},
        **top,
    }


BASE_RPS = [2000.0, 2040.0, 1985.0, 2010.0, 1995.0]


def scaled(values: list[float], factor: float) -> list[float]:
    # Different noise on the candidate side, so the interval is not degenerate.
    wiggle = [1.0, 0.99, 1.01, 1.005, 0.995]
    return [x * factor * w for x, w in zip(values, wiggle, strict=True)]


# --------------------------------------------------------------------------- registry
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


def judge_rps(factor: float, **kw: Any) -> v.Verdict:
    results = doc(
        rps_cells(BASE, "config", BASE_RPS, **kw),
        rps_cells(CAND, "config", scaled(BASE_RPS, factor), **kw),
    )
    return v.judge(CLAIM_5X, results)


def test_ratio_supported_when_interval_reaches_claim() -> None:
    verdict = judge_rps(5.6)
    assert verdict.status == v.SUPPORTED
    assert verdict.ci95 is not None and verdict.ci95[0] >= 5.0
    measured = verdict.measured
    assert measured == pytest.approx(5.6, rel=0.02)
    assert measured is not None and verdict.ci95[0] <= measured <= verdict.ci95[1]
    assert verdict.unit == "x"
    assert set(verdict.evidence_cells) == {f"{BASE}/config/wrk/c64", f"{CAND}/config/wrk/c64"}
    assert verdict.absolutes and verdict.absolutes["baseline"] == pytest.approx(2000.0)
    assert any("carries across machines" in n for n in verdict.notes)


def test_ratio_partly_when_better_but_short_of_claim() -> None:
    verdict = judge_rps(2.5)
    assert verdict.status == v.PARTLY
    assert verdict.ci95 is not None and 1.0 < verdict.ci95[0] < 5.0


@pytest.mark.parametrize("factor", [1.0, 0.6])
def test_ratio_not_supported_when_interval_includes_or_below_one(factor: float) -> None:
    verdict = judge_rps(factor)
    assert verdict.status == v.NOT_SUPPORTED


def test_latency_is_oriented_so_lower_is_better() -> None:
    claim = REGISTRY.by_id("eas-p99-4x")  # p99 200 → 50 ms, 4x
    base = cell(BASE, "config", [sample(p99=x) for x in (200, 205, 198, 202, 199)])
    cand = cell(CAND, "config", [sample(p99=x) for x in (40, 41, 39, 40.5, 39.5)])
    verdict = v.judge(claim, doc(base, cand))
    assert verdict.status == v.SUPPORTED
    assert verdict.measured == pytest.approx(5.0, rel=0.02)
    assert verdict.absolutes is not None
    assert verdict.absolutes["candidate"] == pytest.approx(40.0)
    assert verdict.absolutes["claimed_candidate"] == "50 ms"
    swapped = v.judge(claim, doc({**base, "stack": CAND}, {**cand, "stack": BASE}))
    assert swapped.status == v.NOT_SUPPORTED


def test_memory_claim_as_factor() -> None:
    claim = REGISTRY.by_id("eas-memory-20pct-less")  # 150 → 120 MB = factor 1.25
    base = cell(BASE, "config", [sample(rss=int(x * 2**20)) for x in (150, 151, 149, 150, 150)])
    cand = cell(CAND, "config", [sample(rss=int(x * 2**20)) for x in (135, 136, 134, 135, 135)])
    verdict = v.judge(claim, doc(base, cand))
    assert verdict.status == v.PARTLY  # 1.11x: lower, but not 20% lower


def test_single_sample_uses_point_estimate_with_noise_margin() -> None:
    one = doc(rps_cells(BASE, "config", [2000.0]), rps_cells(CAND, "config", [11000.0]))
    verdict = v.judge(CLAIM_5X, one)
    assert verdict.status == v.SUPPORTED and verdict.ci95 is None
    assert any("no interval" in n for n in verdict.notes)
    close = doc(rps_cells(BASE, "config", [2000.0]), rps_cells(CAND, "config", [2060.0]))
    assert v.judge(CLAIM_5X, close).status == v.NOT_SUPPORTED  # 1.03x: within the margin


def test_injected_interval_function_decides() -> None:
    results = doc(
        rps_cells(BASE, "config", BASE_RPS), rps_cells(CAND, "config", scaled(BASE_RPS, 6))
    )
    verdict = v.judge(CLAIM_5X, results, ratio_ci=lambda num, den: (0.9, 9.0))
    assert verdict.status == v.NOT_SUPPORTED and verdict.ci95 == (0.9, 9.0)


# --------------------------------------------------------------------------- not measured
def test_not_measured_when_cells_are_missing_or_failed() -> None:
    quick = doc(rps_cells(BASE, "config", BASE_RPS))
    verdict = v.judge(CLAIM_5X, quick)
    assert verdict.status == v.NOT_MEASURED
    assert any(CAND in n for n in verdict.notes)
    failed = doc(
        rps_cells(BASE, "config", BASE_RPS), rps_cells(CAND, "config", BASE_RPS, status="failed")
    )
    verdict = v.judge(CLAIM_5X, failed)
    assert verdict.status == v.NOT_MEASURED
    assert any("not ok" in n for n in verdict.notes)


def test_not_measured_without_a_common_concurrency() -> None:
    results = doc(
        rps_cells(BASE, "config", BASE_RPS, concurrency=64),
        rps_cells(CAND, "config", BASE_RPS, concurrency=256),
    )
    assert v.judge(CLAIM_5X, results).status == v.NOT_MEASURED


def test_concurrency_nearest_the_documents_setup() -> None:
    claim = REGISTRY.by_id("eas-wrk-list-5x")  # wrk -c100 on a list endpoint
    results = doc(
        rps_cells(BASE, "due", BASE_RPS, concurrency=64),
        rps_cells(CAND, "due", scaled(BASE_RPS, 1.5), concurrency=64),
        rps_cells(BASE, "due", BASE_RPS, concurrency=128),
        rps_cells(CAND, "due", scaled(BASE_RPS, 6.0), concurrency=128),
        rps_cells(BASE, "due", BASE_RPS, concurrency=512),
        rps_cells(CAND, "due", scaled(BASE_RPS, 1.1), concurrency=512),
    )
    verdict = v.judge(claim, results)
    assert verdict.status == v.SUPPORTED
    assert all(c.endswith("/c128") for c in verdict.evidence_cells)


def test_client_bound_flag_is_reported() -> None:
    results = doc(
        rps_cells(BASE, "config", BASE_RPS),
        rps_cells(CAND, "config", scaled(BASE_RPS, 3), flags=["client-bound"]),
    )
    verdict = v.judge(CLAIM_5X, results)
    assert any("lower bound" in n for n in verdict.notes)


# --------------------------------------------------------------------------- several scenarios
def test_multi_scenario_combination_and_headline() -> None:
    claim = REGISTRY.by_id("eas-3-5x-faster-api")  # config, card, due; 3x
    cells = []
    for scenario, factor in (("config", 4.0), ("card", 3.5), ("due", 1.6)):
        cells += [
            rps_cells(BASE, scenario, BASE_RPS),
            rps_cells(CAND, scenario, scaled(BASE_RPS, factor)),
        ]
    verdict = v.judge(claim, doc(*cells))
    assert verdict.status == v.PARTLY
    assert [p.status for p in verdict.parts] == [v.SUPPORTED, v.SUPPORTED, v.PARTLY]
    assert verdict.scenario == "due" and verdict.measured == pytest.approx(1.6, rel=0.02)
    all_good = []
    for scenario in ("config", "card", "due"):
        all_good += [
            rps_cells(BASE, scenario, BASE_RPS),
            rps_cells(CAND, scenario, scaled(BASE_RPS, 4.0)),
        ]
    assert v.judge(claim, doc(*all_good)).status == v.SUPPORTED
    # a scenario the run lacks does not count against the claim; none at all: not measured
    assert v.judge(claim, doc(*all_good[:2])).status == v.SUPPORTED
    assert v.judge(claim, doc()).status == v.NOT_MEASURED


def test_threshold_latency() -> None:
    claim = REGISTRY.by_id("sophia-sub-200ms")  # candidate p50 < 200 ms in four scenarios
    fast = [
        cell(CAND, s, [sample(p50=x) for x in (20, 21, 19, 20, 22)])
        for s in ("config", "card", "due", "review")
    ]
    fast[1] = cell(CAND, "card", [sample(p50=x) for x in (90, 91, 89, 90, 92)])
    verdict = v.judge(claim, doc(*fast))
    assert verdict.status == v.SUPPORTED and verdict.unit == "ms"
    assert verdict.scenario == "card"  # headline: the slowest scenario, all being supported
    slow_review = [*fast[:3], cell(CAND, "review", [sample(p50=x) for x in (300, 310, 290)])]
    verdict = v.judge(claim, doc(*slow_review))
    assert verdict.status == v.PARTLY
    assert verdict.scenario == "review" and verdict.measured == pytest.approx(300)
    borderline = [cell(CAND, "config", [sample(p50=x) for x in (150, 190, 240, 195, 180)])]
    assert v.judge(claim, doc(*borderline)).parts[0].status == v.PARTLY


def test_mean_falls_back_to_p50_and_says_so() -> None:
    claim = REGISTRY.by_id("sophia-avg-under-200ms")
    verdict = v.judge(claim, doc(cell(CAND, "config", [sample(p50=30)] * 3)))
    assert verdict.parts[0].status == v.SUPPORTED
    assert any("p50 stands in" in n for n in verdict.parts[0].notes)


# --------------------------------------------------------------------------- sustained users
def chat_cell(stack: str, sustained: list[float], tried: float = 2000) -> dict[str, Any]:
    samples = [sample(extra={"max_sustained": s, "max_tried": tried}) for s in sustained]
    return cell(stack, "chat", samples, driver="chat", concurrency=int(tried))


def test_sustained_users_threshold() -> None:
    claim = REGISTRY.by_id("mindweb-1000-concurrent-users")
    cand = claim.candidate or ""
    assert v.judge(claim, doc(chat_cell(cand, [1200, 1300, 1250]))).status == v.SUPPORTED
    assert v.judge(claim, doc(chat_cell(cand, [800, 850, 820]))).status == v.NOT_SUPPORTED
    capped = v.judge(claim, doc(chat_cell(cand, [500, 500, 500], tried=500)))
    assert capped.status == v.NOT_MEASURED
    assert any("no level" in n for n in capped.notes)


def test_sustained_users_ratio_from_extra() -> None:
    claim = REGISTRY.by_id("mindweb-concurrent-users-50x")  # 20 → 1000+, 50x
    base, cand = claim.baseline or "", claim.candidate or ""
    verdict = v.judge(
        claim, doc(chat_cell(base, [16, 16, 20, 16]), chat_cell(cand, [1500, 1400, 1600, 1500]))
    )
    assert verdict.status == v.SUPPORTED and verdict.measured == pytest.approx(1500 / 16)
    verdict = v.judge(
        claim, doc(chat_cell(base, [100, 110, 90]), chat_cell(cand, [1000, 1100, 900]))
    )
    assert verdict.status == v.PARTLY


def test_sustained_users_derived_from_cells() -> None:
    claim = REGISTRY.by_id("tokimeki-10x-concurrent-users")  # 10x
    base, cand = claim.baseline or "", claim.candidate or ""
    cells = []
    for n in (10, 100, 1000):
        base_errors = 0 if n == 10 else 400
        cells.append(cell(base, "chat", [sample(errors=base_errors)], driver="chat", concurrency=n))
        slo = n < 1000
        cells.append(
            cell(cand, "chat", [sample(extra={"slo_met": slo})], driver="chat", concurrency=n)
        )
    verdict = v.judge(claim, doc(*cells))
    assert verdict.measured == pytest.approx(10.0)
    assert verdict.status == v.SUPPORTED and verdict.ci95 is None
    assert any("derived" in n for n in verdict.notes)


# --------------------------------------------------------------------------- special cases
def test_error_rate_without_baseline_errors_is_not_supported() -> None:
    claim = REGISTRY.by_id("tokimeki-error-rate-80pct")
    base, cand = claim.baseline or "", claim.candidate or ""
    clean = doc(
        cell(base, "chat", [sample()] * 3, driver="chat"),
        cell(cand, "chat", [sample()] * 3, driver="chat"),
    )
    verdict = v.judge(claim, clean)
    assert verdict.status == v.NOT_SUPPORTED and any(
        "nothing to reduce" in n for n in verdict.notes
    )
    failing = doc(
        cell(base, "chat", [sample(errors=500)] * 3, driver="chat"),
        cell(cand, "chat", [sample()] * 3, driver="chat"),
    )
    verdict = v.judge(claim, failing)
    assert verdict.status == v.SUPPORTED and verdict.measured == math.inf
    assert verdict.to_dict()["measured"] == "inf"


def test_not_testable_claims_carry_their_reason() -> None:
    claim = REGISTRY.by_id("sophia-vector-search-50ms")
    verdict = v.judge(claim, doc())
    assert verdict.status == v.NOT_TESTABLE and "vector" in verdict.notes[0]


def test_check_claims() -> None:
    claim = REGISTRY.by_id("mandarin-sm2-same-results")
    assert v.judge(claim, doc(), checks={"sm2-parity": "passed"}).status == v.SUPPORTED
    assert v.judge(claim, doc(), checks={"sm2-parity": False}).status == v.NOT_SUPPORTED
    assert v.judge(claim, doc()).status == v.NOT_MEASURED
    assert v.judge(claim, doc(checks={"sm2-parity": "passed"})).status == v.SUPPORTED


def bench(group: str, role: str, median: float, spread: float = 0.02) -> dict[str, Any]:
    data = [median * (1 + spread * ((i % 7) - 3) / 3) for i in range(200)]
    return {
        "group": group,
        "name": f"test_{group}[{role}]",
        "fullname": f"b::{group}[{role}]",
        "extra_info": {"role": role},
        "stats": {"median": median, "q1": median * 0.98, "q3": median * 1.02, "data": data},
    }


def test_micro_claim_from_pytest_benchmark_json() -> None:
    claim = REGISTRY.by_id("sophia-pydantic-v2-20x")
    micro = {
        "benchmarks": [
            bench("validate-dict-card", "baseline", 50e-6),
            bench("validate-dict-card", "candidate", 2e-6),
            bench("validate-json-card", "baseline", 60e-6),
            bench("validate-json-card", "candidate", 2e-6),
            bench("json-dumps-page20", "baseline", 9e-6),
            bench("json-dumps-page20", "candidate", 1e-6),
        ]
    }
    verdict = v.judge(claim, doc(), micro=micro)
    assert verdict.status == v.SUPPORTED
    assert [p.scenario for p in verdict.parts] == [
        "micro:validate-dict-card",
        "micro:validate-json-card",
    ]
    micro["benchmarks"][1] = bench("validate-dict-card", "candidate", 8e-6)  # 6.25x only
    assert v.judge(claim, doc(), micro=micro).status == v.PARTLY
    assert v.judge(claim, doc()).status == v.NOT_MEASURED
    no_data = copy.deepcopy(micro)
    for b in no_data["benchmarks"]:
        del b["stats"]["data"]
    part = v.judge(claim, doc(), micro=no_data).parts[0]
    assert part.ci95 is None and any("IQR bracket" in n for n in part.notes)


# --------------------------------------------------------------------------- judge_all, rules
def test_judge_all_gives_every_claim_a_status() -> None:
    verdicts = v.judge_all(doc(rps_cells(BASE, "config", BASE_RPS)))
    assert [x.id for x in verdicts] == [c.id for c in REGISTRY.claims]
    assert {x.status for x in verdicts} <= set(v.STATUSES)
    untestable = [x for x in verdicts if x.status == v.NOT_TESTABLE]
    assert len(untestable) == sum(not c.testable for c in REGISTRY.claims)
    table = v.verdicts_markdown(verdicts, REGISTRY)
    assert table.count("\n") == len(verdicts) + 1


def test_rules_markdown_states_the_rules() -> None:
    text = v.rules_markdown()
    assert "Ratios, not absolute numbers, carry across machines" in text
    for kind in v.KINDS:
        assert f"**{kind}**" in text
    assert "lower bound ≥ the claimed" in text
    assert "extra.max_sustained" in text and "role" in text


def test_bootstrap_interval_is_reproducible_and_brackets_the_ratio() -> None:
    num, den = scaled(BASE_RPS, 3.0), BASE_RPS
    ci = v.bootstrap_ratio_ci(num, den)
    assert ci == v.bootstrap_ratio_ci(num, den)
    assert ci is not None and ci[0] <= 3.0 * 1.01 and ci[1] >= 3.0 * 0.99
    assert v.bootstrap_ratio_ci(num[:2], den) is None


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
    assert {s for s in v.STACKS if not s.startswith("hello-")} <= set(stacks)
