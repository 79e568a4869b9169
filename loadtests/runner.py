"""`stackbench bench`: stacks × scenarios → one results JSON (RESULTS_SCHEMA.md) → the report.

The order of work, and why:

* The database is seeded once into a template; a write cell always starts from a fresh copy.
* The driver's ceiling (wrk against the fastest floor) is measured first, in the same run, so
  every cell can be flagged "client-bound" against it.
* Repetitions are interleaved (pyperf, asv): repetition r runs every stack once, in an order
  rotated by r, so slow drift of the machine spreads over all stacks instead of landing on one.
  Each repetition starts every server afresh: one server start + one load run is one sample.
* Within one server start, reads run before writes (they see the seeded data), then chat, then
  the fan-out scenarios on a one-worker server (the event bus lives in one process).
* A stack that answers wrongly is refused (not measured); a server that fails or dies fails its
  cells, and the run carries on with the next one. The document is saved after every cell.
* Ctrl-C, SIGTERM or a crash stops the servers and leaves the document marked `interrupted`
  (the run, and the cell in flight): a partial run never reads as a complete one.
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

from flashcards.settings import Settings
from loadtests import checks, environment, multicore, results
from loadtests.bench import LATENCY_OBJECTIVE_MS, Bench
from loadtests.benchdb import BenchDatabase
from loadtests.interrupt import catch_stop_signals, reason_of
from loadtests.plan import make_plan, plan_settings, split_cpus
from loadtests.profiles import PROFILES
from loadtests.servers import REPO_ROOT
from loadtests.wrk import wrk_available


@catch_stop_signals()
def main(*, profile: str, impls: list[str] | None, servers: list[str] | None, scenarios: list[str] | None,
         stacks: list[str] | None, dsn: str | None, out: Path, write_report: bool, console: Console,
         server_cpus: str | None = None, client_cpus: str | None = None, latest: bool | None = None,
         db_delays_ms: list[float] | None = None) -> Path:
    from provision.database import resolve_dsn
    from upstream_sim.server import start_subprocess

    chosen = PROFILES.get(profile)
    if chosen is None:
        raise SystemExit(f"unknown profile {profile!r}; choose from {', '.join(PROFILES)}")
    closed_driver = "wrk" if wrk_available() else "locust"
    if closed_driver == "locust":
        console.print("[yellow]wrk is not installed (apt-get install -y wrk): closed-loop cells run on "
                      "locust, which is slower than most stacks here — expect client-bound flags[/yellow]")
    if chosen.stacks and not (stacks or impls or servers):  # the profile's own matrix (`ci`)
        stacks = list(chosen.stacks)
    scenarios = scenarios or list(chosen.scenarios) or None
    srv_cpus, cli_cpus = split_cpus(server_cpus, client_cpus)
    plan = make_plan(chosen, stack_ids=stacks, impls=impls, servers=servers, only=scenarios,
                     server_cpus=srv_cpus, client_cpus=cli_cpus)
    subset = bool(stacks or impls or servers or scenarios)
    estimate = plan.estimate_s(subset=subset)
    console.print(f"plan: {plan.measurements()} measurements, estimated wall time "
                  f"{estimate['total'] / 60:.0f} min ({', '.join(f'{k} {v / 60:.1f}' for k, v in estimate.items() if v and k != 'total')} min)"
                  + (f" + latency sweep {chosen.db_sweep.estimate_s() / 60:.1f} min" if chosen.db_sweep and not db_delays_ms else ""))
    base_dsn = resolve_dsn(dsn)
    env_doc = environment.capture(base_dsn)
    run_id = results.make_run_id((env_doc.get("git") or {}).get("commit"))
    run_dir = out / run_id
    db = BenchDatabase(base_dsn, chosen.seed)
    console.print(f"databases of this run: {db.working_name} and {db.template_name} (dropped at the end; "
                  "no other database is touched)")
    with console.status(f"seeding {chosen.seed}…"):
        seeded = db.prepare()
    console.print(f"seeded {seeded.cards} cards ({seeded.due_now} due) in {seeded.seconds:.1f} s")
    upstream: dict[str, Any] = {"ttft_ms": chosen.upstream_ttft_ms, "inter_token_ms": chosen.upstream_token_interval_ms,
                "tokens": chosen.upstream_tokens}
    sim = start_subprocess(port=0, cpus=cli_cpus, **upstream)
    app_settings = Settings()
    settings = {
        "server_cpus": list(srv_cpus), "client_cpus": list(cli_cpus), "latency_objective_ms": LATENCY_OBJECTIVE_MS,
        "warmup_s": chosen.warmup_s, "duration_s": chosen.duration_s, "repetitions": chosen.repetitions,
        "concurrency": list(chosen.concurrency), "primary_concurrency": chosen.primary_concurrency,
        "chat_levels": list(chosen.chat_levels), "fanout_levels": list(chosen.fanout_levels),
        "ws_levels": list(chosen.ws_levels), "fanout_events": chosen.fanout_events, "fanout_rate": chosen.fanout_rate,
        "upstream": {**upstream, "token_interval_ms": chosen.upstream_token_interval_ms, "url": sim.url},
        "database": db.describe(),
        "app": {"pool_size_per_worker": app_settings.pool_size, "pool_max_overflow": app_settings.pool_max_overflow,
                "pool_pre_ping": app_settings.pool_pre_ping, "pool_ping_bypass_s": app_settings.pool_ping_bypass_s,
                "password_hash": "argon2id t=3 m=64MiB p=4 (library defaults)", "environment": "production"},
        "subset": subset, "scenarios": plan.scenarios, "closed_loop_driver": closed_driver,
        "openloop_processes": max(1, len(cli_cpus)),  # one per client CPU (loadtests/openloop_split.py)
        "multicore": multicore.describe({s.id: s.server for s in plan.stacks if s.kind == "app"}, srv_cpus, cli_cpus),
        **plan_settings(plan, estimate),
    }
    doc = results.new_document(run_id=run_id, profile=chosen.name, environment=env_doc, settings=settings)
    env = {"STACKBENCH_DSN": db.dsn, "STACKBENCH_UPSTREAM_URL": sim.url, "STACKBENCH_ENVIRONMENT": "production",
           "STACKBENCH_JWT_SECRET": secrets.token_urlsafe(32),
           # the realtime cells hold every stream with ONE user's token: lift the per-user caps (issue 19)
           "STACKBENCH_MAX_STREAMS_PER_USER": "1000000", "STACKBENCH_MAX_CHATS_PER_USER": "1000000"}
    bench = Bench(plan, doc, run_dir / "results.json", db, env, srv_cpus, cli_cpus, upstream, console,
                  closed_driver=closed_driver)
    started = time.monotonic()
    stopped_by: BaseException | None = None
    try:
        after_bar_s = estimate.get("robustness", 0.0) + estimate.get("checks", 0.0)
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      TimeLeftColumn(after_bar_s), console=console, transient=False) as progress:
            task = progress.add_task("driver ceiling", total=plan.measurements() + 1)
            bench.advance = lambda what: progress.update(task, advance=1, description=what)
            bench.measure_ceiling()
            progress.update(task, advance=1)
            for rep in range(0 if db_delays_ms else chosen.repetitions):  # --db-delay-ms: the sweep only
                order = plan.stacks[rep % len(plan.stacks):] + plan.stacks[: rep % len(plan.stacks)]
                for stack in order:
                    bench.run_stack(stack, rep)
            if chosen.fanout_workers and not db_delays_ms:  # fan-out across workers (PostgreSQL feed)
                from loadtests.fanout_workers import run as run_fanout_workers

                run_fanout_workers(bench)
            if plan.equal_load_stacks() and not db_delays_ms:
                bench.equal_load()
            if db_delays_ms or chosen.db_sweep is not None:  # the latency sweep (loadtests/sweep.py)
                from loadtests.sweep import run_from_profile

                chosen_apps = [s.id for s in plan.stacks if s.kind == "app"] if (stacks or impls or servers) else None
                run_from_profile(bench, chosen, db_delays_ms, chosen_apps, scenarios)
        results.refresh_ceiling(doc)
        bench.save()
        if chosen.robustness is not None and not subset:  # every server once (loadtests/robustness_matrix.py)
            from loadtests.robustness_matrix import for_bench

            doc["robustness"] = for_bench(bench, chosen.robustness)
            bench.save()
        if chosen.micro and not subset:
            with console.status(f"micro-benchmarks ({chosen.micro_runs} runs)…"):
                doc["micro"] = checks.run_micro(run_dir, srv_cpus, console, runs=chosen.micro_runs,
                                          max_time_s=chosen.micro_max_time_s)
        doc["checks"] = checks.run_checks(console, run_dir) if not subset else {}
        if not subset:
            doc["checks"]["reliability"] = checks.run_reliability(console, run_dir)
    except BaseException as exc:  # Ctrl-C, SIGTERM or a crash: what was measured stays, marked partial
        stopped_by = exc
        raise
    finally:
        sim.stop()
        try:
            db.drop()
        except Exception as exc:  # the results matter more than the clean-up
            console.print(f"[yellow]could not drop {db.working_name}/{db.template_name}: {exc}[/yellow]")
        if stopped_by is None:
            results.mark_complete(doc)
        else:
            results.mark_interrupted(doc, reason_of(stopped_by), bench.in_flight)
        doc["environment"]["machine"]["bench_wall_s"] = time.monotonic() - started
        bench.save()
        if stopped_by is not None:
            console.print(f"[yellow]run interrupted ({reason_of(stopped_by).splitlines()[0][:200]}): servers "
                          f"stopped; partial results ({doc['interrupted']['completed_cells']} cells) in "
                          f"{bench.path}\n  render them: stackbench report {bench.path}[/yellow]")
    console.print(f"results: {bench.path}")
    if write_report:
        from loadtests.report import write_report as write

        report_dir = write(bench.path, run_dir)
        if latest if latest is not None else (chosen.name == "standard" and not subset):
            write(bench.path, REPO_ROOT / "reports" / "latest")
            console.print("report copied to reports/latest/")
        console.print(verdict_summary(bench.path, report_dir / "report.html"))
    return bench.path


class TimeLeftColumn(ProgressColumn):
    """Time left for the whole run, not just the bar: the robustness matrix, micro-benchmarks,
    checks and reliability suite run after the bar's last step (their plan estimate, added
    here), so a bar at its end must not read as "done" while 10 more minutes remain."""

    def __init__(self, after_bar_s: float) -> None:
        super().__init__()
        self.after_bar_s = after_bar_s

    def render(self, task: Task) -> Text:
        bar_left = 0.0 if task.finished else task.time_remaining
        if bar_left is None:
            return Text("left ~?", style="progress.remaining")
        left = int(bar_left + self.after_bar_s)
        after = f" (~{self.after_bar_s / 60:.0f} min of checks after the bar)" if self.after_bar_s >= 60 else ""
        return Text(f"left ~{left // 3600}:{left % 3600 // 60:02d}:{left % 60:02d}{after}",
                    style="progress.remaining")


def verdict_summary(results_path: Path, report: Path | None = None) -> str:
    """The terminal's last words: claims per status and where the report is (the table itself
    is in the report, with what each verdict compared)."""
    import json

    from loadtests.report.verdict import judge
    from loadtests.verdict_render import terminal_summary

    found, _registry = judge(json.loads(Path(results_path).read_text()))
    return terminal_summary(found, report)
