"""The report's "App vs its framework's floor" section: what our app keeps of its framework's
floor on the same server (loadtests/floor_ratios.py computes; this module reads the run and
renders)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from loadtests import floor_ratios as fr
from loadtests.document import Run
from loadtests.report.document import Section, Table
from loadtests.report.values import closed_driver, fmt, median, run_of


def measured(run: Run) -> tuple[list[fr.Measured], dict[str, fr.StackInfo]]:
    """The run's closed-loop config and card cells, and its stacks (variants left out: their
    worker rule is not the one the floors ran with)."""
    driver = closed_driver(run)
    cells = [fr.Measured(c.stack, c.scenario, c.concurrency, median(c, "rps") if c.ok else None)
             for c in run.cells
             if c.mode == "closed" and c.driver == driver and c.scenario in fr.FLOORED]
    stacks = {sid: fr.StackInfo(info.impl, info.server, info.kind) for sid, info in run.stacks.items()
              if not (info.model_extra or {}).get("variant_of")}
    return cells, stacks


def _ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}×"


def overhead_section(doc: dict[str, Any], charts_dir: Path | None = None) -> Section | None:
    run = run_of(doc)
    cells, stacks = measured(run)
    primary = run.settings.get("primary_concurrency")
    rows = fr.floor_ratios(cells, stacks, int(primary) if primary is not None else None)
    if not rows:
        return None
    table = Table(
        ["scenario", "app stack", "server", "conns", "app req/s", "floor", "floor req/s", "app ÷ floor",
         f"≥ {fr.TARGET:.2f}×", "why no ratio"],
        [[r.scenario, r.app, r.server, fmt(r.concurrency), fmt(r.app_rps), r.floor or "—", fmt(r.floor_rps),
          _ratio(r.value), f"**{r.reading}**" if r.reading == "not met" else r.reading, r.why] for r in rows])
    return Section("App vs its framework's floor", blocks=[
        f"Each app stack's median throughput as a share of its framework's floor on the same server, from "
        f"cells of this run at the same connections (issue 18's target: at least {fr.TARGET:.2f}×). config: "
        "the framework's hello world (`hello-fastapi`, `hello-flask`; `hello-strawberry` is sent the GraphQL "
        "app's own config request — POST, the same document — and runs the app's Strawberry extensions, "
        "parser and validation caches included, and orjson); card: the framework "
        "with its community's raw driver reading the same row after the same PyJWT check (`db-fastapi`: "
        "asyncpg; `db-flask`: psycopg 3; `db-strawberry`: asyncpg, sent the GraphQL app's card request; no ORM, "
        "no service layer; loadtests/floors/). A floor runs on one "
        "server per framework, so stacks on other servers read not measured. Medians of this run's samples; one repetition is indicative only.",
        table,
    ])
