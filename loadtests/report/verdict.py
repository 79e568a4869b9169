"""The verdict sections: the verdict table on the claims, and how verdicts are decided.

The verdict logic and its Markdown live in `loadtests.verdicts` (H1's engine); this module only
puts them into the document model.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from loadtests import verdicts as verdict_engine
from loadtests.report.document import Section, Table, slug

RULES_TITLE = "How verdicts are decided"


def judge(doc: dict[str, Any]) -> tuple[list[verdict_engine.Verdict], verdict_engine.Registry]:
    registry = verdict_engine.load_registry()
    found = verdict_engine.judge_all(doc, micro=doc.get("micro"), registry=registry, checks=doc.get("checks"))
    return list(found), registry


def tally(found: Sequence[verdict_engine.Verdict]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for v in found:
        counts[v.status] = counts.get(v.status, 0) + 1
    return dict(sorted(counts.items()))


def verdict_section(doc: dict[str, Any], charts: Path | None = None, *,
                    verdicts: Sequence[verdict_engine.Verdict] | None = None,
                    registry: verdict_engine.Registry | None = None) -> Section:
    if verdicts is None or registry is None:
        verdicts, registry = judge(doc)
    found = verdicts
    text = ", ".join(f"{n} {status}" for status, n in tally(found).items())
    return Section("Verdicts on the migration documents' claims", blocks=[
        f"{len(found)} claims from the five documents in `shared/seeds/`: {text}. Ratios carry "
        "across machines; absolute numbers (req/s, ms, MiB) belong to this machine only. "
        f"Rules: see [{RULES_TITLE}](#{slug(RULES_TITLE)}) below.",
        verdict_table(found, registry),
    ])


def verdict_table(found: Sequence[verdict_engine.Verdict], registry: verdict_engine.Registry) -> Table:
    """The verdict table as a `Table`, so report.html gets a real <table>; its Markdown rendering
    is `verdicts.verdicts_markdown` line for line (the Markdown renderer escapes the quotes' pipes)."""
    from loadtests import verdict_render  # H1's rendering: the columns and rows, one place

    return Table(list(verdict_render.COLUMNS), verdict_render.table_rows(found, registry))


def rules_section(doc: dict[str, Any], charts_dir: Path | None = None) -> Section:
    """The rules, as Markdown: report.md keeps it, report.html renders it (headings nested)."""
    return Section(RULES_TITLE, blocks=[verdict_engine.rules_markdown()])
