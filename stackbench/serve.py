"""`stackbench serve`: database + seed data + upstream simulator + one app under one server."""

from __future__ import annotations

import os
import secrets
import signal
import threading
from typing import Any

from rich.console import Console
from rich.table import Table

from flashcards.settings import Settings


def app_environment(dsn: str, upstream_url: str, **extra: str) -> dict[str, str]:
    """Settings reach every worker process through the environment (pydantic-settings).

    A served instance runs in production mode with its own random JWT secret (printed nowhere;
    clients log in through the API), unless STACKBENCH_JWT_SECRET names one: the public
    development default would let anyone mint tokens for any user."""
    secret = os.environ.get("STACKBENCH_JWT_SECRET") or secrets.token_urlsafe(32)
    return {"STACKBENCH_DSN": dsn, "STACKBENCH_UPSTREAM_URL": upstream_url, "STACKBENCH_ENVIRONMENT": "production",
            "STACKBENCH_JWT_SECRET": secret, **extra}


def prepare_database(dsn: str, seed_users: int, console: Console | None = None) -> None:
    from stackbench.seed import SEED_PASSWORD, SeedPlan, seed

    settings = Settings(dsn=dsn)
    if seed_users > 0:
        result = seed(settings, SeedPlan(seed_users, 10, 100))
        if console:
            console.print(
                f"seeded {result.users} users ({result.cards} cards) in {result.seconds:.1f} s; "
                f"log in as user00001 / {SEED_PASSWORD}"
            )
    else:
        from flashcards._sync.database import Database

        db = Database(settings)
        try:
            db.create_schema()
        finally:
            db.dispose()


def run(*, impl: str, server: str, workers: int, port: int, host: str, dsn: str, seed_users: int,
        upstream_port: int, upstream_url: str | None, console: Console) -> None:
    from loadtests.servers import RunningServer, ServerSpec
    from loadtests.stacks import APPS

    if impl not in APPS:
        raise SystemExit(f"unknown implementation {impl!r}; choose from {', '.join(APPS)}")
    prepare_database(dsn, seed_users, console)
    simulator: Any = None
    if upstream_url is None:
        from upstream_sim.server import start_subprocess

        simulator = start_subprocess(port=upstream_port)
        upstream_url = f"http://127.0.0.1:{upstream_port}/v1"
        console.print(f"upstream simulator at {upstream_url}")
    spec = ServerSpec(server=server, app=APPS[impl], host=host, port=port, workers=workers,
                      env=app_environment(dsn, upstream_url))
    running = RunningServer(spec)
    try:
        running.start()
        table = Table(title=f"{impl} on {server}", show_header=False)
        for key, value in spec.settings().items():
            table.add_row(key, str(value))
        console.print(table)
        console.print(f"serving on http://{host}:{port}  (Ctrl-C stops everything)")
        if impl == "rest":
            console.print(f"API docs: http://{host}:{port}/docs")
        if impl == "graphql":
            console.print(f"GraphiQL: http://{host}:{port}/graphql")
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass
    finally:
        running.stop()
        if simulator is not None:
            simulator.stop()
        console.print("stopped")
