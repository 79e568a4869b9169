"""Rendering verdicts: the table (Markdown, and rows for the report's HTML table), the verdict
chart (claimed factor against measured factor), the terminal summary and the report section.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from loadtests.claims import Registry, display_quote, load_registry
from loadtests.rules import STATUSES
from loadtests.verdicts import Verdict, headline, judge_all

COLUMNS = ["claim", "source", "quote", "claimed", "measured [95% interval]", "verdict",
           "what was compared"]
CHART_NAME = "verdicts.png"


def status_text(v: Verdict) -> str:
    """The word, with its label: "partly supported — undershoot: 1.6x measured against 5x
    claimed"; indicative/unstable say what the figures lean to."""
    text = f"**{v.status}**"
    if v.leaning and v.status in ("indicative", "unstable"):
        text += f" (leans {v.leaning})"
    if v.label:
        text += f" — {v.label}"
    return text


def compared_text(v: Verdict) -> str:
    """What was compared, in words: both sides' setups, scenario, driver, level, metric, n, the
    interval's method, excluded cells and the sensitivity rows."""
    parts = []
    for p in (v.parts or (v,)):
        bits = []
        if p.what:
            bits.append(p.what)
        elif p.scenario:
            bits.append(f"{p.scenario}" + (f", metric {p.metric}" if p.metric else ""))
        if p.n:
            bits.append("n = " + "/".join(map(str, p.n)))
        if p.method and p is not v:
            bits.append(f"{headline(p)} ({p.method})")
        elif p.method:
            bits.append(p.method)
        if p is not v:
            bits.append(f"→ {p.status}" + (f" ({p.label})" if p.label else ""))
        bits.extend(f"excluded {cell}: {why}" for cell, why in p.excluded)
        if p.sensitivity:
            bits.append("sensitivity: " + "; ".join(p.sensitivity))
        parts.append(", ".join(bits))
    if v.parts and v.method:
        parts.append(f"combined: {v.method}")
    return " · ".join(x for x in parts if x)


def table_rows(verdicts: Sequence[Verdict], registry: Registry) -> list[list[str]]:
    rows = []
    for v in verdicts:
        claim = registry.by_id(v.id)
        quote = display_quote(claim.quote).replace("**", "")
        rows.append([f"`{v.id}`", claim.source_title, f"“{quote}”", claim.claimed_text, headline(v),
                     status_text(v), compared_text(v) or (v.label or "")])
    return rows


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def verdicts_markdown(verdicts: Sequence[Verdict], registry: Registry | None = None) -> str:
    """The verdict table in Markdown, one row per claim."""
    reg = registry or load_registry()
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in table_rows(verdicts, reg)]
    return "\n".join(lines)


def tally(verdicts: Sequence[Verdict]) -> dict[str, int]:
    counts = {s: 0 for s in STATUSES}
    for v in verdicts:
        counts[v.status] = counts.get(v.status, 0) + 1
    return {s: n for s, n in counts.items() if n}


def terminal_summary(verdicts: Sequence[Verdict], report: Path | str | None = None) -> str:
    """A few lines for the terminal: counts per status and where the report is."""
    counts = ", ".join(f"{n} {s}" for s, n in tally(verdicts).items())
    text = f"{len(verdicts)} claims: {counts}"
    if report:
        text += f"\nreport: {report}"
    return text


def chart_points(verdicts: Sequence[Verdict]) -> list[dict[str, Any]]:
    """One point per measured factor claim: claimed factor, measured factor and its interval."""
    out = []
    for v in verdicts:
        if v.unit != "x" or v.measured is None or not v.measured > 0 or not v.claimed_factor:
            continue
        lo, hi = v.ci95 or (None, None)
        out.append({"id": v.id, "claimed": v.claimed_factor, "measured": v.measured, "low": lo,
                    "high": hi, "status": v.status})
    return out


COLOURS = {"supported": "#2e7d32", "partly supported": "#9e9d24", "not supported": "#757575",
           "contradicted": "#c62828", "unstable": "#ef6c00", "indicative": "#1565c0",
           "not measured": "#bdbdbd", "analogue": "#6a1b9a"}


def verdict_chart(verdicts: Sequence[Verdict], path: Path) -> Path | None:
    """Claimed factor (x) against measured factor with its interval (y), both log scale; the
    line y = 1 (no difference) and y = x (exactly as claimed). A point above the diagonal beat
    its claim; below 1 the candidate was worse. An unbounded end is drawn as an arrow."""
    points = chart_points(verdicts)
    if not points:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 6))
    ys = [p["measured"] for p in points] + [p["low"] for p in points if p["low"]] + \
         [p["high"] for p in points if p["high"]] + [p["claimed"] for p in points]
    lo_lim, hi_lim = min(ys) / 1.5, max(ys) * 1.5
    for i, p in enumerate(points):
        x = p["claimed"] * (1 + 0.03 * ((i % 5) - 2))  # small jitter for equal claims
        colour = COLOURS.get(p["status"], "#000000")
        low = p["low"] if p["low"] else p["measured"]
        high = p["high"] if p["high"] else hi_lim
        ax.plot([x, x], [low, high], color=colour, lw=1.5, alpha=0.8)
        if not p["high"] and p["low"]:
            ax.annotate("", xy=(x, hi_lim), xytext=(x, p["low"]), arrowprops={"arrowstyle": "->", "color": colour})
        ax.plot([x], [p["measured"]], "o", color=colour, ms=5)
    ax.axhline(1.0, color="black", lw=1, ls="--", label="no difference (1x)")
    diag = [min(lo_lim, 1.0), hi_lim]
    ax.plot(diag, diag, color="grey", lw=1, ls=":", label="measured = claimed")
    for status, colour in COLOURS.items():
        if any(p["status"] == status for p in points):
            ax.plot([], [], "o", color=colour, label=status)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_ylim(min(lo_lim, 0.5), hi_lim)
    ax.set_xlabel("claimed factor (a ratio of req/s, ms or MiB; log scale)")
    ax.set_ylabel("measured factor, 95% interval (ratio of req/s, ms or MiB; log)")
    ax.set_title("Claims: claimed against measured (candidate better above 1)")
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path if math.isfinite(hi_lim) else None


def verdict_section(doc: dict[str, Any], charts: Path | None = None,
                    verdicts: Sequence[Verdict] | None = None, registry: Registry | None = None) -> Any:
    """The report's verdict section: the tally, the chart (when `charts` is given) and the table."""
    from loadtests.report import Section, Table

    reg = registry or load_registry()
    found = list(verdicts) if verdicts is not None else judge_all(doc, registry=reg)
    counts = ", ".join(f"{n} {s}" for s, n in tally(found).items())
    blocks: list[Any] = [
        f"{len(found)} claims from the five documents in `shared/seeds/`: {counts}. Ratios carry "
        "across machines; absolute numbers (req/s, ms, MiB) belong to this machine only. Each "
        "row says what was compared (both stacks' processes, threads and cores, scenario, "
        "driver, load level, metric, n, interval method) and which cells were excluded and why. "
        "Rules: see [How verdicts are decided](#how-verdicts-are-decided) below."]
    if charts is not None:
        chart = verdict_chart(found, Path(charts) / CHART_NAME)
        if chart is not None:
            blocks.append(chart)
    blocks.append(Table(list(COLUMNS), table_rows(found, reg)))
    return Section("Verdicts on the migration documents' claims", blocks=blocks)


def old_new_markdown(old: Sequence[dict[str, Any]], new: Sequence[Verdict]) -> str:
    """Old (a verdicts.json written by the previous engine) and new verdict per claim, side by
    side, with the rule or label behind each change. `python -m loadtests.verdict_render OLD NEW`."""
    before = {str(o.get("id")): o for o in old}
    lines = ["| claim | old verdict | old figure | new verdict | new figure | why |", "|---|---|---|---|---|---|"]
    for v in new:
        o = before.get(v.id, {})
        ci = o.get("ci95")
        fig = "—" if o.get("measured") is None else f"{o['measured']:.3g}" if isinstance(o.get("measured"), float) else str(o.get("measured"))
        if ci and all(isinstance(x, int | float) for x in ci):
            fig += f" [{ci[0]:.3g}, {ci[1]:.3g}]"
        why = (v.label or "").replace("|", "\\|")
        if v.leaning:
            why = f"leans {v.leaning}; {why}"
        same = "" if o.get("status") != v.status else "(unchanged) "
        lines.append(f"| `{v.id}` | {o.get('status', '—')} | {fig} | {v.status} | {headline(v)} | {same}{why[:400]} |")
    return "\n".join(lines)


if __name__ == "__main__":
    import json
    import sys

    old_path, new_path = Path(sys.argv[1]), Path(sys.argv[2])
    print(old_new_markdown(json.loads(old_path.read_text()), judge_all(json.loads(new_path.read_text()))))
