"""The server-robustness matrix as recorded in a results document (issue 19;
loadtests/robustness_matrix.py runs it)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from loadtests.jsontypes import Count, JsonModel, Num

ROBUSTNESS_PROBES = ("slowloris", "oversized_header", "slow_body", "idle_keepalive", "abandon_streams")


class ProbeTally(JsonModel):
    """The normal requests sent beside an attack: served = a 200 within the probe timeout."""

    sent: Count
    served: Count
    p50_ms: Num | None = None
    max_ms: Num | None = None

    @model_validator(mode="after")
    def _at_most_sent(self) -> ProbeTally:
        if self.served > self.sent:
            raise ValueError(f"served {self.served} > sent {self.sent}")
        return self


class RobustnessProbe(JsonModel):
    """One probe's outcome on one server; the fields beyond these depend on the probe."""

    error: str | None = None  # the probe did not finish (its hard timeout)
    wall_s: Num | None = None
    probes: ProbeTally | None = None
    closed_by_server: Count | None = None
    recovery_ms: Num | None = None  # None: no probe served within the settings' recover_s


class RobustnessServer(JsonModel):
    stack: str
    app: str
    error: str | None = None  # the server did not start
    wall_s: Num | None = None
    # None for a probe the server has nothing for (no stream route)
    probes: dict[Literal[ROBUSTNESS_PROBES], RobustnessProbe | None] = Field(default_factory=dict)  # type: ignore[valid-type]


class Robustness(JsonModel):
    """The server-robustness matrix: its sizes, the CPUs, one entry per server."""

    settings: dict[str, Any]
    server_cpus: list[Count]
    client_cpus: list[Count]
    servers: dict[str, RobustnessServer]
