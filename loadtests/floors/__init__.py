"""Floors: apps with no service layer, served by every server of their kind.

``raw-asgi`` / ``raw-wsgi`` measure the server alone (and the load generator's headroom);
``hello-*`` measure each framework's own hello world. All answer ``{"message": "hello"}``
(Strawberry inside its ``{"data": …}`` envelope).
"""

from __future__ import annotations

from dataclasses import dataclass

from loadtests.servers import AppTarget, Kind, all_servers


@dataclass(frozen=True)
class Floor:
    name: str
    app: AppTarget
    framework: str | None  # the distribution measured on top of the server, if any

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
        ),
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
