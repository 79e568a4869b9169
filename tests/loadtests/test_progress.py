"""The bench's terminal output (issue 20): the progress bar's "left" counts the phases that run
after the bar's last step (robustness matrix, micro-benchmarks, checks, reliability), so a full
bar never reads as done while they still run; and a run ends on a short summary, the report's
path last, not the verdict table."""

from __future__ import annotations

from pathlib import Path

from rich.progress import Progress

from loadtests.runner import TimeLeftColumn, verdict_summary
from loadtests.servers import REPO_ROOT


def _task_at(now: list[float], done: int, total: int) -> Progress:
    progress = Progress(get_time=lambda: now[0])
    task = progress.add_task("cells", total=total)
    for _ in range(done):
        now[0] += 10.0  # one step every 10 s
        progress.update(task, advance=1)
    return progress


def test_time_left_adds_the_checks_after_the_bar() -> None:
    now = [0.0]
    progress = _task_at(now, done=2, total=4)  # two steps left at 10 s each: 20 s
    task = progress.tasks[0]
    assert str(TimeLeftColumn(0.0).render(task)) == "left ~0:00:20"
    assert str(TimeLeftColumn(600.0).render(task)).startswith("left ~0:10:20 (~10 min of checks after the bar)")


def test_a_full_bar_still_shows_the_checks_left() -> None:
    now = [0.0]
    progress = _task_at(now, done=4, total=4)
    assert str(TimeLeftColumn(300.0).render(progress.tasks[0])).startswith("left ~0:05:00")


def test_a_run_ends_on_counts_and_the_report_path() -> None:
    report = Path("reports/runs/r1/report.html")
    text = verdict_summary(REPO_ROOT / "reports" / "latest" / "results.json", report)
    lines = text.splitlines()
    assert len(lines) <= 3 and lines[-1].endswith(str(report)), text
    assert all(len(line) <= 160 for line in lines), text
