"""The todo service as an ASGI app (Starlette): `todo_app.asgi:app`."""

from __future__ import annotations

import json

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from todo_app.store import Store, parse_limit, parse_new

store = Store()


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def list_todos(request: Request) -> JSONResponse:
    limit = parse_limit(request.query_params.get("limit"))
    if isinstance(limit, str):
        return JSONResponse({"error": limit}, status_code=400)
    return JSONResponse(store.page(limit))


async def get_todo(request: Request) -> JSONResponse:
    item = store.get(request.path_params["item_id"])
    if item is None:
        return JSONResponse({"error": "no such todo"}, status_code=404)
    return JSONResponse(item)


async def create_todo(request: Request) -> JSONResponse:
    try:
        data = json.loads(await request.body())
    except ValueError:
        return JSONResponse({"error": "body is not JSON"}, status_code=400)
    parsed = parse_new(data)
    if isinstance(parsed, str):
        return JSONResponse({"error": parsed}, status_code=422)
    return JSONResponse(store.add(*parsed), status_code=201)


app = Starlette(routes=[
    Route("/health", health),
    Route("/todos", list_todos, methods=["GET"]),
    Route("/todos", create_todo, methods=["POST"]),
    Route("/todos/{item_id:int}", get_todo),
])
