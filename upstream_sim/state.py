"""Runtime settings and counters shared by every worker process of one simulator.

With `--workers N` a `POST /control` lands on one worker but must change all of them, and
`GET /stats` must count all of them; so both live in one small memory map: an anonymous one for
a single process, a file (`UPSTREAM_SIM_STATE_FILE`) that every worker maps for several.

Layout, in signed 64-bit words: [0] settings sequence number (odd while being written: a
seqlock, so readers never parse a half-written JSON), [1] settings JSON length, then the JSON
bytes, then the stats baseline (what `/stats/reset` subtracts), then one slot per worker: its
pid and its counters. Each worker writes only its own slot, from its one event-loop thread, so
counters need no lock; only the rare settings/baseline/slot-claim writes take `flock`.
"""

from __future__ import annotations

import fcntl
import mmap
import os
from typing import Any

import orjson

from upstream_sim.config import SimConfig

COUNTERS = (
    "requests",  # every HTTP request, whatever the path
    "completions",  # POST /v1/chat/completions accepted (streaming or not)
    "streams_active",
    "streams_completed",  # streams that reached `data: [DONE]`
    "tokens_sent",  # content tokens
    "faults",  # requests answered with an injected fault
    "client_disconnects",  # clients that left before the answer was complete
    "bad_requests",  # 4xx answers the simulator gave on its own (not `status:NNN` faults)
)
INDEX = {name: i for i, name in enumerate(COUNTERS)}
_NC = len(COUNTERS)
_JSON_WORDS = 512  # 4 KiB of settings JSON: a SimConfig is ~150 bytes
_BASELINE = 2 + _JSON_WORDS
_SLOTS_AT = _BASELINE + _NC
MAX_WORKERS = 64
SIZE = 8 * (_SLOTS_AT + MAX_WORKERS * (1 + _NC))


class SharedState:
    def __init__(self, config: SimConfig, path: str | None = None, *, create: bool = True,
                 claim: bool = True):
        """Anonymous map (`path` None) or the file at `path`, initialised with `config` when
        `create`; `claim`: this process serves requests, so it takes a worker slot."""
        self._fd = -1
        if path is None:
            self._map = mmap.mmap(-1, SIZE)
        else:
            flags = os.O_RDWR | (os.O_CREAT if create else 0)
            self._fd = os.open(path, flags, 0o600)
            if create:
                os.ftruncate(self._fd, SIZE)
            self._map = mmap.mmap(self._fd, SIZE)
        self._words = memoryview(self._map).cast("q")
        self._seen_seq = -1
        self._config = config
        if create:
            self.set_config(config)
        # A non-serving process (the `--workers N` parent) counts into a private scratch slot.
        self._counters = self._words
        self._slot = 0
        if claim:
            self._slot = self._claim_slot()
        else:
            self._counters = memoryview(bytearray(8 * (1 + _NC))).cast("q")

    # --- settings ---------------------------------------------------------------------------
    def config(self) -> SimConfig:
        """The current runtime settings; a word comparison unless another worker changed them."""
        seq = self._words[0]
        if seq != self._seen_seq:
            self._reload()
        return self._config

    def _reload(self) -> None:
        # A writer's critical section is a few microseconds; the bound only guards against one
        # killed mid-write, in which case the last good settings stay.
        for _ in range(1_000_000):
            seq = self._words[0]
            if seq & 1:
                continue
            length = self._words[1]
            raw = bytes(self._map[16 : 16 + length])
            if self._words[0] == seq:
                self._config = SimConfig().updated(orjson.loads(raw).items())
                self._seen_seq = seq
                return

    def set_config(self, config: SimConfig) -> None:
        raw = orjson.dumps(config.as_dict())
        with self._locked():
            self._words[0] += 1
            self._map[16 : 16 + len(raw)] = raw
            self._words[1] = len(raw)
            self._words[0] += 1
            self._seen_seq = self._words[0]
        self._config = config

    # --- counters ---------------------------------------------------------------------------
    def bump(self, index: int, delta: int = 1) -> None:
        self._counters[self._slot + 1 + index] += delta

    def stats(self) -> dict[str, Any]:
        totals = [0] * _NC
        workers = 0
        for slot in range(MAX_WORKERS):
            base = _SLOTS_AT + slot * (1 + _NC)
            pid = self._words[base]
            if pid == 0:
                continue
            alive = _alive(pid)
            workers += alive
            for i in range(_NC):
                if i != INDEX["streams_active"] or alive:  # a dead worker's streams are gone
                    totals[i] += self._words[base + 1 + i]
        result: dict[str, Any] = {
            name: totals[i] - (0 if name == "streams_active" else self._words[_BASELINE + i])
            for i, name in enumerate(COUNTERS)
        }
        result["workers"] = workers
        return result

    def reset_stats(self) -> None:
        """Zero every counter but `streams_active`, for every worker, by moving the baseline."""
        with self._locked():
            current = self.stats()
            for i, name in enumerate(COUNTERS):
                if name != "streams_active":
                    self._words[_BASELINE + i] += current[name]

    # --- plumbing ---------------------------------------------------------------------------
    def _claim_slot(self) -> int:
        with self._locked():
            for slot in range(MAX_WORKERS):
                base = _SLOTS_AT + slot * (1 + _NC)
                pid = self._words[base]
                if pid == 0 or (pid != os.getpid() and not _alive(pid)):
                    # A dead worker's slot keeps its totals (they still count), not its streams.
                    self._words[base] = os.getpid()
                    self._words[base + 1 + INDEX["streams_active"]] = 0
                    return base
        raise RuntimeError(f"more than {MAX_WORKERS} simulator workers share one state file")

    def _locked(self) -> _Flock:
        return _Flock(self._fd)


class _Flock:
    """`flock` on the state file; nothing for an anonymous map (one process, one thread)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def __enter__(self) -> None:
        if self.fd >= 0:
            fcntl.flock(self.fd, fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        if self.fd >= 0:
            fcntl.flock(self.fd, fcntl.LOCK_UN)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
