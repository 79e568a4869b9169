"""Assembling the report: the head and summary, the verdicts, then every registered section
builder in order (`loadtests.report.SECTION_BUILDERS`), written as report.md and report.html."""

from __future__ import annotations

import importlib
import json
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from loadtests import verdicts as verdict_engine
from loadtests.report.document import Section, Table, markdown_toc, to_html, to_markdown
from loadtests.report.run import COMMITTED, calibration, calibration_sentence
from loadtests.report.values import driver_ceiling, fmt, run_of
from loadtests.report.verdict import judge, tally

Builder = Callable[[dict[str, Any], Path], "Section | list[Section] | None"]


def resolve(entry: str) -> Builder:
    """`"package.module:function"` → the function (imported when the report is built, so a
    builder's module may import `loadtests.report` freely)."""
    module, _, name = entry.partition(":")
    return getattr(importlib.import_module(module), name)  # type: ignore[no-any-return]


def _sections(built: Section | list[Section] | None) -> list[Section]:
    if built is None:
        return []
    return [built] if isinstance(built, Section) else list(built)


def head_section(doc: dict[str, Any], found: list[verdict_engine.Verdict]) -> Section:
    env = doc.get("environment", {}).get("machine", {})
    settings = doc.get("settings", {})
    stopped = doc.get("interrupted") or {}
    span = f"{doc.get('started_at')} – {doc.get('finished_at')}" if doc.get("status") != "interrupted" \
        else f"from {doc.get('started_at')} until it was interrupted at {stopped.get('at', '?')}"
    blocks: list[str | Table | Path] = [
        f"Profile **{doc.get('profile')}**, {settings.get('repetitions', 1)} repetition(s) per cell, "
        f"measured {span} on {env.get('cpu_model', '?')} "
        f"({env.get('cores', '?')} cores, {fmt((env.get('memory_bytes') or 0) / 2**30, 0)} GiB, {env.get('virtualization', '?')}); "
        f"server pinned to CPUs {settings.get('server_cpus')}, load generators to {settings.get('client_cpus')}. "
        f"Commit `{(doc.get('environment', {}).get('git') or {}).get('commit', '?')}`."]
    blocks += summary_blocks(doc, found)
    title = f"stackbench report — run {doc.get('run_id')}"
    if doc.get("status") == "interrupted":
        title += " (partial: interrupted)"
    return Section(title, level=1, blocks=blocks)


def summary_blocks(doc: dict[str, Any], found: list[verdict_engine.Verdict],
                   committed: Path = COMMITTED) -> list[str | Table | Path]:
    """The summary at the top: verdicts per status, cells per status, the driver's ceiling and
    how this machine compares with the committed run."""
    run = run_of(doc)
    cells: dict[str, int] = {}
    for c in run.cells:
        cells[c.status] = cells.get(c.status, 0) + 1
    cell_text = ", ".join(f"{n} {status}" for status, n in sorted(cells.items())) or "none"
    lines = [f"**Summary.** {len(found)} claims judged; cells measured: {cell_text}."]
    if run.partial and run.interrupted is not None:
        stop = run.interrupted
        lines.insert(0, f"**Partial results: this run was interrupted** ({stop.reason.splitlines()[0][:200]}, at "
                        f"{stop.at}{', while measuring ' + stop.in_flight if stop.in_flight else ''}); "
                        f"{stop.completed_cells} cells completed, the planned cells after them and the closing "
                        "checks (micro-benchmarks, reliability suites) are missing, so verdicts that need them "
                        "read not measured.")
    if (ceiling := driver_ceiling(run)) is not None:
        lines.append(f"The load generator's ceiling in this run: {fmt(ceiling)} req/s (cells above a third of it "
                     "are flagged client-bound).")
    if committed.exists():
        reference = json.loads(committed.read_text())
        if reference.get("run_id") != doc.get("run_id"):
            lines.append(calibration_sentence(calibration(doc, reference)))
    if not run.partial and (interrupted := [c.id for c in run.cells if c.status == "interrupted"]):
        lines.append(f"**This run was interrupted** (in {', '.join(interrupted)}): later cells are missing.")
    table = Table(["status", "claims"], [[status, str(n)] for status, n in tally(found).items()])
    return [" ".join(lines), table]


def build(doc: dict[str, Any], out: Path,
          builders: Iterable[str] | None = None) -> tuple[list[Section], list[verdict_engine.Verdict]]:
    from loadtests import results
    from loadtests.report import SECTION_BUILDERS, VERDICT_SECTION

    charts = out / "charts"
    charts.mkdir(parents=True, exist_ok=True)
    results.resummarize(doc)  # summaries by the current statistics (H1)
    found, registry = judge(doc)
    verdicts = resolve(VERDICT_SECTION)(doc, charts, verdicts=found, registry=registry)  # type: ignore[call-arg]
    sections = [head_section(doc, found), *_sections(verdicts)]
    for entry in builders if builders is not None else SECTION_BUILDERS:
        sections += _sections(resolve(entry)(doc, charts))
    return sections, found


def write_report(results: Path, out: Path | None = None) -> Path:
    """report.md, report.html, charts and verdicts.json in `out`, by default beside the results
    JSON (its run directory, git-ignored under reports/runs/, where the run's other files are);
    a run directory is accepted for its results.json."""
    results = Path(results) / "results.json" if Path(results).is_dir() else Path(results)
    doc = json.loads(results.read_text())
    out = out or results.parent
    out.mkdir(parents=True, exist_ok=True)
    if (charts := out / "charts").exists():
        shutil.rmtree(charts)
    sections, found = build(doc, out)
    contents = Section("Contents", blocks=[markdown_toc(sections[1:])])
    (out / "report.md").write_text(to_markdown([sections[0], contents, *sections[1:]], out))
    (out / "report.html").write_text(to_html(sections, f"stackbench {doc.get('run_id')}"))
    (out / "verdicts.json").write_text(json.dumps([v.to_dict() for v in found], indent=1))
    if Path(results).resolve() != (out / "results.json").resolve():
        shutil.copyfile(results, out / "results.json")
    return out


def verdict_table_text(results: Path) -> str:
    doc = json.loads(Path(results).read_text())
    found, registry = judge(doc)
    return verdict_engine.verdicts_markdown(found, registry)
