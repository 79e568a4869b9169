"""Sweep sizing rules and the proxy annotation of a sample (pure); the end-to-end path is
`stackbench bench --profile smoke --scenario card --db-delay-ms 0,20 --stack …`."""

from __future__ import annotations

import dataclasses

import pytest

from loadtests.sweep import annotate
from loadtests.sweep_settings import (
    QUICK,
    STANDARD,
    Calibration,
    io_bound_size,
    sizing,
    variants_for,
)
from stackbench.cli import _delays

CAL = Calibration(cpu_ms=2.0, round_trips=4.0, source="test")


def test_goetz_rule_scales_threads_with_the_round_trip() -> None:
    assert io_bound_size(1, 0.0, CAL) == 1
    assert io_bound_size(1, 20.0, CAL) == 41  # 1 × (1 + 4 × 20 / 2)
    at0 = sizing("gunicorn-gthread", cores=1, workers=1, delay_ms=0.0, concurrency=256, cal=CAL)
    at20 = sizing("gunicorn-gthread", cores=1, workers=1, delay_ms=20.0, concurrency=256, cal=CAL)
    assert at0["threads"] == 2  # gunicorn's 2 × cores floor
    assert at20["threads"] == at20["pool_size"] == 41 and at20["pool_max_overflow"] == 0
    more = sizing("gunicorn-gthread", cores=1, workers=1, delay_ms=20.0, concurrency=256, cal=CAL, variant="more-threads")
    assert more["threads"] == 164


def test_async_pools_and_caps() -> None:
    pool = sizing("uvicorn", cores=1, workers=1, delay_ms=20.0, concurrency=256, cal=CAL)
    assert pool["threads"] is None and pool["pool_size"] == 41 and pool["pool_max_overflow"] == 0
    assert sizing("uvicorn", cores=1, workers=1, delay_ms=0.0, concurrency=256, cal=CAL)["pool_size"] == 20
    huge = sizing("gunicorn-gthread", cores=1, workers=1, delay_ms=500.0, concurrency=256, cal=CAL, variant="more-threads")
    assert huge["capped"] and huge["threads"] == 300
    assert sizing("gunicorn-gevent", cores=1, workers=2, delay_ms=5.0, concurrency=256, cal=CAL)["pool_size"] == 128
    with pytest.raises(ValueError):
        sizing("uvicorn", cores=1, workers=1, delay_ms=5.0, concurrency=8, cal=CAL, variant="more-threads")
    assert variants_for("gunicorn-gthread", True) == ("recommended", "more-threads")
    assert variants_for("uvicorn", True) == ("recommended",)


def test_profiles_sweep_sizes() -> None:
    assert len(QUICK.delays_ms) == 2 and len(QUICK.stacks) == 2
    assert QUICK.estimate_s() < 180
    assert set(STANDARD.delays_ms) == {0.0, 1.0, 5.0, 20.0}
    # issue 14's note: the crossover for card and review; intervals from three repetitions; TTFT swept
    assert {"card", "review"} <= set(STANDARD.scenarios) and STANDARD.repetitions >= 3
    assert len(STANDARD.ttft_ms) >= 2 and 300 in STANDARD.ttft_ms
    # the review transaction writes: each server is followed by a database restore, priced
    card_only = dataclasses.replace(STANDARD, scenarios=("card",))
    assert STANDARD.estimate_s() - card_only.estimate_s() > (
        STANDARD.repetitions * len(STANDARD.delays_ms) * len(STANDARD.stacks) * STANDARD.duration_s)
    assert STANDARD.estimate_s() < 16 * 60


def test_annotate_divides_by_requests() -> None:
    class Watch:
        def as_dict(self) -> dict[str, int]:
            return {"peak_total": 3, "peak_active": 2}

    sample = annotate({"requests": 1000, "extra": {}}, 5.0,
                      {"cpu_s": 1.0, "chunks_to_server": 10, "connections": 0},
                      {"cpu_s": 1.5, "chunks_to_server": 3010, "connections": 2}, Watch())  # type: ignore[arg-type]
    proxy = sample["extra"]["proxy"]
    assert proxy["round_trips_per_request"] == 3.0 and proxy["cpu_us_per_request"] == pytest.approx(500.0)
    assert sample["extra"]["db_delay_ms"] == 5.0 and sample["extra"]["db_connections"]["peak_total"] == 3


def test_cli_delays() -> None:
    import typer

    assert _delays("20,0,5,5") == [0.0, 5.0, 20.0]
    assert _delays(None) is None
    for bad in ("a,b", "-1", "nan", ""):
        with pytest.raises(typer.Exit):
            _delays(bad)
