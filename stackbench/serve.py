"""`stackbench serve`: database + seed data + upstream simulator + one app under one server."""

from __future__ import annotations

import os
import secrets
import signal
import socket
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


class PortBusy(RuntimeError):
    """A port `serve` needs is taken: said in one line, with what to do, instead of a traceback."""


def check_port_free(host: str, port: int, what: str, option: str) -> None:
    """Refuse early when `host:port` cannot be bound (another `serve`, or any other program)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers themselves bind
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise PortBusy(f"{what}: port {port} on {host} is in use ({exc.strerror}); stop the program "
                           f"holding it or choose another with {option} N") from None


def existing_users(dsn: str) -> int:
    """Users already in the database (its schema created if missing)."""
    from sqlalchemy import func, select

    from flashcards._sync.database import Database
    from flashcards.tables import users

    db = Database(Settings(dsn=dsn))
    try:
        db.create_schema()
        with db.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(users)).scalar_one())
    finally:
        db.dispose()


def prepare_database(dsn: str, seed_users: int, console: Console | None = None, *, reseed: bool = False) -> str:
    """Keep the data that is there (a served instance is often restarted); seed an empty
    database; with `reseed`, empty every table and seed again. Returns what was done, in words."""
    from provision.seed import SEED_PASSWORD, SeedPlan, seed

    found = existing_users(dsn)
    if found and not reseed:
        done = (f"kept the existing data ({found} users); --reseed empties every table and seeds "
                f"{seed_users} users again")
    elif seed_users > 0:
        result = seed(Settings(dsn=dsn), SeedPlan(seed_users, 10, 100), reset=True)
        done = (f"{'emptied every table and ' if found else ''}seeded {result.users} users ({result.cards} cards) "
                f"in {result.seconds:.1f} s; log in as user00001 / {SEED_PASSWORD}")
    else:
        done = "emptied every table (--seed-users 0: nothing seeded)" if found and reseed else "empty database"
        if found and reseed:
            from flashcards._sync.database import Database

            db = Database(Settings(dsn=dsn))
            try:
                db.reset()
            finally:
                db.dispose()
    if console:
        console.print(done)
    return done


def run(*, impl: str, server: str, workers: int, port: int, host: str, dsn: str, seed_users: int,
        upstream_port: int, upstream_url: str | None, console: Console, reseed: bool = False) -> None:
    from loadtests.launcher import RunningServer, ServerError
    from loadtests.servers import ServerSpec
    from loadtests.stacks import APPS

    if impl not in APPS:
        raise SystemExit(f"unknown implementation {impl!r}; choose from {', '.join(APPS)}")
    check_port_free(host, port, "the app", "--port")
    if upstream_url is None and upstream_port:
        check_port_free("127.0.0.1", upstream_port, "the upstream simulator", "--upstream-port (0: any free port)")
    prepare_database(dsn, seed_users, console, reseed=reseed)
    simulator: Any = None
    if upstream_url is None:
        from upstream_sim.server import start_subprocess

        simulator = start_subprocess(port=upstream_port)  # 0: a free port (two serves never collide)
        upstream_url = simulator.url
        console.print(f"upstream simulator at {upstream_url}")
    spec = ServerSpec(server=server, app=APPS[impl], host=host, port=port, workers=workers,
                      env=app_environment(dsn, upstream_url))
    running = RunningServer(spec)
    try:
        try:
            running.start()
        except ServerError as exc:  # the cause in one paragraph (its log tail), not a traceback
            raise SystemExit(f"{server} did not start: {exc}") from None
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
