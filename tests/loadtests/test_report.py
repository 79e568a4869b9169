"""The report (`loadtests/report.py::write_report`): it renders in a real browser, its charts are
readable, and every number it prints traces back to the results JSON beside it.

The report under test is written into a temporary directory from `reports/latest/results.json`
when that exists, else from a small synthetic document built with `loadtests.results` (so the
tests run on a clean clone, before any bench has run). The traceability tests run on that report
and, when it exists, on the committed `reports/latest/` itself.

The browser test needs Chromium (Debian: `apt-get install -y chromium`) and is skipped without
it; it speaks the Chrome DevTools Protocol over `websockets`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import random
import re
import shutil
import statistics
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from loadtests import report, results, scenarios, stats
from loadtests import verdicts as verdict_engine

REPO_ROOT = Path(__file__).resolve().parents[2]
LATEST = REPO_ROOT / "reports" / "latest"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM_INSTALL = "apt-get install -y chromium"
REPORTS = [
    pytest.param("fixture", id="fixture"),
    pytest.param("latest", id="reports-latest", marks=pytest.mark.skipif(
        not (LATEST / "results.json").exists(), reason="reports/latest/ is not committed yet")),
]


# --- a small synthetic-but-valid results document -------------------------------------------
ENVIRONMENT = {
    "machine": {"cpu_model": "synthetic CPU", "cores": 2, "memory_bytes": 8 * 2**30,
                "kernel": "6.0-test", "virtualization": "none"},
    "python": "3.11.7", "packages": {"fastapi": "0.0-test", "flask": "0.0-test"},
    "git": {"commit": "0" * 40, "dirty": False},
    "database": {"kind": "sqlite", "version": "3"},
}
SETTINGS = {
    "server_cpus": [0], "client_cpus": [1], "latency_objective_ms": 100.0, "warmup_s": 1.0,
    "duration_s": 3.0, "repetitions": 3, "concurrency": [16, 64, 256], "primary_concurrency": 64,
    "upstream": {"ttft_ms": 300, "inter_token_ms": 30, "tokens": 20, "token_interval_ms": 30},
}
STACKS = {  # stack → (impl, server, kind, workers)
    "flask-gunicorn-gthread": ("flask", "gunicorn-gthread", "app", 3),
    "flask-gunicorn-gevent": ("flask", "gunicorn-gevent", "app", 3),
    "rest-uvicorn": ("rest", "uvicorn", "app", 1),
    "graphql-uvicorn": ("graphql", "uvicorn", "app", 1),
    "raw-asgi-granian-asgi": ("raw-asgi", "granian-asgi", "floor", 1),
}
CLOSED = [s.name for s in scenarios.closed_loop()]  # config, card, decks, due, review
WRK_RPS = {  # stack → req/s at 64 connections for each closed-loop scenario, in registry order
    "flask-gunicorn-gthread": (3200.0, 1500.0, 1100.0, 700.0, 300.0),
    "flask-gunicorn-gevent": (2900.0, 1400.0, 1000.0, 650.0, 280.0),
    "rest-uvicorn": (4600.0, 2100.0, 1500.0, 900.0, 320.0),
    "graphql-uvicorn": (3400.0, 1300.0, 800.0, 500.0, 250.0),
}
CEILING_RPS = 30000.0


def _latency(rng: random.Random, p50: float) -> dict[str, float]:
    p50 *= rng.uniform(0.95, 1.05)
    return {"p50": p50, "p90": p50 * 1.7, "p99": p50 * 3.1, "p99_9": p50 * 4.2, "max": p50 * 5.0}


def _sample(rng: random.Random, rps: float, concurrency: int, *, requests: int | None = None,
            errors: dict[str, int] | None = None, extra: dict[str, Any] | None = None,
            duration: float = 3.0) -> dict[str, Any]:
    rps *= rng.uniform(0.97, 1.03)
    return {
        "requests": requests if requests is not None else int(rps * duration),
        "duration_s": duration, "rps": rps, "latency_ms": _latency(rng, 1000.0 * concurrency / rps),
        "errors": errors if errors is not None else {"connect": 0, "read": 0, "write": 0, "timeout": 0, "status": 0},
        "server_cpu_pct": rng.uniform(60.0, 99.0), "server_peak_rss_bytes": rng.randint(60, 300) * 2**20,
        "client_cpu_pct": rng.uniform(5.0, 45.0), "extra": extra or {},
    }


def _cell(doc: dict[str, Any], stack: str, scenario: str, driver: str, concurrency: int,
          samples: list[dict[str, Any]], **kwargs: Any) -> None:
    status, error = kwargs.pop("status", "ok"), kwargs.pop("error", None)
    cell = results.new_cell(stack, scenario, driver, concurrency, **kwargs)
    cell["samples"], cell["status"], cell["error"] = samples, status, error
    results.finish_cell(cell, CEILING_RPS)
    doc["cells"].append(cell)


def synthetic_document() -> dict[str, Any]:
    """wrk cells for four stacks × four scenarios (three repetitions; config also at 16 and 256
    connections), a refused cell, a floor, an open-loop cell, chat, sse-fanout and ws cells."""
    rng = random.Random(20261130)
    doc = results.new_document(run_id="20261130T000000Z-synthetic", profile="quick",
                               environment=ENVIRONMENT, settings=SETTINGS)
    doc["finished_at"] = doc["started_at"]
    for sid, (impl, server, kind, workers) in STACKS.items():
        doc["stacks"][sid] = {"impl": impl, "server": server, "kind": kind, "workers": workers,
                              "settings": {"server": server, "workers": workers}, "command": [server]}
    doc["driver_ceilings"] = [{"driver": "wrk", "floor": "raw-asgi-granian-asgi", "rps": CEILING_RPS,
                               "client_cpu_pct": 41.0, "concurrency": 64, "threads": 1}]
    _cell(doc, "raw-asgi-granian-asgi", "config", "wrk", 64,
          [_sample(rng, 26000.0, 64) for _ in range(3)])
    for stack, rates in WRK_RPS.items():
        for scenario, rps in zip(CLOSED, rates, strict=True):
            if stack == "graphql-uvicorn" and scenario == "review":
                _cell(doc, stack, scenario, "wrk", 64, [], status="refused",
                      error="verification failed: grade 9 must be 422, got 400")
                continue
            samples = [_sample(rng, rps, 64) for _ in range(3)]
            if scenario == "review":
                for s in samples:
                    in_flight = rng.randint(0, 60)
                    s["writes"] = {"acknowledged": s["requests"], "stored": s["requests"] + in_flight,
                                   "in_flight_at_cutoff": in_flight, "lost": 0}
            _cell(doc, stack, scenario, "wrk", 64, samples)
        if stack in ("flask-gunicorn-gthread", "rest-uvicorn"):
            for conns, factor in ((16, 0.8), (256, 1.05)):
                _cell(doc, stack, "config", "wrk", conns,
                      [_sample(rng, rates[0] * factor, conns) for _ in range(3)])
    opened = _sample(rng, 500.0, 32, extra={"driver": "openloop", "fraction_of_peak": 0.25})
    _cell(doc, "rest-uvicorn", "card", "openloop", 32, [opened], mode="open", target_rate=500.0)
    # chat: users each stream an answer; gthread runs out of threads at 50
    for stack in ("flask-gunicorn-gthread", "flask-gunicorn-gevent", "rest-uvicorn"):
        for users in (10, 50):
            failing = stack == "flask-gunicorn-gthread" and users == 50
            errs = {"timeout": 4} if failing else {}
            ttft = _latency(rng, 330.0 + (900.0 if failing else 0.0))
            total = {k: v + 600.0 for k, v in ttft.items()}
            extra: dict[str, Any] = {
                "driver": "chat", "clients": users, "completed": users - sum(errs.values()),
                "errors": errs, "ttft_ms": ttft, "total_ms": total, "slo_met": not failing,
                "max_sustained": 10 if stack == "flask-gunicorn-gthread" else 50, "max_tried": 50}
            sample = _sample(rng, users / 1.0, users, requests=users, errors=errs, extra=extra, duration=1.0)
            sample["latency_ms"] = total
            _cell(doc, stack, "chat", "chat", users, [sample])
    # sse-fanout and ws: held connections, one publish reaching all
    for stack, scenario, driver, levels in (("rest-uvicorn", "sse-fanout", "sse", (100, 500)),
                                            ("flask-gunicorn-gevent", "sse-fanout", "sse", (100, 500)),
                                            ("rest-uvicorn", "ws", "ws", (100, 500))):
        for subs in levels:
            delivery = _latency(rng, 8.0 + subs / 50.0)
            extra = {"driver": driver, "subscribers": subs, "connected": subs,
                     "connects_per_s": rng.uniform(700.0, 1300.0), "published": 5,
                     "delivered": subs * 5, "expected": subs * 5, "lost": 0, "delivery_ms": delivery,
                     "single_event": {"published": 1, "expected": subs, "delivered": subs,
                                      "delivery_ms": {**_latency(rng, 4.0 + subs / 80.0), "n": subs}},
                     "rss_per_connection_bytes": rng.uniform(15000.0, 80000.0),
                     "rss_after_disconnect_delta_mib": rng.uniform(0.0, 30.0)}
            sample = _sample(rng, 1000.0, subs, requests=subs * 5, extra=extra,
                             errors={"lost": 0, "publish": 0, "not_connected": 0})
            sample["latency_ms"] = delivery
            _cell(doc, stack, scenario, driver, subs, [sample])
    _cell(doc, "flask-gunicorn-gthread", "sse-fanout", "sse", 500, [], status="failed",
          error="server exited with code 1 during the run")
    doc["checks"] = {"sm2-parity": "passed", "contract-parity": "passed"}
    problems = results.validate(doc)
    assert problems == [], problems
    return doc


# --- the report under test ------------------------------------------------------------------
@dataclass
class Figure:
    """What a chart shows, read from the matplotlib figure as it is saved."""

    path: Path
    suptitle: str
    axes: list[dict[str, Any]] = field(default_factory=list)


def _describe(fig: Any, path: Path) -> Figure:
    sup = fig.get_suptitle() if hasattr(fig, "get_suptitle") else ""
    out = Figure(Path(path), sup)
    for ax in fig.get_axes():
        legend = ax.get_legend()
        out.axes.append({
            "title": ax.get_title(), "xlabel": ax.get_xlabel(), "ylabel": ax.get_ylabel(),
            "legend": [t.get_text() for t in legend.get_texts()] if legend else None,
            "lines": [ln.get_label() for ln in ax.get_lines() if not ln.get_label().startswith("_")],
            "bars": sum(len(c) for c in ax.containers),
            "yticks": [t.get_text() for t in ax.get_yticklabels()],
            "yshared": len(ax.get_shared_y_axes().get_siblings(ax)) > 1,
        })
    return out


@contextlib.contextmanager
def captured_figures() -> Iterator[dict[str, Figure]]:
    """Every figure report.py saves, by file name (Figure.savefig wrapped, then restored)."""
    from matplotlib.figure import Figure as MplFigure

    seen: dict[str, Figure] = {}
    original = MplFigure.savefig

    def savefig(self: Any, fname: Any, *args: Any, **kwargs: Any) -> Any:
        seen[Path(fname).name] = _describe(self, Path(fname))
        return original(self, fname, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(MplFigure, "savefig", savefig)
        yield seen


@dataclass
class Built:
    out: Path
    source: str
    figures: dict[str, Figure]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """write_report on reports/latest/results.json (a copy) if committed, else on the synthetic
    document; the figures report.py drew are captured on the way."""
    tmp = tmp_path_factory.mktemp("report")
    source = tmp / "source" / "results.json"
    source.parent.mkdir()
    if (LATEST / "results.json").exists():
        shutil.copyfile(LATEST / "results.json", source)
        origin = "reports/latest"
    else:
        results.save(synthetic_document(), source)
        origin = "synthetic"
    with captured_figures() as figures:
        out = report.write_report(source, tmp / "out")
    return Built(out, origin, figures)


@pytest.fixture
def report_dir(request: pytest.FixtureRequest, built: Built) -> Path:
    return built.out if request.param == "fixture" else LATEST


_JUDGED: dict[str, tuple[dict[str, Any], list[verdict_engine.Verdict]]] = {}


def judged(out: Path) -> tuple[dict[str, Any], list[verdict_engine.Verdict]]:
    """The results document beside a report, and the verdicts recomputed from it (cached by
    content: the fixture report and reports/latest may hold the same document)."""
    raw = (out / "results.json").read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    if digest not in _JUDGED:
        doc = json.loads(raw)
        _JUDGED[digest] = doc, verdict_engine.judge_all(
            doc, micro=doc.get("micro"), registry=verdict_engine.load_registry(), checks=doc.get("checks"))
    return _JUDGED[digest]


# --- Markdown parsing -------------------------------------------------------------------------
def _cells_of(line: str) -> list[str]:
    parts = re.split(r"(?<!\\)\|", line.strip())
    assert parts[0] == "" and parts[-1] == "", f"not a table row: {line!r}"
    return [p.strip().replace("\\|", "|") for p in parts[1:-1]]


def md_section(text: str, title_prefix: str) -> str:
    """The body of the `## ` section whose title starts with `title_prefix`."""
    m = re.search(rf"^## {re.escape(title_prefix)}.*?$(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert m, f"no section {title_prefix!r} in report.md"
    return m.group(1)


def md_tables(section: str) -> list[tuple[list[str], list[list[str]], list[str]]]:
    """(header, rows, raw lines) of each Markdown table in a section."""
    tables, lines = [], section.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].startswith("|") and i + 1 < len(lines) and lines[i + 1].startswith("|---"):
            j = i + 2
            while j < len(lines) and lines[j].startswith("|"):
                j += 1
            tables.append((_cells_of(lines[i]), [_cells_of(r) for r in lines[i + 2:j]], lines[i:j]))
            i = j
        else:
            i += 1
    return tables


# --- traceability: the verdict table and the scenario tables ----------------------------------
@pytest.mark.parametrize("report_dir", REPORTS, indirect=True)
def test_verdict_table_recomputes_from_results(report_dir: Path) -> None:
    _, found = judged(report_dir)
    text = (report_dir / "report.md").read_text()
    section = md_section(text, "Verdicts")
    tables = md_tables(section)
    assert tables, "no verdict table under the Verdicts heading"
    header, rows, raw = tables[0]
    from loadtests import verdict_render

    assert header == list(verdict_render.COLUMNS)
    assert len(rows) == len(found), "one row per claim of the registry"
    for row, v in zip(rows, found, strict=True):
        claim_id, measured, status = row[0].strip("`"), row[4], row[5].split("**")[1]
        assert (claim_id, measured, status) == (v.id, verdict_engine.format_measured(v), v.status), claim_id
    # and the table is verdicts_markdown's, line for line
    assert "\n".join(raw) == verdict_engine.verdicts_markdown(found, verdict_engine.load_registry())
    tally = ", ".join(f"{n} {status}" for status, n in verdict_render.tally(found).items())
    assert f"{len(found)} claims from the five documents" in section and tally in section
    # verdicts.json beside it is the same judgement, in full
    recomputed = json.loads(json.dumps([v.to_dict() for v in found]))
    assert json.loads((report_dir / "verdicts.json").read_text()) == recomputed


def _expected(values: list[float], digits: int, scale: float = 1.0) -> str:
    """A cell's median [95% CI], recomputed from its samples, formatted as the report does."""
    if not values:
        return "—"
    summary = stats.summarize(values)
    assert summary is not None
    assert summary["median"] == pytest.approx(statistics.median(values))
    text = f"{summary['median'] / scale:,.{digits}f}"
    ci = summary["ci95"]
    if ci and summary["n"] > 1:
        text += f" [{ci[0] / scale:,.{digits}f}–{ci[1] / scale:,.{digits}f}]"
    return text


@pytest.mark.parametrize("report_dir", REPORTS, indirect=True)
def test_scenario_tables_recompute_from_samples(report_dir: Path) -> None:
    doc = json.loads((report_dir / "results.json").read_text())
    text = (report_dir / "report.md").read_text()
    checked = 0
    for scenario in CLOSED:
        cells = [c for c in doc["cells"] if c["scenario"] == scenario and c["driver"] == "wrk"]
        if not cells:
            continue
        header, rows, _ = md_tables(md_section(text, scenarios.get(scenario).title))[0]
        col = {name: header.index(name) for name in
               ("stack (workers)", "conns", "req/s median [95% CI]", "p50 ms", "p99 ms")}
        printed = {(r[col["stack (workers)"]].split(" (")[0], r[col["conns"]]): r for r in rows}
        assert len(printed) == len(rows) == len(cells), f"{scenario}: one row per cell"
        for c in cells:
            row = printed[(c["stack"], str(c["concurrency"]))]
            samples = c["samples"]
            where = f"{scenario} {c['id']}"
            assert row[col["req/s median [95% CI]"]] == _expected([s["rps"] for s in samples], 0), where
            assert row[col["p50 ms"]] == _expected([s["latency_ms"]["p50"] for s in samples], 2), where
            assert row[col["p99 ms"]] == _expected([s["latency_ms"]["p99"] for s in samples], 2), where
            checked += 1
        if doc["driver_ceilings"]:
            ceiling = max(d["rps"] for d in doc["driver_ceilings"])
            assert f"Driver ceiling in this run: {ceiling:,.0f} req/s" in md_section(text, scenarios.get(scenario).title)
    assert checked > 0


def test_fanout_table_shows_the_one_event_delivery(tmp_path: Path) -> None:
    from loadtests.report.document import Table
    from loadtests.report.realtime import fanout_section
    from loadtests.report.values import run_of

    doc = synthetic_document()
    section = fanout_section(run_of(doc), tmp_path, scenarios.get("sse-fanout"))
    assert section is not None
    table = next(b for b in section.blocks if isinstance(b, Table))
    one, got = table.header.index("one event p50 / p99 / max ms"), table.header.index("one event delivered")
    cells = [c for c in doc["cells"] if c["scenario"] == "sse-fanout" and c["samples"]]
    assert len(table.rows) == len(cells) + 1  # and the failed cell's row
    for c in cells:
        single = c["samples"][-1]["extra"]["single_event"]
        row = next(r for r in table.rows if r[0] == c["stack"] and r[1] == f"{c['concurrency']:,}")
        d = single["delivery_ms"]
        assert row[one] == f"{d['p50']:,.1f} / {d['p99']:,.1f} / {d['max']:,.1f}"
        assert row[got] == f"{single['delivered']:,} / {single['expected']:,}"
    assert (tmp_path / "sse-fanout-one-event.png").stat().st_size > 5_000


# --- charts: files and what they show -------------------------------------------------------
@pytest.mark.parametrize("report_dir", REPORTS, indirect=True)
def test_chart_files_are_nontrivial_and_all_referenced(report_dir: Path) -> None:
    from PIL import Image

    charts = sorted((report_dir / "charts").glob("*.png"))
    assert len(charts) >= 4
    md = (report_dir / "report.md").read_text()
    referenced = set(re.findall(r"!\[[^\]]*\]\((charts/[^)]+)\)", md))
    assert referenced == {f"charts/{p.name}" for p in charts}, "every chart in report.md, and only those"
    html = (report_dir / "report.html").read_text()
    assert html.count("<img ") == len(charts) and html.count("src='data:image/png;base64,") == len(charts)
    for p in charts:
        assert p.stat().st_size > 5_000, f"{p.name}: suspiciously small"
        with Image.open(p) as img:
            w, h = img.size
            assert img.format == "PNG" and 600 <= w <= 3000 and 150 <= h <= 3000, (p.name, img.size)
            extrema = img.convert("L").getextrema()
            assert isinstance(extrema[0], int | float) and isinstance(extrema[1], int | float)
            assert extrema[1] - extrema[0] > 100, f"{p.name}: blank"


UNIT = re.compile(r"\bms\b|%|MiB|KiB|per second|per connection|connections|users|subscribers|percentile")


def test_charts_have_titles_axis_labels_with_units_and_legends(built: Built, tmp_path: Path) -> None:
    """Every plotting helper, on the synthetic document (it draws every kind of chart)."""
    out, figures = built.out, built.figures
    if built.source != "synthetic":
        source = results.save(synthetic_document(), tmp_path / "results.json")
        with captured_figures() as figures:
            out = report.write_report(source, tmp_path / "out")
    written = {p.name for p in (out / "charts").glob("*.png")}
    assert set(figures) == written
    kinds = {re.sub(r"^.*-", "", name.removesuffix(".png")) for name in written}
    assert kinds >= {"throughput", "latency", "resources", "concurrency", "ttft", "rss"}
    for name, fig in figures.items():
        assert fig.suptitle or all(ax["title"] for ax in fig.axes), f"{name}: no title"
        for ax in fig.axes:
            assert UNIT.search(ax["xlabel"]), f"{name}: x axis {ax['xlabel']!r} has no unit"
            if ax["bars"]:  # horizontal bars: the y axis names the stacks (once, if shared)
                assert any(ax["yticks"]) or ax["yshared"], f"{name}: bars without stack names"
            else:
                assert UNIT.search(ax["ylabel"]), f"{name}: y axis {ax['ylabel']!r} has no unit"
            if len(ax["lines"]) > 1:
                assert ax["legend"] == ax["lines"], f"{name}: several series need a legend"
        bars = [ax for ax in fig.axes if ax["bars"]]
        if bars:
            assert any(ax["ylabel"] and any(ax["yticks"]) for ax in bars), f"{name}: unlabelled stacks"
    # the red bars (client-bound) are explained by a legend
    config = figures["config-throughput.png"].axes[0]
    assert config["legend"] and any("client-bound" in t for t in config["legend"])
    # the latency chart has one series per stack, each named
    lines = figures["config-latency.png"].axes[0]["lines"]
    assert len(lines) == len(WRK_RPS) + 1 and all(" (" in label for label in lines)


def test_fixture_report_charts_were_drawn_by_report_py(built: Built) -> None:
    written = {p.name for p in (built.out / "charts").glob("*.png")}
    assert set(built.figures) == written and written


# --- headless Chromium over the DevTools protocol ---------------------------------------------
def _chromium() -> str | None:
    for name in CHROMIUM_NAMES:
        if path := shutil.which(name):
            return path
    return None


@dataclass
class Page:
    images: list[dict[str, Any]]
    tables: list[dict[str, Any]]
    errors: list[str]
    rules: dict[str, Any] | None = None  # what follows the "How verdicts are decided" heading
    rule_links: list[str] = field(default_factory=list)  # texts of links to that heading
    toc: list[str] = field(default_factory=list)  # hrefs of the table of contents
    ids: list[str] = field(default_factory=list)
    status_cells: list[list[str]] = field(default_factory=list)  # [class, text, background colour]


class DevTools:
    """The few CDP calls the test needs, over one browser-level WebSocket (flat sessions)."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.next_id = 0
        self.pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.fired: dict[str, asyncio.Event] = {}
        self.errors: list[str] = []

    async def read(self) -> None:
        async for raw in self.ws:
            msg = json.loads(raw)
            if "id" in msg:
                fut = self.pending.pop(msg["id"], None)
                if fut is not None and not fut.done():
                    fut.set_result(msg)
                continue
            method, params = msg.get("method", ""), msg.get("params", {})
            if method == "Runtime.exceptionThrown":
                details = params.get("exceptionDetails", {})
                self.errors.append(f"exception: {details.get('text')} {details.get('exception', {}).get('description', '')}")
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                entry = params["entry"]
                self.errors.append(f"log ({entry.get('source')}): {entry.get('text')} {entry.get('url', '')}")
            elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                args = [a.get("value", a.get("description")) for a in params.get("args", [])]
                self.errors.append(f"console.{params['type']}: {args}")
            self.fired.setdefault(method, asyncio.Event()).set()

    async def send(self, method: str, params: dict[str, Any] | None = None,
                   session: str | None = None) -> dict[str, Any]:
        self.next_id += 1
        msg: dict[str, Any] = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[self.next_id] = fut
        await self.ws.send(json.dumps(msg))
        reply = await fut
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return dict(reply.get("result", {}))

    async def fired_once(self, method: str) -> None:
        await self.fired.setdefault(method, asyncio.Event()).wait()


INSPECT = """
(async () => {
  await Promise.all([...document.images].map(img => img.decode().catch(() => null)));
  return {
    images: [...document.images].map(img => {
      const box = img.getBoundingClientRect(), style = getComputedStyle(img);
      return {alt: img.alt, complete: img.complete, naturalWidth: img.naturalWidth,
              naturalHeight: img.naturalHeight, width: box.width, height: box.height,
              visible: style.display !== 'none' && style.visibility !== 'hidden'};
    }),
    tables: [...document.querySelectorAll('table')].map(t => ({
      header: [...t.rows[0].cells].map(c => c.textContent.trim()), rows: t.rows.length - 1})),
    rules: (() => {
      const head = document.getElementById('how-verdicts-are-decided');
      if (!head) return null;
      const tags = [], texts = [];
      for (let n = head.nextElementSibling; n && n.tagName !== 'H2'; n = n.nextElementSibling) {
        tags.push(n.tagName); texts.push(n.textContent);
      }
      return {tags, text: texts.join(' '),
              items: tags.length ? head.parentElement.querySelectorAll('li').length : 0};
    })(),
    rule_links: [...document.querySelectorAll('a[href="#how-verdicts-are-decided"]')].map(a => a.textContent),
    toc: [...document.querySelectorAll('nav.toc a')].map(a => a.getAttribute('href')),
    ids: [...document.querySelectorAll('[id]')].map(e => e.id),
    status_cells: [...document.querySelectorAll('td[class^="st-"]')].map(td => [td.className, td.textContent.trim(),
      getComputedStyle(td).backgroundColor]),
  };
})()
"""


async def _render(ws_url: str, url: str) -> Page:
    from websockets.asyncio.client import connect

    async with connect(ws_url, max_size=None, open_timeout=10) as ws:
        tools = DevTools(ws)
        reader = asyncio.create_task(tools.read())
        target = (await tools.send("Target.createTarget", {"url": "about:blank"}))["targetId"]
        try:
            session = (await tools.send("Target.attachToTarget", {"targetId": target, "flatten": True}))["sessionId"]
            for domain in ("Page", "Runtime", "Log"):
                await tools.send(f"{domain}.enable", session=session)
            await tools.send("Page.navigate", {"url": url}, session=session)
            await asyncio.wait_for(tools.fired_once("Page.loadEventFired"), 20)
            found = await tools.send("Runtime.evaluate", {"expression": INSPECT, "awaitPromise": True,
                                                          "returnByValue": True}, session=session)
            if "exceptionDetails" in found:
                raise RuntimeError(f"inspection script failed: {found['exceptionDetails']}")
            value = found["result"]["value"]
        finally:
            await tools.send("Target.closeTarget", {"targetId": target})
            reader.cancel()
        return Page(value["images"], value["tables"], list(tools.errors), value["rules"], value["rule_links"],
                    value["toc"], value["ids"], value["status_cells"])


@dataclass
class Browser:
    ws_url: str

    def render(self, path: Path) -> Page:
        return asyncio.run(asyncio.wait_for(_render(self.ws_url, path.resolve().as_uri()), 30))


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    exe = _chromium()
    if exe is None:
        pytest.skip(f"Chromium is not installed (Debian/Ubuntu: `{CHROMIUM_INSTALL}`)")
    profile = tmp_path_factory.mktemp("chromium-profile")
    log = profile.parent / f"{profile.name}.stderr"
    with log.open("wb") as stderr:
        proc = subprocess.Popen(
            [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             "--disable-quic", "--no-first-run", "--no-default-browser-check",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-extensions", f"--user-data-dir={profile}", "--remote-debugging-port=0",
             "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr)
    ws_url: str | None = None
    try:
        active = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (active.exists() and len(active.read_text().split()) >= 2):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"Chromium did not start (exit {proc.poll()}):\n{log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.05)
        port, path = active.read_text().split()[:2]
        ws_url = f"ws://127.0.0.1:{port}{path}"
        yield Browser(ws_url)
    finally:
        if ws_url is not None:
            with contextlib.suppress(Exception):
                asyncio.run(asyncio.wait_for(_close(ws_url), 5))
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


async def _close(ws_url: str) -> None:
    from websockets.asyncio.client import connect

    async with connect(ws_url, open_timeout=5) as ws:
        await ws.send(json.dumps({"id": 1, "method": "Browser.close"}))
        with contextlib.suppress(Exception):
            await asyncio.wait_for(ws.recv(), 5)


@pytest.mark.parametrize("report_dir", REPORTS, indirect=True)
def test_report_html_renders_in_chromium_with_charts_visible(browser: Browser, report_dir: Path) -> None:
    page = browser.render(report_dir / "report.html")
    assert page.errors == []
    charts = sorted((report_dir / "charts").glob("*.png"))
    assert len(page.images) == len(charts) >= 4
    assert sorted(img["alt"] for img in page.images) == sorted(p.stem for p in charts)
    for img in page.images:
        assert img["complete"] and img["naturalWidth"] > 0 and img["naturalHeight"] > 0, img
        assert img["visible"] and img["width"] > 100 and img["height"] > 50, img
    verdict_tables = [t for t in page.tables if any("verdict" in h.lower() for h in t["header"])]
    assert verdict_tables, [t["header"] for t in page.tables]
    assert verdict_tables[0]["rows"] == len(json.loads((report_dir / "verdicts.json").read_text()))


def test_report_html_renders_the_rules_as_html_with_contents_and_status_colours(
        browser: Browser, built: Built) -> None:
    """Issue 20: the rules section is HTML (headings and lists, no raw Markdown), the link to it
    has no literal asterisks, a table of contents leads to every section, and each verdict
    status has its own colour. (On the fixture report: reports/latest/ is regenerated by the
    next standard run.)"""
    page = browser.render(built.out / "report.html")
    assert page.rules is not None, "no 'How verdicts are decided' section"
    assert "H3" in page.rules["tags"] and "UL" in page.rules["tags"] and page.rules["items"] > 3, page.rules["tags"]
    for raw in ("## ", "**", "`"):
        assert raw not in page.rules["text"], f"raw Markdown {raw!r} in the rules section"
    assert page.rule_links and all("*" not in text for text in page.rule_links), page.rule_links
    assert len(page.toc) >= 5 and all(href.lstrip("#") in page.ids for href in page.toc), page.toc
    assert "#how-verdicts-are-decided" in page.toc
    colours: dict[str, set[str]] = {}
    for css, _text, background in page.status_cells:
        colours.setdefault(css, set()).add(background)
    assert len(colours) >= 2 and all(len(c) == 1 for c in colours.values()), colours
    assert len({next(iter(c)) for c in colours.values()}) == len(colours), "one colour per status"


def test_the_browser_check_catches_a_broken_page(browser: Browser, tmp_path: Path) -> None:
    """The harness itself: a script error and an undecodable image are both reported."""
    page = tmp_path / "broken.html"
    page.write_text("<!doctype html><html><body><img alt='broken' src='data:image/png;base64,AAAA'>"
                    "<script>throw new Error('boom')</script></body></html>")
    seen = browser.render(page)
    assert any("boom" in e for e in seen.errors), seen.errors
    assert seen.images and seen.images[0]["naturalWidth"] == 0


# --- calibration against the committed run ----------------------------------------------------
def test_calibration_says_when_the_machine_differs(tmp_path: Path) -> None:
    """Issue 20: a run whose numbers are a third of the committed run's says so (and the same
    document against itself says the machine is comparable)."""
    from loadtests.report.run import calibration_section

    doc = synthetic_document()
    committed = _committed_three_times_faster(doc, tmp_path / "results.json")
    section = calibration_section(doc, committed=committed)
    assert section is not None
    text = " ".join(b for b in section.blocks if isinstance(b, str))
    assert "a different machine or load" in text and "0.33×" in text, text
    same = json.loads(json.dumps(doc))
    same["run_id"] = "20261101T000000Z-same"
    results.save(same, committed)
    section = calibration_section(doc, committed=committed)
    assert section is not None
    text = " ".join(b for b in section.blocks if isinstance(b, str))
    assert "about the same machine" in text and "1.00×" in text, text


def _committed_three_times_faster(doc: dict[str, Any], path: Path) -> Path:
    """`doc` as a committed run on a machine three times faster (every rate and ceiling × 3)."""
    faster = json.loads(json.dumps(doc))
    faster["run_id"] = "20261101T000000Z-committed"
    for cell in faster["cells"]:
        for sample in cell["samples"]:
            sample["rps"] *= 3.0
        results.finish_cell(cell, CEILING_RPS * 3)
    for ceiling in faster["driver_ceilings"]:
        ceiling["rps"] *= 3.0
    results.save(faster, path)
    return path


def test_many_series_stay_distinguishable() -> None:
    """Issue 20: 18 series shared 10 colours in config-latency; now every (colour, marker, line
    style) triple differs up to 70 series, and floors are drawn dotted with hollow markers."""
    from loadtests.report.charts import series_style

    styles = [series_style(i) for i in range(70)]
    assert len({(s["color"], s["marker"], str(s["linestyle"])) for s in styles}) == 70
    assert all(styles[i]["color"] != styles[i + 1]["color"] for i in range(69))
    floor = series_style(3, floor=True)
    assert floor["linestyle"] == ":" and floor["markerfacecolor"] == "none"


def test_floors_get_their_own_panel_and_chat_its_objective(built: Built, tmp_path: Path) -> None:
    """Issue 20: client-bound floors squeezed the apps into 15% of the throughput axis: floors
    now sit on a second panel with its own axis; the chat TTFT chart draws its objective."""
    figures = built.figures
    if built.source != "synthetic":
        with captured_figures() as figures:
            report.write_report(results.save(synthetic_document(), tmp_path / "results.json"), tmp_path / "out")
    apps, floors = figures["config-throughput.png"].axes
    assert not any("raw-asgi" in t for t in apps["yticks"]) and any("raw-asgi" in t for t in floors["yticks"])
    ttft = figures["chat-ttft.png"].axes[0]
    assert any(label.startswith("objective: 2 × upstream TTFT (600 ms)") for label in ttft["lines"]), ttft["lines"]


def test_the_summary_at_the_top_counts_and_calibrates(tmp_path: Path) -> None:
    """Issue 20: the report opens with a summary: claims per status, cells per status, the
    driver's ceiling and, for a quick run on a faster machine, that it differs from the
    committed run (in the first section, before any table of cells)."""
    from loadtests.report.build import head_section, summary_blocks
    from loadtests.report.verdict import judge

    doc = synthetic_document()
    committed = _committed_three_times_faster(doc, tmp_path / "committed.json")
    found, _registry = judge(doc)
    assert "**Summary.**" in " ".join(b for b in head_section(doc, found).blocks if isinstance(b, str))
    blocks = summary_blocks(doc, found, committed=committed)
    text = " ".join(b for b in blocks if isinstance(b, str))
    assert f"**Summary.** {len(found)} claims judged; cells measured:" in text, text
    assert "load generator's ceiling in this run" in text, text
    assert "a different machine or load" in text and "0.33×" in text, text
    tables = [b for b in blocks if not isinstance(b, (str, Path))]
    assert tables and tables[0].header == ["status", "claims"]
    assert sum(int(row[1]) for row in tables[0].rows) == len(found)


def test_open_loop_section_states_the_timeout_its_samples_ran_with(tmp_path: Path) -> None:
    from loadtests.report.scenario import open_loop_section

    doc = json.loads((REPO_ROOT / "reports" / "latest" / "results.json").read_text())
    opened = [c for c in doc["cells"] if c.get("mode") == "open"]
    assert opened
    for c in opened:
        for s in c["samples"]:
            s["extra"]["timeout_s"] = 4.0
    section = open_loop_section(doc, tmp_path)
    assert section is not None and "unanswered 4 s after its send" in str(section.blocks[0])
    doc = json.loads(json.dumps(doc))  # a new document: run_of caches the typed run per document
    for c in doc["cells"]:
        for s in c["samples"] if c.get("mode") == "open" else ():
            s["extra"].pop("timeout_s")
    section = open_loop_section(doc, tmp_path)
    assert section is not None and "timed out" not in str(section.blocks[0])
