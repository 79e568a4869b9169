"""`stackbench report RESULTS.json` → reports/<run>/: report.md, report.html, charts, results.

Every number printed here is read from the results document beside it (and the micro-benchmark
and check results it embeds); `tests/loadtests/test_report.py` recomputes the verdict table and
the throughput figures from the JSON and compares. Order: verdicts first, then each scenario,
realtime, reliability, floors and the driver's ceiling, and the environment and settings last.
"""

from __future__ import annotations

import base64
import html
import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from loadtests import verdicts as verdict_engine

WRK_SCENARIOS = ("config", "card", "due", "review")
SCENARIO_TITLES = {
    "config": "config — GET the JSON config (framework + server overhead)",
    "card": "card — GET one card by random id (one indexed read)",
    "due": "due — GET the due queue of a deck, 20 rows (range query + serialization)",
    "review": "review — POST a review (read-modify-write transaction)",
}


# --- a tiny document model rendered to both Markdown and HTML ----------------------------------
@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]


@dataclass
class Section:
    title: str
    level: int = 2
    blocks: list[str | Table | Path] = field(default_factory=list)  # text (Markdown-lite), table, image


def _md(sections: Sequence[Section], root: Path) -> str:
    out: list[str] = []
    for s in sections:
        out.append("#" * s.level + " " + s.title + "\n")
        for b in s.blocks:
            if isinstance(b, Table):
                out.append("| " + " | ".join(b.header) + " |")
                out.append("|" + "---|" * len(b.header))
                out += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in b.rows]
                out.append("")
            elif isinstance(b, Path):
                out.append(f"![{b.stem}]({b.relative_to(root).as_posix()})\n")
            else:
                out.append(b + "\n")
    return "\n".join(out)


def _inline(text: str) -> str:
    """Markdown-lite for HTML: escape, then **bold** and `code`."""
    import re

    text = html.escape(text)
    text = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", text)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", text)


def _html(sections: Sequence[Section], title: str) -> str:
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title><style>",
        "body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}",
        "table{border-collapse:collapse;margin:1em 0;font-size:0.9em}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}",
        "th{background:#f3f3f3}img{max-width:100%;border:1px solid #eee;margin:0.5em 0}code{background:#f5f5f5;padding:0 3px}",
        ".supported{color:#070}.partly{color:#a60}.not{color:#b00}</style></head><body>",
    ]
    for s in sections:
        parts.append(f"<h{s.level}>{html.escape(s.title)}</h{s.level}>")
        for b in s.blocks:
            if isinstance(b, Table):
                parts.append("<table><tr>" + "".join(f"<th>{_inline(h)}</th>" for h in b.header) + "</tr>")
                for r in b.rows:
                    parts.append("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in r) + "</tr>")
                parts.append("</table>")
            elif isinstance(b, Path):
                data = base64.b64encode(b.read_bytes()).decode()
                parts.append(f"<figure><img alt='{html.escape(b.stem)}' src='data:image/png;base64,{data}'></figure>")
            else:
                for para in b.split("\n\n"):
                    parts.append(f"<p>{_inline(para)}</p>")
    parts.append("</body></html>")
    return "\n".join(parts)


# --- helpers over the results document ------------------------------------------------------------
def _fmt(value: Any, digits: int = 0) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _summary(cell: dict[str, Any], key: str) -> dict[str, Any]:
    return dict(cell.get("summary", {}).get(key) or {})


def _median_ci(cell: dict[str, Any], key: str, digits: int = 0, scale: float = 1.0) -> str:
    s = _summary(cell, key)
    if not s or s.get("median") is None:
        return "—"
    text = _fmt(s["median"] / scale, digits)
    ci = s.get("ci95")
    if ci and s.get("n", 1) > 1 and ci[0] is not None:
        text += f" [{_fmt(ci[0] / scale, digits)}–{_fmt(ci[1] / scale, digits)}]"
    return text


def cells_for(doc: dict[str, Any], scenario: str, driver: str | None = None) -> list[dict[str, Any]]:
    return [c for c in doc.get("cells", []) if c["scenario"] == scenario and (driver is None or c["driver"] == driver)]


def _stack_label(doc: dict[str, Any], stack: str) -> str:
    info = doc.get("stacks", {}).get(stack, {})
    workers = info.get("workers")
    return f"{stack} ({workers}w)" if workers else stack


# --- charts ----------------------------------------------------------------------------------------
def _bar_chart(path: Path, title: str, labels: list[str], values: list[float], errors: list[tuple[float, float]],
               ylabel: str, highlight: list[bool] | None = None) -> Path:
    fig, ax = plt.subplots(figsize=(10, 0.35 * len(labels) + 1.6))
    colors = ["#c44e52" if (highlight and highlight[i]) else "#4c72b0" for i in range(len(labels))]
    lo = [max(0.0, v - e[0]) for v, e in zip(values, errors, strict=True)]
    hi = [max(0.0, e[1] - v) for v, e in zip(values, errors, strict=True)]
    ax.barh(labels, values, xerr=[lo, hi], color=colors, capsize=3)
    ax.set_xlabel(ylabel)
    ax.set_ylabel("stack (workers)")
    ax.set_title(title)
    if highlight and any(highlight):
        from matplotlib.patches import Patch

        ax.legend(handles=[Patch(color="#4c72b0", label="measured"),
                           Patch(color="#c44e52", label="client-bound (the load generator's limit)")],
                  fontsize=8, loc="lower right")
    ax.invert_yaxis()
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _latency_chart(path: Path, title: str, series: dict[str, dict[str, float]]) -> Path:
    keys = ["p50", "p90", "p99", "p99_9", "max"]
    fig, ax = plt.subplots(figsize=(10, 5))
    for label, lat in series.items():
        ax.plot(keys, [lat.get(k, float("nan")) for k in keys], marker="o", label=label)
    ax.set_yscale("log")
    ax.set_ylabel("latency (ms, log scale)")
    ax.set_xlabel("percentile")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _line_chart(path: Path, title: str, series: dict[str, list[tuple[float, float]]], xlabel: str, ylabel: str,
                logx: bool = False) -> Path:
    fig, ax = plt.subplots(figsize=(10, 5))
    for label, points in series.items():
        points = sorted(points)
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=label)
    if logx:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _resource_chart(path: Path, title: str, labels: list[str], cpu: list[float], rss_mb: list[float]) -> Path:
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 0.35 * len(labels) + 1.6), sharey=True)
    a.barh(labels, cpu, color="#55a868")
    a.set_xlabel("server CPU (% of one core)")
    a.set_ylabel("stack (workers)")
    b.barh(labels, rss_mb, color="#8172b2")
    b.set_xlabel("server peak RSS, all processes (MiB)")
    a.invert_yaxis()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# --- sections ------------------------------------------------------------------------------------
def verdict_section(doc: dict[str, Any]) -> tuple[Section, list[verdict_engine.Verdict]]:
    registry = verdict_engine.load_registry()
    found = verdict_engine.judge_all(doc, micro=doc.get("micro"), registry=registry, checks=doc.get("checks"))
    counts: dict[str, int] = {}
    for v in found:
        counts[v.status] = counts.get(v.status, 0) + 1
    tally = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    section = Section("Verdicts on the migration documents' claims", blocks=[
        f"{len(found)} claims from the five documents in `shared/seeds/`: {tally}. Ratios carry "
        "across machines; absolute numbers (req/s, ms, MiB) belong to this machine only. "
        "Rules: see *How verdicts are decided* below.",
        verdict_table(found, registry),
    ])
    return section, found


def verdict_table(found: Sequence[verdict_engine.Verdict], registry: verdict_engine.Registry) -> Table:
    """The verdict table as a `Table`, so report.html gets a real <table>; its Markdown rendering
    is `verdicts.verdicts_markdown` line for line (the `_md` renderer escapes the quotes' pipes)."""
    rows = []
    for v in found:
        claim = registry.by_id(v.id)
        quote = verdict_engine.display_quote(claim.quote).replace("**", "")
        rows.append([f"`{v.id}`", claim.source_title, f"“{quote}”", claim.claimed_text,
                     verdict_engine.format_measured(v), f"**{v.status}**"])
    return Table(["claim", "source", "quote", "claimed", "measured [95% CI]", "verdict"], rows)


def scenario_sections(doc: dict[str, Any], charts: Path) -> list[Section]:
    sections = []
    ceiling = max((c.get("rps", 0.0) for c in doc.get("driver_ceilings", [])), default=None)
    for scenario in WRK_SCENARIOS:
        # wrk, or locust where wrk was missing (settings.closed_loop_driver says which)
        driver = doc.get("settings", {}).get("closed_loop_driver", "wrk")
        cells = [c for c in cells_for(doc, scenario, driver)]
        if not cells:
            continue
        cells.sort(key=lambda c: -(_summary(c, "rps").get("median") or 0))
        s = Section(SCENARIO_TITLES[scenario])
        rows = []
        for c in cells:
            flags = ", ".join(c.get("flags", [])) or ""
            status = c.get("status", "ok")
            if status != "ok":
                flags = f"**{status}**: {c.get('error') or ''} " + flags
            writes = ""
            if scenario == "review" and c.get("samples"):
                w = c["samples"][-1].get("writes") or {}
                writes = f"{_fmt(w.get('acknowledged'))} / {_fmt(w.get('stored'))}"
            rows.append([
                _stack_label(doc, c["stack"]), str(c.get("concurrency", "")),
                _median_ci(c, "rps"), _median_ci(c, "p50_ms", 2), _median_ci(c, "p99_ms", 2),
                _fmt(_summary(c, "errors").get("median")), _median_ci(c, "server_cpu_pct"),
                _median_ci(c, "server_peak_rss_bytes", 0, 2**20), _median_ci(c, "client_cpu_pct"),
                *( [writes] if scenario == "review" else [] ), flags,
            ])
        header = ["stack (workers)", "conns", "req/s median [95% CI]", "p50 ms", "p99 ms", "errors",
                  "server CPU %", "server RSS MiB", "client CPU %", *(["writes acked / stored"] if scenario == "review" else []), "flags"]
        s.blocks.append(Table(header, rows))
        ok = [c for c in cells if c.get("status") == "ok" and _summary(c, "rps").get("median")]
        by_conc: dict[int, list[dict[str, Any]]] = {}
        for c in ok:
            by_conc.setdefault(int(c.get("concurrency") or 0), []).append(c)
        main_conc = max(by_conc, key=lambda k: len(by_conc[k])) if by_conc else None
        if main_conc is not None:
            chosen = by_conc[main_conc]
            labels = [_stack_label(doc, c["stack"]) for c in chosen]
            values = [_summary(c, "rps")["median"] for c in chosen]
            errors = [tuple(_summary(c, "rps").get("ci95") or (v, v)) for c, v in zip(chosen, values, strict=True)]
            flagged = ["client-bound" in c.get("flags", []) for c in chosen]
            s.blocks.append(_bar_chart(charts / f"{scenario}-throughput.png",
                                       f"{scenario}: throughput at {main_conc} connections (median, 95% CI; red = client-bound)",
                                       labels, values, errors, "requests per second", flagged))  # type: ignore[arg-type]
            lat = {lbl: (c["samples"][-1].get("latency_ms") or {}) for lbl, c in zip(labels, chosen, strict=True)}
            s.blocks.append(_latency_chart(charts / f"{scenario}-latency.png", f"{scenario}: latency percentiles at {main_conc} connections (last sample)", lat))
            s.blocks.append(_resource_chart(
                charts / f"{scenario}-resources.png", f"{scenario}: server CPU and memory", labels,
                [_summary(c, "server_cpu_pct").get("median") or 0 for c in chosen],
                [(_summary(c, "server_peak_rss_bytes").get("median") or 0) / 2**20 for c in chosen]))
        if len(by_conc) > 1:
            series: dict[str, list[tuple[float, float]]] = {}
            for c in ok:
                series.setdefault(c["stack"], []).append((float(c["concurrency"]), float(_summary(c, "rps")["median"])))
            s.blocks.append(_line_chart(charts / f"{scenario}-concurrency.png", f"{scenario}: throughput against connections",
                                        series, "connections (log)", "requests per second", logx=True))
        if ceiling:
            s.blocks.append(f"Driver ceiling in this run: {_fmt(ceiling)} req/s (the load generator against the fastest floor); "
                            "a cell above a third of it, or with the client CPU saturated, is flagged client-bound.")
        sections.append(s)
    return sections


def open_loop_section(doc: dict[str, Any], charts: Path) -> Section | None:
    cells = [c for c in doc.get("cells", []) if c.get("mode") == "open"]
    if not cells:
        return None
    rows = []
    for c in sorted(cells, key=lambda c: (c["scenario"], c["stack"], c.get("target_rate") or 0)):
        sample = c["samples"][-1] if c.get("samples") else {}
        lat = sample.get("latency_ms") or {}
        extra = sample.get("extra") or {}
        rows.append([c["stack"], c["scenario"], _fmt(c.get("target_rate")), _fmt(sample.get("rps")),
                     _fmt(lat.get("p50"), 2), _fmt(lat.get("p99"), 2), _fmt(lat.get("max"), 1),
                     str(extra.get("fraction_of_peak", "")), ", ".join(c.get("flags", []))])
    s = Section("Latency at a fixed offered rate (open loop, no coordinated omission)", blocks=[
        "Each request has a planned send time at the target rate and its latency counts from that plan, "
        "so a stalled server cannot hide its queue (wrk's closed loop can). Rates are fractions of the "
        "stack's own closed-loop peak from the same run; `sustainable` rows are the highest rate found "
        "with p99 under the latency objective.",
        Table(["stack", "scenario", "target req/s", "achieved req/s", "p50 ms", "p99 ms", "max ms", "fraction of peak", "flags"], rows),
    ])
    return s


def realtime_sections(doc: dict[str, Any], charts: Path) -> list[Section]:
    sections = []
    chat = cells_for(doc, "chat")
    if chat:
        rows: list[list[str]] = []
        series: dict[str, list[tuple[float, float]]] = {}
        sustained: dict[str, Any] = {}
        for c in sorted(chat, key=lambda c: (c["stack"], c.get("concurrency") or 0)):
            sample = c["samples"][-1] if c.get("samples") else {}
            extra = sample.get("extra") or {}
            ttft, total = extra.get("ttft_ms") or {}, extra.get("total_ms") or {}
            rows.append([c["stack"], _fmt(c.get("concurrency")), _fmt(extra.get("completed")), _fmt(sum((extra.get("errors") or {}).values()) if extra.get("errors") else 0),
                         _fmt(ttft.get("p50"), 0), _fmt(ttft.get("p99"), 0), _fmt(total.get("p50"), 0), _fmt(total.get("p99"), 0),
                         _fmt(sample.get("server_cpu_pct"), 0), _fmt(sample.get("client_cpu_pct"), 0), ", ".join(c.get("flags", []))])
            if ttft.get("p99"):
                series.setdefault(c["stack"], []).append((float(c["concurrency"]), float(ttft["p99"])))
            if extra.get("max_sustained") is not None:
                sustained[c["stack"]] = extra["max_sustained"]
        upstream = doc.get("settings", {}).get("upstream", {})
        s = Section("chat — concurrent tutor streams over a slow upstream", blocks=[
            f"Each user POSTs a question and reads the streamed answer (SSE; GraphQL: a subscription). The upstream "
            f"simulator answers with time-to-first-token {upstream.get('ttft_ms', '?')} ms, {upstream.get('tokens', '?')} tokens "
            f"{upstream.get('token_interval_ms', '?')} ms apart. A level is sustained when every stream completes without error "
            "and p99 time-to-first-token stays under twice the upstream's own; higher levels are not tried once one is not sustained.",
            Table(["stack", "users", "completed", "errors", "TTFT p50 ms", "TTFT p99 ms", "total p50 ms", "total p99 ms", "server CPU %", "client CPU %", "flags"], rows),
        ])
        if sustained:
            s.blocks.append(Table(["stack", "largest sustained concurrent streams"], [[k, _fmt(v)] for k, v in sorted(sustained.items(), key=lambda kv: -kv[1])]))
        if series:
            s.blocks.append(_line_chart(charts / "chat-ttft.png", "chat: p99 time to first token against concurrent users", series, "concurrent users (log)", "TTFT p99 (ms)", logx=True))
        sections.append(s)
    for scenario, title in (("sse-fanout", "sse-fanout — held event streams, one publish reaching all"), ("ws", "ws — WebSocket feed: connects/s and fan-out")):
        cells = cells_for(doc, scenario)
        if not cells:
            continue
        rows = []
        lat_series: dict[str, list[tuple[float, float]]] = {}
        rss_series: dict[str, list[tuple[float, float]]] = {}
        for c in sorted(cells, key=lambda c: (c["stack"], c.get("concurrency") or 0)):
            sample = c["samples"][-1] if c.get("samples") else {}
            extra = sample.get("extra") or {}
            d = extra.get("delivery_ms") or {}
            rows.append([c["stack"], _fmt(c.get("concurrency")), _fmt(extra.get("connected")), _fmt(extra.get("connects_per_s"), 0),
                         _fmt(d.get("p50"), 1), _fmt(d.get("p99"), 1), f"{_fmt(extra.get('delivered'))} / {_fmt(extra.get('expected'))}",
                         _fmt((extra.get("rss_per_connection_bytes") or 0) / 1024, 1), _fmt(extra.get("rss_after_disconnect_delta_mib"), 1),
                         _fmt(sample.get("client_cpu_pct"), 0), ", ".join(c.get("flags", []))])
            if d.get("p99"):
                lat_series.setdefault(c["stack"], []).append((float(c["concurrency"]), float(d["p99"])))
            if extra.get("rss_per_connection_bytes"):
                rss_series.setdefault(c["stack"], []).append((float(c["concurrency"]), float(extra["rss_per_connection_bytes"]) / 1024))
        s = Section(title, blocks=[Table(["stack", "subscribers", "connected", "connects/s", "delivery p50 ms", "delivery p99 ms",
                                          "delivered / expected", "RSS KiB per connection", "RSS after disconnect Δ MiB", "client CPU %", "flags"], rows)])
        if lat_series:
            s.blocks.append(_line_chart(charts / f"{scenario}-latency.png", f"{scenario}: p99 publish→receipt against subscribers", lat_series, "subscribers (log)", "delivery p99 (ms)", logx=True))
        if rss_series:
            s.blocks.append(_line_chart(charts / f"{scenario}-rss.png", f"{scenario}: server RSS per held connection", rss_series, "subscribers (log)", "KiB per connection", logx=True))
        sections.append(s)
    return sections


def reliability_section(doc: dict[str, Any]) -> Section:
    rows = []
    for c in cells_for(doc, "review"):
        for i, sample in enumerate(c.get("samples", [])):
            w = sample.get("writes") or {}
            rows.append([c["stack"], str(i + 1), _fmt(w.get("acknowledged")), _fmt(w.get("stored")),
                         _fmt(w.get("in_flight_at_cutoff")), "yes" if w.get("lost", 0) == 0 else f"**{w.get('lost')} lost**"])
    errors = sum(int(sum((s.get("errors") or {}).values())) for c in doc.get("cells", []) for s in c.get("samples", []))
    failed = [c["id"] for c in doc.get("cells", []) if c.get("status") in ("failed", "refused")]
    blocks: list[str | Table | Path] = [
        f"Errors across all measured samples: {errors}. Cells that failed or were refused by verification: "
        f"{', '.join(failed) if failed else 'none'}.",
        "Writes: every acknowledged review (2xx) must be a row in the database. A request in flight when the "
        "load generator stops may be stored without being acknowledged (the `in flight` column); an acknowledged "
        "review without a row would be a lost write.",
    ]
    if rows:
        blocks.append(Table(["stack", "sample", "acknowledged", "stored", "in flight at cutoff", "none lost"], rows))
    checks = doc.get("checks") or {}
    named = {k: v for k, v in checks.items() if k != "reliability"}
    if named:
        blocks.append(Table(["check (test suite, same run)", "result"], [[k, str(v)] for k, v in sorted(named.items())]))
    # The reliability suites (loadtests/reliability.py): one pytest run, counted from its JUnit XML.
    rel = checks.get("reliability")
    if isinstance(rel, dict):
        if rel.get("status") == "error" or not rel.get("suites"):
            blocks.append(f"Reliability suites: **could not run** (pytest exit code {rel.get('returncode')}); "
                          "see `checks.reliability.output_tail` in the results.")
        else:
            t = rel.get("totals") or {}
            found = rel.get("server_errors_found", 0)
            blocks.append(
                f"Reliability suites ({rel.get('command', 'pytest')}; profile {rel.get('profile', 'default')}, "
                f"{_fmt(rel.get('wall_seconds'), 1)} s): **{rel.get('status')}**. {_fmt(t.get('tests'))} tests, "
                f"{_fmt(t.get('passed'))} passed, {_fmt(t.get('failed'))} failed, {_fmt(t.get('skipped'))} skipped; "
                f"{_fmt(rel.get('bad_inputs_tried'))} bad inputs tried, {_fmt(rel.get('faults_injected'))} faults "
                f"injected, {'**' + _fmt(found) + '**' if found else '0'} server errors (5xx) found.")
            suite_rows = [[name, f"`{s.get('path', '')}`", _fmt(s.get("tests")), _fmt(s.get("passed")),
                           _fmt(s.get("failed")) if not s.get("failed") else f"**{_fmt(s.get('failed'))}**",
                           _fmt(s.get("skipped")), _fmt(float(s.get("seconds") or 0), 1)]
                          for name, s in rel["suites"].items()]
            suite_rows.append(["total", "", _fmt(t.get("tests")), _fmt(t.get("passed")), _fmt(t.get("failed")),
                               _fmt(t.get("skipped")), _fmt(float(t.get("seconds") or 0), 1)])
            blocks.append(Table(["reliability suite", "path", "tests", "passed", "failed", "skipped", "seconds"], suite_rows))
            if rel.get("failures"):
                blocks.append("Failed: " + ", ".join(f"`{f}`" for f in rel["failures"][:10])
                              + (f" and {len(rel['failures']) - 10} more" if len(rel["failures"]) > 10 else "") + ".")
    return Section("Reliability", blocks=blocks)


def floors_section(doc: dict[str, Any]) -> Section:
    rows = [[c.get("driver", ""), c.get("floor", ""), _fmt(c.get("rps")), _fmt(c.get("client_cpu_pct"), 0)] for c in doc.get("driver_ceilings", [])]
    return Section("Floors and the load generator's headroom", blocks=[
        "Floors are a raw ASGI app, a raw WSGI app and each framework's bare hello-world on the same servers "
        "(the config table above includes them). The driver's ceiling is the load generator against the fastest "
        "floor in the same run — the dedicated measurement first, then any floor cell that went faster (the driver "
        "reached at least that rate): a stack reaching more than a third of it would be measuring the client, and "
        "is flagged.",
        Table(["driver", "against", "req/s", "client CPU %"], rows),
    ])


def environment_section(doc: dict[str, Any]) -> Section:
    env = doc.get("environment", {})
    machine = env.get("machine", {})
    rows = [[k, str(v)] for k, v in machine.items()]
    rows += [["python", str(env.get("python"))], ["git", json.dumps(env.get("git"))], ["database", json.dumps(env.get("database"))]]
    settings = [[k, json.dumps(v)] for k, v in sorted(doc.get("settings", {}).items())]
    packages = [[k, str(v)] for k, v in sorted((env.get("packages") or {}).items())]
    stacks = [[sid, info.get("server", ""), str(info.get("workers", "")),
               ", ".join(f"{k}={v}" for k, v in sorted((info.get("settings") or {}).items()) if k not in ("app", "bind", "package", "server"))]
              for sid, info in sorted(doc.get("stacks", {}).items())]
    return Section("Environment and settings", blocks=[
        Table(["machine", ""], rows), Table(["run setting", "value"], settings),
        Table(["stack", "server", "workers", "settings as run"], stacks), Table(["package", "version"], packages)])


def build(doc: dict[str, Any], out: Path) -> tuple[list[Section], list[verdict_engine.Verdict]]:
    charts = out / "charts"
    charts.mkdir(parents=True, exist_ok=True)
    env = doc.get("environment", {}).get("machine", {})
    head = Section(f"stackbench report — run {doc.get('run_id')}", level=1, blocks=[
        f"Profile **{doc.get('profile')}**, {doc.get('settings', {}).get('repetitions', 1)} repetition(s) per cell, "
        f"measured {doc.get('started_at')} – {doc.get('finished_at')} on {env.get('cpu_model', '?')} "
        f"({env.get('cores', '?')} cores, {_fmt((env.get('memory_bytes') or 0) / 2**30, 0)} GiB, {env.get('virtualization', '?')}); "
        f"server pinned to CPUs {doc.get('settings', {}).get('server_cpus')}, load generators to {doc.get('settings', {}).get('client_cpus')}. "
        f"Commit `{(doc.get('environment', {}).get('git') or {}).get('commit', '?')}`."])
    verdict, found = verdict_section(doc)
    sections = [head, verdict]
    sections += scenario_sections(doc, charts)
    if (ol := open_loop_section(doc, charts)) is not None:
        sections.append(ol)
    sections += realtime_sections(doc, charts)
    sections.append(reliability_section(doc))
    sections.append(floors_section(doc))
    sections.append(Section("How verdicts are decided", blocks=[verdict_engine.rules_markdown()]))
    sections.append(environment_section(doc))
    return sections, found


def write_report(results: Path, out: Path | None = None) -> Path:
    doc = json.loads(Path(results).read_text())
    out = out or Path("reports") / str(doc.get("run_id", "run"))
    out.mkdir(parents=True, exist_ok=True)
    if (charts := out / "charts").exists():
        shutil.rmtree(charts)
    sections, found = build(doc, out)
    (out / "report.md").write_text(_md(sections, out))
    (out / "report.html").write_text(_html(sections, f"stackbench {doc.get('run_id')}"))
    (out / "verdicts.json").write_text(json.dumps([v.to_dict() for v in found], indent=1))
    if Path(results).resolve() != (out / "results.json").resolve():
        shutil.copyfile(results, out / "results.json")
    return out


def verdict_table_text(results: Path) -> str:
    doc = json.loads(Path(results).read_text())
    registry = verdict_engine.load_registry()
    found = verdict_engine.judge_all(doc, micro=doc.get("micro"), registry=registry, checks=doc.get("checks"))
    return verdict_engine.verdicts_markdown(found, registry)
