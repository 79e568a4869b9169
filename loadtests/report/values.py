"""Reading the results document for the report, through the typed model (`loadtests.document`):
formatting, cell summaries, labels. Sections take the document as a dict (the builder
signature) and read it as one `Run`, parsed once per document."""

from __future__ import annotations

from typing import Any

from loadtests.cell import Cell
from loadtests.document import Run
from loadtests.sample import Sample

_PARSED: list[tuple[dict[str, Any], Run]] = []


def run_of(doc: dict[str, Any]) -> Run:
    """The document as a `Run` (schema 1 upgraded); parsed once while the same dict is passed."""
    for raw, run in _PARSED:
        if raw is doc:
            return run
    run = Run.from_json(doc)
    _PARSED[:] = [(doc, run)]
    return run


def fmt(value: Any, digits: int = 0) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def median(cell: Cell, key: str) -> float | None:
    s = cell.summary.get(key)
    return None if s is None else float(s.median)


def ci95(cell: Cell, key: str) -> tuple[float, float] | None:
    s = cell.summary.get(key)
    return (float(s.ci95[0]), float(s.ci95[1])) if s is not None and s.ci95 and s.n > 1 else None


def median_ci(cell: Cell, key: str, digits: int = 0, scale: float = 1.0) -> str:
    mid = median(cell, key)
    if mid is None:
        return "—"
    text = fmt(mid / scale, digits)
    if (ci := ci95(cell, key)) is not None:
        text += f" [{fmt(ci[0] / scale, digits)}–{fmt(ci[1] / scale, digits)}]"
    return text


def last(cell: Cell) -> Sample | None:
    return cell.samples[-1] if cell.samples else None


def cells_for(run: Run, scenario: str, driver: str | None = None) -> list[Cell]:
    return [c for c in run.cells if c.scenario == scenario and (driver is None or c.driver == driver)]


def is_floor(run: Run, stack: str) -> bool:
    info = run.stacks.get(stack)
    return info is not None and info.kind == "floor"


def stack_label(run: Run, stack: str) -> str:
    info = run.stacks.get(stack)
    workers = info.workers if info is not None else None
    return f"{stack} ({workers}w)" if workers else stack


def flags(cell: Cell) -> str:
    return ", ".join(cell.flags)


def closed_driver(run: Run) -> str:
    """wrk, or locust where wrk was missing (settings.closed_loop_driver says which)."""
    return str(run.settings.get("closed_loop_driver", "wrk"))


def driver_ceiling(run: Run) -> float | None:
    return max((float(c.rps) for c in run.driver_ceilings if "processes" not in (c.model_extra or {})),
               default=None)  # rows with "processes" are the open loop's own ceiling
