"""The realtime sections: chat (tutor streams over a slow upstream), the fan-out family (held
event streams, WebSocket feed) and WebSocket connects (ws-connect), one per registry scenario."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from loadtests import scenarios
from loadtests.cell import Cell
from loadtests.document import Run
from loadtests.report import charts
from loadtests.report.document import Section, Table
from loadtests.report.values import cells_for, flags, fmt, last, run_of


def _by_stack_level(cells: list[Cell]) -> list[Cell]:
    return sorted(cells, key=lambda c: (c.stack, c.concurrency or 0))


def _extra(cell: Cell) -> dict[str, Any]:
    sample = last(cell)
    return sample.extra if sample is not None else {}


def _usage(cell: Cell) -> tuple[str, str]:
    sample = last(cell)
    return (fmt(sample.server_cpu_pct if sample else None, 0), fmt(sample.client_cpu_pct if sample else None, 0))


def _dist(extra: dict[str, Any], key: str) -> dict[str, float]:
    value = extra.get(key)
    return value if isinstance(value, dict) else {}


def chat_section(run: Run, charts_dir: Path, scenario: scenarios.Scenario) -> Section | None:
    cells = cells_for(run, scenario.name)
    if not cells:
        return None
    rows: list[list[str]] = []
    series: dict[str, list[tuple[float, float]]] = {}
    sustained: dict[str, Any] = {}
    for c in _by_stack_level(cells):
        ex = _extra(c)
        ttft, total = _dist(ex, "ttft_ms"), _dist(ex, "total_ms")
        errors = sum(_dist(ex, "errors").values())
        rows.append([c.stack, fmt(c.concurrency), fmt(ex.get("completed")), fmt(errors),
                     fmt(ttft.get("p50"), 0), fmt(ttft.get("p99"), 0), fmt(total.get("p50"), 0), fmt(total.get("p99"), 0),
                     *_usage(c), flags(c)])
        if ttft.get("p99") and c.concurrency:
            series.setdefault(c.stack, []).append((float(c.concurrency), float(ttft["p99"])))
        if ex.get("max_sustained") is not None:
            sustained[c.stack] = ex["max_sustained"]
    upstream = run.settings.get("upstream") or {}
    upstream_ttft = upstream.get("ttft_ms")
    s = Section(scenario.title, blocks=[
        f"Each user POSTs a question and reads the streamed answer (SSE; GraphQL: a subscription). The upstream "
        f"simulator answers with time-to-first-token {upstream_ttft or '?'} ms, {upstream.get('tokens', '?')} tokens "
        f"{upstream.get('token_interval_ms', '?')} ms apart. A level is sustained when every stream completes without error "
        "and p99 time-to-first-token stays under twice the upstream's own; higher levels are not tried once one is not sustained.",
        Table(["stack", "users", "completed", "errors", "TTFT p50 ms", "TTFT p99 ms", "total p50 ms", "total p99 ms",
               "server CPU %", "client CPU %", "flags"], rows),
    ])
    if sustained:
        s.blocks.append(Table(["stack", "largest sustained concurrent streams"],
                              [[k, fmt(v)] for k, v in sorted(sustained.items(), key=lambda kv: -kv[1])]))
    if series:
        objective = 2.0 * float(upstream_ttft) if isinstance(upstream_ttft, int | float) else None
        s.blocks.append(charts.line_chart(
            charts_dir / f"{scenario.name}-ttft.png", f"{scenario.name}: p99 time to first token against concurrent users",
            series, "concurrent users (log)", "TTFT p99 (ms)", logx=True, objective=objective,
            objective_label=f"objective: 2 × upstream TTFT ({fmt(objective, 0)} ms)"))
    return s


def fanout_section(run: Run, charts_dir: Path, scenario: scenarios.Scenario) -> Section | None:
    cells = cells_for(run, scenario.name)
    if not cells:
        return None
    rows = []
    lat_series: dict[str, list[tuple[float, float]]] = {}
    one_series: dict[str, list[tuple[float, float]]] = {}
    rss_series: dict[str, list[tuple[float, float]]] = {}
    for c in _by_stack_level(cells):
        ex = _extra(c)
        d = _dist(ex, "delivery_ms")
        one = _dist(ex, "single_event")
        one_d = _dist(one, "delivery_ms")
        per_conn = ex.get("rss_per_connection_bytes")
        rows.append([c.stack, fmt(c.concurrency), fmt(ex.get("connected")), fmt(ex.get("connects_per_s"), 0),
                     " / ".join(fmt(one_d.get(k), 1) for k in ("p50", "p99", "max")) if one_d else "—",
                     f"{fmt(one.get('delivered'))} / {fmt(one.get('expected'))}" if one else "—",
                     fmt(d.get("p50"), 1), fmt(d.get("p99"), 1), f"{fmt(ex.get('delivered'))} / {fmt(ex.get('expected'))}",
                     fmt((per_conn or 0) / 1024, 1), fmt(ex.get("rss_after_disconnect_delta_mib"), 1),
                     _usage(c)[1], flags(c)])
        level = float(c.concurrency or 0)
        if d.get("p99"):
            lat_series.setdefault(c.stack, []).append((level, float(d["p99"])))
        if one_d.get("max"):
            one_series.setdefault(c.stack, []).append((level, float(one_d["max"])))
        if per_conn:
            rss_series.setdefault(c.stack, []).append((level, float(per_conn) / 1024))
    name = scenario.name
    s = Section(scenario.title, blocks=[
        "One event first, alone: its publish→receipt latency across all subscribers (max: until the last one "
        "has it). Then the sustained events at the run's fan-out rate: every delivery of every event.",
        Table(["stack", "subscribers", "connected", "connects/s", "one event p50 / p99 / max ms", "one event delivered",
               "sustained p50 ms", "sustained p99 ms", "delivered / expected",
               "RSS KiB per connection", "RSS after disconnect Δ MiB", "client CPU %", "flags"], rows)])
    if one_series:
        s.blocks.append(charts.line_chart(charts_dir / f"{name}-one-event.png",
                                          f"{name}: one event, publish → the last subscriber's receipt",
                                          one_series, "subscribers (log)", "one event, max delivery (ms)", logx=True))
    if lat_series:
        s.blocks.append(charts.line_chart(charts_dir / f"{name}-latency.png", f"{name}: p99 publish→receipt against subscribers",
                                          lat_series, "subscribers (log)", "delivery p99 (ms)", logx=True))
    if rss_series:
        s.blocks.append(charts.line_chart(charts_dir / f"{name}-rss.png", f"{name}: server RSS per held connection",
                                          rss_series, "subscribers (log)", "KiB per connection", logx=True))
    return s


def connect_section(run: Run, scenario: scenarios.Scenario) -> Section | None:
    """WebSocket sessions in a closed loop (wsconnect.py): one row per stack, medians over the
    repetitions beside the last sample's latency, failures and client CPU (its headroom)."""
    cells = cells_for(run, scenario.name)
    if not cells:
        return None
    rows = []
    for c in _by_stack_level(cells):
        ex = _extra(c)
        rates = c.values("connects_per_s")
        lat = _dist(ex, "connect_ms")
        reasons = ex.get("failure_reasons") or {}
        rows.append([c.stack, fmt(c.concurrency), fmt(sorted(rates)[len(rates) // 2] if rates else None, 0),
                     fmt(len(rates)), fmt(lat.get("p50"), 2), fmt(lat.get("p99"), 2),
                     "; ".join(f"{k}: {v}" for k, v in reasons.items()) or "0", fmt(ex.get("server_cpu_ms_per_session"), 2),
                     *_usage(c), fmt(ex.get("client_ceiling_per_s"), 0), flags(c)])
    return Section(scenario.title, blocks=[
        "Each client opens a session (TCP, upgrade, the server's acceptance: a close echoing 1000 on the plain "
        "feed, connection_ack on GraphQL), closes it and opens the next; the same number of clients for every "
        "stack. Client CPU is over the window: a cell at ≥ 85 % of its core is flagged client-bound; the client "
        "ceiling is the rate one saturated client core would reach at the CPU per session measured.",
        Table(["stack", "clients", "sessions/s (median)", "n", "connect p50 ms", "connect p99 ms",
               "failures (last sample)", "server CPU ms per session", "server CPU %", "client CPU %",
               "client ceiling sessions/s", "flags"], rows)])


def realtime_sections(doc: dict[str, Any], charts_dir: Path) -> list[Section]:
    run = run_of(doc)
    found = [chat_section(run, charts_dir, sc) for sc in scenarios.of_family("streams")]
    found += [fanout_section(run, charts_dir, sc) for sc in scenarios.of_family("fanout")]
    found += [fanout_workers_section(doc)]
    found += [connect_section(run, sc) for sc in scenarios.of_family("connect")]
    return [s for s in found if s is not None]


def _one_process_figure(doc: dict[str, Any], stack: str, subscribers: int) -> str:
    """The one-worker sse-fanout cell's one-event p50 / p99 / max at the same level, if run."""
    for cell in doc.get("cells") or []:
        if (cell.get("stack"), cell.get("scenario"), cell.get("concurrency")) == (stack, "sse-fanout", subscribers):
            samples = cell.get("samples") or []
            one = _dist(_dist(samples[-1].get("extra") or {}, "single_event"), "delivery_ms") if samples else {}
            if one:
                return " / ".join(fmt(one.get(k), 1) for k in ("p50", "p99", "max"))
    return "—"


def fanout_workers_section(doc: dict[str, Any], charts_dir: Path | None = None) -> Section | None:
    """Fan-out across server workers through the PostgreSQL feed (loadtests/fanout_workers.py):
    one row per stack and worker count, with the subscribers each worker held."""
    entries = doc.get("fanout_workers") or []
    if not entries:
        return None
    rows = []
    notes: list[str] = []
    shared = False
    for e in entries:
        sample = e.get("sample") or {}
        ex = sample.get("extra") or {}
        one = _dist(ex, "single_event")
        one_d = _dist(one, "delivery_ms")
        d = _dist(ex, "delivery_ms")
        split = {pid: n for pid, n in (ex.get("worker_split") or {}).items() if n}
        workers = int(e.get("workers") or 0)
        shared |= workers > len(e.get("server_cpus") or [0]) or "workers-share-cores" in (e.get("flags") or [])
        if e.get("status") != "ok" or not ex:
            rows.append([str(e.get("stack")), fmt(workers), fmt(e.get("subscribers")), str(e.get("status")),
                         "—", "—", "—", "—", "—", "—", "—", str(e.get("error") or "")[:200]])
            continue
        spread = ex.get("spread", True)
        split_text = " / ".join(str(n) for _pid, n in sorted(split.items(), key=lambda kv: int(kv[0]))) or "—"
        if workers > 1 and not spread:
            split_text += " (not spread: every subscriber on one worker)"
            notes.append(f"{e.get('stack')} at {workers} workers: the subscribers all landed on one worker, so "
                         "this row does not show delivery across workers.")
        setup = e.get("setup") or {}
        rows.append([str(e.get("stack")), f"{fmt(workers)} ({fmt(setup.get('processes'))} processes)",
                     fmt(e.get("subscribers")), f"{fmt(ex.get('connected'))} connected",
                     " / ".join(fmt(one_d.get(k), 1) for k in ("p50", "p99", "max")) if one_d else "—",
                     f"{fmt(one.get('delivered'))} / {fmt(one.get('expected'))}" if one else "—",
                     f"{fmt(d.get('p50'), 1)} / {fmt(d.get('p99'), 1)}",
                     f"{fmt(ex.get('delivered'))} / {fmt(ex.get('expected'))}", split_text,
                     _one_process_figure(doc, str(e.get("stack")), int(e.get("subscribers") or 0)),
                     fmt(sample.get("client_cpu_pct"), 0), ", ".join(e.get("flags") or [])])
    blocks: list[str | Table | Path] = [
        "Method: the subscribers hold SSE streams on a server with N workers; an event is published through the "
        "API (written in the change's transaction, announced with PostgreSQL NOTIFY, which every worker LISTENs "
        "for and fans out to its own subscribers) and its publish → receipt latency is measured at every "
        "subscriber, end to end; the per-worker split counts the ESTABLISHED connections each worker process held "
        "on the server port (psutil) while the streams were held.",
        Table(["stack", "workers", "subscribers", "held", "one event p50 / p99 / max ms", "one event delivered",
               "sustained p50 / p99 ms", "delivered / expected", "subscribers per worker",
               "one-process sse-fanout one event p50 / p99 / max ms", "client CPU %", "flags / reason"], rows)]
    if shared:
        blocks.append("The workers share the server core(s) of this run: this measures the cross-worker delivery "
                      "path (publish → NOTIFY → every worker → every subscriber), not scaling.")
    blocks += notes
    return Section("Fan-out across workers (PostgreSQL feed)", blocks=blocks)
