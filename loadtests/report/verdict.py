"""The verdicts for the report: judged once per report (they go to the verdict section, the
summary and verdicts.json), and the "How verdicts are decided" section.

The verdict table and its section are `loadtests.verdict_render` (H1's; `VERDICT_SECTION` in
`loadtests/report/__init__.py` names it); the rules' Markdown is `loadtests.verdicts`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from loadtests import verdicts as verdict_engine
from loadtests.report.document import Section
from loadtests.verdict_render import tally

RULES_TITLE = "How verdicts are decided"

__all__ = ["RULES_TITLE", "judge", "rules_section", "tally"]


def judge(doc: dict[str, Any]) -> tuple[list[verdict_engine.Verdict], verdict_engine.Registry]:
    registry = verdict_engine.load_registry()
    found = verdict_engine.judge_all(doc, micro=doc.get("micro"), registry=registry, checks=doc.get("checks"))
    return list(found), registry


def rules_section(doc: dict[str, Any], charts_dir: Path | None = None) -> Section:
    """The rules, as Markdown: report.md keeps it, report.html renders it (headings nested)."""
    return Section(RULES_TITLE, blocks=[verdict_engine.rules_markdown()])
