"""One sample of a cell (one fresh server start + one load run) and the pieces it is made of:
latency, writes, a capacity search's outcome; `Summary`, a metric's statistics over samples."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import Field, model_validator

from loadtests.jsontypes import Count, JsonModel, Num
from loadtests.metrics import METRICS

LATENCY_KEYS = ("p50", "p90", "p99", "p99_9", "max", "mean")


class Latency(JsonModel):
    """Milliseconds; `mean` where the driver records it (wrk, locust, openloop)."""

    p50: Num | None = None
    p90: Num | None = None
    p99: Num | None = None
    p99_9: Num | None = None
    max: Num | None = None
    mean: Num | None = None

    @model_validator(mode="after")
    def _not_negative(self) -> Latency:
        for key in LATENCY_KEYS:
            value = getattr(self, key)
            if value is not None and value < 0:
                raise ValueError(f"latency {key} is negative ({value})")
        return self


class Writes(JsonModel):
    acknowledged: Num
    stored: Num


class Probe(JsonModel):
    level: Count
    held: bool
    reasons: list[str] = Field(default_factory=list)


class Capacity(JsonModel):
    """A capacity search's outcome: held_lo met the objective, failed_hi (None: never failed
    up to max_tried) did not; the true capacity lies in [held_lo, failed_hi)."""

    held_lo: Count
    failed_hi: Count | None
    resolution: Num
    max_tried: Count
    objective: str
    probes: list[Probe] = Field(default_factory=list)

    @model_validator(mode="after")
    def _ordered(self) -> Capacity:
        if self.failed_hi is not None and self.failed_hi <= self.held_lo:
            raise ValueError(f"failed_hi {self.failed_hi} <= held_lo {self.held_lo}")
        return self


class Sample(JsonModel):
    """One fresh server start + one load run."""

    requests: Num
    duration_s: Num
    rps: Num
    latency_ms: Latency
    errors: dict[str, Num]
    server_cpu_pct: Num | None = None
    server_cpu_s: Num | None = None
    server_peak_rss_bytes: Num | None = None
    server_pss_bytes: Num | None = None
    server_uss_bytes: Num | None = None
    server_processes: Count | None = None
    client_cpu_pct: Num | None = None
    concurrency: Count | None = None
    achieved_rps: Num | None = None
    writes: Writes | None = None
    extra: dict[str, Any] = Field(default_factory=dict)

    def metric(self, name: str) -> float | None:
        """This sample's value of metric `name` (see METRICS); None where not recorded."""
        return METRICS[name].read(self)

    @property
    def errors_total(self) -> float:
        return float(sum(self.errors.values()))

    @property
    def timeouts(self) -> float:
        return float(self.errors.get("timeout", 0))

    @property
    def capacity(self) -> Capacity | None:
        raw = self.extra.get("capacity")
        return Capacity.model_validate(raw) if isinstance(raw, Mapping) else None

    @model_validator(mode="after")
    def _capacity_valid(self) -> Sample:
        self.capacity  # noqa: B018 - validates extra.capacity when present
        return self


class Summary(JsonModel):
    median: Num
    ci95: list[Num] | None
    cv: Num | None
    n: Count
    ci_method: str | None = None
