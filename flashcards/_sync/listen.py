"""The event feed's one LISTEN connection per worker process: psycopg, in a daemon thread.

Hand-written twin of `flashcards/_async/listen.py` (same names). The thread belongs to the
process that started it: after a fork (gunicorn loads apps in the master with --preload) the
next `start()` in the worker starts its own.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

import psycopg

POLL_S = 1.0  # how often the thread looks up from notifies() to see whether it should stop


class Listener:
    def __init__(self, dsn: str, channel: str, on_payload: Callable[[str], None], on_lost: Callable[[], None]) -> None:
        self.dsn = dsn
        self.channel = channel
        self.on_payload = on_payload
        self.on_lost = on_lost
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._stop = threading.Event()

    @property
    def listening(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and self._pid == os.getpid() and self._ready.is_set()

    def start(self) -> None:
        with self._lock:
            if not (self._thread is not None and self._thread.is_alive() and self._pid == os.getpid()):
                self._ready, self._error, self._stop = threading.Event(), None, threading.Event()
                self._pid = os.getpid()
                self._thread = threading.Thread(target=self._run, args=(self._ready, self._stop), name="feed-listen", daemon=True)
                self._thread.start()
            ready = self._ready
        if not ready.wait(10):
            raise TimeoutError("the event feed's LISTEN connection did not open within 10 s")
        if self._error is not None:
            raise ConnectionError(f"the event feed cannot LISTEN: {self._error}") from self._error

    def _run(self, ready: threading.Event, stop: threading.Event) -> None:
        try:
            conn = psycopg.connect(self.dsn, autocommit=True, connect_timeout=5)
            conn.execute(f"LISTEN {self.channel}")
        except Exception as exc:  # reported to the starter, who raises it
            self._error = exc
            ready.set()
            return
        ready.set()
        try:
            while not stop.is_set():
                for notify in conn.notifies(timeout=POLL_S):
                    self.on_payload(notify.payload)
        except psycopg.Error:
            pass
        finally:
            conn.close()
            if not stop.is_set():
                self.on_lost()

    def close(self) -> None:
        self._stop.set()
