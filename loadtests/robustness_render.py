"""The robustness matrix as words: one short verdict per server × probe (report and terminal).

Registered in `loadtests.report.SECTION_BUILDERS` as `robustness_section`; `stackbench
robustness` prints `text_table`. Every figure is read from the `robustness` section of the
results document (`robustness_matrix.run_matrix`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from loadtests.report.document import Section, Table

COLUMNS = {
    "slowloris": "slowloris",
    "oversized_header": "oversized header",
    "slow_body": "slow request body",
    "idle_keepalive": "idle keep-alive",
    "abandon_streams": "client disappears",
}


def _ms(value: Any) -> str:
    if value is None:
        return "–"
    return f"{value:.0f} ms" if value >= 10 else f"{value:.1f} ms"


def _s(value: Any) -> str:
    return "–" if value is None else f"{value:.1f} s"


def _mib(value: Any) -> str:
    return "?" if value is None else f"{value / 2**20:+.1f} MiB"


def served(probes: dict[str, Any] | None) -> str:
    """`served 8/8, p50 2.1 ms, max 9 ms` (the probes sent during an attack)."""
    if not probes:
        return "no probes"
    text = f"served {probes['served']}/{probes['sent']}"
    if probes.get("served"):
        text += f", p50 {_ms(probes.get('p50_ms'))}, max {_ms(probes.get('max_ms'))}"
    return text


def _closed(r: dict[str, Any]) -> str:
    n = r.get("closed_by_server") or 0
    if not n:
        return f"none of {r.get('opened')} closed"
    # what the server sent before closing (a 408, a 413); a late 200 to the first request is no verdict
    codes = [c for c in r.get("close_statuses") or [] if c != "200"]
    said = f" ({'/'.join(codes)})" if codes else ""
    return f"{n}/{r.get('opened')} closed{said}, first after {_s(r.get('first_close_s'))}"


def _recovered(r: dict[str, Any]) -> str:
    return "recovered" if r.get("recovery_ms") is not None else "NOT recovered"


def cell(probe: str, r: dict[str, Any] | None) -> str:
    """One probe's verdict in a few words."""
    if r is None:
        return "n/a (no stream route)"
    if "error" in r:
        return f"error: {r['error']}"
    if probe in ("slowloris", "slow_body"):
        opened = "" if r["opened"] == r["connections"] else f" ({r['opened']}/{r['connections']} connected)"
        return f"{served(r.get('probes'))}; {_closed(r)}{opened}; {_recovered(r)}"
    if probe == "idle_keepalive":
        return (f"{r['answered']}/{r['connections']} answered; {served(r.get('probes'))}; "
                f"{_closed(r)}")
    if probe == "oversized_header":
        parts = []
        for size in r["sizes"]:
            what = str(size["status"]) if size["outcome"] == "answered" else size["outcome"]
            tail = "" if size["served_after"] else ", then NOT serving"
            parts.append(f"{size['size_bytes'] // 2**20} MiB: {what} in {_ms(size['elapsed_ms'])}, "
                         f"RSS {_mib(size.get('rss_peak_growth'))}{tail}")
        return "; ".join(parts)
    if probe == "abandon_streams":
        rounds = r["rounds"]
        started = ",".join(str(x["started"]) for x in rounds)
        late = [x["probe_ms"] for x in rounds]
        ok = [x for x in late if x is not None]
        answer = (f"probe served after {len(ok)}/{len(late)} rounds, max {_ms(max(ok))}" if ok
                  else f"probe NOT served in {r['bound_s']:.0f} s")
        return f"started {started} of {r['streams']}; {answer}"
    return str(r)


def rows(section: dict[str, Any]) -> list[list[str]]:
    out = []
    for server, entry in section.get("servers", {}).items():
        label = f"{server} ({entry.get('app', '?')})"
        if "error" in entry:
            out.append([label, f"server failed: {entry['error'].splitlines()[0][:200]}", *[""] * (len(COLUMNS) - 1)])
            continue
        found = entry.get("probes", {})
        out.append([label, *(cell(p, found.get(p)) if p in found else "not run" for p in COLUMNS)])
    return out


def table(section: dict[str, Any]) -> Table:
    return Table(["server (app)", *COLUMNS.values()], rows(section))


def method(section: dict[str, Any]) -> str:
    s = section.get("settings", {})
    sizes = ", ".join(f"{x // 2**20} MiB" for x in s.get("header_sizes", []))
    apps = section.get("apps", {})
    return (
        f"**Method.** Each server is started afresh as the main matrix starts it (one worker per server core, "
        f"its recommended settings otherwise) serving the real app — {apps.get('wsgi', 'flask')} on WSGI servers, "
        f"{apps.get('asgi', 'rest')} on ASGI servers — on the {section.get('database', '?')} database, pinned to "
        f"CPUs {section.get('server_cpus')}; the probing client runs in one process on CPUs "
        f"{section.get('client_cpus')}, over loopback (127.0.0.1). During each attack a probe "
        f"(`GET {section.get('probe_path')}` on a fresh connection) is sent every {s.get('probe_every_s')} s and counts "
        f"as served on a 200 within {s.get('probe_timeout_s')} s. "
        f"*Slowloris*: {s.get('slowloris_connections')} connections send a partial request, then one header byte "
        f"every {s.get('slowloris_interval_s')} s, for {s.get('slowloris_duration_s')} s. "
        f"*Oversized header*: one GET with an `X-Big` header of {sizes}; RSS growth is the peak over the request "
        f"of all the server's processes (sampled every 0.1 s). "
        f"*Slow request body*: {s.get('slow_body_connections')} POSTs to the JSON sign-in (`/api/auth/token`) declaring "
        f"{s.get('slow_body_declared_bytes', 1000):,} bytes (under the app's body limit), "
        f"one byte every {s.get('slow_body_interval_s')} s for {s.get('slow_body_duration_s')} s. "
        f"*Idle keep-alive*: {s.get('idle_connections')} connections, one GET each, then idle "
        f"{s.get('idle_hold_s')} s; \"closed\" counts the idle ones the server closed. "
        f"*Client disappears*: {s.get('abandon_rounds')} rounds of {s.get('abandon_streams')} SSE streams "
        "(`/api/events`, one user) opened and reset (RST) once their heads arrive; then a probe must be served "
        f"within {s.get('recover_s')} s. \"recovered\": a probe was served within {s.get('recover_s')} s after the "
        "attack ended. One run per server: these are behaviours, not timings to compare closely."
    )


def robustness_section(doc: dict[str, Any], charts: Path) -> Section | None:
    section = doc.get("robustness")
    if not section or not section.get("servers"):
        return None
    return Section("Server robustness", blocks=[method(section), table(section)])


def text_table(section: dict[str, Any]) -> str:
    """The same table as Markdown, for the terminal (and a README)."""
    t = table(section)
    lines = ["| " + " | ".join(t.header) + " |", "|" + "---|" * len(t.header)]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in t.rows]
    return "\n".join(lines)
