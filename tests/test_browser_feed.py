"""The event feed from a real browser (issue 19, item 6): headless Chromium, a page of another
origin (CORS configured for it), the REST app under uvicorn.

The page gets a stream ticket (`POST /api/events/ticket`: a preflighted cross-origin request with
`Authorization`), opens `new EventSource('/api/events?ticket=…')` (EventSource sends no headers)
and reports what it receives to the little server that served it. Then the reconnection rule:
the spent ticket is refused (401), and a new ticket with `last_event_id` (the id of the last event
received) resumes with what was published while the page was away.

Skipped when no Chromium binary is installed (`apt-get install chromium`).
"""

from __future__ import annotations

import json
import queue
import shutil
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from flashcards._sync.database import Database
from tests.http.support import UvicornThread
from tests.support import make_settings

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary (apt-get install chromium)")
PASSWORD = "correct horse battery"

PAGE = """<!doctype html><meta charset="utf-8"><title>feed</title><script>
const API = %(api)s, TOKEN = %(token)s;
const report = (kind, data) => fetch("/report", {method: "POST", body: JSON.stringify({kind, data})});
const ticket = async () => {
  const r = await fetch(API + "/api/events/ticket", {method: "POST", headers: {Authorization: "Bearer " + TOKEN}});
  return (await r.json()).ticket;
};
const open = (t, after) => new EventSource(
  API + "/api/events?ticket=" + encodeURIComponent(t) + (after ? "&last_event_id=" + after : ""));
(async () => {
  try {
    const first = await ticket();
    const es = open(first);
    es.onopen = () => report("open", 1);
    const lastId = await new Promise(resolve => es.addEventListener("deck.created", e => {
      report("event", {id: e.lastEventId, data: JSON.parse(e.data).data});
      resolve(e.lastEventId);
    }));
    es.close();
    const again = await fetch(API + "/api/events?ticket=" + encodeURIComponent(first));
    report("spent", again.status);
    while ((await fetch("/go")).status !== 200) await new Promise(r => setTimeout(r, 50));
    const es2 = open(await ticket(), lastId);
    es2.addEventListener("deck.created", e => {
      report("resumed", {id: e.lastEventId, data: JSON.parse(e.data).data});
      es2.close();
    });
  } catch (e) { report("exception", String(e)); }
})();
</script>"""


class PageServer:
    """Serves the page, takes the page's reports (a queue), and says when the page may go on."""

    def __init__(self) -> None:
        self.reports: queue.Queue[dict[str, Any]] = queue.Queue()
        self.go = threading.Event()
        self.page = b""
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                if self.path == "/go":
                    self._send(200 if outer.go.is_set() else 404, b"")
                elif self.path == "/":
                    self._send(200, outer.page, "text/html")
                else:
                    self._send(404, b"")

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.reports.put(json.loads(body))
                self._send(204, b"")

            def _send(self, status: int, body: bytes, kind: str = "text/plain") -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def next(self, kind: str, within: float = 30.0) -> Any:
        while True:
            report = self.reports.get(timeout=within)
            assert report["kind"] != "exception", report
            if report["kind"] == kind:
                return report["data"]


@pytest.fixture
def page_server() -> Iterator[PageServer]:
    server = PageServer()
    yield server
    server.server.shutdown()
    server.server.server_close()


def test_a_browser_reads_the_feed_with_a_ticket_and_resumes_with_a_new_one(page_server: PageServer, tmp_path: Path) -> None:
    from impl_rest import create_app

    settings = make_settings(f"sqlite:///{tmp_path / 'browser.sqlite3'}", cors_origins=[page_server.origin])
    db = Database(settings)
    db.create_schema()
    db.dispose()
    api = UvicornThread(create_app(settings)).start()
    base = f"http://127.0.0.1:{api.port}"
    browser: subprocess.Popen[bytes] | None = None
    try:
        with httpx.Client(base_url=base, timeout=10) as http:
            assert http.post("/api/auth/register", json={"username": "browser", "display_name": "B", "password": PASSWORD}).status_code == 201
            token = http.post("/api/auth/token", json={"username": "browser", "password": PASSWORD}).json()["access_token"]
            auth = {"Authorization": f"Bearer {token}"}
            page_server.page = (PAGE % {"api": json.dumps(base), "token": json.dumps(token)}).encode()
            assert CHROMIUM is not None
            browser = subprocess.Popen(
                [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-extensions", f"--user-data-dir={tmp_path / 'profile'}", page_server.origin + "/"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            page_server.next("open", within=60)
            first = http.post("/api/decks", headers=auth, json={"title": "seen live"}).json()
            event = page_server.next("event")
            assert event["data"]["deck_id"] == first["id"]
            assert page_server.next("spent") == 401  # a ticket opens one stream only
            second = http.post("/api/decks", headers=auth, json={"title": "published while away"}).json()
            page_server.go.set()
            resumed = page_server.next("resumed")
            assert resumed["data"]["deck_id"] == second["id"] and int(resumed["id"]) > int(event["id"])
    finally:
        if browser is not None:
            browser.kill()
            browser.wait(10)
        api.stop()
