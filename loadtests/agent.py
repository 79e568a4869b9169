"""`stackbench agent`: a tiny HTTP service on the server's host that reports what one process
tree (a server's master and workers) uses, so `stackbench bench --target URL --agent AGENT`
can record server CPU and memory of a server it did not start.

    stackbench agent --pid 1234 --port 9123     # on the server's host

Endpoints (JSON, no authentication: bind it to a private interface; it reveals nothing but the
tree's resource use and accepts no input beyond starting/ending a window):

    GET  /health  → {"pid", "alive", "processes"}
    POST /begin   → opens a measurement window (CPU baselines, peak memory reset)
    POST /end     → closes it: `loadtests.accounting.TreeUsage` as JSON (cpu_s, cpu_pct,
                    peak_rss_bytes, peak_pss_bytes, peak_uss_bytes, max_processes, …)

The numbers come from the same `ProcessTreeMonitor` (psutil) the harness uses for the servers it
starts, so a --target cell and an --app cell measure alike.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import psutil

from loadtests.accounting import ProcessTreeMonitor


class Agent:
    def __init__(self, pid: int) -> None:
        if not psutil.pid_exists(pid):
            raise ValueError(f"no process {pid}")
        self.pid = pid
        self.monitor = ProcessTreeMonitor(pid).start()
        self.lock = threading.Lock()
        self.open = False

    def health(self) -> dict[str, Any]:
        alive = psutil.pid_exists(self.pid)
        count = 0
        if alive:
            try:
                count = 1 + len(psutil.Process(self.pid).children(recursive=True))
            except psutil.Error:
                alive = False
        return {"pid": self.pid, "alive": alive, "processes": count}

    def begin(self) -> dict[str, Any]:
        with self.lock:
            self.monitor.begin()
            self.open = True
        return {"window": "open"}

    def end(self) -> tuple[int, dict[str, Any]]:
        with self.lock:
            if not self.open:
                return 409, {"error": "no open window: POST /begin first"}
            self.open = False
            return 200, self.monitor.end().as_dict()

    def close(self) -> None:
        self.monitor.stop()


def make_server(agent: Agent, host: str = "127.0.0.1", port: int = 9123) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def _send(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path == "/health":
                self._send(200, agent.health())
            else:
                self._send(404, {"error": "GET /health, POST /begin, POST /end"})

        def do_POST(self) -> None:
            if self.path == "/begin":
                self._send(200, agent.begin())
            elif self.path == "/end":
                self._send(*agent.end())
            else:
                self._send(404, {"error": "GET /health, POST /begin, POST /end"})

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            return

    return ThreadingHTTPServer((host, port), Handler)


def serve(pid: int, host: str = "127.0.0.1", port: int = 9123) -> None:
    agent = Agent(pid)
    server = make_server(agent, host, port)
    print(f"stackbench agent: process tree of pid {pid} on http://{host}:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        agent.close()


class AgentClient:
    """What `bench --target` uses: open and close a window on a remote agent."""

    def __init__(self, url: str, timeout_s: float = 10.0) -> None:
        import httpx

        self.url = url.rstrip("/")
        self.http = httpx.Client(timeout=timeout_s)

    def health(self) -> dict[str, Any]:
        response = self.http.get(self.url + "/health")
        response.raise_for_status()
        return dict(response.json())

    def begin(self) -> None:
        self.http.post(self.url + "/begin").raise_for_status()

    def end(self) -> dict[str, Any]:
        response = self.http.post(self.url + "/end")
        response.raise_for_status()
        return dict(response.json())

    def close(self) -> None:
        self.http.close()
