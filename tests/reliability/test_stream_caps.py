"""Per-user stream caps (issue 19, finding 3): beyond the cap a user's next event stream or chat
is refused with 429 + a problem document, in the service (so in all three apps); other users
are not affected; a stream that ends gives its slot back."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from flashcards._async.service import Service
from flashcards.errors import RateLimited
from tests.support import make_settings

CAP = 3


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[Service]:
    settings = make_settings(f"sqlite:///{tmp_path / 'caps.sqlite3'}", max_streams_per_user=CAP,
                             max_chats_per_user=CAP, upstream_url="http://127.0.0.1:9/v1")
    svc = Service(settings)
    await svc.db.create_schema()
    for name in ("alice", "bobby"):
        await svc.register({"username": name, "display_name": name, "password": "correct horse"})
    yield svc
    await svc.close()


async def test_event_streams_beyond_the_cap_get_429(service: Service) -> None:
    subs = [service.subscribe(1) for _ in range(CAP)]
    with pytest.raises(RateLimited) as info:
        service.subscribe(1)
    assert info.value.status == 429 and info.value.code == "TOO_MANY_STREAMS"
    assert info.value.problem()["status"] == 429 and info.value.retry_after >= 1
    assert service.subscribe(2) is not None  # another user is not affected
    service.bus.unsubscribe(subs[0])
    assert service.subscribe(1) is not None  # a slot given back is usable again


async def test_chats_beyond_the_cap_get_429_before_anything_is_stored(service: Service) -> None:
    chats = [service.chat(1, {"message": f"q{i}"}) for i in range(CAP)]
    for chat in chats:
        assert (await anext(chat)).type == "message"  # each holds a slot while it streams
    extra = service.chat(1, {"message": "one more"})
    with pytest.raises(RateLimited) as info:
        await anext(extra)
    assert info.value.code == "TOO_MANY_STREAMS"
    assert len((await service.chat_history(1)).items) == 2 * CAP  # the refused one stored nothing
    other = service.chat(2, {"message": "hi"})
    assert (await anext(other)).type == "message"
    await other.aclose()
    await chats[0].aclose()  # the client left: the slot comes back
    again = service.chat(1, {"message": "again"})
    assert (await anext(again)).type == "message"
    for chat in (*chats[1:], again):
        await chat.aclose()
