"""The process-tree monitor (`loadtests/accounting.py`): memory peaks a window must not miss."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

from loadtests.accounting import ProcessTreeMonitor

MiB = 2**20

# A child that holds 96 MiB of touched memory between "alloc" and "free" (a bytearray that
# large is its own mmap, so freeing it gives the pages back to the system at once).
CHILD = """
import sys
held = None
for line in sys.stdin:
    if line.startswith("alloc"):
        held = bytearray(96 * 1024 * 1024)
        for i in range(0, len(held), 4096):
            held[i] = 1
    elif line.startswith("free"):
        held = None
    print("ok", flush=True)
"""


@pytest.fixture
def child() -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen([sys.executable, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    yield proc
    proc.kill()
    proc.wait()


def _say(proc: subprocess.Popen[str], command: str) -> None:
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(command + "\n")
    proc.stdin.flush()
    assert proc.stdout.readline().strip() == "ok"


def test_a_transient_peak_between_full_reads_reaches_the_pss_peak(child: subprocess.Popen[str]) -> None:
    _say(child, "ping")
    monitor = ProcessTreeMonitor(child.pid, memory_every=1000)  # full reads only at the ends, but for peaks
    monitor.begin()  # a full read: the baseline
    monitor.sample()
    _say(child, "alloc")
    monitor.sample()  # not a full-read turn: the new RSS peak makes it one
    _say(child, "free")
    monitor.sample()
    usage = monitor.end()
    assert usage.peak_rss_bytes >= 96 * MiB
    assert usage.peak_pss_bytes is not None and usage.peak_uss_bytes is not None
    # the peak taken while the 96 MiB were held (the child alone is ≈ 10 MiB), not the freed
    # state both ends see
    assert usage.peak_pss_bytes >= 90 * MiB and usage.peak_uss_bytes >= 90 * MiB
    assert usage.memory_samples >= 3  # begin, the peak, end


def test_without_a_new_rss_peak_the_full_reads_keep_their_schedule(child: subprocess.Popen[str]) -> None:
    _say(child, "ping")
    monitor = ProcessTreeMonitor(child.pid, memory_every=1000)
    monitor.begin()
    for _ in range(5):
        monitor.sample()
    usage = monitor.end()
    # begin and end, and a sample that finds a few pages more than any before (a new peak) at
    # most once or twice; not every sample
    assert 2 <= usage.memory_samples <= 4
