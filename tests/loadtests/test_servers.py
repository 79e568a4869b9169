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
