"""Fixtures of the GraphQL tests: each test runs on PostgreSQL and on SQLite.

The schema is created once per backend; `Database.reset()` empties the tables before each test.
`server` is a real uvicorn (thread, free port) whose app owns its own Service on its own loop.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from flashcards._async.service import Service
from flashcards.settings import Settings
from impl_graphql import create_app
from impl_graphql.app import GraphQLApp
from tests.graphql.support import InProcessDriver, ServerDriver, ServerThread, running_upstream
from tests.support import make_settings, postgres_dsn, sqlite_dsn

BACKENDS = ["postgresql", "sqlite"]


@pytest.fixture(scope="session")
def upstream_url() -> Iterator[str]:
    with running_upstream() as url:
        yield url


@pytest.fixture(scope="session", params=BACKENDS)
def graphql_dsn(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    if request.param == "postgresql":
        return postgres_dsn("stackbench_test_graphql")
    return sqlite_dsn(tmp_path_factory.mktemp("graphql"), "graphql.sqlite3")


@pytest.fixture(scope="session")
def settings(graphql_dsn: str, upstream_url: str) -> Settings:
    # these tests hold many subscriptions of one user; the per-user cap has its own test
    # (tests/reliability/test_stream_caps.py)
    return make_settings(graphql_dsn, upstream_url=upstream_url, max_streams_per_user=1000)


@pytest.fixture(scope="session")
async def service(settings: Settings) -> AsyncIterator[Service]:
    svc = Service(settings)
    await svc.db.drop_schema()
    await svc.db.create_schema()
    yield svc
    await svc.close()


@pytest.fixture(autouse=True)
async def _clean_database(request: pytest.FixtureRequest) -> None:
    if "graphql_dsn" in request.fixturenames:
        svc: Service = request.getfixturevalue("service")
        await svc.db.reset()


@pytest.fixture
def app(settings: Settings, service: Service) -> GraphQLApp:
    return create_app(settings, service=service)


@pytest.fixture
async def client(app: GraphQLApp) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


@pytest.fixture
def in_process(app: GraphQLApp, client: httpx.AsyncClient) -> InProcessDriver:
    return InProcessDriver(app, client)


@pytest.fixture(scope="session")
def server(settings: Settings, service: Service) -> Iterator[ServerThread]:
    # `service` first: the schema exists before the server's own Service starts.
    thread = ServerThread(create_app(settings)).start()
    yield thread
    thread.stop()


@pytest.fixture
async def over_server(server: ServerThread) -> AsyncIterator[ServerDriver]:
    base = server.http_url.removesuffix("/graphql")
    async with httpx.AsyncClient(base_url=base, timeout=20) as c:
        yield ServerDriver(server, c)


async def register(driver: Any, username: str = "alice", password: str = "correct horse") -> str:
    """Register + login; returns the bearer token."""
    await driver.execute(
        "mutation($i: RegisterInput!) { register(input: $i) { id } }",
        {"i": {"username": username, "display_name": username.title(), "password": password}},
    )
    data = await driver.execute(
        "mutation($i: LoginInput!) { login(input: $i) { access_token } }",
        {"i": {"username": username, "password": password}},
    )
    return data["login"]["access_token"]  # type: ignore[no-any-return]
