"""The latency-sweep report section (`loadtests/report/sweep.py`, `crossover.py`) on small synthetic sweeps: the
crossover is the smallest delay whose ratio interval lies above 1, "no crossover" only where
every delay had an interval, and too few samples (or a cell failing its sanity checks) is
"not enough data", never a crossover."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from loadtests import report
from loadtests.report import crossover, sweep
from loadtests.report.document import Table

FLASK, FAST = "flask-gunicorn-gthread", "rest-uvicorn"
CONNS = 64


def sample(rps: float, *, timeouts: int = 0) -> dict[str, Any]:
    """A closed-loop sample that obeys Little's law (mean = N / X) and whose p50 lies above its
    CPU cost, so the sanity checks pass unless told otherwise."""
    mean = 1000.0 * CONNS / rps
    return {"requests": int(rps * 3), "duration_s": 3.0, "rps": rps, "server_cpu_s": 0.5,
            "latency_ms": {"p50": mean * 0.9, "p90": mean * 1.5, "p99": mean * 2, "p99_9": mean * 3,
                           "max": mean * 4, "mean": mean},
            "errors": {"timeout": timeouts} if timeouts else {},
            "extra": {"db_delay_ms": 0, "proxy": {"cpu_us_per_request": 40.0},
                      "db_connections": {"peak_total": 12, "peak_active": 9}}}


def cell(stack: str, delay: float, rps: list[float], variant: str = "recommended", scenario: str = "card",
         **kw: Any) -> dict[str, Any]:
    cid = f"{stack}/{scenario}/wrk/c{CONNS}/db{delay:g}ms" + ("" if variant == "recommended" else f"/{variant}")
    return {"id": cid, "stack": stack, "scenario": scenario, "driver": "wrk", "mode": "closed",
            "concurrency": CONNS, "status": "ok", "samples": [sample(r, **kw) for r in rps], "summary": {},
            "flags": [], "family": "latency-sweep", "db_delay_ms": delay, "upstream_ttft_ms": None,
            "variant": variant,
            "setup": {"server": "x", "processes": 1, "workers": 1, "cores": [0], "threads_per_worker": 8,
                      "sizing": {"pool_size": 8, "pool_max_overflow": 0}}}


def jitter(level: float, n: int) -> list[float]:
    return [level * (1 + 0.01 * ((i % 3) - 1)) for i in range(n)]


def doc(cells: list[dict[str, Any]]) -> dict[str, Any]:
    return {"sweep": {"settings": {"delays_ms": [0, 5, 20], "repetitions": 5, "concurrency": CONNS,
                                   "duration_s": 3.0, "open_loop_fraction": None},
                      "rule": "N = cores × (1 + W/C)",
                      "proxy_overhead": {"added_p50_ms": 0.11, "proxy_cpu_us_per_round_trip": 120, "round_trips": 2000},
                      "calibration": {}, "cells": cells}}


def crossover_of(cells: list[dict[str, Any]], base: str = FLASK, variant: str = "recommended") -> str:
    grid, _ = crossover.grid(doc(cells)["sweep"], "card", "closed")
    _, found = crossover.ratio_rows(grid, "rps")
    return crossover.crossover(found[(crossover.Config(base, variant), crossover.Config(FAST))])


def test_crossover_is_the_smallest_delay_where_fastapi_is_significantly_faster() -> None:
    flask = {0: 1000, 5: 500, 20: 150}
    fast = {0: 900, 5: 800, 20: 700}  # slower at 0 ms, faster from 5 ms on
    cells = [cell(FLASK, d, jitter(v, 5)) for d, v in flask.items()] + [cell(FAST, d, jitter(v, 5)) for d, v in fast.items()]
    text = crossover_of(cells)
    assert text.startswith("**5 ms**"), text
    assert "indicative" not in text  # five samples a side
    grid, _ = crossover.grid(doc(cells)["sweep"], "card", "closed")
    _, found = crossover.ratio_rows(grid, "rps")
    readings = {p.delay: p.reading for p in found[(crossover.Config(FLASK), crossover.Config(FAST))]}
    assert readings == {0.0: "Flask significantly faster", 5.0: "FastAPI significantly faster",
                        20.0: "FastAPI significantly faster"}
    ratio_at_20 = found[(crossover.Config(FLASK), crossover.Config(FAST))][2].estimate
    assert ratio_at_20 is not None and 4.5 < ratio_at_20.point < 4.8  # 700 / 150


def test_no_crossover_when_no_delay_shows_a_significant_lead() -> None:
    cells = [cell(FLASK, d, jitter(1000 / (1 + d / 10), 5)) for d in (0, 5, 20)]
    cells += [cell(FAST, d, jitter(990 / (1 + d / 10), 5)[::-1]) for d in (0, 5, 20)]
    text = crossover_of(cells)
    assert text == "no crossover within 0–20 ms"


def test_too_few_repetitions_is_not_enough_data() -> None:
    cells = [cell(FLASK, d, [1000.0 / (1 + d)]) for d in (0, 5, 20)] + [cell(FAST, d, [900.0]) for d in (0, 5, 20)]
    text = crossover_of(cells)
    assert text == "not enough data at any delay"
    mixed = [*cells, cell(FLASK, 50, jitter(100, 3)), cell(FAST, 50, jitter(101, 3)[::-1])]
    assert crossover_of(mixed) == "not enough data at 0 ms (n < 2), 5 ms (n < 2), 20 ms (n < 2); no crossover at 50 ms"


def test_a_lead_with_few_samples_is_indicative_and_gaps_are_named() -> None:
    cells = [cell(FLASK, 0, [1000.0]), cell(FAST, 0, [990.0]),  # one sample: no interval at 0 ms
             cell(FLASK, 20, jitter(150, 3)), cell(FAST, 20, jitter(700, 3))]
    text = crossover_of(cells)
    assert text.startswith("**20 ms**")
    assert "could be lower: not enough data at 0 ms (n < 2)" in text
    assert "indicative: n = 3/3 < 5" in text


def test_a_cell_failing_its_sanity_checks_does_not_count() -> None:
    cells = [cell(FLASK, 20, jitter(150, 5)), cell(FAST, 20, jitter(700, 5), timeouts=3)]
    assert crossover_of(cells) == "not enough data at any delay"


def test_more_threads_is_its_own_baseline() -> None:
    cells = [cell(FLASK, 20, jitter(150, 5)), cell(FLASK, 20, jitter(720, 5), "more-threads"),
             cell(FAST, 20, jitter(700, 5))]
    assert crossover_of(cells).startswith("**20 ms**")
    assert crossover_of(cells, variant="more-threads") == "no crossover at 20 ms"


def test_section_renders_tables_and_chart(tmp_path: Path) -> None:
    assert "loadtests.report.sweep:sweep_section" in report.SECTION_BUILDERS
    cells = [cell(FLASK, d, jitter(v, 5)) for d, v in {0: 1000, 20: 150}.items()]
    cells += [cell(FAST, d, jitter(v, 5)) for d, v in {0: 900, 20: 700}.items()]
    built = sweep.sweep_section(doc(cells), tmp_path)
    assert built is not None
    tables = [b for b in built.blocks if isinstance(b, Table)]
    crossings = next(t for t in tables if t.header == ["scenario", "pair", "crossover"])
    assert crossings.rows == [["card", f"{FAST} vs {FLASK}", crossover_of(cells)]]
    details = tables[1]
    assert [r[:2] for r in details.rows] == [[FLASK, "0"], [FLASK, "20"], [FAST, "0"], [FAST, "20"]]
    assert "n=5" in details.rows[0][3] and "CV" in details.rows[0][3]
    assert (tmp_path / "sweep-card-throughput.png").stat().st_size > 1000
    assert sweep.sweep_section({"cells": []}, tmp_path) is None


def test_a_database_claim_lists_the_sweep_as_sensitivity_rows() -> None:
    """The verdict stays judged on the main matrix; the sweep adds one row per round trip."""
    from loadtests import verdicts
    from tests.test_verdicts_docs import doc as main_doc
    from tests.test_verdicts_docs import rps_cell

    claim = verdicts.load_registry().by_id("eas-db-query-5x")  # card req/s, gevent → uvicorn
    base, cand = claim.baseline or "", claim.candidate or ""
    results = main_doc(rps_cell(base, "card", 1000.0), rps_cell(cand, "card", 900.0))
    plain = verdicts.judge(claim, results)
    swept = [cell(base, 0, jitter(1000, 5)), cell(cand, 0, jitter(900, 5)),
             cell(base, 20, jitter(150, 5)), cell(cand, 20, jitter(700, 5), timeouts=2),
             cell(base, 20, jitter(800, 5), "more-threads")]  # not the stack's recommended sizing: left out
    results["sweep"] = doc(swept)["sweep"]
    verdict = verdicts.judge(claim, results)
    assert (verdict.status, verdict.measured) == (plain.status, plain.measured)
    added = [r for r in verdict.sensitivity if r.startswith("sweep, ")]
    assert len(added) == 2
    assert added[0].startswith("sweep, 0 ms injected DB round trip (c64): 0.9x [")
    assert added[1].startswith("sweep, 20 ms injected DB round trip (c64): excluded (") and "timeouts" in added[1]
    # each round trip reads as a verdict of its own: 0.9x [< 1] is contradicted (5 samples a side)
    assert added[0].endswith("→ contradicted (0.9x measured against 5x claimed)"), added[0]
    assert "→" not in added[1]  # an excluded figure gets no word
    three = {**results, "sweep": doc([cell(base, 5, jitter(500, 3)), cell(cand, 5, jitter(1200, 3))])["sweep"]}
    row = next(r for r in verdicts.judge(claim, three).sensitivity if r.startswith("sweep, 5 ms"))
    assert row.endswith("→ indicative, leans partly supported (n = 3/3 < 5)"), row


def test_review_gets_its_own_crossover_row_table_and_chart(tmp_path: Path) -> None:
    """Standard sweeps card and review (issue 14's note: the crossover for both)."""
    cells = []
    for scenario, flask, fast in (("card", {0: 1000, 20: 150}, {0: 900, 20: 700}),
                                  ("review", {0: 400, 20: 40}, {0: 380, 20: 90})):
        cells += [cell(FLASK, d, jitter(v, 3), scenario=scenario) for d, v in flask.items()]
        cells += [cell(FAST, d, jitter(v, 3), scenario=scenario) for d, v in fast.items()]
    built = sweep.sweep_section(doc(cells), tmp_path)
    assert built is not None
    tables = [b for b in built.blocks if isinstance(b, Table)]
    crossings = next(t for t in tables if t.header == ["scenario", "pair", "crossover"])
    assert [r[0] for r in crossings.rows] == ["card", "review"]
    assert crossings.rows[1][2].startswith("**20 ms**") and "indicative" in crossings.rows[1][2]
    assert "### review" in built.blocks
    ratios = [t for t in tables if t.header[:2] == ["pair", "delay ms"]]
    assert len(ratios) == 2 and [r[1] for r in ratios[1].rows] == ["0", "20"]
    assert (tmp_path / "sweep-review-throughput.png").stat().st_size > 1000


def chat_cell(stack: str, ttft_ms: int, ttft_p50: list[float]) -> dict[str, Any]:
    samples = []
    for v in ttft_p50:
        s = sample(50.0)
        s["extra"] = {**s["extra"], "ttft_ms": {"p50": v, "p99": v * 1.2}, "upstream_ttft_ms": ttft_ms}
        samples.append(s)
    return {"id": f"{stack}/chat/chat/c100/ttft{ttft_ms}ms", "stack": stack, "scenario": "chat", "driver": "chat",
            "mode": "closed", "concurrency": 100, "status": "ok", "samples": samples, "summary": {}, "flags": [],
            "family": "latency-sweep", "db_delay_ms": None, "upstream_ttft_ms": ttft_ms, "variant": "recommended",
            "setup": {"server": "x", "processes": 1, "workers": 1, "cores": [0], "threads_per_worker": 8}}


def test_ttft_table_shows_the_ratio_per_upstream_ttft(tmp_path: Path) -> None:
    cells = [chat_cell(FLASK, 300, [3000, 3100, 2950]), chat_cell(FAST, 300, [330, 340, 320]),
             chat_cell(FLASK, 1000, [10500, 10600, 10400]), chat_cell(FAST, 1000, [1300, 1350, 1320])]
    blocks = sweep.ttft_blocks(doc(cells)["sweep"])
    ratios = next(b for b in blocks if isinstance(b, Table) and b.header[:2] == ["pair", "upstream TTFT ms"])
    assert [r[1] for r in ratios.rows] == ["300", "1000"]
    assert all(r[2].endswith("]") and "x [" in r[2] for r in ratios.rows), ratios.rows


def test_a_database_verdict_names_the_round_trip_it_was_judged_at_and_why() -> None:
    """The round trip and its reason come from the run: the proxy's direct measurement, the main
    matrix's repetitions and the sweep's delays (none hard-coded)."""
    from loadtests import verdict_render, verdicts
    from tests.test_verdicts_docs import doc as main_doc
    from tests.test_verdicts_docs import rps_cell

    claim = verdicts.load_registry().by_id("eas-db-query-5x")
    base, cand = claim.baseline or "", claim.candidate or ""
    results = main_doc(rps_cell(base, "card", 1000.0), rps_cell(cand, "card", 900.0))
    bare = verdict_render.compared_text(verdicts.judge(claim, results))
    assert "DB round trip judged at: the main matrix's local PostgreSQL, no injected delay" in bare
    assert "round trip not measured in this run" in bare and "no sweep cells for this pair" in bare
    results["sweep"] = doc([cell(base, d, jitter(1000, 3)) for d in (0, 5, 20)]
                           + [cell(cand, d, jitter(900, 3)) for d in (0, 5, 20)])["sweep"]
    results["sweep"]["proxy_overhead"]["direct_p50_ms"] = 0.0734
    text = verdict_render.compared_text(verdicts.judge(claim, results))
    assert "0.073 ms per round trip (median of 2000 direct `SELECT 1`s)" in text
    assert "the sweep (5 repetitions of 3 s) gives the factor at 0/5/20 ms injected" in text
    for d in (0, 5, 20):  # every swept delay with its ratio and interval
        assert f"sweep, {d} ms injected DB round trip (c64): 0.9" in text
    config = verdicts.judge(verdicts.load_registry().by_id("eas-simple-json-5x"), results)
    assert "DB round trip" not in verdict_render.compared_text(config)  # config reads no database
