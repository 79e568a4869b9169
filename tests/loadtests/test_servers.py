"""RunningServer's process-group tracking: no race with processes that exit mid-scan, and no
scan of the whole machine while it stops a server."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import psutil
import pytest

from loadtests.launcher import RunningServer
from loadtests.servers import AppTarget, ServerSpec

# A process group that forks short-lived children all the time (a busy server's helpers): any
# scan of it meets processes that exit between being listed and being asked their group.
CHURN = "import subprocess, time\nwhile True:\n    subprocess.Popen(['true']).wait()\n"
# A leader whose worker leaves the tree (re-parented to init) but stays in the group.
ORPHAN = (
    "import os, subprocess, sys, time\n"
    "if os.fork() == 0:\n"
    "    subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
    "    os._exit(0)\n"
    "time.sleep(60)\n"
)


def _launched(code: str) -> RunningServer:
    spec = ServerSpec(server="uvicorn", app=AppTarget("impl_rest.app:app", "asgi"), port=1)
    server = RunningServer(spec)
    server.proc = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
    server.adopt()
    return server


def test_scanning_a_group_whose_processes_exit_mid_scan_never_raises() -> None:
    server = _launched(CHURN)
    try:
        deadline = time.monotonic() + 3.0
        scans = 0
        while time.monotonic() < deadline:
            members = server.group_members()
            assert server.proc is not None and server.proc.pid in {p.pid for p in members}
            scans += 1
        assert scans > 10
    finally:
        server.stop(grace_s=2.0)
    assert server.proc is not None and server.proc.returncode is not None


def test_a_member_that_exits_between_the_check_and_the_question_is_dropped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The race of issue 20, made certain: a remembered member that left the tree is alive when
    checked and gone when its group is asked (`os.getpgid` raises ProcessLookupError, an OSError,
    not a psutil.Error). The churn test above rarely hits that window; this one always does."""
    server = _launched("import time; time.sleep(60)")
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    try:
        server._seen[other.pid] = psutil.Process(other.pid)  # seen once, not in the tree now
        real_getpgid = os.getpgid

        def exited_meanwhile(pid: int) -> int:
            if pid == other.pid:
                raise ProcessLookupError(3, "No such process")
            return real_getpgid(pid)

        monkeypatch.setattr(os, "getpgid", exited_meanwhile)
        members = {p.pid for p in server.group_members()}
        assert server.proc is not None and members == {server.proc.pid}
        assert other.pid not in server._seen
    finally:
        monkeypatch.undo()
        other.kill()
        other.wait()
        server.stop(grace_s=2.0)


def test_stop_kills_a_worker_that_left_the_tree_without_scanning_the_machine(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = _launched(ORPHAN)
    assert server.proc is not None
    time.sleep(0.5)  # the grandchild is running, its parent gone: it left the leader's tree
    orphans = [p for p in psutil.process_iter() if _in_group(p, server.proc.pid) and p.pid != server.proc.pid
               and p.status() != psutil.STATUS_ZOMBIE]
    assert len(orphans) == 1 and orphans[0].ppid() != server.proc.pid
    orphan = orphans[0]

    def no_machine_scan(*_a: object, **_k: object) -> None:
        raise AssertionError("stop() scanned every process on the machine")

    monkeypatch.setattr(psutil, "process_iter", no_machine_scan)
    server.stop(grace_s=2.0)
    assert not orphan.is_running() or orphan.status() == psutil.STATUS_ZOMBIE


def _in_group(process: psutil.Process, pgid: int) -> bool:
    try:
        return os.getpgid(process.pid) == pgid
    except OSError:
        return False
