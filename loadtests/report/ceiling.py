"""The database's ceiling on a latency-sweep cell: the throughput no stack can pass at that
injected round trip with the connections it was given, and a flag where a cell reached it.

With an injected delay d a request holds a database connection for about R × d (R: the round
trips per request the delay proxy counted in that very cell), so C connections in service at
once (the pool, or fewer threads or wrk connections) serve at most C ÷ (R × d) requests a
second, whatever the framework: ``pool-capped``. A scenario that spreads its writes over users
(review) also takes its user's feed lock from reserving the event id to the commit,
`LOCK_ROUND_TRIPS` round trips, so U users allow at most U ÷ (3 × d) a second: ``lock-capped``.
A cell whose median throughput is within `NEAR` of the lower ceiling is flagged: there the ratio
between two stacks measures the pool sizing both were given, not async against threads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from loadtests import scenarios, stats
from loadtests.cell import Cell
from loadtests.report.values import fmt

# flashcards' feed: SELECT nextval … pg_advisory_xact_lock, INSERT … pg_notify, COMMIT
LOCK_ROUND_TRIPS = 3
NEAR = 0.85  # median throughput ≥ this share of the ceiling: the cell is at it


@dataclass(frozen=True)
class Ceiling:
    kind: str  # "pool" or "lock"
    rps: float
    how: str  # the arithmetic, for the report

    @property
    def flag(self) -> str:
        return f"{self.kind}-capped (≤ {fmt(self.rps)} req/s: {self.how})"


def _median(values: list[Any]) -> float | None:
    nums = [float(v) for v in values if isinstance(v, int | float) and v > 0]
    return stats.median(nums) if nums else None


def ceilings(raw: dict[str, Any], cell: Cell) -> list[Ceiling]:
    """The ceilings of one sweep cell (raw: its dict, for the sizing), lowest first; none at 0 ms
    or where the cell lacks the round trips or the sizing."""
    delay = raw.get("db_delay_ms")
    trips = _median([(s.extra.get("proxy") or {}).get("round_trips_per_request") for s in cell.samples])
    if not isinstance(delay, int | float) or delay <= 0 or trips is None:
        return []
    setup = raw.get("setup") or {}
    processes = int(setup.get("processes") or 1)
    pool = (setup.get("sizing") or {}).get("pool_size")
    found = []
    if isinstance(pool, int) and pool > 0:
        limits = {"pool": pool * processes}
        if setup.get("threads_per_worker"):
            limits["threads"] = int(setup["threads_per_worker"]) * processes
        if cell.concurrency:
            limits["wrk connections"] = int(cell.concurrency)
        what, in_service = min(limits.items(), key=lambda kv: kv[1])
        found.append(Ceiling("pool", in_service / (trips * delay / 1e3),
                             f"{in_service} {'connections' if what == 'pool' else what} ÷ "
                             f"({fmt(trips, 1)} round trips × {delay:g} ms)"))
    known = scenarios.SCENARIOS.get(cell.scenario)
    users = _median([s.extra.get("load_users") for s in cell.samples])
    if known is not None and known.spread_users and users:
        found.append(Ceiling("lock", users / (LOCK_ROUND_TRIPS * delay / 1e3),
                             f"{fmt(users)} users ÷ ({LOCK_ROUND_TRIPS} round trips × {delay:g} ms)"))
    return sorted(found, key=lambda c: c.rps)


def served(raw: dict[str, Any], cell: Cell) -> tuple[Ceiling, float] | None:
    """The lowest ceiling and the share of it the cell's median throughput reached."""
    found = ceilings(raw, cell)
    rps = _median(cell.values("rps"))
    if not found or rps is None:
        return None
    return found[0], rps / found[0].rps


def reached(raw: dict[str, Any], cell: Cell) -> Ceiling | None:
    """The lowest ceiling, where the cell's median throughput reached `NEAR` of it."""
    lowest = served(raw, cell)
    return lowest[0] if lowest is not None and lowest[1] >= NEAR else None
