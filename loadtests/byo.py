"""Benchmark your own app (``stackbench bench --app pkg.module:app``) or a running service
(``stackbench bench --target http://host:port``) with requests from a scenario file
(`loadtests.scenario_file`).

``--app``: the app runs on every server of its interface in the servers registry
(`loadtests.servers.all_servers`: gunicorn sync/gthread/gevent, waitress, granian for WSGI;
uvicorn, uvicorn-h11, granian, gunicorn+uvicorn for ASGI) exactly as our own stacks do: a
`Stack` built for it, the same community settings and worker rule (one serving process per
server core, `loadtests.setups`), the server pinned to the server CPUs and the load generator to
the others, a fresh server for every repetition, servers interleaved across repetitions, and the
server's CPU and memory over exactly the measured window (`loadtests.measure`). Every request
of the file is verified against each fresh server before it is measured; a server that fails
is not benchmarked (its cells say why).

``--target``: nothing is started; the closed loop (wrk) and the open loop (no coordinated
omission, at ``--rate`` or half the closed loop's throughput) drive the URL; server CPU and
memory come from a `stackbench agent` on the server's host (``--agent URL``) or are recorded as
not measured.

Cells: one per request of the file (closed loop at ``connections``) plus ``mix`` (the weighted
mix) and open-loop cells; the document is an ordinary results.json (profile ``byo:<name>``), so
``stackbench compare``, ``export`` and ``report`` read it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from loadtests import environment, measure, results, setups
from loadtests.launcher import RunningServer
from loadtests.openloop import run_open_loop
from loadtests.scenario_file import Prepared, ScenarioFile, UserRequest, VerificationFailed, verify
from loadtests.servers import AppTarget, Kind, all_servers
from loadtests.stacks import Stack
from loadtests.wire import RequestSpec
from loadtests.wrk import WrkJob

LUA = Path(__file__).with_name("byo_requests.lua")
MIX = "mix"


@dataclass(frozen=True)
class AppStack(Stack):
    """A stack whose app is the user's (`Stack.target` reads our registry; this one is given)."""

    app: AppTarget | None = None

    @property
    def target(self) -> AppTarget:
        assert self.app is not None
        return self.app


@dataclass(frozen=True)
class Settings:
    repetitions: int = 5
    warmup_s: float = 1.0
    duration_s: float = 5.0
    connections: int = 64
    rates: tuple[float, ...] = ()  # open-loop rates; () → half the closed loop (target mode only)
    open_loop: bool = False
    server_cpus: tuple[int, ...] = ()
    client_cpus: tuple[int, ...] = ()
    timeout_s: float = 2.0


# -- the app and its stacks ---------------------------------------------------------------------

def detect(target: str, app_dir: Path) -> dict[str, Any]:
    """{"interface", "factory"} of `module:attr`, imported in a child process from `app_dir`."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [str(app_dir), str(Path(__file__).resolve().parent.parent), os.environ.get("PYTHONPATH")]))}
    out = subprocess.run([sys.executable, "-m", "loadtests.appdetect", target], capture_output=True,
                         text=True, env=env, cwd=app_dir, timeout=60, check=False)
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    if not lines:
        return {"error": f"could not inspect {target}: {(out.stderr or out.stdout)[-500:]}"}
    return dict(json.loads(lines[-1]))


def app_stacks(target: str, kind: Kind, factory: bool, *, name: str, ready_path: str,
               servers: Sequence[str] | None = None) -> list[AppStack]:
    """One stack per server of the app's interface (or the named ones)."""
    app = AppTarget(target, kind, factory=factory, ready_path=ready_path)
    chosen = list(servers) if servers else all_servers(kind)
    unknown = [s for s in chosen if s not in all_servers(kind)]
    if unknown:
        raise ValueError(f"servers {unknown} do not serve {kind.upper()} apps; "
                         f"{kind.upper()} servers: {', '.join(all_servers(kind))}")
    return [AppStack(f"{name}-{server}", name, server, "rest", "app", app=app) for server in chosen]


def app_name(target: str) -> str:
    """A stack-id prefix from the import string: `todo_app.asgi:app` → `todo_app`."""
    head = target.partition(":")[0].split(".")[0]
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in head) or "app"


# -- what wrk and the open loop send --------------------------------------------------------------

def _lua_bytes(text: str) -> str:
    safe = set(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 /:._-,=+?&%")
    return '"' + "".join(chr(b) if b in safe else f"\\{b:03d}" for b in text.encode()) + '"'


def requests_lua(groups: Sequence[tuple[float, Sequence[Prepared]]]) -> str:
    """The Lua table `byo_requests.lua` reads: weighted groups of prepared requests."""
    out = ["return {"]
    for weight, prepared in groups:
        items = []
        for p in prepared:
            headers = "{" + ", ".join(f"[{_lua_bytes(k)}] = {_lua_bytes(v)}" for k, v in p.headers.items()) + "}"
            body = _lua_bytes(p.body) if p.body is not None else "nil"
            items.append(f"{{{_lua_bytes(p.method)}, {_lua_bytes(p.path)}, {headers}, {body}}}")
        out.append(f" {{{weight!r}, {{" + ",\n  ".join(items) + "}},")
    out.append("}")
    return "\n".join(out) + "\n"


def wrk_groups(scenario: ScenarioFile, which: str) -> list[tuple[float, list[Prepared]]]:
    if which == MIX:
        return [(r.weight, r.variants()) for r in scenario.mix]
    return [(1.0, scenario.request(which).variants())]


def closed_loop(url: str, groups: Sequence[tuple[float, Sequence[Prepared]]], settings: Settings,
                duration_s: float) -> dict[str, Any]:
    """One wrk run of these requests (a results sample without server metrics)."""
    with tempfile.NamedTemporaryFile("w", prefix="stackbench-byo-", suffix=".lua", delete=False) as f:
        f.write(requests_lua(groups))
        spec_path = f.name
    try:
        job = WrkJob(url=url.rstrip("/") + "/", connections=settings.connections, duration_s=duration_s,
                     threads=1, script=LUA, ids_file=spec_path, cpus=settings.client_cpus or None,
                     timeout_s=settings.timeout_s)
        return job.run()
    finally:
        os.unlink(spec_path)


def open_spec(request: UserRequest) -> RequestSpec:
    """The open-loop driver's RequestSpec: one variable of integers becomes its `{id}`; any other
    values are fixed at the first prepared request."""
    first = request.variants()[0]
    if len(request.values) == 1:
        (var, values), = request.values.items()
        if all(v.lstrip("-").isdigit() for v in values):
            token = "{" + var + "}"
            return RequestSpec(request.method, request.path.replace(token, "{id}"),
                               request.body.replace(token, "{id}") if request.body else None,
                               dict(first.headers), tuple(int(v) for v in values), request.expect_status)
    return RequestSpec(request.method, first.path, first.body, dict(first.headers), (), request.expect_status)


# -- one server's worth of cells ------------------------------------------------------------------

Usage = Callable[[Callable[[], dict[str, Any]]], dict[str, Any]]


def not_measured(run: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    sample = run()
    sample.setdefault("extra", {})["server"] = {"measured": False,
                                                "why": "no --agent on the server's host: server CPU and memory not measured"}
    return sample


def agent_usage(agent: Any) -> Usage:
    def usage(run: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        agent.begin()
        sample = run()
        used = agent.end()
        sample["server_cpu_pct"] = used.get("cpu_pct")
        sample["server_cpu_s"] = used.get("cpu_s")
        sample["server_peak_rss_bytes"] = used.get("peak_rss_bytes")
        for key, src in (("server_pss_bytes", "peak_pss_bytes"), ("server_uss_bytes", "peak_uss_bytes")):
            if used.get(src) is not None:
                sample[key] = used[src]
        sample.setdefault("extra", {})["server"] = {**used, "measured_by": "stackbench agent"}
        return sample
    return usage


@dataclass
class Run:
    """The results document of one bring-your-own run, and how to add samples to it."""

    doc: dict[str, Any]
    path: Path
    scenario: ScenarioFile
    settings: Settings
    console: Console

    def cell(self, stack: str, scenario: str, driver: str, concurrency: int | None, *,
             mode: str = "closed", target_rate: float | None = None) -> dict[str, Any]:
        cid = results.cell_id(stack, scenario, driver, concurrency, target_rate)
        for cell in self.doc["cells"]:
            if cell["id"] == cid:
                return cell
        cell = results.new_cell(stack, scenario, driver, concurrency, mode=mode, target_rate=target_rate)
        self.doc["cells"].append(cell)
        return cell

    def fail(self, stack: str, why: str, status: str = "failed") -> None:
        for name in [*(r.name for r in self.scenario.requests), MIX]:
            cell = self.cell(stack, name, "wrk", self.settings.connections)
            if not cell["samples"]:
                cell["status"], cell["error"] = status, why
        self.console.print(f"[red]{stack}: {why.splitlines()[0]}[/]")

    def measure_all(self, stack: str, url: str, usage: Usage, setup: dict[str, Any] | None) -> None:
        """Every request, then the mix, then the open loop: one sample each."""
        s = self.settings
        names = [r.name for r in self.scenario.requests] + ([MIX] if len(self.scenario.mix) > 1 else [])
        for name in names:
            groups = wrk_groups(self.scenario, name)
            cell = self.cell(stack, name, "wrk", s.connections)
            try:
                if s.warmup_s > 0:
                    closed_loop(url, groups, s, s.warmup_s)
                sample = usage(lambda groups=groups: closed_loop(url, groups, s, s.duration_s))  # type: ignore[misc]
            except Exception as exc:  # a driver failure is this cell's, not the run's
                cell["status"], cell["error"] = "failed", f"{type(exc).__name__}: {exc}"[:2000]
                continue
            sample["concurrency"] = s.connections
            cell["samples"].append(sample)
            if setup:
                cell["setup"] = setup
            results.finish_cell(cell, ceiling_rps=None)
            self.console.print(f"  {cell['id']}: {sample['rps']:,.0f} req/s, p99 {sample['latency_ms'].get('p99')} ms")
            if s.open_loop and name != MIX:
                self._open_loop(stack, url, self.scenario.request(name), float(sample["rps"]), usage)
        results.save(self.doc, self.path)

    def _open_loop(self, stack: str, url: str, request: UserRequest, closed_rps: float, usage: Usage) -> None:
        s = self.settings
        rates = s.rates or (round(max(1.0, closed_rps * 0.5)),)
        for rate in rates:
            cell = self.cell(stack, request.name, "openloop", None, mode="open", target_rate=float(rate))
            try:
                sample = usage(lambda rate=rate: run_open_loop(  # type: ignore[misc]
                    url, open_spec(request), float(rate), s.duration_s, s.warmup_s,
                    cpus=s.client_cpus or None, timeout_s=s.timeout_s))
            except Exception as exc:
                cell["status"], cell["error"] = "failed", f"{type(exc).__name__}: {exc}"[:2000]
                continue
            cell["samples"].append(sample)
            results.finish_cell(cell, ceiling_rps=None)


def _describe(r: UserRequest) -> dict[str, Any]:
    return {"name": r.name, "method": r.method, "path": r.path, "weight": r.weight,
            "expect_status": r.expect_status, "body": r.body, "check": dataclasses.asdict(r.check) if r.check else None,
            "values": {k: f"{len(v)} values ({v[0]} … {v[-1]})" for k, v in r.values.items()}}


def new_run(scenario: ScenarioFile, settings: Settings, out: Path, console: Console, extra: dict[str, Any]) -> Run:
    env = environment.capture(None)
    run_id = results.make_run_id((env.get("git") or {}).get("commit")) + "-byo"
    doc = results.new_document(run_id=run_id, profile=f"byo:{scenario.name}", environment=env, settings={
        "server_cpus": list(settings.server_cpus), "client_cpus": list(settings.client_cpus),
        "warmup_s": settings.warmup_s, "duration_s": settings.duration_s,
        "repetitions": settings.repetitions, "concurrency": [settings.connections],
        "primary_concurrency": settings.connections, "open_loop_rates": list(settings.rates),
        "scenario_file": scenario.source, "requests": [_describe(r) for r in scenario.requests],
        "subset": True, **extra})
    return Run(doc, out / run_id / "results.json", scenario, settings, console)


# -- the two commands ----------------------------------------------------------------------------

@contextmanager
def _started(stack: AppStack, settings: Settings, env: dict[str, str]) -> Iterator[tuple[RunningServer, dict[str, Any]]]:
    spec = stack.spec(0, settings.server_cpus or None, env, setups.per_core_workers(stack, settings.server_cpus or (0,)))
    running = RunningServer(spec).start(timeout=60)
    try:
        setup = setups.read_setup(running.pid, spec.settings())
        yield running, setup
    finally:
        running.stop()


def bench_app(target: str, scenario: ScenarioFile, settings: Settings, *, out: Path, console: Console,
              app_dir: Path, interface: str | None = None, factory: bool | None = None,
              servers: Sequence[str] | None = None, env: dict[str, str] | None = None) -> Path:
    """`stackbench bench --app`: the user's app on every server that fits; returns results.json."""
    found = detect(target, app_dir) if interface is None or factory is None else {}
    if interface is None:
        if "error" in found:
            raise ValueError(found["error"])
        interface = found["interface"]
    if factory is None:
        factory = bool(found.get("factory", False))
    kind: Kind = "asgi" if interface == "asgi" else "wsgi"
    stacks = app_stacks(target, kind, factory, name=app_name(target), ready_path=scenario.ready_path,
                        servers=servers)
    server_env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(app_dir.resolve()), os.environ.get("PYTHONPATH")])),
                  **(env or {})}
    run = new_run(scenario, settings, out, console, {"app": {"target": target, "interface": kind,
                                                             "factory": factory, "dir": str(app_dir)},
                                                     "scenarios": {s.id: [r.name for r in scenario.requests] for s in stacks}})
    console.print(f"{target}: {kind.upper()}{' factory' if factory else ''} on {', '.join(s.server for s in stacks)}; "
                  f"{settings.repetitions} repetition(s) × {len(scenario.requests)} request(s)")
    for rep in range(settings.repetitions):
        order = stacks[rep % len(stacks):] + stacks[:rep % len(stacks)]
        for stack in order:
            try:
                with _started(stack, settings, server_env) as (running, setup):
                    described = running.spec.describe()
                    described.pop("env", None)
                    run.doc["stacks"][stack.id] = {"impl": stack.impl, "kind": "app", "api": "rest", **described}
                    try:
                        verify(running.url, scenario)
                    except VerificationFailed as exc:
                        run.fail(stack.id, str(exc), status="refused")
                        continue
                    load = measure.Load(running.url, running.pid, settings.client_cpus or None)
                    run.measure_all(stack.id, running.url,
                                    lambda fn, load=load: measure.with_server_usage(load, fn), setup)  # type: ignore[misc]
            except Exception as exc:
                run.doc["stacks"].setdefault(stack.id, {"impl": stack.impl, "server": stack.server, "kind": "app",
                                                        "workers": None, "settings": {}, "command": None})
                run.fail(stack.id, f"{type(exc).__name__}: {exc}"[:2000])
            results.save(run.doc, run.path)
    return _finish(run)


def bench_target(url: str, scenario: ScenarioFile, settings: Settings, *, out: Path, console: Console,
                 agent: str | None = None) -> Path:
    """`stackbench bench --target`: drive a running server; returns results.json."""
    from loadtests.agent import AgentClient

    client = AgentClient(agent) if agent else None
    if client is not None:
        health = client.health()
        if not health.get("alive"):
            raise ValueError(f"the agent at {agent} watches pid {health.get('pid')}, which is not running")
    stack_id = "target"
    run = new_run(scenario, dataclasses.replace(settings, open_loop=True), out, console,
                  {"target": {"url": url, "agent": agent}, "scenarios": {stack_id: [r.name for r in scenario.requests]}})
    run.doc["stacks"][stack_id] = {"impl": "target", "server": url, "kind": "app", "api": "rest", "workers": None,
                                   "settings": {"url": url, "server_usage": "stackbench agent" if agent else "not measured"},
                                   "command": None}
    usage = agent_usage(client) if client is not None else not_measured
    try:
        for _rep in range(settings.repetitions):
            try:
                verify(url, scenario)
            except VerificationFailed as exc:
                run.fail(stack_id, str(exc), status="refused")
                break
            run.measure_all(stack_id, url, usage, None)
            time.sleep(0.2)
    finally:
        if client is not None:
            client.close()
    return _finish(run)


def _finish(run: Run) -> Path:
    run.doc["finished_at"] = results.now_iso()
    results.save(run.doc, run.path)
    run.console.print(f"results: {run.path}")
    return run.path


def main(*, app: str | None, target: str | None, scenario_file: Path | None, interface: str | None,
         factory: bool | None, app_dir: Path, servers: Sequence[str] | None, agent: str | None,
         repetitions: int, duration: float, warmup: float, connections: int, rates: Sequence[float] | None,
         out: Path, server_cpus: str | None, client_cpus: str | None, console: Console) -> int:
    """The CLI's `bench --app/--target`: check the options, run, return the exit status (2: a
    usage error, printed as one line; 1: nothing could be measured)."""
    from loadtests import scenario_file as sf
    from loadtests.plan import split_cpus

    def usage(message: str) -> int:
        console.print(f"[red]error: {message}[/]")
        return 2

    if bool(app) == bool(target):
        return usage("give --app module:attr or --target URL (one of them)")
    if scenario_file is None:
        return usage("--scenario-file is required with --app/--target (see examples/todo/scenario.toml)")
    if interface not in (None, "asgi", "wsgi"):
        return usage(f"--interface must be asgi or wsgi, not {interface!r}")
    if target and not target.startswith(("http://", "https://")):
        return usage(f"--target must be an http(s) URL, not {target!r}")
    if target and target.startswith("https://"):
        return usage("--target: wrk and the open-loop driver here speak plain HTTP/1.1 (no TLS)")
    try:
        scenario = sf.load(scenario_file)
    except (OSError, sf.ScenarioFileError) as exc:
        return usage(str(exc))
    srv, cli = split_cpus(server_cpus, client_cpus)
    settings = Settings(repetitions=repetitions, warmup_s=warmup, duration_s=duration, connections=connections,
                        rates=tuple(rates or ()), open_loop=bool(rates), server_cpus=srv, client_cpus=cli)
    try:
        if app:
            path = bench_app(app, scenario, settings, out=out, console=console, app_dir=app_dir,
                             interface=interface, factory=factory, servers=servers)
        else:
            assert target is not None
            path = bench_target(target, scenario, settings, out=out, console=console, agent=agent)
    except ValueError as exc:
        return usage(str(exc))
    doc = results.load(path)
    measured = sum(1 for c in doc["cells"] if c["status"] == "ok" and c["samples"])
    if not measured:
        console.print("[red]nothing was measured: see the cells' errors in the results[/]")
        return 1
    return 0
