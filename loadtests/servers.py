"""Server registry and launcher: (server, app target, workers, cpus) → command line + settings.

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

import contextlib
import dataclasses
import http.client
import importlib.metadata
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import psutil

from flashcards.settings import Settings

Kind = Literal["wsgi", "asgi"]

REPO_ROOT = Path(__file__).resolve().parent.parent


class ServerError(RuntimeError):
    """A server could not be started, did not become ready, or could not be stopped."""


class ServerStartError(ServerError):
    """The server exited or never answered its readiness probe; the message has its log tail."""


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


# -- launching ---------------------------------------------------------------------------


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def probe(host: str, port: int, path: str, timeout: float = 1.0) -> int | None:
    """One HTTP GET; the status code, or None when the connection failed."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Connection": "close"})
        response = conn.getresponse()
        response.read()
        return response.status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


def refuse_sqlite_workers(spec: ServerSpec) -> None:
    """The event feed spans worker processes on PostgreSQL only (flashcards/_async/feed.py); on
    SQLite it is one process' bus, so a multi-worker app server would lose events silently."""
    if not spec.app.target.startswith("impl_"):
        return  # floors keep no event feed (the database floors refuse SQLite themselves)
    from flashcards.dsn import backend_of
    from flashcards.settings import Settings

    dsn = spec.environment().get("STACKBENCH_DSN") or Settings.model_fields["dsn"].default
    workers = int(spec.settings().get("workers", 1))
    if workers > 1 and backend_of(dsn) == "sqlite":
        raise ServerError(
            f"{spec.server} with {workers} workers on SQLite: the event feed is per process there, so "
            "subscribers would miss other workers' events. Use PostgreSQL (--dsn postgresql://…, or the "
            "private server: leave --dsn unset) or --workers 1."
        )


class RunningServer:
    """A launched server: its process group, log file and readiness state.

    Use as a context manager, or call `start()` / `stop()`. The server runs in its own session
    (process group); `stop()` sends SIGTERM to the group, then SIGKILL after ``grace_s``, and
    checks that no process of the group is left.
    """

    def __init__(self, spec: ServerSpec, *, pin: Literal["taskset", "affinity"] = "taskset"):
        if spec.port == 0:
            spec = dataclasses.replace(spec, port=free_port(spec.host))
        self.spec = spec
        self.pin = pin
        self.proc: subprocess.Popen[bytes] | None = None
        self.pgid: int | None = None
        self._seen: dict[int, psutil.Process] = {}
        self._log: Any = None
        self.log_path: Path | None = None
        self.command: list[str] = []

    # context manager
    def __enter__(self) -> RunningServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise ServerError("server not started")
        return self.proc.pid

    @property
    def url(self) -> str:
        return self.spec.url

    def start(self, timeout: float = 30.0) -> RunningServer:
        spec = self.spec
        refuse_sqlite_workers(spec)
        if self.pin == "taskset":
            self.command = spec.launch_command()
            preexec = None
        else:
            self.command = spec.command()
            cpus = spec.cpus

            def preexec() -> None:
                if cpus:
                    os.sched_setaffinity(0, cpus)

        self._log = tempfile.NamedTemporaryFile(  # closed in stop()
            prefix=f"stackbench-{spec.server}-", suffix=".log", delete=False
        )
        self.log_path = Path(self._log.name)
        self.proc = subprocess.Popen(
            self.command,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=spec.environment(),
            cwd=str(REPO_ROOT),
            start_new_session=True,
            preexec_fn=preexec if self.pin == "affinity" else None,
        )
        self.adopt()
        try:
            self.wait_ready(timeout)
        except BaseException:
            self.stop(keep_log=True)
            raise
        return self

    def wait_ready(self, timeout: float) -> None:
        """Poll the probe path until 200 and until master + workers all exist."""
        assert self.proc is not None
        spec = self.spec
        deadline = time.monotonic() + timeout
        status: int | None = None
        expected = spec.definition.processes(spec)
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServerStartError(
                    f"{spec.server} exited with {self.proc.returncode} before it was ready\n"
                    f"command: {self.command}\n--- log tail ---\n{self.log_tail()}"
                )
            status = probe(spec.host, spec.port, spec.probe_path)
            if status == 200 and len(self.processes()) >= expected:
                return
            time.sleep(0.05)
        raise ServerStartError(
            f"{spec.server} not ready after {timeout:.0f}s (last probe status {status}, "
            f"{len(self.processes())}/{expected} processes) at {spec.url}{spec.probe_path}\n"
            f"command: {self.command}\n--- log tail ---\n{self.log_tail()}"
        )

    def processes(self) -> list[psutil.Process]:
        """The server's live process tree (master first), zombies excluded; every process seen
        is remembered, so `stop()` still finds a worker that later leaves the tree."""
        if self.proc is None:
            return []
        try:
            root = psutil.Process(self.proc.pid)
            tree = [root, *root.children(recursive=True)]
        except psutil.Error:
            return []
        alive = []
        for p in tree:
            with contextlib.suppress(psutil.Error):
                if p.status() != psutil.STATUS_ZOMBIE:
                    alive.append(p)
                    self._seen.setdefault(p.pid, p)
        return alive

    def adopt(self) -> None:
        """Track the group of the launched leader (`self.proc`): its pid is the group id (a new
        session), and its tree is remembered from now on."""
        assert self.proc is not None
        self.pgid = self.proc.pid
        self._seen = {}
        self.processes()

    def group_members(self) -> list[psutil.Process]:
        """Live (non-zombie) processes of the server's group that this handle has seen: the
        leader's tree now, and earlier members that left it. No scan of the machine: a process
        that exits meanwhile is simply not a member any more."""
        if self.pgid is None:
            return []
        members: dict[int, psutil.Process] = {p.pid: p for p in self.processes()}
        for pid, p in list(self._seen.items()):
            if pid in members:
                continue
            try:
                if p.is_running() and p.status() != psutil.STATUS_ZOMBIE and os.getpgid(pid) == self.pgid:
                    members[pid] = p
                    continue
            except (psutil.Error, OSError):  # gone between the check and the question
                pass
            del self._seen[pid]
        return list(members.values())

    def log_tail(self, lines: int = 40) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        with contextlib.suppress(OSError):
            text = self.log_path.read_text(errors="replace")
            return "\n".join(text.splitlines()[-lines:])
        return ""

    def stop(self, grace_s: float = 10.0, *, keep_log: bool = False) -> None:
        """Terminate the whole process group: SIGTERM, then SIGKILL after ``grace_s``.

        The leader is not reaped until the end (its zombie keeps the group id from being
        reused), so a last SIGKILL to the group reaches any member this handle never saw."""
        if self.proc is None:
            return
        tree = self.group_members()  # also catches workers that left the group
        pgid = self.pgid
        self._signal_group(signal.SIGTERM)
        start = time.monotonic()
        resent = start
        while time.monotonic() - start < grace_s:
            survivors = self._survivors(tree)
            if self._leader_exited() and not survivors:
                break
            if time.monotonic() - resent >= 1.0:
                # a worker still booting runs its master's signal handlers (gunicorn) and
                # loses the first SIGTERM: tell the workers again, not the master
                resent = time.monotonic()
                for p in survivors:
                    if p.pid != self.proc.pid:
                        with contextlib.suppress(psutil.Error):
                            p.terminate()
            time.sleep(0.05)
        if pgid is not None and self.proc.returncode is None:
            self._signal_group(signal.SIGKILL)  # members never seen, or deaf to SIGTERM
        for p in self._survivors(tree):
            with contextlib.suppress(psutil.Error):
                p.kill()  # members that moved to a group of their own
        deadline = time.monotonic() + 5.0
        while self._survivors(tree) and time.monotonic() < deadline:
            time.sleep(0.02)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        if self._log is not None:
            self._log.close()
            self._log = None
        if self.log_path is not None and not keep_log:
            with contextlib.suppress(OSError):
                self.log_path.unlink()
        left = self._survivors(tree)
        if left:
            raise ServerError(f"{self.spec.server}: processes left behind: {[p.pid for p in left]}")

    def _signal_group(self, sig: signal.Signals) -> None:
        if self.pgid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pgid, sig)

    def _leader_exited(self) -> bool:
        """Whether the leader has exited, without reaping it (WNOWAIT)."""
        assert self.proc is not None
        if self.proc.returncode is not None:
            return True
        try:
            return os.waitid(os.P_PID, self.proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
        except ChildProcessError:
            return self.proc.poll() is not None

    def _survivors(self, tree: Sequence[psutil.Process]) -> list[psutil.Process]:
        alive: dict[int, psutil.Process] = {p.pid: p for p in self.group_members()}
        for p in tree:
            with contextlib.suppress(psutil.Error):
                if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                    alive.setdefault(p.pid, p)
        if self._leader_exited():
            alive.pop(self.proc.pid if self.proc else -1, None)  # a zombie until wait()
        return list(alive.values())


def start(spec: ServerSpec, timeout: float = 30.0, **kwargs: Any) -> RunningServer:
    """Launch ``spec`` pinned to its CPUs and wait until it answers; returns the handle."""
    return RunningServer(spec, **kwargs).start(timeout)


@contextlib.contextmanager
def serving(spec: ServerSpec, timeout: float = 30.0, **kwargs: Any) -> Iterator[RunningServer]:
    server = start(spec, timeout, **kwargs)
    try:
        yield server
    finally:
        server.stop()
