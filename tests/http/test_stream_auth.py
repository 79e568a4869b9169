"""Who may hold the event feed, and for how long, in both REST apps (issue 20; issue 19, item 6).

* A stream ends when the bearer token that opened it expires: before, an open SSE stream (and the
  feed's WebSocket) kept delivering for as long as the client held it. Now the last frame is
  `event: expired` (data `{"reason":"token_expired"}`), then the stream ends.
* `EventSource` cannot send headers: `POST /api/events/ticket` hands out a single-use ticket,
  `GET /api/events?ticket=…` opens one stream with it (a second use, or a late one: 401).
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from flashcards import security
from flashcards._sync.service import Service as SyncService
from tests.http.support import PROBLEM, Api, SseReader, User

EXPIRED_FRAME = {"reason": "token_expired"}


def short_token(api: Api, user: User, seconds: int = 2) -> str:
    """A token of `user` that expires within `seconds` (its `exp` is whole seconds: 1 s less at worst)."""
    issued = datetime.now(UTC) - timedelta(seconds=api.settings.jwt_ttl_s - seconds)
    return security.issue_token(api.settings, user.id, issued)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def refused(api: Api, params: dict[str, str] | None = None, headers: dict[str, str] | None = None) -> dict[str, Any]:
    """Open the feed expecting a 401 problem (a stream that opens instead fails the test at once
    rather than hanging on it)."""
    with api.stream("GET", "/api/events", params=params, headers=headers) as r:
        assert r.status_code == 401, r.status_code
        assert r.headers["content-type"] == PROBLEM
        problem = json.loads(r.read())
    assert problem["code"] == "UNAUTHENTICATED"
    return problem  # type: ignore[no-any-return]


def _ends_with_expiry(reader: SseReader, exp: float) -> float:
    """Skip to the stream's last frame: `expired`, then the end. Returns when it came."""
    frame = reader.event(within=exp - time.time() + 5)
    assert frame.event == "expired", (frame.event, frame.data)
    assert frame.json() == EXPIRED_FRAME and frame.id is None
    came = time.time()
    with pytest.raises(EOFError):
        reader.frame()
    return came


def test_a_stream_ends_when_its_token_expires(http_client: Api) -> None:
    api = http_client
    user = api.signup("expiry")
    token = short_token(api, user)
    exp = security.expires_at(token)
    with api.stream("GET", "/api/events", headers=bearer(token)) as r:
        reader = SseReader(r)
        assert reader.frame().comment == "connected"
        deck = api.create_deck(user, "before expiry")  # the user's long-lived token
        before = reader.event()
        assert before.event == "deck.created" and before.json()["data"]["deck_id"] == deck["id"]
        came = _ends_with_expiry(reader, exp)
    assert exp - 0.05 <= came <= exp + 2.5, (came - exp)
    refused(api, headers=bearer(token))


def _ticket(api: Api, headers: dict[str, str]) -> dict[str, object]:
    r = api.post("/api/events/ticket", headers=headers)
    assert r.status_code == 201, r.text
    body = r.json()
    assert set(body) == {"ticket", "expires_in"} and isinstance(body["ticket"], str)
    return body  # type: ignore[no-any-return]


def test_a_ticket_opens_one_stream_for_its_user(http_client: Api) -> None:
    api = http_client
    user, other = api.signup("ticket"), api.signup("other")
    issued = _ticket(api, user.auth)
    assert issued["expires_in"] == int(api.settings.stream_ticket_ttl_s)
    ticket = str(issued["ticket"])
    assert user.token not in ticket
    with api.stream("GET", "/api/events", params={"ticket": ticket}) as r:  # no Authorization
        reader = SseReader(r)
        assert reader.frame().comment == "connected"
        api.create_deck(other, "not for this stream")
        deck = api.create_deck(user, "for this stream")
        event = reader.event()
        assert event.event == "deck.created" and event.json()["data"]["deck_id"] == deck["id"]
    assert "ticket" in refused(api, params={"ticket": ticket})["detail"]  # used once already
    for bad in ("", "x" * 43, "not-a-ticket"):
        refused(api, params={"ticket": bad}, headers=user.auth)  # a ticket wins over a token


def test_a_ticket_needs_a_valid_token(http_client: Api) -> None:
    api = http_client
    for headers in ({}, {"Authorization": "Bearer nope"}):
        r = api.post("/api/events/ticket", headers=headers)
        assert r.status_code == 401 and r.headers["content-type"] == PROBLEM, r.text
        assert r.headers["www-authenticate"].startswith("Bearer")


def test_a_ticket_is_single_use_across_workers(http_client: Api) -> None:
    """Another worker process (here: a second service on the same database) spends a ticket,
    and this app refuses it afterwards; the first redemption anywhere wins."""
    api = http_client
    user = api.signup("workers")
    ticket = str(_ticket(api, user.auth)["ticket"])
    other_worker = SyncService(api.settings)
    try:
        grant = other_worker.redeem_ticket(ticket)
        assert grant.user_id == user.id
        with pytest.raises(Exception, match="ticket"):
            other_worker.redeem_ticket(ticket)
    finally:
        other_worker.close()
    refused(api, params={"ticket": ticket})


def test_a_ticket_stream_ends_with_its_token_and_a_late_ticket_is_refused(http_client: Api) -> None:
    """The ticket carries the deadline of the token that asked for it: its stream ends then too,
    and a ticket never outlives that token."""
    api = http_client
    user = api.signup("late")
    token = short_token(api, user)
    exp = security.expires_at(token)
    used, unused = (_ticket(api, bearer(token)) for _ in range(2))
    assert 1 <= int(str(used["expires_in"])) <= 2
    with api.stream("GET", "/api/events", params={"ticket": str(used["ticket"])}) as r:
        reader = SseReader(r)
        assert reader.frame().comment == "connected"
        came = _ends_with_expiry(reader, exp)
    assert exp - 0.05 <= came <= exp + 2.5
    refused(api, params={"ticket": str(unused["ticket"])})


def test_the_feed_websocket_closes_when_its_token_expires(live_client: Api) -> None:
    """The feed's WebSocket (`/api/events/ws`, both apps behind a real server): the events before
    `exp`, then close code 4401 with the reason `token_expired` (and the TCP close right after:
    the client's `recv` raises only then)."""
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    api = live_client
    user = api.signup("wsexpiry")
    token = short_token(api, user)
    exp = security.expires_at(token)
    url = str(api.http.base_url).replace("http://", "ws://") + "/api/events/ws"
    with connect(url, additional_headers=bearer(token), open_timeout=10) as ws:
        time.sleep(0.2)  # subscribed (the handler subscribes after the accept)
        deck = api.create_deck(user, "before expiry")
        received = [json.loads(ws.recv(timeout=10))]
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=exp - time.time() + 5)
    came = time.time()
    assert [(m["type"], m["data"]["deck_id"]) for m in received] == [("deck.created", deck["id"])]
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4401, "token_expired")
    assert exp - 0.05 <= came <= exp + 2.5, came - exp
