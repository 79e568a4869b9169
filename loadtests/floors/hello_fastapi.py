"""The FastAPI floor: the framework's own hello world (default JSONResponse)."""

from __future__ import annotations

from fastapi import FastAPI

app = FastAPI()


@app.get("/")
async def hello() -> dict[str, str]:
    return {"message": "hello"}
