"""Held event streams of the FastAPI app: a client that goes away frees its subscription and
its tasks (the fan-out benchmark holds thousands; a leak would grow without bound)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from flashcards import security
from flashcards._sync.database import Database
from flashcards.settings import Settings
from impl_rest import create_app
from tests.graphql.support import ServerThread
from tests.support import make_settings

STREAMS = 50


def _schema_and_user(settings: Settings) -> None:
    """The schema and user 1, whose token the streams use (a token's user must exist)."""
    from flashcards._sync.service import Service

    db = Database(settings)
    db.create_schema()
    db.dispose()
    service = Service(settings)
    try:
        assert service.register({"username": "streamer", "display_name": "S", "password": "password1"}).id == 1
    finally:
        service.close()


async def _open_stream(port: int, token: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        f"GET /api/events HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {token}\r\n"
        "Accept: text/event-stream\r\n\r\n".encode()
    )
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    assert b": connected\n\n" in await reader.readuntil(b": connected\n\n")
    return reader, writer


async def test_dropped_sse_clients_free_subscription_and_tasks(tmp_path: Path) -> None:
    settings = make_settings(f"sqlite:///{tmp_path / 'streams.sqlite3'}", max_streams_per_user=STREAMS)
    _schema_and_user(settings)
    app = create_app(settings)
    server = ServerThread(app).start()  # type: ignore[arg-type]
    try:
        token = security.issue_token(settings, 1)
        baseline = await server.task_count()
        streams = [await _open_stream(server.port, token) for _ in range(STREAMS)]
        bus = app.state.service.bus
        assert bus.subscriber_count == STREAMS
        # an event reaches every held stream
        bus.publish(1, "deck.created", {"deck_id": 1})
        for reader, _ in streams:
            frame = await asyncio.wait_for(reader.readuntil(b"\n\n"), 5)
            assert b"event: deck.created" in frame
        for _, writer in streams:
            writer.close()
        for _ in range(100):
            if bus.subscriber_count == 0 and await server.task_count() <= baseline:
                break
            await asyncio.sleep(0.05)
        assert bus.subscriber_count == 0
        assert await server.task_count() <= baseline
    finally:
        server.stop()


@pytest.mark.parametrize("header", [True, False])
async def test_resume_with_last_event_id_replays_missed_events(tmp_path: Path, header: bool) -> None:
    settings = make_settings(f"sqlite:///{tmp_path / 'resume.sqlite3'}")
    _schema_and_user(settings)
    app = create_app(settings)
    server = ServerThread(app).start()  # type: ignore[arg-type]
    try:
        bus = (await server.call(_service_of(app))).bus
        first = bus.publish(1, "deck.created", {"deck_id": 1})
        second = bus.publish(1, "deck.created", {"deck_id": 2})
        bus.publish(2, "deck.created", {"deck_id": 3})  # another user's: never replayed
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        token = security.issue_token(settings, 1)
        resume = f"Last-Event-ID: {first.id}\r\n" if header else ""
        path = "/api/events" if header else f"/api/events?last_event_id={first.id}"
        writer.write(f"GET {path} HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {token}\r\n{resume}\r\n".encode())
        await reader.readuntil(b": connected\n\n")
        frame = await asyncio.wait_for(reader.readuntil(b"\n\n"), 5)
        assert f"id: {second.id}\n".encode() in frame, frame  # chunked: the size line comes first
        writer.close()
        for _ in range(50):
            if bus.subscriber_count == 0:
                break
            await asyncio.sleep(0.05)
        assert bus.subscriber_count == 0  # the client left: its subscription is gone
    finally:
        server.stop()


def _service_of(app):  # type: ignore[no-untyped-def]
    async def get():  # type: ignore[no-untyped-def]
        return app.state.service

    return get
