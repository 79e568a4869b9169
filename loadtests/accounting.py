"""CPU and memory accounting: a server's whole process tree, a load generator, the machine.

* `ProcessTreeMonitor` samples a root process and all its descendants with psutil in a thread
  (every ~150 ms): CPU seconds (user + system) over a measurement window → % of one core, and
  the peak of the RSS summed over all processes. Workers that appear during the window (a
  re-spawned worker) are counted from zero; a process that exits loses at most one sampling
  interval of CPU. Summed RSS counts pages shared between forked workers once per process —
  an upper bound, as `ps` would report it. PSS and USS (psutil ``memory_full_info``: shared
  pages divided among the processes that map them / pages only that process maps) are read every
  ``memory_every`` samples (about every 0.6 s: reading smaps costs more than a stat) and at the
  window's ends; their peaks over the window, summed over all processes, are the fair totals.
* `steal_snapshot` / `steal_pct`: the hypervisor's steal time from /proc/stat.
* `run_measured` runs a child (the load generator) to completion and reads its CPU time from
  ``os.wait4``'s rusage: exact, including all of its threads.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

# -- steal time ---------------------------------------------------------------------------

_STAT_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


@dataclass(frozen=True)
class CpuStat:
    """Jiffies per CPU line of /proc/stat (``"cpu"`` is the sum over all CPUs)."""

    lines: Mapping[str, tuple[int, ...]]

    def total(self, name: str = "cpu") -> int:
        # guest time is already inside user, so it is not added again
        return sum(self.lines[name])

    def steal(self, name: str = "cpu") -> int:
        return self.lines[name][7]


def steal_snapshot(path: str = "/proc/stat") -> CpuStat | None:
    """Read /proc/stat; None where it does not exist (not Linux)."""
    lines: dict[str, tuple[int, ...]] = {}
    try:
        with open(path) as f:
            for line in f:
                if not line.startswith("cpu"):
                    break
                name, *values = line.split()
                numbers = tuple(int(v) for v in values[: len(_STAT_FIELDS)])
                lines[name] = numbers + (0,) * (len(_STAT_FIELDS) - len(numbers))
    except OSError:
        return None
    return CpuStat(lines)


def steal_pct(before: CpuStat | None, after: CpuStat | None, cpu: str = "cpu") -> float | None:
    """Steal time between two snapshots, % of the CPU time that passed (``cpu``: ``cpu0`` …)."""
    if before is None or after is None or cpu not in before.lines or cpu not in after.lines:
        return None
    total = after.total(cpu) - before.total(cpu)
    if total <= 0:
        return 0.0
    return 100.0 * (after.steal(cpu) - before.steal(cpu)) / total


def busy_by_cpu(before: CpuStat | None, after: CpuStat | None) -> dict[int, float]:
    """% of each CPU's time spent busy (not idle, iowait or stolen) between two snapshots: with
    the server's own CPU beside it, this shows what else ran on the server's cores."""
    if before is None or after is None:
        return {}
    result: dict[int, float] = {}
    for name, now in after.lines.items():
        if name == "cpu" or name not in before.lines:
            continue
        delta = [a - b for a, b in zip(now, before.lines[name], strict=True)]
        total = sum(delta)
        if total > 0:
            result[int(name[3:])] = 100.0 * (total - delta[3] - delta[4] - delta[7]) / total
    return result


def steal_by_cpu(before: CpuStat | None, after: CpuStat | None) -> dict[int, float]:
    if before is None or after is None:
        return {}
    result: dict[int, float] = {}
    for name in after.lines:
        if name != "cpu" and name in before.lines:
            value = steal_pct(before, after, name)
            if value is not None:
                result[int(name[3:])] = value
    return result


# -- a process tree -----------------------------------------------------------------------


@dataclass
class TreeUsage:
    """What a server's process tree used over one measurement window."""

    wall_s: float
    cpu_s: float
    cpu_pct: float  # % of one core (200 = two cores busy)
    user_s: float
    system_s: float
    peak_rss_bytes: int  # max over samples of the RSS summed over all processes
    processes_seen: int  # distinct processes sampled in the window (respawns included)
    max_processes: int  # most processes alive at one sample
    samples: int
    steal_pct: float | None
    steal_pct_by_cpu: dict[int, float] = field(default_factory=dict)
    busy_pct_by_cpu: dict[int, float] = field(default_factory=dict)
    peak_pss_bytes: int | None = None  # max over memory samples of the PSS summed over processes
    peak_uss_bytes: int | None = None  # the same for USS
    memory_samples: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "wall_s": self.wall_s,
            "cpu_s": self.cpu_s,
            "cpu_pct": self.cpu_pct,
            "user_s": self.user_s,
            "system_s": self.system_s,
            "peak_rss_bytes": self.peak_rss_bytes,
            "processes_seen": self.processes_seen,
            "max_processes": self.max_processes,
            "samples": self.samples,
            "steal_pct": self.steal_pct,
            "steal_pct_by_cpu": {str(k): v for k, v in self.steal_pct_by_cpu.items()},
            "busy_pct_by_cpu": {str(k): v for k, v in self.busy_pct_by_cpu.items()},
            "peak_pss_bytes": self.peak_pss_bytes,
            "peak_uss_bytes": self.peak_uss_bytes,
            "memory_samples": self.memory_samples,
        }


@dataclass
class _Tracked:
    proc: psutil.Process
    base_user: float
    base_system: float
    user: float
    system: float


class ProcessTreeMonitor:
    """Sample ``pid`` and its descendants; measure one window at a time.

    ::

        with ProcessTreeMonitor(server.pid) as monitor:
            ...warmup...
            monitor.begin()
            ...load...
            usage = monitor.end()
    """

    def __init__(self, pid: int, interval: float = 0.15, memory_every: int = 4) -> None:
        self.pid = pid
        self.interval = interval
        self.memory_every = max(1, memory_every)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._tracked: dict[tuple[int, float], _Tracked] = {}
        self._window_start: float | None = None
        self._window_wall_start: float | None = None
        self._stat_before: CpuStat | None = None
        self._peak_rss = 0
        self._peak_pss: int | None = None
        self._peak_uss: int | None = None
        self._memory_samples = 0
        self._max_processes = 0
        self._samples = 0
        self.errors = 0

    def __enter__(self) -> ProcessTreeMonitor:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> ProcessTreeMonitor:
        """Start the sampling thread and open a first window (``begin()`` reopens it)."""
        self.begin()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="tree-monitor", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.sample()
            except Exception:  # keep sampling: one bad read must not end the measurement
                self.errors += 1

    def _tree(self) -> list[psutil.Process]:
        try:
            root = psutil.Process(self.pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def sample(self, *, memory: bool | None = None) -> None:
        """Read CPU times and RSS of every live process of the tree (thread-safe); PSS and USS
        too on every ``memory_every``-th sample (or when ``memory`` is True)."""
        with self._lock:
            rss_total = 0
            pss_total = uss_total = 0
            full = memory if memory is not None else self._samples % self.memory_every == 0
            alive = 0
            for proc in self._tree():
                try:
                    with proc.oneshot():
                        key = (proc.pid, proc.create_time())
                        times = proc.cpu_times()
                        rss = proc.memory_info().rss
                    if full:
                        info = proc.memory_full_info()
                        pss_total += int(getattr(info, "pss", 0))
                        uss_total += int(info.uss)
                except psutil.Error:
                    continue
                tracked = self._tracked.get(key)
                if tracked is None:
                    # born during the window → counted from zero; else from now
                    born_inside = (
                        self._window_wall_start is not None and key[1] >= self._window_wall_start
                    )
                    tracked = _Tracked(
                        proc,
                        0.0 if born_inside else times.user,
                        0.0 if born_inside else times.system,
                        times.user,
                        times.system,
                    )
                    self._tracked[key] = tracked
                tracked.user, tracked.system = times.user, times.system
                rss_total += rss
                alive += 1
            self._peak_rss = max(self._peak_rss, rss_total)
            if full and alive:
                self._peak_pss = max(self._peak_pss or 0, pss_total)
                self._peak_uss = max(self._peak_uss or 0, uss_total)
                self._memory_samples += 1
            self._max_processes = max(self._max_processes, alive)
            self._samples += 1

    def begin(self) -> None:
        """Open a measurement window now: CPU baselines, peak RSS and steal start here."""
        with self._lock:
            self._tracked.clear()
            self._peak_rss = 0
            self._peak_pss = self._peak_uss = None
            self._memory_samples = 0
            self._max_processes = 0
            self._samples = 0
            self._window_wall_start = None  # the first sample takes every process as it is
            born_after = time.time()
            self._window_start = time.monotonic()
            self._stat_before = steal_snapshot()
        self.sample(memory=True)
        with self._lock:
            # from now on a process not seen yet and created after begin() counts from zero
            self._window_wall_start = born_after

    def end(self) -> TreeUsage:
        """Close the window (one last sample) and return what the tree used in it."""
        self.sample(memory=True)
        with self._lock:
            if self._window_start is None:
                raise RuntimeError("end() without begin()")
            wall = time.monotonic() - self._window_start
            stat_after = steal_snapshot()
            user = sum(t.user - t.base_user for t in self._tracked.values())
            system = sum(t.system - t.base_system for t in self._tracked.values())
            cpu = user + system
            return TreeUsage(
                wall_s=wall,
                cpu_s=cpu,
                cpu_pct=100.0 * cpu / wall if wall > 0 else 0.0,
                user_s=user,
                system_s=system,
                peak_rss_bytes=self._peak_rss,
                processes_seen=len(self._tracked),
                max_processes=self._max_processes,
                samples=self._samples,
                steal_pct=steal_pct(self._stat_before, stat_after),
                steal_pct_by_cpu=steal_by_cpu(self._stat_before, stat_after),
                busy_pct_by_cpu=busy_by_cpu(self._stat_before, stat_after),
                peak_pss_bytes=self._peak_pss,
                peak_uss_bytes=self._peak_uss,
                memory_samples=self._memory_samples,
            )


# -- a child process (the load generator) ----------------------------------------------------


@dataclass
class ChildResult:
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str
    wall_s: float
    user_s: float
    system_s: float
    max_rss_bytes: int
    timed_out: bool = False

    @property
    def cpu_s(self) -> float:
        return self.user_s + self.system_s

    @property
    def cpu_pct(self) -> float:
        """% of one core over the child's lifetime."""
        return 100.0 * self.cpu_s / self.wall_s if self.wall_s > 0 else 0.0


def pinned(argv: Sequence[str], cpus: Sequence[int] | None) -> list[str]:
    """``argv`` behind ``taskset -c CPUS`` (unchanged when cpus is None or taskset is missing)."""
    taskset = shutil.which("taskset")
    if cpus and taskset:
        return [taskset, "-c", ",".join(str(c) for c in sorted(set(cpus))), *argv]
    return list(argv)


def run_measured(
    argv: Sequence[str],
    *,
    cpus: Sequence[int] | None = None,
    timeout: float | None = None,
    env: Mapping[str, str] | None = None,
    cwd: str | Path | None = None,
) -> ChildResult:
    """Run ``argv`` (pinned to ``cpus``) to completion; its CPU comes from ``os.wait4``.

    Pinning uses ``sched_setaffinity`` in the child before exec, so that the measured process
    is the command itself (no taskset wrapper in between).
    """
    cpu_set = sorted(set(cpus)) if cpus else None

    def preexec() -> None:
        if cpu_set:
            os.sched_setaffinity(0, cpu_set)

    with (
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
    ):
        started = time.monotonic()
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            preexec_fn=preexec if cpu_set else None,
            start_new_session=True,
        )
        timed_out = False
        status = 0
        rusage: Any = None
        while True:
            pid, status, rusage = os.wait4(proc.pid, os.WNOHANG)
            if pid == proc.pid:
                break
            if timeout is not None and time.monotonic() - started > timeout and not timed_out:
                timed_out = True
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, 9)
            time.sleep(0.01)
        wall = time.monotonic() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode(errors="replace")
        stderr = err.read().decode(errors="replace")
    return ChildResult(
        argv=list(argv),
        returncode=proc.returncode,
        stdout=stdout,
        stderr=stderr,
        wall_s=wall,
        user_s=rusage.ru_utime,
        system_s=rusage.ru_stime,
        max_rss_bytes=int(rusage.ru_maxrss) * 1024,
        timed_out=timed_out,
    )
