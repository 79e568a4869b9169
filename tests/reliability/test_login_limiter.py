"""Login limiter (issue 19, finding 2): atomic under concurrency, throttles guesses without locking
the owner out, and the servers do not trust a spoofable `X-Forwarded-For`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from flashcards._async.service import Service
from flashcards.errors import RateLimited, Unauthenticated
from loadtests.servers import ServerSpec
from tests.support import make_settings

LIMIT = 5


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[Service]:
    settings = make_settings(f"sqlite:///{tmp_path / 'limiter.sqlite3'}", login_rate_per_minute=LIMIT,
                             login_client_rate_per_minute=4 * LIMIT)
    svc = Service(settings)
    await svc.db.create_schema()
    await svc.register({"username": "owner", "display_name": "O", "password": "correct horse"})
    yield svc
    await svc.close()


async def _attempt(service: Service, password: str, client: str) -> str:
    try:
        await service.login({"username": "owner", "password": password}, client=client)
    except RateLimited:
        return "limited"
    except Unauthenticated:
        return "wrong"
    return "ok"


async def test_concurrent_guesses_never_pass_the_limit(service: Service) -> None:
    outcomes = await asyncio.gather(*(_attempt(service, "guess", "10.0.0.66") for _ in range(50)))
    assert outcomes.count("wrong") == LIMIT, outcomes  # every attempt in flight counts at once
    assert outcomes.count("limited") == 50 - LIMIT


async def test_guessing_does_not_lock_the_owner_out(service: Service) -> None:
    for _ in range(3 * LIMIT):
        await _attempt(service, "guess", "10.0.0.66")
    assert await _attempt(service, "guess", "10.0.0.66") == "limited"
    # the owner, from their own address, still signs in while the attacker is throttled
    assert await _attempt(service, "correct horse", "10.0.0.7") == "ok"


async def test_guesses_from_many_addresses_are_throttled_per_username(service: Service) -> None:
    # each address fails once, then again: past the username-wide limit the repeat offenders
    # get 429, while an address that never failed (the owner's) is let through
    for i in range(2 * LIMIT):
        await _attempt(service, "guess", f"10.1.0.{i}")
    repeats = [await _attempt(service, "guess", f"10.1.0.{i}") for i in range(2 * LIMIT)]
    assert set(repeats) == {"limited"}
    assert await _attempt(service, "correct horse", "10.0.0.7") == "ok"


async def test_a_success_releases_its_reservation(service: Service) -> None:
    for _ in range(3 * LIMIT):
        assert await _attempt(service, "correct horse", "10.0.0.7") == "ok"
    for _ in range(LIMIT):
        assert await _attempt(service, "guess", "10.0.0.7") == "wrong"


@pytest.mark.parametrize("server", ["uvicorn", "uvicorn-h11", "gunicorn-uvicorn"])
def test_servers_do_not_trust_forwarded_for(server: str) -> None:
    """uvicorn trusts X-Forwarded-For from 127.0.0.1 by default: on loopback every client could
    pick its own address for the per-client limit. The harness turns proxy headers off."""
    from loadtests.stacks import APPS

    spec = ServerSpec(server=server, app=APPS["rest"], port=1)
    cmd, settings = spec.command(), spec.settings()
    if server.startswith("gunicorn"):
        assert cmd[cmd.index("--forwarded-allow-ips") + 1] == ""
    else:
        assert "--no-proxy-headers" in cmd
    assert settings["trusts_forwarded_for"] is False
