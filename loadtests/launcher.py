"""Running servers: launch a `ServerSpec` (servers.py) as its own process group, pinned to its
CPUs, wait until it answers, and stop the whole group, checking that nothing is left behind.
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.client
import os
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import psutil

from loadtests.servers import REPO_ROOT, ServerSpec


class ServerError(RuntimeError):
    """A server could not be started, did not become ready, or could not be stopped."""


class ServerStartError(ServerError):
    """The server exited or never answered its readiness probe; the message has its log tail."""


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
