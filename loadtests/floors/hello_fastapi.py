"""The FastAPI floor: the framework's own hello world (default JSONResponse), its route on an
`APIRouter` included in the app, as FastAPI's "Bigger Applications" guide builds any app with
more than one module (ours has six routers).

Why not `@app.get`: since FastAPI 0.137 `include_router` keeps a lazy `_IncludedRouter` node that
every request walks (about 12 µs per request here, in-process, against a flat route), so a flat
hello world measures a routing cost no real app has, and every app/floor ratio would charge
FastAPI's own router to our app (the-benchmarker/web-frameworks#9580 matched its baseline the
same way). Flask's blueprints are flattened at registration: its floor needs no counterpart.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from flashcards.runtime import apply_gc_policy

router = APIRouter()


@router.get("/")
async def hello() -> dict[str, str]:
    return {"message": "hello"}


app = FastAPI()
app.include_router(router)
apply_gc_policy()  # the same GC policy as the apps (flashcards.runtime)
