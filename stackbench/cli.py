"""The `stackbench` command line."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from flashcards.settings import Settings
from provision import postgres
from provision.database import resolve_dsn
from stackbench.names import UnknownName, check_bench, check_serve

console = Console()
app = typer.Typer(help="stackbench: one domain, three stacks, measured honestly.", no_args_is_help=True)
db_app = typer.Typer(help="The database: a private PostgreSQL server, schema and seed data.", no_args_is_help=True)
app.add_typer(db_app, name="db")
err_console = Console(stderr=True, soft_wrap=True, highlight=False)


def refuse(message: str) -> typer.Exit:
    """One line on stderr and exit status 2 (a usage error), no traceback."""
    err_console.print(f"error: {message}", markup=False)
    return typer.Exit(2)

DsnOption = Annotated[
    str | None,
    typer.Option("--dsn", help="Database URL (postgresql://… or sqlite:///path). Default: $STACKBENCH_DSN, else the private PostgreSQL."),
]


@db_app.command("start")
def db_start(
    data_dir: Annotated[Path, typer.Option(help="Where the private server keeps its data.")] = postgres.DEFAULT_DATA_DIR,
) -> None:
    """Start the private PostgreSQL server (no-op if it runs) and print its DSN."""
    dsn = postgres.start(data_dir)
    console.print(f"PostgreSQL {postgres.version(dsn)} ready")
    print(dsn)


@db_app.command("stop")
def db_stop(data_dir: Annotated[Path, typer.Option()] = postgres.DEFAULT_DATA_DIR) -> None:
    """Stop the private PostgreSQL server."""
    console.print("stopped" if postgres.stop(data_dir) else "not running")


@db_app.command("reset")
def db_reset(dsn: DsnOption = None) -> None:
    """Drop and recreate the schema (all data is lost)."""
    from flashcards._sync.database import Database

    db = Database(Settings(dsn=resolve_dsn(dsn)))
    try:
        db.drop_schema()
        db.create_schema()
    finally:
        db.dispose()
    console.print(f"schema recreated on {db.describe()['dsn']}")


@db_app.command("seed")
def db_seed(
    dsn: DsnOption = None,
    users: Annotated[int, typer.Option(min=1, help="Users to create.")] = 10,
    decks: Annotated[int, typer.Option(min=0, help="Decks per user.")] = 10,
    cards_per_deck: Annotated[int, typer.Option(min=0, help="Cards per deck.")] = 100,
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same rows on any backend.")] = 1,
    now: Annotated[str | None, typer.Option(help="ISO time the data is relative to (default: now).")] = None,
    keep: Annotated[bool, typer.Option("--keep", help="Keep existing rows (default: reset first).")] = False,
) -> None:
    """Fill the database with deterministic data (bulk inserts)."""
    from provision.seed import SEED_PASSWORD, SeedPlan
    from provision.seed import seed as run_seed

    settings = Settings(dsn=resolve_dsn(dsn))
    at = datetime.fromisoformat(now).astimezone(UTC) if now else None
    with console.status("seeding…") as status:
        result = run_seed(
            settings, SeedPlan(users, decks, cards_per_deck, seed), now=at, reset=not keep,
            progress=lambda msg: status.update(f"seeding: {msg}"),
        )
    console.print(
        f"{result.users} users, {result.decks} decks, {result.cards} cards ({result.due_now} due), "
        f"{result.reviews} reviews in {result.seconds:.1f} s on {settings.backend}; "
        f"every user's password is {SEED_PASSWORD!r}"
    )


@app.command()
def serve(
    impl: Annotated[str, typer.Option(help="flask | rest | graphql")] = "rest",
    server: Annotated[str, typer.Option(help="Server name (see `stackbench stacks`).")] = "uvicorn",
    workers: Annotated[int, typer.Option(min=1)] = 1,
    port: Annotated[int, typer.Option()] = 8000,
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    dsn: DsnOption = None,
    seed_users: Annotated[int, typer.Option(help="Users to seed into an empty database (or with --reseed).")] = 10,
    reseed: Annotated[bool, typer.Option("--reseed", help="Empty every table and seed again (default: keep the data there).")] = False,
    upstream_port: Annotated[int, typer.Option(help="Port of the upstream simulator started alongside (0: any free port).")] = 0,
    upstream_url: Annotated[str | None, typer.Option(help="Use this OpenAI-compatible server instead of the simulator.")] = None,
) -> None:
    """Serve one implementation under one server, with database, seed data and upstream."""
    from stackbench.serve import PortBusy, run

    try:
        check_serve(impl, server)
    except UnknownName as exc:
        raise refuse(str(exc)) from None
    try:
        run(impl=impl, server=server, workers=workers, port=port, host=host, dsn=resolve_dsn(dsn),
            seed_users=seed_users, upstream_port=upstream_port, upstream_url=upstream_url, console=console,
            reseed=reseed)
    except PortBusy as exc:
        raise refuse(str(exc)) from None


@app.command()
def upstream(
    port: Annotated[int, typer.Option()] = 8099,
    host: Annotated[str, typer.Option()] = "127.0.0.1",
) -> None:
    """Run the upstream LLM simulator (OpenAI chat-completions streaming) in the foreground."""
    import runpy
    import sys

    sys.argv = ["upstream_sim", "--host", host, "--port", str(port)]
    runpy.run_module("upstream_sim", run_name="__main__")


@app.command()
def bench(
    profile: Annotated[str, typer.Option(help="quick | standard | full | scale (multi-core)")] = "quick",
    impl: Annotated[list[str] | None, typer.Option(help="Only these implementations.")] = None,
    server: Annotated[list[str] | None, typer.Option(help="Only these servers.")] = None,
    scenario: Annotated[list[str] | None, typer.Option(help="Only these scenarios.")] = None,
    stack: Annotated[list[str] | None, typer.Option(help="Only these stack ids.")] = None,
    dsn: DsnOption = None,
    own_server: Annotated[bool, typer.Option("--create-databases", help="With --dsn/$STACKBENCH_DSN to a PostgreSQL server of yours: agree that the run creates (and drops) two databases of its own there, stackbench_bench_<run tag> and stackbench_bench_template_<run tag>; the one named in the DSN is never touched.")] = False,
    out: Annotated[Path, typer.Option(help="Where runs are written.")] = Path("reports/runs"),
    report: Annotated[bool, typer.Option(help="Write the report when done.")] = True,
    server_cpus: Annotated[str | None, typer.Option(help="CPUs for the servers, e.g. 0 or 0-3 (default: first half).")] = None,
    client_cpus: Annotated[str | None, typer.Option(help="CPUs for load generators, e.g. 1 (default: the rest).")] = None,
    latest: Annotated[bool | None, typer.Option("--latest/--no-latest", help="Also write reports/latest (default: full standard runs).")] = None,
    app_target: Annotated[str | None, typer.Option("--app", help="Your app, module:attr (WSGI/ASGI app or factory), on every server that fits.", rich_help_panel="Your own app or service")] = None,
    target: Annotated[str | None, typer.Option("--target", help="A running server's URL (http://host:port) to drive instead.", rich_help_panel="Your own app or service")] = None,
    scenario_file: Annotated[Path | None, typer.Option("--scenario-file", help="TOML file of the requests to send (loadtests/scenario_file.py).", rich_help_panel="Your own app or service")] = None,
    interface: Annotated[str | None, typer.Option(help="asgi | wsgi (default: detected).", rich_help_panel="Your own app or service")] = None,
    factory: Annotated[bool | None, typer.Option("--factory/--no-factory", help="The attribute is a factory (default: detected).", rich_help_panel="Your own app or service")] = None,
    app_dir: Annotated[Path, typer.Option(help="Directory your app imports from.", rich_help_panel="Your own app or service")] = Path("."),
    agent: Annotated[str | None, typer.Option(help="URL of `stackbench agent` on the target's host (server CPU/memory).", rich_help_panel="Your own app or service")] = None,
    repetitions: Annotated[int, typer.Option(min=1, help="Fresh-server repetitions.", rich_help_panel="Your own app or service")] = 5,
    duration: Annotated[float, typer.Option(min=0.5, help="Seconds per measured window.", rich_help_panel="Your own app or service")] = 5.0,
    warmup: Annotated[float, typer.Option(min=0, help="Seconds of discarded warm-up.", rich_help_panel="Your own app or service")] = 1.0,
    connections: Annotated[int, typer.Option(min=1, help="Closed-loop connections.", rich_help_panel="Your own app or service")] = 64,
    rate: Annotated[list[float] | None, typer.Option(help="Open-loop rates, req/s (default with --target: half the closed loop).", rich_help_panel="Your own app or service")] = None,
    db_delay_ms: Annotated[str | None, typer.Option("--db-delay-ms", help="Latency sweep only: inject these database round trips, ms, comma-separated (e.g. 0,5,20) through a delay proxy; card/due/review per stack (loadtests/sweep.py).", rich_help_panel="Latency sweep")] = None,
) -> None:
    """Run the benchmark matrix (stacks × scenarios) and write a results JSON."""
    from loadtests.runner import main as run_bench

    if app_target or target:
        from loadtests.byo import main as run_byo

        raise typer.Exit(run_byo(app=app_target, target=target, scenario_file=scenario_file, interface=interface,
                                 factory=factory, app_dir=app_dir, servers=server, agent=agent, repetitions=repetitions,
                                 duration=duration, warmup=warmup, connections=connections, rates=rate, out=out,
                                 server_cpus=server_cpus, client_cpus=client_cpus, console=console))
    try:
        check_bench(profile=profile, impls=impl, servers_=server, scenarios_=scenario, stacks_=stack)
    except UnknownName as exc:
        raise refuse(str(exc)) from None
    delays = _delays(db_delay_ms)
    from loadtests.multicore import CpuRequestError, plan_cpus

    try:
        plan_cpus(server_cpus, client_cpus)  # refused here, before anything starts
    except CpuRequestError as exc:
        raise refuse(str(exc)) from None
    given = dsn or os.environ.get("STACKBENCH_DSN")
    private = str(postgres.DEFAULT_DATA_DIR.resolve())  # the private server is ours to use
    if given and given.startswith("postgres") and private not in given and not own_server:
        raise refuse("the bench creates and drops two databases of its own on the server of --dsn/$STACKBENCH_DSN "
                     "(stackbench_bench_<run tag>, stackbench_bench_template_<run tag>; the one in the DSN is never "
                     "touched): add --create-databases to agree, or leave --dsn out to use the private PostgreSQL")
    try:
        run_bench(profile=profile, impls=impl, servers=server, scenarios=scenario, stacks=stack,
                  dsn=dsn, out=out, write_report=report, console=console, server_cpus=server_cpus,
                  client_cpus=client_cpus, latest=latest, db_delays_ms=delays)
    except KeyboardInterrupt:  # the runner has said where the partial results are
        raise typer.Exit(130) from None


def _delays(text: str | None) -> list[float] | None:
    """`--db-delay-ms 0,5,20` → [0.0, 5.0, 20.0]; refused (exit 2) unless finite and 0..1000."""
    if text is None:
        return None
    try:
        values = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise refuse(f"--db-delay-ms: not a list of numbers: {text!r} (e.g. 0,5,20)") from None
    if not values or any(not 0 <= v <= 1000 for v in values):
        raise refuse(f"--db-delay-ms: give round trips between 0 and 1000 ms, got {text!r}")
    return sorted(set(values))


@app.command()
def stacks() -> None:
    """List the stacks `bench --stack` measures: implementation, server and API of each."""
    from loadtests.stacks import STACKS

    rows = [("stack", "impl", "server", "api", "kind"),
            *((s.id, s.impl, s.server, s.api, s.kind) for s in STACKS.values())]
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


@app.command()
def robustness(
    server: Annotated[list[str] | None, typer.Option(help="Only these servers (default: every registered one).")] = None,
    quick: Annotated[bool, typer.Option("--quick", help="Small sizes (50 slowloris connections for 8 s, 200 idle …; about 6 min for all servers) instead of the issue's reference sizes (about 20 min).")] = False,
    dsn: DsnOption = None,
    out: Annotated[Path, typer.Option(help="Where the JSON is written.")] = Path("reports/runs"),
    server_cpus: Annotated[str | None, typer.Option(help="CPUs for the servers (default: first half).")] = None,
    client_cpus: Annotated[str | None, typer.Option(help="CPUs for the probing client (default: the rest).")] = None,
) -> None:
    """Run the server-robustness matrix alone (slowloris, oversized header, slow body, idle keep-alive,
    client disappearing mid-stream) on every server, and print the table."""
    from loadtests.multicore import CpuRequestError, plan_cpus
    from loadtests.robustness_matrix import run_standalone
    from loadtests.servers import all_servers

    unknown = sorted(set(server or ()) - set(all_servers()))
    if unknown:
        raise refuse(f"unknown servers {unknown}; known: {', '.join(all_servers())}")
    try:
        plan_cpus(server_cpus, client_cpus)
    except CpuRequestError as exc:
        raise refuse(str(exc)) from None
    run_standalone(server, quick=quick, dsn=dsn, out=out, server_cpus=server_cpus, client_cpus=client_cpus,
                   console=console)


@app.command()
def report(
    results: Annotated[Path | None, typer.Argument(help="A results JSON from `stackbench bench`.")] = None,
    out: Annotated[Path | None, typer.Option(help="Report directory (default: beside the results JSON).")] = None,
    index: Annotated[Path | None, typer.Option("--index", help="Instead: write DIR/index.html listing every run under DIR, with trends.")] = None,
) -> None:
    """Write report.md, report.html and charts from a results JSON (or, with --index, the history page)."""
    if index is not None:
        from loadtests.history import write_index

        if not index.is_dir():
            raise refuse(f"--index {index}: not a directory")
        console.print(f"index written to {write_index(index, out)}")
        return
    if results is None:
        raise refuse("give a results JSON, or --index DIR")
    from loadtests.report import write_report

    if not (results / "results.json" if results.is_dir() else results).is_file():
        raise refuse(f"{results}: no results JSON there (`stackbench bench` writes reports/runs/<run>/results.json)")
    path = write_report(results, out)
    console.print(f"report written to {path}")


@app.command()
def compare(
    a: Annotated[Path, typer.Argument(help="Baseline results JSON.")],
    b: Annotated[Path, typer.Argument(help="Candidate results JSON.")],
    metric: Annotated[list[str] | None, typer.Option("--metric", help="Metrics to judge (default: rps, p99).")] = None,
    min_change: Annotated[str, typer.Option("--min-change", help="Smallest change called, e.g. 5% or 0.05.")] = "5%",
    alpha: Annotated[float, typer.Option(help="Significance level of the tests.")] = 0.05,
    fail_on: Annotated[str, typer.Option("--fail-on", help="worse | change | never: exit 1 when a cell is so.")] = "never",
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the comparison as JSON here.")] = None,
    strict: Annotated[bool, typer.Option("--strict", help="Refuse (exit 2) when the environments differ or nothing can be judged.")] = False,
) -> None:
    """Say which cells changed significantly between two runs; with --fail-on, gate on it."""
    from loadtests.compare_render import run

    try:
        code = run(a, b, metrics=metric, min_change=min_change, alpha=alpha, fail_on=fail_on,
                   json_out=json_out, strict=strict, console=console)
    except (KeyError, ValueError) as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from exc
    raise typer.Exit(code)


@app.command()
def export(
    results: Annotated[Path, typer.Argument(help="A results JSON (or its run directory).")],
    format: Annotated[str, typer.Option("--format", help="csv (one row per cell) | bmf (Bencher Metric Format JSON).")] = "csv",
    samples: Annotated[bool, typer.Option("--samples", help="CSV: one row per sample instead of per cell.")] = False,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write here (default: stdout).")] = None,
) -> None:
    """Export a run for other tools: CSV of cells, or BMF for bencher.dev."""
    from loadtests.export import export as export_run
    from loadtests.results import load_run

    if format not in ("csv", "bmf"):
        console.print(f"[red]unknown format {format!r}: csv or bmf[/]")
        raise typer.Exit(2)
    text = export_run(load_run(results), format, samples=samples)
    if out is None:
        print(text, end="" if text.endswith("\n") else "\n")
    else:
        out.write_text(text)
        console.print(f"{format} written to {out}")


@app.command("agent")
def agent_command(
    pid: Annotated[int, typer.Option(help="The server's main process (its whole tree is measured).")],
    port: Annotated[int, typer.Option()] = 9123,
    host: Annotated[str, typer.Option(help="Interface to listen on (keep it private).")] = "127.0.0.1",
) -> None:
    """Report a server's CPU and memory over HTTP for `bench --target … --agent` (run it on the server's host)."""
    from loadtests.agent import serve as serve_agent

    try:
        serve_agent(pid, host, port)
    except ValueError as exc:
        raise refuse(str(exc)) from None


loadgen_app = typer.Typer(help="Locust load generation across hosts (master here, workers elsewhere).", no_args_is_help=True)
app.add_typer(loadgen_app, name="loadgen")
ModeOption = Annotated[str, typer.Option(help="journey | request (the closed loop of --spec).")]


@loadgen_app.command("worker")
def loadgen_worker(
    master: Annotated[str, typer.Option(help="The master's host (where `stackbench loadgen master` runs).")],
    master_port: Annotated[int, typer.Option(help="The master's port.")] = 5557,
    processes: Annotated[int, typer.Option(min=1, help="Locust worker processes on this host.")] = 1,
    mode: ModeOption = "journey", api: Annotated[str, typer.Option(help="rest | graphql")] = "rest",
    seed_users: Annotated[int, typer.Option(min=1)] = 10, decks_per_user: Annotated[int, typer.Option(min=1)] = 10,
    think_s: Annotated[float, typer.Option(min=0)] = 0.0,
    workers: Annotated[int, typer.Option(min=1, help="Workers in the whole run (spreads the seeded users).")] = 1,
    spec: Annotated[str | None, typer.Option(help="Request mode: the RequestSpec JSON.")] = None,
) -> None:
    """A locust worker for a master on another host (exits when the master quits)."""
    from loadtests.loadgen import worker_main

    try:
        code = worker_main(master, master_port, processes=processes, mode=mode, api=api, seed_users=seed_users,
                           decks_per_user=decks_per_user, think_s=think_s, workers=workers, spec=spec)
    except ValueError as exc:
        raise refuse(str(exc)) from None
    raise typer.Exit(code)


@loadgen_app.command("master")
def loadgen_master(
    url: Annotated[str, typer.Option(help="The server under test.")],
    workers: Annotated[int, typer.Option(min=1, help="Wait for this many workers before starting.")],
    bind_port: Annotated[int, typer.Option(help="Port the workers connect to.")] = 5557,
    mode: ModeOption = "journey", api: Annotated[str, typer.Option(help="rest | graphql")] = "rest",
    users: Annotated[int, typer.Option(min=1)] = 100, duration: Annotated[float, typer.Option(min=0.1)] = 10.0,
    warmup: Annotated[float, typer.Option(min=0)] = 2.0,
    seed_users: Annotated[int, typer.Option(min=1)] = 10, decks_per_user: Annotated[int, typer.Option(min=1)] = 10,
    think_s: Annotated[float, typer.Option(min=0)] = 0.0,
    spec: Annotated[str | None, typer.Option(help="Request mode: the RequestSpec JSON.")] = None,
) -> None:
    """Run the journey (or a closed loop) from a locust master; prints the sample as JSON."""
    import json

    from loadtests.loadgen import master_main

    try:
        sample = master_main(url, workers=workers, bind_port=bind_port, mode=mode, api=api, users=users,
                             duration_s=duration, warmup_s=warmup, seed_users=seed_users,
                             decks_per_user=decks_per_user, think_s=think_s, spec=spec)
    except ValueError as exc:
        raise refuse(str(exc)) from None
    print(json.dumps(sample))


if __name__ == "__main__":
    app()
