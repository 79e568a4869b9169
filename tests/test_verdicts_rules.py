"""The verdict engine on synthetic results documents: one document per defect class of issue 13,
asserting the status (supported, partly, not supported, contradicted, unstable, indicative,
not measured, analogue) and that no ∞, negative bound or word/figure disagreement can appear."""

from __future__ import annotations

import copy
import json
import math
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from loadtests import evidence, rules
from loadtests import verdicts as v
from loadtests.profiles import PROFILES
from tests.test_verdicts_docs import capacity_cell, cell, doc, open_cell, rps_cell, sample, setup

REGISTRY = v.load_registry()
LATEST = Path(__file__).resolve().parents[1] / "reports" / "latest" / "results.json"
RPS_5X = REGISTRY.by_id("eas-simple-json-5x")  # config req/s, gevent → uvicorn, 5x
BASE, CAND = RPS_5X.baseline or "", RPS_5X.candidate or ""


def judge_rps(factor: float, n: int = 5, spread: float = 1.0, claim: v.Claim = RPS_5X) -> v.Verdict:
    return v.judge(claim, doc(rps_cell(BASE, "config", 1000.0, n),
                              rps_cell(CAND, "config", 1000.0 * factor, n, spread=spread)))


def agrees(verdict: v.Verdict) -> None:
    """The headline figure never points the other way from the word."""
    if verdict.measured is None:
        return
    if verdict.status in (v.SUPPORTED, v.PARTLY):
        assert verdict.measured > 1 and (verdict.ci95 is None or (verdict.ci95[0] or 0) > 1)
    if verdict.status == v.CONTRADICTED and verdict.unit == "x":
        assert verdict.measured < 1
    lo, hi = verdict.ci95 or (None, None)
    assert (lo is None or lo <= verdict.measured * (1 + 1e-9)) and (hi is None or verdict.measured <= hi * (1 + 1e-9))


# --- factor claims ------------------------------------------------------------------------------
def test_supported_when_the_interval_reaches_the_claim() -> None:
    verdict = judge_rps(6.0)
    assert verdict.status == v.SUPPORTED and verdict.label is None
    assert verdict.ci95 and (verdict.ci95[0] or 0) >= 5.0
    assert "Welch t-interval on log values" in (verdict.method or "")
    agrees(verdict)


def test_partly_supported_is_labelled_undershoot() -> None:
    verdict = judge_rps(2.0)
    assert verdict.status == v.PARTLY
    assert verdict.label == "undershoot: 2x measured against 5x claimed"
    agrees(verdict)


def test_a_point_past_the_claim_with_a_low_end_short_of_it_is_not_an_undershoot() -> None:
    # e.g. capacity bounds 87…114 against 8…9 users: 11.7x, but 87 ÷ 9 = 9.67x is below 10x
    est = evidence.Estimate(point=11.7, low=9.67, high=14.25, method="bounds", n=(2, 2))
    decision = rules.rule_factor(10.0, 10.0, True, est)
    assert decision.status == v.PARTLY and decision.label is not None
    assert decision.label.startswith("not shown at the claimed size: 11.7x measured against 10x claimed")
    assert "9.67x" in decision.label and "undershoot" not in decision.label
    assert rules.rule_factor(10.0, 10.0, True, replace(est, point=9.9)).label == \
        "undershoot: 9.9x measured against 10x claimed"


def test_not_supported_when_no_effect_beyond_noise() -> None:
    verdict = judge_rps(1.0, spread=3.0)
    assert verdict.status == v.NOT_SUPPORTED
    assert verdict.ci95 and (verdict.ci95[0] or 0) <= 1 <= (verdict.ci95[1] or 0)


def test_contradicted_when_the_effect_is_real_and_the_other_way() -> None:
    verdict = judge_rps(0.5)
    assert verdict.status == v.CONTRADICTED
    assert verdict.measured is not None and verdict.measured < 1
    agrees(verdict)


def test_overshoot_is_labelled_not_plain_support() -> None:
    claim = replace(RPS_5X, claimed=1.25, claimed_range=None)  # "20% more"
    verdict = judge_rps(3.0, claim=claim)
    assert verdict.status == v.SUPPORTED
    assert verdict.label == "overshoot: 3x measured against 1.25x claimed"
    # an at-least claim ("30%+") exceeded is plain support
    assert judge_rps(3.0, claim=replace(claim, at_least=True)).label is None


def test_unstable_when_the_judged_metric_is_noisy() -> None:
    verdict = judge_rps(6.0, spread=30.0)  # candidate req/s CV far above the limit
    assert verdict.status == v.UNSTABLE and verdict.leaning is not None
    assert "CV" in (verdict.label or "")


def test_indicative_below_the_minimum_n_never_supported() -> None:
    for n in (1, 3):
        verdict = judge_rps(20.0, n=n)
        assert verdict.status == v.INDICATIVE and verdict.leaning == v.SUPPORTED, n
    contra = judge_rps(0.1, n=1)
    assert contra.status == v.INDICATIVE and contra.leaning == v.CONTRADICTED
    assert contra.ci95 is None  # no interval from one sample a side


def test_quick_profile_yields_only_indicative() -> None:
    """reports/latest cut to what a quick run keeps: its repetitions per cell and its
    independent micro-benchmark runs (a standard run holds 5 of each)."""
    if not LATEST.is_file():
        pytest.skip("no reports/latest/results.json")
    quick = json.loads(LATEST.read_text())
    profile = PROFILES["quick"]
    for c in quick["cells"]:
        c["samples"] = c["samples"][:profile.repetitions]
    if isinstance(quick.get("micro"), dict) and "runs" in quick["micro"]:
        quick["micro"]["runs"] = quick["micro"]["runs"][:profile.micro_runs]
    found = v.judge_all(quick)
    assert {x.status for x in found} <= {v.INDICATIVE, v.NOT_MEASURED, v.NOT_TESTABLE, v.ANALOGUE}
    assert any(x.status == v.INDICATIVE for x in found)


# --- what is compared -----------------------------------------------------------------------------
def test_littles_law_violation_is_excluded_with_its_reason() -> None:
    bad = cell(BASE, "config", [sample(1000.0, mean_ms=500.0) for _ in range(5)])  # 64/1000 s = 64 ms
    verdict = v.judge(RPS_5X, doc(bad, rps_cell(CAND, "config", 6000.0)))
    assert verdict.status == v.NOT_MEASURED and verdict.measured is None
    assert verdict.excluded and verdict.excluded[0][0] == bad["id"]
    assert "Little's law violated" in verdict.excluded[0][1]


def test_timeouts_and_p50_below_cpu_cost_exclude() -> None:
    timeouts = rps_cell(CAND, "config", 6000.0, timeouts=3)
    verdict = v.judge(RPS_5X, doc(rps_cell(BASE, "config", 1000.0), timeouts))
    assert verdict.status == v.NOT_MEASURED and "timeouts" in verdict.excluded[0][1]
    cheap = rps_cell(CAND, "config", 6000.0, cpu_ms_per_request=50.0)  # p50 ≈ 9.6 ms < 50 ms CPU
    verdict = v.judge(RPS_5X, doc(rps_cell(BASE, "config", 1000.0), cheap))
    assert verdict.status == v.NOT_MEASURED and "CPU cost" in verdict.excluded[0][1]


@pytest.mark.parametrize("claim_id", ["eas-memory-20pct-less", "eas-workers-more-efficient"])
def test_unequal_setups_refused_for_memory_and_per_core(claim_id: str) -> None:
    claim = REGISTRY.by_id(claim_id)
    gevent = setup("gunicorn", processes=3, worker_class="gevent")
    d = doc(rps_cell(BASE, "config", 1000.0, rss=300 << 20, stack_setup=gevent),
            rps_cell(CAND, "config", 1000.0, rss=100 << 20))
    verdict = v.judge(claim, d)
    part = verdict.parts[0] if verdict.parts else verdict
    assert part.status == v.NOT_MEASURED and "not like for like" in (part.label or "")
    assert "3 processes" in (part.label or "")
    # the same processes on both sides: judged (PSS preferred over RSS)
    same = doc(rps_cell(BASE, "config", 1000.0, rss=300 << 20, pss=200 << 20),
               rps_cell(CAND, "config", 1000.0, rss=100 << 20, pss=100 << 20))
    judged = v.judge(claim, same)
    judged_part = judged.parts[0] if judged.parts else judged
    assert judged_part.status != v.NOT_MEASURED
    if claim.metric == "memory":
        assert judged.measured == pytest.approx(2.0, rel=0.01)


def test_latency_judged_only_at_equal_offered_load() -> None:
    claim = REGISTRY.by_id("eas-p50-5x")
    closed = doc(rps_cell(BASE, "config", 1000.0), rps_cell(CAND, "config", 6000.0))
    verdict = v.judge(claim, closed)
    assert verdict.status == v.NOT_MEASURED and "equal-offered-load" in (verdict.label or "")
    assert any("queueing" in row for row in verdict.sensitivity)
    equal = doc(open_cell(BASE, "config", 500.0, 60.0), open_cell(CAND, "config", 500.0, 10.0),
                open_cell(BASE, "config", 250.0, 30.0, fraction=0.25),
                open_cell(CAND, "config", 250.0, 9.0, fraction=0.25))
    judged = v.judge(claim, equal)
    assert judged.status == v.SUPPORTED and judged.level and "500 req/s" in judged.level
    assert judged.sensitivity and "250 req/s" in judged.sensitivity[0]


def test_average_claims_read_the_mean_not_p50() -> None:
    claim = replace(REGISTRY.by_id("mandarin-avg-response-33pct"), scenarios=("config",), concurrency=None)
    base = open_cell(claim.baseline or "", "config", 500.0, 30.0)
    cand = open_cell(claim.candidate or "", "config", 500.0, 10.0)
    for s in cand["samples"]:
        s["latency_ms"]["p50"] = 40.0  # p50 says worse, the mean says 3x better
    verdict = v.judge(claim, doc(base, cand))
    assert verdict.metric == "mean_ms" and verdict.measured == pytest.approx(3.0, rel=0.02)


def test_document_level_is_judged_and_others_are_sensitivity() -> None:
    claim = REGISTRY.by_id("eas-wrk-list-5x")  # wrk -c100 on "due"
    only64 = doc(rps_cell(BASE, "due", 1000.0), rps_cell(CAND, "due", 6000.0))
    missing = v.judge(claim, only64)
    assert missing.status == v.NOT_MEASURED and "c100" in (missing.label or "")
    both = doc(rps_cell(BASE, "due", 1000.0), rps_cell(CAND, "due", 2000.0),
               rps_cell(BASE, "due", 1000.0, concurrency=100), rps_cell(CAND, "due", 6000.0, concurrency=100))
    judged = v.judge(claim, both)
    assert judged.level == "c100" and judged.status == v.SUPPORTED
    assert judged.sensitivity == ("at c64: 2x [1.98, 2.02]",)


# --- capacity -------------------------------------------------------------------------------------
CAP = REGISTRY.by_id("tokimeki-10x-concurrent-users")  # chat users, 10x


def test_capacity_is_an_interval_never_infinite() -> None:
    held_none = doc(capacity_cell(CAP.baseline or "", "chat", 0, 10), capacity_cell(CAP.candidate or "", "chat", 100, None))
    verdict = v.judge(CAP, held_none)
    assert verdict.status == v.SUPPORTED  # lower end 100/10 = 10 reaches the claim
    assert verdict.ci95 == (10.0, None)
    assert "baseline held < 10, candidate held ≥ 100" in (verdict.label or "")
    assert "∞" not in json.dumps(verdict.to_dict(), ensure_ascii=False)
    short = doc(capacity_cell(CAP.baseline or "", "chat", 20, 40), capacity_cell(CAP.candidate or "", "chat", 100, 120))
    assert v.judge(CAP, short).status == v.PARTLY  # [100/40, 120/20] = [2.5, 6]


def test_capacity_baseline_limit_not_found_is_not_measured() -> None:
    both_held = doc(capacity_cell(CAP.baseline or "", "chat", 1000, None, max_tried=1000),
                    capacity_cell(CAP.candidate or "", "chat", 1000, None, max_tried=1000))
    verdict = v.judge(CAP, both_held)
    assert verdict.status == v.NOT_MEASURED and "limit was not found" in (verdict.label or "")


def test_capacity_threshold_and_single_search() -> None:
    claim = REGISTRY.by_id("mindweb-1000-concurrent-users")
    assert v.judge(claim, doc(capacity_cell(claim.candidate or "", "chat", 1200, 1400))).status == v.SUPPORTED
    assert v.judge(claim, doc(capacity_cell(claim.candidate or "", "chat", 500, 600))).status == v.CONTRADICTED
    untried = v.judge(claim, doc(capacity_cell(claim.candidate or "", "chat", 500, None, max_tried=500)))
    assert untried.status == v.NOT_MEASURED
    one = v.judge(claim, doc(capacity_cell(claim.candidate or "", "chat", 1200, 1400, n=1)))
    assert one.status == v.INDICATIVE and one.leaning == v.SUPPORTED


# --- registry semantics, combination ----------------------------------------------------------------
def test_parity_checks_are_analogue_not_support() -> None:
    claim = REGISTRY.by_id("mindweb-0-breaking-changes")
    assert v.judge(claim, doc(), checks={"contract-parity": "passed"}).status == v.ANALOGUE
    assert v.judge(claim, doc(), checks={"contract-parity": "failed"}).status == v.NOT_SUPPORTED
    assert v.judge(claim, doc(), checks={}).status == v.NOT_MEASURED


def test_skipped_premise_level_is_not_measured() -> None:
    skipped = cell(BASE, "config", [], status="skipped")
    verdict = v.judge(RPS_5X, doc(skipped, rps_cell(CAND, "config", 6000.0)))
    assert verdict.status == v.NOT_MEASURED and "skipped" in (verdict.label or "")
    errors = REGISTRY.by_id("tokimeki-error-rate-80pct")
    clean = doc(rps_cell(errors.baseline or "", "chat", 50.0, driver="chat", concurrency=10),
                rps_cell(errors.candidate or "", "chat", 50.0, driver="chat", concurrency=10))
    premise = v.judge(errors, clean)
    assert premise.status == v.NOT_MEASURED and "premise" in (premise.label or "")


def test_multi_part_combines_by_geometric_mean_and_headline_decides() -> None:
    claim = REGISTRY.by_id("mindweb-3-5x-faster")  # config, card, due; 3x
    b, c = claim.baseline or "", claim.candidate or ""
    d = doc(rps_cell(b, "config", 1000.0), rps_cell(c, "config", 4000.0),
            rps_cell(b, "card", 1000.0), rps_cell(c, "card", 2000.0),
            rps_cell(b, "due", 1000.0), rps_cell(c, "due", 4000.0))
    verdict = v.judge(claim, d)
    assert [p.status for p in verdict.parts] == [v.SUPPORTED, v.PARTLY, v.SUPPORTED]
    # the geometric mean (3.17x, joint interval above 3) decides, not the least favourable part
    assert verdict.measured == pytest.approx((4 * 2 * 4) ** (1 / 3), rel=0.01)
    assert verdict.status == v.SUPPORTED and "joint" in (verdict.method or "")
    agrees(verdict)
    weaker = doc(rps_cell(b, "config", 1000.0), rps_cell(c, "config", 2000.0),
                 rps_cell(b, "card", 1000.0), rps_cell(c, "card", 2000.0),
                 rps_cell(b, "due", 1000.0), rps_cell(c, "due", 4000.0))
    partly = v.judge(claim, weaker)
    assert partly.status == v.PARTLY and partly.label and partly.label.startswith("undershoot: 2.52x")
    agrees(partly)
    # a part below 1 beside parts above: the combined figure decides, never a part pointing the other way
    d2 = doc(rps_cell(b, "config", 1000.0), rps_cell(c, "config", 1500.0),
             rps_cell(b, "card", 1000.0), rps_cell(c, "card", 900.0))
    mixed = v.judge(replace(claim, scenarios=("config", "card")), d2)
    agrees(mixed)


FACTORS = [0.05, 0.3, 0.9, 1.0, 1.1, 2.0, 4.9, 5.0, 11.0, 300.0]


@pytest.mark.parametrize("factor", FACTORS)
@pytest.mark.parametrize("n", [1, 2, 5])
def test_no_infinity_no_negative_bound_word_matches_figure(factor: float, n: int) -> None:
    verdict = judge_rps(factor, n=n)
    text = json.dumps(verdict.to_dict(), ensure_ascii=False)
    assert "∞" not in text and not re.search(r"\binf\b", text.lower())
    for x in (verdict.measured, *(verdict.ci95 or ())):
        assert x is None or (math.isfinite(x) and x >= 0)
    agrees(verdict)


def test_a_verdict_refuses_infinity_or_negative_bounds() -> None:
    with pytest.raises(ValueError):
        v.Verdict("x", v.SUPPORTED, math.inf, None, "x", "r", ())
    with pytest.raises(ValueError):
        v.Verdict("x", v.SUPPORTED, 2.0, (-1.0, 3.0), "x", "r", ())


def test_rows_say_what_was_compared() -> None:
    gthread = setup("gunicorn", processes=3, worker_class="gthread", threads=2)
    verdict = judge_rps(6.0)
    assert verdict.what and "uvicorn: 1 process" in verdict.what and "config" in verdict.what
    assert verdict.n == (5, 5) and verdict.level == "c64"
    d = doc(rps_cell(BASE, "config", 1000.0, stack_setup=gthread), rps_cell(CAND, "config", 3000.0))
    assert "3 processes × 2 threads on core 0" in (v.judge(RPS_5X, d).what or "")


def test_judge_all_on_latest_and_rules_from_docstrings() -> None:
    if not LATEST.is_file():
        pytest.skip("no reports/latest/results.json")
    found = v.judge_all(json.loads(LATEST.read_text()))
    assert [x.id for x in found] == [c.id for c in REGISTRY.claims]
    assert {x.status for x in found} <= set(v.STATUSES)
    assert v.verdicts_json(found) == json.loads(json.dumps(v.verdicts_json(found)))
    text = v.rules_markdown()
    for rule in rules.RULES:
        first = " ".join((rule.__doc__ or "").split())[:40]
        assert first and first.split("{")[0] in text, rule.__name__
    assert "{" not in text.replace("{id}", "")  # every constant filled in


def _copy(d: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(d)


# --- WebSocket connection rate (ws-connect) ------------------------------------------------------
def _connect_cell(stack: str, per_s: float, n: int = 5, clients: int = 32, **kw: Any) -> dict[str, Any]:
    """A ws-connect cell as bench.py records it: connects/s in extra, the connect latency."""
    samples = [sample(per_s * w, concurrency=clients, mean_ms=2.0, p50_ms=1.8,
                      extra={"driver": "wsconnect", "connects_per_s": per_s * w, "clients": clients})
               for w in (0.98, 1.01, 1.0, 0.99, 1.02)[:n]]
    return cell(stack, "ws-connect", samples, driver="ws", concurrency=clients, **kw)


def test_ws_connections_are_judged_on_the_equal_client_connect_loop() -> None:
    """eas-ws-connections-4x reads connects/s from the ws-connect cells, the same client count on
    both stacks: a real verdict, where the fan-out cells (a connect burst at each stack's own
    subscriber level) gave none."""
    claim = REGISTRY.by_id("eas-ws-connections-4x")
    assert list(claim.scenarios) == ["ws-connect"]
    base, cand = claim.baseline or "", claim.candidate or ""
    verdict = v.judge(claim, doc(_connect_cell(base, 900.0), _connect_cell(cand, 1900.0)))
    assert verdict.status == v.PARTLY, verdict  # ≈ 2.1x measured against 4x claimed
    assert verdict.measured is not None and 2.0 < verdict.measured < 2.25
    assert verdict.label and verdict.label.startswith("undershoot")
    agrees(verdict)
    assert v.judge(claim, doc(_connect_cell(base, 500.0), _connect_cell(cand, 2400.0))).status == v.SUPPORTED
    # unequal client counts are not like for like: no common level, nothing judged
    unequal = v.judge(claim, doc(_connect_cell(base, 900.0, clients=32), _connect_cell(cand, 1900.0, clients=64)))
    assert unequal.status == v.NOT_MEASURED


def test_ws_connections_client_bound_cell_is_flagged_in_the_verdict() -> None:
    claim = REGISTRY.by_id("eas-ws-connections-4x")
    bound = _connect_cell(claim.candidate or "", 1900.0)
    bound["flags"] = ["client-bound"]
    verdict = v.judge(claim, doc(_connect_cell(claim.baseline or "", 900.0), bound))
    assert any("client-bound" in note for note in verdict.notes), verdict.notes
