"""A keep-alive HTTP/1.1 test server on its own thread and event loop, with scripted faults."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any


class TinyServer:
    """Answers every request ``{"ok":true}``; ``status(path)`` picks the status code.

    ``stall_at``: on the N-th request the whole server freezes for ``stall_s`` (a blocking
    sleep on its event loop, like a GC pause or a blocked worker). ``hang_prefix``: requests
    whose path starts with it are never answered.
    """

    def __init__(self, *, stall_at: int | None = None, stall_s: float = 0.5,
                 hang_prefix: str | None = None,
                 status: Callable[[str], int] | None = None) -> None:
        self.stall_at = stall_at
        self.stall_s = stall_s
        self.hang_prefix = hang_prefix
        self.status = status or (lambda _path: 200)
        self.count = 0
        self.seen: list[tuple[str, str, bytes]] = []
        self.authorizations: list[str | None] = []  # each request's Authorization header, in order
        self.connections = 0
        self.port = 0
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> TinyServer:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("tiny server did not start")
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        writers: set[asyncio.StreamWriter] = set()

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writers.add(writer)
            self.connections += 1
            try:
                while True:
                    head = await reader.readuntil(b"\r\n\r\n")
                    method, path, _ = head.split(b"\r\n", 1)[0].decode().split(" ", 2)
                    length = 0
                    authorization = None
                    for line in head.split(b"\r\n")[1:]:
                        if line.lower().startswith(b"content-length:"):
                            length = int(line.split(b":", 1)[1])
                        elif line.lower().startswith(b"authorization:"):
                            authorization = line.split(b":", 1)[1].strip().decode()
                    body = await reader.readexactly(length) if length else b""
                    self.count += 1
                    self.seen.append((method, path, body))
                    self.authorizations.append(authorization)
                    if self.count == self.stall_at:
                        time.sleep(self.stall_s)  # noqa: ASYNC251 - freezes the whole server
                    if self.hang_prefix and path.startswith(self.hang_prefix):
                        await asyncio.sleep(3600)
                    status = self.status(path)
                    payload = b'{"ok":true}'
                    writer.write(
                        f"HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n"
                        f"content-length: {len(payload)}\r\n\r\n".encode() + payload
                    )
            except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
                pass
            finally:
                writers.discard(writer)
                writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=1024)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        async with server:
            await self._stop.wait()
            for writer in list(writers):
                with contextlib.suppress(Exception):
                    writer.transport.abort()
