"""Server registry: (server, app target, workers, cpus) → command line + settings (launcher.py
runs them).

Every server runs as its community recommends; the recommendation is data (`settings()`), so a
report can print exactly what ran. Counts scale with the number of server CPUs ``n`` (the pinned
CPU set, or all CPUs when unpinned):

=================  ==========================================================================
gunicorn-sync      ``2n+1`` sync workers (gunicorn docs); sync ignores keep-alive
gunicorn-gthread   ``2n+1`` workers × ``2n + h`` threads (docs: threads "2-4 × NUM_CORES")
gunicorn-gevent    ``2n+1`` gevent workers, ``worker_connections`` 1000 (gunicorn default)
waitress           one process, ``2n + h`` threads (waitress default 4, raised)
granian-wsgi       ``n`` workers, granian defaults (blocking threads = backpressure / 2)
uvicorn            ``n`` workers, ``--loop uvloop --http httptools``
uvicorn-h11        ``n`` workers, ``--loop asyncio --http h11``
granian-asgi       ``n`` workers, granian defaults (auto loop: uvloop when installed)
gunicorn-uvicorn   ``n`` gunicorn workers of class ``uvicorn_worker.UvicornWorker``
=================  ==========================================================================

``h`` = 6: the streams one user may hold per process (``max_streams_per_user`` 4 event feeds +
``max_chats_per_user`` 2 chats, flashcards/settings.py). A held stream holds a thread on
gthread and waitress, so with ``2n`` threads for requests on top, one user's streams can never
take the last thread (issue 19 found 4 abandoned streams stalling gthread's health check 26 s).

Access logs are off everywhere (uvicorn's default is on; the others default to off).
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from flashcards.settings import Settings

Kind = Literal["wsgi", "asgi"]

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class AppTarget:
    """What a server serves: ``"package.module:attr"``, WSGI or ASGI, callable or factory."""

    target: str
    kind: Kind
    factory: bool = False
    ready_path: str = "/"

    def __post_init__(self) -> None:
        module, sep, attr = self.target.partition(":")
        if not (module and sep and attr):
            raise ValueError(f"app target must be 'module:attr', got {self.target!r}")
        if self.kind not in ("wsgi", "asgi"):
            raise ValueError(f"app kind must be 'wsgi' or 'asgi', got {self.kind!r}")


@dataclass(frozen=True)
class ServerDef:
    """One registry entry: how to turn a spec into a command line and its settings."""

    name: str
    kind: Kind
    package: str  # the distribution whose version is printed in the settings
    summary: str
    build: Callable[[ServerSpec], tuple[list[str], dict[str, Any]]]
    # processes that must exist before the server counts as started (master + workers)
    processes: Callable[[ServerSpec], int]


@dataclass(frozen=True)
class ServerSpec:
    """A server to launch. ``workers``/``threads`` None → the recommended value for ``cpus``.

    ``options`` holds server-specific overrides (``worker_connections``, ``backpressure``,
    ``blocking_threads``, ``loop``, ``http``, ``worker_class``, ``extra_args`` …); unknown keys
    are rejected by the builder so that a typo cannot silently change a benchmark.
    """

    server: str
    app: AppTarget
    host: str = "127.0.0.1"
    port: int = 8000  # 0 → a free port is chosen by `start()`
    workers: int | None = None
    threads: int | None = None
    cpus: tuple[int, ...] | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)
    python: str = sys.executable
    ready_path: str | None = None

    def __post_init__(self) -> None:
        definition = get_server(self.server)
        if definition.kind != self.app.kind:
            raise ValueError(
                f"server {self.server!r} serves {definition.kind.upper()} apps, "
                f"{self.app.target!r} is {self.app.kind.upper()}"
            )
        if self.cpus is not None:
            object.__setattr__(self, "cpus", tuple(sorted(set(self.cpus))))

    # -- derived values ---------------------------------------------------------------
    @property
    def definition(self) -> ServerDef:
        return get_server(self.server)

    @property
    def ncpu(self) -> int:
        return len(self.cpus) if self.cpus else (os.cpu_count() or 1)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def probe_path(self) -> str:
        return self.ready_path if self.ready_path is not None else self.app.ready_path

    def command(self) -> list[str]:
        """The server's argv (without the CPU pinning prefix)."""
        return self.definition.build(self)[0]

    def settings(self) -> dict[str, Any]:
        """Settings as printed in results: server, version, workers, threads, options."""
        return self.definition.build(self)[1]

    def launch_command(self) -> list[str]:
        """``command()`` behind ``taskset -c CPUS`` when pinned and taskset exists."""
        taskset = shutil.which("taskset")
        if self.cpus and taskset:
            return [taskset, "-c", ",".join(map(str, self.cpus)), *self.command()]
        return self.command()

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("WEB_CONCURRENCY", None)  # gunicorn and uvicorn read it; we pass --workers
        path = [str(REPO_ROOT), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
        env["PYTHONPATH"] = os.pathsep.join(path)
        env["PYTHONUNBUFFERED"] = "1"
        env.update(self.env)
        return env

    def describe(self) -> dict[str, Any]:
        """A results-ready description (the shape of a `stacks` entry, minus impl and kind)."""
        settings = self.settings()
        return {
            "server": self.server,
            "workers": settings.get("workers", 1),
            "settings": settings,
            "command": self.command(),
            "cpus": list(self.cpus) if self.cpus else None,
            "env": dict(self.env),
        }


# -- builders ---------------------------------------------------------------------------


class _Options:
    """Reads a spec's options; every key must be consumed (typos fail loudly)."""

    def __init__(self, spec: ServerSpec) -> None:
        self._values = dict(spec.options)
        self._used: set[str] = set()
        self._server = spec.server

    def get(self, key: str, default: Any) -> Any:
        self._used.add(key)
        return self._values.get(key, default)

    def done(self) -> None:
        unknown = set(self._values) - self._used
        if unknown:
            raise ValueError(f"unknown options for {self._server}: {sorted(unknown)}")


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _gunicorn_has(setting: str) -> bool:
    try:
        from gunicorn.config import KNOWN_SETTINGS
    except ImportError:  # pragma: no cover - gunicorn missing
        return False
    return any(s.name == setting for s in KNOWN_SETTINGS)


def _uvicorn_worker_class() -> str:
    """uvicorn 0.30+ deprecates ``uvicorn.workers``; the ``uvicorn-worker`` package replaces it."""
    if _version("uvicorn-worker"):
        return "uvicorn_worker.UvicornWorker"
    return "uvicorn.workers.UvicornWorker"


def _base_settings(spec: ServerSpec, package: str) -> dict[str, Any]:
    return {
        "server": spec.server,
        "package": package,
        "version": _version(package),
        "app": spec.app.target,
        "factory": spec.app.factory,
        "bind": f"{spec.host}:{spec.port}",
        "cpus": list(spec.cpus) if spec.cpus else None,
        "access_log": False,
        # The peer address is the client (failed logins are limited per client): no server may
        # take it from X-Forwarded-For (uvicorn trusts it from 127.0.0.1 by default).
        "trusts_forwarded_for": False,
    }


THREADS_RULE = "{base} + max_streams_per_user + max_chats_per_user (one user's streams never take the last thread)"


def held_streams_per_user() -> int:
    """The threads one user's held streams may occupy in one worker process (the documented
    defaults; a run that lifts the caps, as the realtime cells do, is not sized by them)."""
    fields = Settings.model_fields
    return int(fields["max_streams_per_user"].default) + int(fields["max_chats_per_user"].default)


def _gunicorn(worker_class: str) -> Callable[[ServerSpec], tuple[list[str], dict[str, Any]]]:
    def build(spec: ServerSpec) -> tuple[list[str], dict[str, Any]]:
        opts = _Options(spec)
        n = spec.ncpu
        klass = opts.get("worker_class", worker_class)
        settings = _base_settings(spec, "gunicorn")
        if klass == "uvicorn":
            klass = _uvicorn_worker_class()
            workers = spec.workers or n
            settings["workers_rule"] = "one per CPU (TechEmpower's FastAPI setup)"
            settings["worker_package"] = klass.split(".")[0].replace("_", "-")
            settings["worker_package_version"] = _version(settings["worker_package"])
            settings["loop"] = "auto (uvloop when installed)"
            settings["http"] = "auto (httptools when installed)"
        else:
            workers = spec.workers or 2 * n + 1
            settings["workers_rule"] = "2×CPU+1 (gunicorn docs)"
        settings["worker_class"] = klass
        settings["workers"] = workers
        target = spec.app.target + ("()" if spec.app.factory else "")
        cmd = [
            spec.python, "-m", "gunicorn",
            "--bind", f"{spec.host}:{spec.port}",
            "--workers", str(workers),
            "--worker-class", klass,
            "--forwarded-allow-ips", "",
        ]  # fmt: skip
        if klass == "gthread":
            threads = spec.threads or 2 * n + held_streams_per_user()
            settings["threads"] = threads
            settings["threads_rule"] = THREADS_RULE.format(base="2×CPU (gunicorn docs: 2-4 × CPU, low end)")
            cmd += ["--threads", str(threads)]
        elif spec.threads:
            raise ValueError(f"{spec.server}: threads apply to gthread workers only")
        if klass in ("gthread", "gevent"):
            connections = opts.get("worker_connections", 1000)
            settings["worker_connections"] = connections
            cmd += ["--worker-connections", str(connections)]
        if klass == "sync":
            settings["keep_alive"] = "ignored by sync workers: one TCP connect per request"
        else:
            keep_alive = opts.get("keep_alive", 2)
            settings["keep_alive_s"] = keep_alive
            cmd += ["--keep-alive", str(keep_alive)]
        timeout = opts.get("timeout", 30)
        settings["timeout_s"] = timeout
        cmd += ["--timeout", str(timeout)]
        if _gunicorn_has("control_socket_disable"):
            # gunicorn 25+ opens a control socket at a fixed per-user path: two servers would
            # fight over it
            cmd.append("--no-control-socket")
            settings["control_socket"] = False
        cmd += ["--log-level", opts.get("log_level", "warning")]
        cmd += list(opts.get("extra_args", ()))
        opts.done()
        cmd.append(target)
        return cmd, settings

    return build


def _waitress(spec: ServerSpec) -> tuple[list[str], dict[str, Any]]:
    opts = _Options(spec)
    if spec.workers not in (None, 1):
        raise ValueError("waitress runs one process; scale it with threads")
    threads = spec.threads or 2 * spec.ncpu + held_streams_per_user()
    settings = _base_settings(spec, "waitress")
    connection_limit = opts.get("connection_limit", 100)
    backlog = opts.get("backlog", 1024)
    settings.update(
        workers=1,
        threads=threads,
        threads_rule=THREADS_RULE.format(base="2×CPU (waitress default: 4)"),
        connection_limit=connection_limit,
        backlog=backlog,
    )
    cmd = [
        spec.python, "-m", "waitress",
        f"--listen={spec.host}:{spec.port}",
        f"--threads={threads}",
        f"--connection-limit={connection_limit}",
        f"--backlog={backlog}",
        *opts.get("extra_args", ()),
    ]  # fmt: skip
    opts.done()
    if spec.app.factory:
        cmd.append("--call")
    cmd.append(spec.app.target)
    return cmd, settings


def _granian(interface: Kind) -> Callable[[ServerSpec], tuple[list[str], dict[str, Any]]]:
    def build(spec: ServerSpec) -> tuple[list[str], dict[str, Any]]:
        opts = _Options(spec)
        workers = spec.workers or spec.ncpu
        settings = _base_settings(spec, "granian")
        settings.update(workers=workers, workers_rule="one per CPU", interface=interface)
        cmd = [
            spec.python, "-m", "granian",
            "--interface", interface,
            "--host", spec.host,
            "--port", str(spec.port),
            "--workers", str(workers),
        ]  # fmt: skip
        # granian's own defaults, spelled out (granian/server/common.py, 2.x)
        backlog = opts.get("backlog", None)
        backpressure = opts.get("backpressure", None)
        effective_backlog = max(128, backlog or 1024)
        effective_backpressure = max(1, backpressure or effective_backlog // workers)
        settings["backlog"] = effective_backlog
        settings["backpressure"] = effective_backpressure
        if backlog is not None:
            cmd += ["--backlog", str(backlog)]
        if backpressure is not None:
            cmd += ["--backpressure", str(backpressure)]
        blocking = spec.threads or opts.get("blocking_threads", None)
        if interface == "wsgi":
            settings["blocking_threads"] = blocking or max(1, effective_backpressure // 2)
            if blocking is not None:
                cmd += ["--blocking-threads", str(blocking)]
        elif blocking is not None:
            raise ValueError("granian: blocking threads apply to WSGI only")
        loop = opts.get("loop", None)
        settings["loop"] = loop or "auto (rloop, else uvloop, else asyncio)"
        if loop:
            cmd += ["--loop", loop]
        runtime_threads = opts.get("runtime_threads", None)
        settings["runtime_threads"] = runtime_threads or 1
        if runtime_threads:
            cmd += ["--runtime-threads", str(runtime_threads)]
        settings["runtime_mode"] = "mt (auto: any non-RSGI interface)"
        settings["http"] = "auto"
        cmd += ["--log-level", opts.get("log_level", "warning"), "--no-access-log"]
        cmd += list(opts.get("extra_args", ()))
        opts.done()
        if spec.app.factory:
            cmd.append("--factory")
        cmd.append(spec.app.target)
        return cmd, settings

    return build


def _uvicorn(loop: str, http: str) -> Callable[[ServerSpec], tuple[list[str], dict[str, Any]]]:
    def build(spec: ServerSpec) -> tuple[list[str], dict[str, Any]]:
        opts = _Options(spec)
        workers = spec.workers or spec.ncpu
        if spec.threads:
            raise ValueError("uvicorn has no threads setting")
        settings = _base_settings(spec, "uvicorn")
        the_loop = opts.get("loop", loop)
        the_http = opts.get("http", http)
        settings.update(workers=workers, workers_rule="one per CPU", loop=the_loop, http=the_http)
        cmd = [
            spec.python, "-m", "uvicorn",
            "--host", spec.host,
            "--port", str(spec.port),
            "--workers", str(workers),
            "--loop", the_loop,
            "--http", the_http,
            "--no-access-log",
            "--no-proxy-headers",
            "--log-level", opts.get("log_level", "warning"),
            *opts.get("extra_args", ()),
        ]  # fmt: skip
        opts.done()
        if spec.app.factory:
            cmd.append("--factory")
        cmd.append(spec.app.target)
        return cmd, settings

    return build


def _master_plus_workers(spec: ServerSpec) -> int:
    return 1 + int(spec.settings()["workers"])


def _uvicorn_processes(spec: ServerSpec) -> int:
    workers = int(spec.settings()["workers"])
    return 1 if workers == 1 else 1 + workers


SERVERS: dict[str, ServerDef] = {
    d.name: d
    for d in [
        ServerDef("gunicorn-sync", "wsgi", "gunicorn", "gunicorn, sync workers",
                  _gunicorn("sync"), _master_plus_workers),
        ServerDef("gunicorn-gthread", "wsgi", "gunicorn", "gunicorn, gthread workers",
                  _gunicorn("gthread"), _master_plus_workers),
        ServerDef("gunicorn-gevent", "wsgi", "gunicorn", "gunicorn, gevent workers",
                  _gunicorn("gevent"), _master_plus_workers),
        ServerDef("waitress", "wsgi", "waitress", "waitress, one process with threads",
                  _waitress, lambda spec: 1),
        ServerDef("granian-wsgi", "wsgi", "granian", "granian, WSGI interface",
                  _granian("wsgi"), _master_plus_workers),
        ServerDef("uvicorn", "asgi", "uvicorn", "uvicorn, uvloop + httptools",
                  _uvicorn("uvloop", "httptools"), _uvicorn_processes),
        ServerDef("uvicorn-h11", "asgi", "uvicorn", "uvicorn, asyncio + h11",
                  _uvicorn("asyncio", "h11"), _uvicorn_processes),
        ServerDef("granian-asgi", "asgi", "granian", "granian, ASGI interface",
                  _granian("asgi"), _master_plus_workers),
        ServerDef("gunicorn-uvicorn", "asgi", "gunicorn", "gunicorn with uvicorn workers",
                  _gunicorn("uvicorn"), _master_plus_workers),
    ]
}  # fmt: skip


def get_server(name: str) -> ServerDef:
    try:
        return SERVERS[name]
    except KeyError:
        raise KeyError(f"unknown server {name!r}; known: {', '.join(SERVERS)}") from None


def all_servers(kind: Kind | None = None) -> list[str]:
    """Registered server names, in registry order; only WSGI or ASGI ones when ``kind`` is set."""
    return [name for name, d in SERVERS.items() if kind is None or d.kind == kind]

