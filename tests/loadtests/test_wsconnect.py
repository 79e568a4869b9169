"""The WebSocket connection-rate driver against the servers the bench runs (Flask on gunicorn
gevent, FastAPI and Strawberry on uvicorn; SQLite): sessions are counted for a good token, and a
bad token's sessions are failures with the server's reason, never sessions."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from flashcards._sync.database import Database
from loadtests import wsconnect
from loadtests.launcher import RunningServer
from loadtests.servers import ServerSpec
from loadtests.stacks import APPS
from tests.support import FAST_HASH, make_settings

SERVERS = {"flask": "gunicorn-gevent", "rest": "uvicorn", "graphql": "uvicorn"}


@pytest.fixture(scope="module", params=list(SERVERS))
def live(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, str]]:
    """(api, base URL, a user's token) of a live app on one worker and its own SQLite database."""
    impl = request.param
    dsn = f"sqlite:///{Path(tmp_path_factory.mktemp('wsconnect')) / 'ws.sqlite3'}"
    db = Database(make_settings(dsn))
    db.create_schema()
    db.dispose()
    # the bench's own settings (runner.py): one user holds every stream it opens
    values = {"dsn": dsn, "environment": "test", **FAST_HASH, "max_streams_per_user": 1_000_000}
    env = {f"STACKBENCH_{k.upper()}": str(v) for k, v in values.items()}
    with RunningServer(ServerSpec(server=SERVERS[impl], app=APPS[impl], port=0, workers=1, env=env)) as running:
        creds = {"username": "wsconnect", "password": "correct horse battery"}
        with httpx.Client(base_url=running.url, timeout=10) as client:
            if impl == "graphql":
                token = _gql_token(client, creds)
            else:
                assert client.post("/api/auth/register", json={**creds, "display_name": "Ws"}).status_code == 201
                token = client.post("/api/auth/token", json=creds).json()["access_token"]
        yield ("graphql" if impl == "graphql" else "rest"), running.url, token


def _gql_token(client: httpx.Client, creds: dict[str, str]) -> str:
    register = ("mutation R($u: String!, $p: String!) { register(input: {username: $u, display_name: \"Ws\", "
                "password: $p}) { id } }")
    login = "mutation L($u: String!, $p: String!) { login(input: {username: $u, password: $p}) { access_token } }"
    variables = {"u": creds["username"], "p": creds["password"]}
    r = client.post("/graphql", json={"query": register, "variables": variables})
    assert not r.json().get("errors"), r.text
    r = client.post("/graphql", json={"query": login, "variables": variables})
    assert not r.json().get("errors"), r.text
    return str(r.json()["data"]["login"]["access_token"])


def test_sessions_are_counted_for_a_good_token(live: tuple[str, str, str]) -> None:
    api, url, token = live
    out = asyncio.run(wsconnect.run_connects(url, token, api, clients=4, warmup_s=0.2, duration_s=1.0))
    assert out["sessions"] > 0, out
    assert out["failures"] == 0, out["failure_reasons"]
    assert out["connect_ms"]["p50"] > 0
    assert 0 < out["client_cpu_pct_window"] <= 150


def test_a_bad_token_yields_failures_with_the_reason_not_sessions(live: tuple[str, str, str]) -> None:
    api, url, _ = live
    out = asyncio.run(wsconnect.run_connects(url, "not-a-token", api, clients=2, warmup_s=0.1, duration_s=0.5))
    assert out["sessions"] == 0, out
    assert out["failures"] > 0
    # the plain feed closes 1008 (policy violation); Strawberry 4403 (Forbidden) on connection_init
    code = "close-4403" if api == "graphql" else "close-1008"
    assert all(reason.startswith(code) for reason in out["failure_reasons"]), out["failure_reasons"]


def test_client_frames_are_masked_and_close_codes_read() -> None:
    frame = wsconnect._close_frame(1000)
    assert frame[0] == 0x88 and frame[1] == 0x82  # FIN + close; masked, two bytes
    mask, body = frame[2:6], frame[6:]
    assert bytes(b ^ mask[i] for i, b in enumerate(body)) == (1000).to_bytes(2, "big")
    assert wsconnect._close_reason((1008).to_bytes(2, "big") + b"Invalid token") == "close-1008 Invalid token"


def test_the_plan_runs_ws_connect_at_one_level_for_every_ws_stack() -> None:
    """The same client count on every stack (like for like), repeated like a closed verdict cell,
    cheap in quick (≤ 30 s a stack), 5 long repetitions where the claim reads it in standard."""
    from loadtests.plan import make_plan
    from loadtests.profiles import PROFILES

    quick = make_plan(PROFILES["quick"], stack_ids=None, impls=None, servers=None, only=None,
                      server_cpus=(0,), client_cpus=(1,))
    ws = [s for s in quick.stacks if "ws-connect" in quick.scenarios[s.id]]
    assert {"flask-gunicorn-gevent", "rest-uvicorn"} <= {s.id for s in ws}
    assert all(quick.concurrency("ws-connect", s) == (PROFILES["quick"].ws_connect_clients,) for s in ws)
    assert "flask-waitress" not in {s.id for s in ws}  # no socket to upgrade
    alone = make_plan(PROFILES["quick"], stack_ids=["rest-uvicorn"], impls=None, servers=None,
                      only=["ws-connect"], server_cpus=(0,), client_cpus=(1,)).estimate_s(subset=True)
    assert alone["closed"] + alone["server_starts"] <= 30, alone
    standard = make_plan(PROFILES["standard"], stack_ids=None, impls=None, servers=None, only=None,
                         server_cpus=(0,), client_cpus=(1,))
    claimed = {s.id: s for s in standard.stacks if "ws-connect" in standard.scenarios[s.id]}
    assert set(claimed) == {"flask-gunicorn-gevent", "rest-uvicorn"}  # unclaimed ws stacks are trimmed
    assert all(standard.repetitions(s, "ws-connect", 32) == 5 for s in claimed.values())
    assert all(standard.duration_s(s, "ws-connect", 32) == 5.0 for s in claimed.values())
