"""nox sessions: one install helper behind thin sessions (pip/urllib3 style).

    nox -s tests              unit + property + integration + contract (the CI command)
    nox -s lint               ruff + mypy + the sync twin's staleness check
    nox -s contract           schemathesis + parity only (`-- --thorough` for long runs)
    nox -s bench              benchmark matrix + report (`-- --profile standard`)
    nox -s serve -- --impl rest --server uvicorn
    nox -s report -- reports/runs/<run>/results.json
"""

from __future__ import annotations

import os
import shutil

import nox

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_venv = "yes"
nox.options.sessions = ["tests"]
nox.options.error_on_missing_interpreters = False

PYTHON = "3.11"
ALL = "flask,rest,graphql,loadtests,dev"


def install(session: nox.Session, extras: str = ALL) -> None:
    session.install("-e", f".[{extras}]")


def ensure_wrk(session: nox.Session) -> None:
    """wrk comes from Debian; as root on a fresh machine, install it (the README's first line)."""
    if shutil.which("wrk") is None and shutil.which("apt-get") and os.geteuid() == 0:
        session.run("apt-get", "install", "-y", "-qq", "wrk", external=True, success_codes=[0, 100])
    if shutil.which("wrk") is None:
        session.warn("wrk is not installed (apt-get install -y wrk)")


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Everything in tests/ except what is marked slow, on PostgreSQL and SQLite."""
    install(session)
    ensure_wrk(session)
    session.run("python", "tools/unasync.py", "--check")
    session.run("pytest", "-p", "no:cacheprovider", "--durations=15", *session.posargs)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    install(session)
    session.run("python", "tools/unasync.py", "--check")
    session.run("ruff", "check", ".")
    session.run("mypy", "flashcards", "impl_rest", "impl_flask_baseline", "impl_graphql",
                "upstream_sim", "stackbench", "loadtests", "provision", "tools")


@nox.session(python=PYTHON)
def contract(session: nox.Session) -> None:
    """Schemathesis against both REST apps and the GraphQL schema, plus parity tests."""
    install(session)
    args = list(session.posargs)
    env = {}
    if "--thorough" in args:
        args.remove("--thorough")
        env["STACKBENCH_CONTRACT_PROFILE"] = "thorough"
    session.run("pytest", "-p", "no:cacheprovider", "tests/contract", *args, env=env)


@nox.session(python=PYTHON, default=False)
def bench(session: nox.Session) -> None:
    """The benchmark matrix (quick profile unless `-- --profile standard|full`), then the report."""
    install(session)
    ensure_wrk(session)
    session.run("stackbench", "bench", *session.posargs)


@nox.session(python=PYTHON, default=False)
def serve(session: nox.Session) -> None:
    install(session)
    session.run("stackbench", "serve", *session.posargs)


@nox.session(python=PYTHON, default=False)
def report(session: nox.Session) -> None:
    install(session)
    session.run("stackbench", "report", *session.posargs)
