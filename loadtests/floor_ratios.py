"""App ÷ its framework's floor: each app stack's throughput as a share of the same framework
doing the least it can for the same answer, on the same server, in the same run (issue 18's
target: at least 0.80×).

config is judged against the hello-world floors (`hello-fastapi`, `hello-flask`) and, for GraphQL,
`hello-strawberry`: Strawberry's own view sent the GraphQL app's config request (POST, the same
document) with the app's extensions (parser and validation caches included) and orjson — a bare
Strawberry hello world validates every request and was 3× slower than the app; card against the database floors (`db-fastapi`, `db-flask`, `db-strawberry`: the framework
and its community's raw driver reading the same row with the same token check; `db-strawberry`
is sent the GraphQL app's card request, with the app's Strawberry extensions and caches).

`floor_ratios` is a pure function of one run's cells; it never divides by a missing or zero
rate (that pair reads "not measured").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from loadtests import scenarios

TARGET = 0.80  # issue 18: an app keeps at least 80 % of its framework's floor
# (scenario, app implementation) → the floor stack it is judged against; None: no floor compares
# (each scenario's `floor_of` in the registry).
FLOOR_OF: dict[tuple[str, str], str | None] = {
    (s.name, impl): floor for s in scenarios.SCENARIOS.values() for impl, floor in s.floor_of.items()}
FLOORED = tuple(dict.fromkeys(name for name, _impl in FLOOR_OF))  # the scenarios judged against a floor
NO_FLOOR = "no floor compares like with like"


@dataclass(frozen=True)
class Measured:
    """One closed-loop cell of a run: its median req/s when it was measured (status ok)."""

    stack: str
    scenario: str
    concurrency: int | None
    rps: float | None


@dataclass(frozen=True)
class StackInfo:
    impl: str
    server: str
    kind: str  # "app" | "floor"


@dataclass(frozen=True)
class Ratio:
    scenario: str
    app: str
    server: str
    concurrency: int | None
    app_rps: float | None
    floor: str | None  # None: no floor compares like with like
    floor_rps: float | None
    why: str = ""  # why there is no ratio

    @property
    def value(self) -> float | None:
        if self.app_rps is None or self.floor_rps is None or self.floor_rps <= 0:
            return None
        return self.app_rps / self.floor_rps

    @property
    def reading(self) -> str:
        """met / not met / not measured / no floor."""
        if self.floor is None:
            return "no floor"
        value = self.value
        if value is None:
            return "not measured"
        return "met" if value >= TARGET else "not met"


def floor_ratios(cells: Iterable[Measured], stacks: Mapping[str, StackInfo],
                 primary: int | None = None) -> list[Ratio]:
    """One row per app stack and scenario (config, card) at every level its floor was measured at
    on the app's server, and at `primary` (the run's primary level) where the floor was not."""
    by_key = {(c.stack, c.scenario, c.concurrency): c for c in cells}
    rows: list[Ratio] = []
    for (stack, scenario, conc), cell in sorted(by_key.items(), key=lambda kv: (kv[0][1], kv[0][0], kv[0][2] or 0)):
        info = stacks.get(stack)
        if info is None or info.kind != "app" or (scenario, info.impl) not in FLOOR_OF:
            continue
        floor = FLOOR_OF[(scenario, info.impl)]
        floor_info = stacks.get(floor) if floor else None
        same_server = floor_info is not None and floor_info.server == info.server
        floor_cell = by_key.get((floor, scenario, conc)) if floor and same_server else None
        if floor_cell is None and primary is not None and conc != primary:
            continue  # nothing to compare at this level: the primary level's row says why
        why = ""
        if floor is None:
            why = NO_FLOOR
        elif floor_info is None:
            why = f"{floor} not in this run"
        elif not same_server:
            why = f"{floor} runs on {floor_info.server}, not {info.server}"
        elif floor_cell is None:
            why = f"{floor} not measured at {conc} connections"
        elif floor_cell.rps is None or floor_cell.rps <= 0:
            why = f"{floor} cell not measured (failed or refused)"
        elif cell.rps is None:
            why = f"{stack} cell not measured (failed or refused)"
        rows.append(Ratio(scenario, stack, info.server, conc, cell.rps, floor,
                          floor_cell.rps if floor_cell else None, why))
    return rows
