"""Stopping a run early without orphans or a document that looks complete (issue 20).

`catch_stop_signals()` turns the first SIGINT or SIGTERM into `Interrupted` (a KeyboardInterrupt,
so `except Exception` blocks in the runner let it through) and ignores further ones while the
run unwinds: every `finally` that stops a server or the upstream simulator then runs to its
end, where a second Ctrl-C would otherwise abort the cleanup and leave the servers running
(they live in sessions of their own and never see the terminal's signal). `reason_of` names
what stopped a run for the document (`results.mark_interrupted`). `run_child` runs a pytest
(or other) child that starts servers of its own: on an interrupt it is asked to stop (SIGINT:
pytest tears its fixtures down, which stops those servers) before its group is killed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
from collections.abc import Iterator, Sequence
from types import FrameType

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    """A stop signal arrived during a run; `args[0]` is its name ("SIGINT", "SIGTERM")."""


def _raise_once(signum: int, _frame: FrameType | None) -> None:
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)  # the cleanup that follows must not be cut short
    raise Interrupted(signal.Signals(signum).name)


@contextlib.contextmanager
def catch_stop_signals() -> Iterator[None]:
    """Within the block, SIGINT/SIGTERM raise `Interrupted` once; the previous handlers come back
    at the end. Outside the main thread (signals cannot be handled there) it does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
    for sig in STOP_SIGNALS:
        signal.signal(sig, _raise_once)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def reason_of(exc: BaseException) -> str:
    if isinstance(exc, Interrupted):
        return str(exc.args[0])
    if isinstance(exc, KeyboardInterrupt):
        return "SIGINT"
    return f"crash: {type(exc).__name__}: {exc}"


def run_child(argv: Sequence[str], *, timeout: float, grace_s: float = 30.0,
              **popen: object) -> subprocess.CompletedProcess[str]:
    """`subprocess.run(argv, capture_output=True, text=True, timeout=…)` in a session of its
    own; on an interrupt, a timeout or any error it gets SIGINT, `grace_s` to finish its
    teardown, then SIGKILL to its group, and the exception goes on."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, **popen)  # type: ignore[call-overload]
    try:
        out, err = proc.communicate(timeout=timeout)
    except BaseException:
        _stop_group(proc, grace_s)
        raise
    return subprocess.CompletedProcess(list(argv), proc.returncode, out, err)


def _stop_group(proc: subprocess.Popen[str], grace_s: float) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.communicate(timeout=grace_s)  # drains the pipes, or a chatty child blocks on them
    except subprocess.TimeoutExpired:
        pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
