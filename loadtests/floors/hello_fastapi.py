"""The FastAPI floor: the framework's own hello world (default JSONResponse)."""

from __future__ import annotations

from fastapi import FastAPI

from flashcards.runtime import apply_gc_policy

app = FastAPI()


@app.get("/")
async def hello() -> dict[str, str]:
    return {"message": "hello"}


apply_gc_policy()  # the same GC policy as the apps (flashcards.runtime)
