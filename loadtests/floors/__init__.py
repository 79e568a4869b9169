"""Floors: apps with no service layer, served by every server of their kind.

``raw-asgi`` / ``raw-wsgi`` measure the server alone (and the load generator's headroom);
``hello-*`` measure each framework's own hello world. All answer ``{"message": "hello"}`` on their
ready path (Strawberry inside its ``{"data": …}`` envelope); ``hello-strawberry`` is measured on
the GraphQL app's own config request instead (``as_app``, ``api="graphql"``: same method,
document, extensions and caches, orjson; loadtests/floors/hello_strawberry.py).

``db-*`` are database floors: a framework and its community's raw driver reading one card
(``db_fastapi``: asyncpg; ``db_flask``: psycopg 3; ``db_strawberry``: asyncpg under Strawberry,
answering the GraphQL app's card request), no ORM and no service layer. They answer the
``card`` scenario with the app's own request (path, bearer token, card ids) and body, from the
run's seeded database (``STACKBENCH_DSN``, as every stack gets it), so app ÷ floor is the cost
of everything our app adds to that read (loadtests/floor_ratios.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from loadtests.servers import AppTarget, Kind, all_servers
from loadtests.verification import BenchUser, signed_user
from provision.seed import SeedPlan


@dataclass(frozen=True)
class Floor:
    name: str
    app: AppTarget
    framework: str | None  # the distribution measured on top of the server, if any
    # Scenarios this floor answers with the app's own request instead of one GET of its ready
    # path (a database floor reads a card as the app does); empty: the `floors=True` scenarios.
    as_app: tuple[str, ...] = ()
    # Whose requests it is sent for `as_app` ("rest": the REST app's; "graphql": the GraphQL app's).
    api: str = "rest"
    database_read: bool = True  # it reads the run's database (needs STACKBENCH_DSN)

    @property
    def database(self) -> bool:
        return bool(self.as_app) and self.database_read

    @property
    def kind(self) -> Kind:
        return self.app.kind

    @property
    def path(self) -> str:
        return self.app.ready_path


FLOORS: dict[str, Floor] = {
    f.name: f
    for f in [
        Floor("raw-asgi", AppTarget("loadtests.floors.raw_asgi:app", "asgi"), None),
        Floor("raw-wsgi", AppTarget("loadtests.floors.raw_wsgi:app", "wsgi"), None),
        Floor("hello-fastapi", AppTarget("loadtests.floors.hello_fastapi:app", "asgi"), "fastapi"),
        Floor("hello-flask", AppTarget("loadtests.floors.hello_flask:app", "wsgi"), "flask"),
        Floor(
            "hello-strawberry",
            AppTarget(
                "loadtests.floors.hello_strawberry:app", "asgi", ready_path="/?query=%7Bmessage%7D"
            ),
            "strawberry-graphql",
            # the GraphQL app's own config request, through the app's caches (hello_strawberry.py)
            as_app=("config",), api="graphql", database_read=False,
        ),
        Floor("db-fastapi", AppTarget("loadtests.floors.db_fastapi:app", "asgi"), "fastapi", as_app=("card",)),
        Floor("db-flask", AppTarget("loadtests.floors.db_flask:app", "wsgi"), "flask", as_app=("card",)),
        Floor("db-strawberry", AppTarget("loadtests.floors.db_strawberry:app", "asgi", ready_path="/?query=%7Bmessage%7D"),
              "strawberry-graphql", as_app=("card",), api="graphql"),
    ]
}


def floor_stacks() -> list[tuple[str, Floor, str]]:
    """Every (stack id, floor, server) pair: each floor on each server of its kind.

    Stack ids read ``<floor>-<server>``, e.g. ``raw-asgi-granian-asgi``.
    """
    return [
        (f"{floor.name}-{server}", floor, server)
        for floor in FLOORS.values()
        for server in all_servers(floor.kind)
    ]


def bench_user(plan: SeedPlan, env: Mapping[str, str], user_number: int = 1) -> BenchUser:
    """The seeded user a database floor is loaded as. A floor has no login route, so the token is
    signed as the app signs one at login (`verification.signed_user`), and the floor verifies it
    per request as the app does."""
    return signed_user(plan, env, user_number)
