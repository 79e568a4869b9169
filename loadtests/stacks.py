"""The stack registry: (implementation, server, workers, options) — apps and floors.

A stack id names what a report row measures (`rest-uvicorn`, `flask-gunicorn-gevent`,
`raw-asgi-granian-asgi`, `hello-fastapi`). Worker counts are None here: `servers.py` fills in
each server's community recommendation for the CPUs the server is pinned to, and prints it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from loadtests import scenarios
from loadtests.floors import FLOORS as FLOOR_DEFS
from loadtests.servers import AppTarget, ServerSpec, all_servers

Api = Literal["rest", "graphql", "floor"]

HEALTH = "/api/health/live"
APPS: dict[str, AppTarget] = {
    "flask": AppTarget("impl_flask_baseline:create_app", "wsgi", factory=True, ready_path=HEALTH),
    "rest": AppTarget("impl_rest:create_app", "asgi", factory=True, ready_path=HEALTH),
    "graphql": AppTarget("impl_graphql:create_app", "asgi", factory=True, ready_path=HEALTH),
}
# A floor answers GET on its ready path (`/`, Strawberry's `/?query={message}`).
FLOORS: dict[str, AppTarget] = {name: floor.app for name, floor in FLOOR_DEFS.items()}
# Which server a framework floor runs on: the one its app stack is most often run on.
HELLO_SERVER = {"hello-fastapi": "uvicorn", "hello-flask": "gunicorn-gthread", "hello-strawberry": "uvicorn",
                "db-fastapi": "uvicorn", "db-flask": "gunicorn-gthread", "db-strawberry": "uvicorn"}


@dataclass(frozen=True)
class Stack:
    id: str
    impl: str  # flask | rest | graphql | raw-asgi | raw-wsgi | hello-* | db-*
    server: str
    api: Api
    kind: Literal["app", "floor"]
    workers: int | None = None
    threads: int | None = None
    options: dict[str, Any] = field(default_factory=dict)
    # Capabilities a scenario may need (`Scenario.needs`) that this stack lacks, with the reason.
    lacks: dict[str, str] = field(default_factory=dict)

    @property
    def target(self) -> AppTarget:
        return APPS[self.impl] if self.kind == "app" else FLOORS[self.impl]

    def spec(self, port: int, cpus: tuple[int, ...] | None, env: dict[str, str],
             workers: int | None = None) -> ServerSpec:
        """The server to launch; `workers` overrides the stack's (fan-out runs on one worker)."""
        return ServerSpec(
            server=self.server, app=self.target, port=port, workers=workers or self.workers,
            threads=self.threads, cpus=cpus, env=env, options=self.options,
        )

    def supports(self, scenario: str) -> bool:
        wanted = scenarios.get(scenario)
        if self.kind == "floor":
            floor = FLOOR_DEFS.get(self.impl)
            return scenario in floor.as_app if floor and floor.as_app else wanted.floors
        return wanted.needs not in self.lacks


_NO_WS = "the WSGI server gives the app no socket to upgrade (flask-sock needs gunicorn or werkzeug)"


def _registry() -> dict[str, Stack]:
    stacks = [
        Stack("flask-gunicorn-sync", "flask", "gunicorn-sync", "rest", "app",
              lacks={"held-streams": "each held stream occupies a sync worker", "websocket-feed": _NO_WS}),
        Stack("flask-gunicorn-gthread", "flask", "gunicorn-gthread", "rest", "app"),
        Stack("flask-gunicorn-gevent", "flask", "gunicorn-gevent", "rest", "app"),
        Stack("flask-waitress", "flask", "waitress", "rest", "app", lacks={"websocket-feed": _NO_WS}),
        Stack("flask-granian", "flask", "granian-wsgi", "rest", "app", lacks={"websocket-feed": _NO_WS}),
        Stack("rest-uvicorn", "rest", "uvicorn", "rest", "app"),
        Stack("rest-uvicorn-h11", "rest", "uvicorn-h11", "rest", "app"),
        Stack("rest-granian", "rest", "granian-asgi", "rest", "app"),
        Stack("rest-gunicorn-uvicorn", "rest", "gunicorn-uvicorn", "rest", "app"),
        Stack("graphql-uvicorn", "graphql", "uvicorn", "graphql", "app", lacks={"websocket-feed": "GraphQL uses subscriptions (see sse-fanout)"}),
        Stack("graphql-granian", "graphql", "granian-asgi", "graphql", "app", lacks={"websocket-feed": "GraphQL uses subscriptions (see sse-fanout)"}),
    ]
    for server in all_servers("asgi"):
        stacks.append(Stack(f"raw-asgi-{server}", "raw-asgi", server, "floor", "floor"))
    for server in all_servers("wsgi"):
        stacks.append(Stack(f"raw-wsgi-{server}", "raw-wsgi", server, "floor", "floor"))
    for hello, server in HELLO_SERVER.items():
        # a floor with `as_app` is sent that app's requests (a database floor the REST app's,
        # the Strawberry floor the GraphQL app's config request: loadtests.floors)
        floor = FLOOR_DEFS[hello]
        api: Api = ("graphql" if floor.api == "graphql" else "rest") if floor.as_app else "floor"
        stacks.append(Stack(hello, hello, server, api, "floor"))
    return {s.id: s for s in stacks}


STACKS = _registry()
# The driver's ceiling is measured against this floor in every run (the fastest one here).
CEILING_FLOOR = "raw-asgi-granian-asgi"


def select(
    ids: list[str] | None = None, impls: list[str] | None = None, servers: list[str] | None = None
) -> list[Stack]:
    chosen = []
    for stack in STACKS.values():
        if ids and stack.id not in ids:
            continue
        if impls and stack.impl not in impls and not (stack.kind == "floor" and "floors" in impls):
            continue
        if servers and stack.server not in servers:
            continue
        chosen.append(stack)
    unknown = set(ids or ()) - set(STACKS)
    if unknown:
        raise KeyError(f"unknown stacks: {sorted(unknown)}; known: {', '.join(STACKS)}")
    return chosen
