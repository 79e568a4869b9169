"""`stackbench report RESULTS.json` → reports/<run>/: report.md, report.html, charts, results.

Every number printed is read from the results document beside it (and the micro-benchmark and
check results it embeds); `tests/loadtests/test_report.py` recomputes the verdict table and the
throughput figures from the JSON and compares.

The package: `document` (Section/Table, Markdown and HTML rendering), `charts` (matplotlib),
`values` (reading the results document), and the sections: `verdict`, `scenario` (closed
loop, open loop), `realtime`, `sweep` (the latency sweep; its ratios and crossover in
`crossover`), `run` (reliability, floors, calibration, environment), `overhead` (app ÷ its
framework's floor); `build` assembles them.

Adding a section from your own module
-------------------------------------
Write `def x_section(doc: dict, charts: Path) -> Section | list[Section] | None` in your module
(`from loadtests.report import Section, Table`; save any chart as a PNG under `charts` and put
its `Path` in `Section.blocks`; return None when the document has nothing for it), then add ONE
line `"your.module:x_section",` to `SECTION_BUILDERS` below, at the place in the report where it
belongs. Entries are strings, imported when a report is built, so your module may import
`loadtests.report` without an import cycle. The head, the summary and the verdict table always
come first (`build.py`).
"""

from __future__ import annotations

from loadtests.report.document import Section, Table

# The verdict section right after the head: `(doc, charts, verdicts=, registry=) -> Section`,
# given the verdicts already judged (they also go to verdicts.json and the summary).
VERDICT_SECTION = "loadtests.verdict_render:verdict_section"
# The report after the head and the verdict table, in order: one "module:function" per line.
SECTION_BUILDERS: list[str] = [
    "loadtests.report.scenario:scenario_sections",  # one section per closed-loop scenario
    "loadtests.report.scenario:open_loop_section",
    "loadtests.report.realtime:realtime_sections",  # chat, then the fan-out scenarios
    "loadtests.report.sweep:sweep_section",  # injected database round trips, upstream TTFT (doc["sweep"])
    "loadtests.report.run:reliability_section",
    "loadtests.robustness_render:robustness_section",  # server × hostile-client probe (doc["robustness"])
    "loadtests.report.run:floors_section",
    "loadtests.report.overhead:overhead_section",  # app ÷ its framework's floor (loadtests/floor_ratios.py)
    "loadtests.report.run:calibration_section",
    "loadtests.report.verdict:rules_section",
    "loadtests.report.run:environment_section",
]

from loadtests.report.build import build, verdict_table_text, write_report  # noqa: E402
from loadtests.report.run import reliability_section  # noqa: E402

__all__ = ["SECTION_BUILDERS", "VERDICT_SECTION", "Section", "Table", "build", "reliability_section", "verdict_table_text",
           "write_report"]
