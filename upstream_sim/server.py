"""Run the simulator from Python: in a subprocess (`start_subprocess`, `running_simulator`) or
in-process (`create_app`).

A subprocess, not a thread: the simulator must not share a GIL or an event loop with the code
under test or the load generator, or its latency would be theirs too. It gets its own process
group, so `stop()` ends uvicorn and any workers it spawned, and leaves nothing behind.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx

from upstream_sim.app import create_app
from upstream_sim.config import KEYS

__all__ = ["SimulatorHandle", "create_app", "running_simulator", "start_subprocess"]

_LIVE: set[SimulatorHandle] = set()  # strong references: a dropped handle still gets stopped


class SimulatorHandle:
    """A simulator running in a subprocess. `url` is the OpenAI base URL (ends in `/v1`)."""

    def __init__(self, process: subprocess.Popen[bytes], host: str, port: int, log_path: Path):
        self.process = process
        self.host = host
        self.port = port
        self.log_path = log_path
        name = "127.0.0.1" if host in ("0.0.0.0", "") else "[::1]" if host == "::" else host
        if ":" in name and not name.startswith("["):
            name = f"[{name}]"
        self.root = f"http://{name}:{port}"
        self.url = self.root + "/v1"
        self._stopped = False
        _LIVE.add(self)

    @property
    def pid(self) -> int:
        return self.process.pid

    def control(self, **settings: Any) -> dict[str, Any]:
        """Change the runtime settings of every worker (`reset=True` first restores the startup
        ones); returns the settings now in force."""
        return self._call("POST", "/control", settings)

    def settings(self) -> dict[str, Any]:
        return self._call("GET", "/control")

    def stats(self) -> dict[str, Any]:
        return self._call("GET", "/stats")

    def reset_stats(self) -> dict[str, Any]:
        return self._call("POST", "/stats/reset")

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        response = httpx.request(method, self.root + path, json=body, timeout=10.0)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def stop(self, timeout: float = 3.0) -> None:
        """SIGTERM the process group (uvicorn drains for at most 1 s), SIGKILL what is left.
        Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        if self.process.returncode is None:
            _signal_group(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        # SIGKILL the group even when the leader is gone: orphaned workers may remain.
        _signal_group(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout)
        self.log_path.unlink(missing_ok=True)
        _LIVE.discard(self)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def __enter__(self) -> SimulatorHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_subprocess(
    port: int = 8099,
    host: str = "127.0.0.1",
    ttft_ms: float | None = None,
    inter_token_ms: float | None = None,
    tokens: int | None = None,
    workers: int = 1,
    cpus: Sequence[int] | None = None,
    *,
    ready_timeout_s: float = 20.0,
    **more: Any,
) -> SimulatorHandle:
    """Start `python -m upstream_sim` and return once `/health` answers. `port=0` picks a free
    port. Behaviour settings left None fall back to `UPSTREAM_SIM_*` / the defaults; `more`
    takes the other settings (`fault`, `slow_ms`, `fault_after`, `model`). `cpus` pins the
    process (and its workers) with `taskset -c`."""
    settings = {"ttft_ms": ttft_ms, "inter_token_ms": inter_token_ms, "tokens": tokens, **more}
    unknown = set(settings) - KEYS
    if unknown:
        raise TypeError(f"unknown simulator settings: {', '.join(sorted(unknown))}")
    flags = [
        part
        for key, value in settings.items()
        if value is not None
        for part in ("--" + key.replace("_", "-"), str(value))
    ]
    # A free port found by binding port 0 can be taken by someone else before the child binds
    # it: on that (rare) failure, try another.
    for attempt in range(3 if port == 0 else 1):
        chosen = port or _free_port(host)
        command = [sys.executable, "-m", "upstream_sim", "--host", host, "--port", str(chosen),
                   "--workers", str(workers), *flags]
        handle = _spawn(command, host, chosen, cpus)
        try:
            _wait_ready(handle, ready_timeout_s)
            return handle
        except RuntimeError:
            log = handle.log()
            handle.stop()
            if "address already in use" in log.lower() and attempt < 2 and port == 0:
                continue
            raise
    raise AssertionError("unreachable")


@contextlib.contextmanager
def running_simulator(
    port: int = 0,
    ttft_ms: float | None = None,
    inter_token_ms: float | None = None,
    tokens: int | None = None,
    host: str = "127.0.0.1",
    **more: Any,
) -> Iterator[SimulatorHandle]:
    """`with running_simulator(ttft_ms=5, tokens=10) as sim:` … `sim.url` …; stopped on exit.
    `more`: `workers`, `cpus`, `ready_timeout_s` and the other settings of `start_subprocess`."""
    handle = start_subprocess(port=port, host=host, ttft_ms=ttft_ms,
                              inter_token_ms=inter_token_ms, tokens=tokens, **more)
    try:
        yield handle
    finally:
        handle.stop()


def _spawn(command: list[str], host: str, port: int, cpus: Sequence[int] | None) -> SimulatorHandle:
    if cpus and shutil.which("taskset"):
        command = ["taskset", "-c", ",".join(str(c) for c in cpus), *command]
    fd, name = tempfile.mkstemp(prefix="upstream-sim-", suffix=".log")
    with os.fdopen(fd, "wb") as log:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stop() kills workers too
        )
    if cpus and not command[0] == "taskset":  # no taskset binary: pin after the fact
        os.sched_setaffinity(process.pid, set(cpus))
    return SimulatorHandle(process, host, port, Path(name))


def _wait_ready(handle: SimulatorHandle, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=1.0) as client:
        while time.monotonic() < deadline:
            if handle.process.poll() is not None:
                raise RuntimeError(f"upstream simulator exited ({handle.process.returncode}):\n"
                                   + handle.log()[-2000:])
            try:
                if client.get(handle.root + "/health").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.02)
    raise RuntimeError(f"upstream simulator not ready after {timeout} s:\n" + handle.log()[-2000:])


def _free_port(host: str) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


@atexit.register
def _stop_leftovers() -> None:
    """A caller that forgot `stop()` (or died on an exception) still leaves no simulator."""
    for handle in list(_LIVE):
        handle.stop(timeout=1.0)
