"""A cell of the results document (one stack × scenario × load level, its samples) and the
`Setup` its server really ran."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, Strict, model_validator

from loadtests.jsontypes import Count, JsonModel, Num
from loadtests.sample import Sample, Summary

CELL_STATUSES = ("ok", "failed", "refused", "skipped", "interrupted")
DRIVERS = ("wrk", "openloop", "locust", "chat", "sse", "ws")
MODES = ("closed", "open", "capacity")


class Setup(JsonModel):
    """What the server of a cell really ran (read from the launched processes; `inferred`
    when upgraded from a schema-1 document's stack description)."""

    server: str
    worker_class: str | None = None
    processes: Annotated[int, Strict(), Field(ge=1)]
    master: bool = False
    workers: Count
    threads_per_worker: Count | None = None
    cores: list[Count] = Field(default_factory=list)
    gc_policy: str | None = None
    # The app's serving knobs in force (loadtests/setups.py APP_TUNING): pool sizes, stream limits.
    app: dict[str, Any] | None = None
    inferred: bool = False

    def describe(self) -> str:
        threads = f" × {self.threads_per_worker} threads" if self.threads_per_worker else ""
        kind = f" {self.worker_class}" if self.worker_class else ""
        cores = ",".join(map(str, self.cores)) if self.cores else "?"
        gc = f", GC {self.gc_policy}" if self.gc_policy else ""
        return (f"{self.server}{kind}: {self.processes} process{'es' if self.processes != 1 else ''}"
                f"{threads} on core{'s' if len(self.cores) != 1 else ''} {cores}{gc}"
                + (" (from the stack description)" if self.inferred else ""))

    def tuning(self) -> str:
        """The app knobs as ``name=value`` pairs ('' when not recorded)."""
        return ", ".join(f"{k}={v}" for k, v in sorted((self.app or {}).items()))

    def like_for_like(self, other: Setup) -> bool:
        """Same number of serving processes on the same number of cores."""
        return self.processes == other.processes and len(self.cores) == len(other.cores)


class Cell(JsonModel):
    id: str
    stack: str
    scenario: str
    driver: Literal[DRIVERS]  # type: ignore[valid-type]
    mode: Literal[MODES]  # type: ignore[valid-type]
    concurrency: Count | None = None
    target_rate: Num | None = None
    status: Literal[CELL_STATUSES]  # type: ignore[valid-type]
    error: str | None = None
    samples: list[Sample]
    summary: dict[str, Summary]
    flags: list[str]
    setup: Setup | None = None
    extra: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> Cell:
        if self.status == "ok" and not self.samples:
            raise ValueError("status ok without samples")
        if self.status in ("failed", "refused") and not self.error:
            raise ValueError(f"status {self.status} without an error message")
        return self

    @property
    def ok(self) -> bool:
        return self.status == "ok" and bool(self.samples)

    def values(self, metric: str) -> list[float]:
        """Every sample's value of `metric` (samples that lack it are left out)."""
        return [v for v in (s.metric(metric) for s in self.samples) if v is not None]

    def extra_value(self, key: str) -> Any:
        """extra[key] of the cell, else of its first sample that has it."""
        if key in self.extra:
            return self.extra[key]
        return next((s.extra[key] for s in self.samples if key in s.extra), None)

    @property
    def load_group(self) -> str | None:
        group = self.extra_value("load_group")
        return str(group) if group else None
