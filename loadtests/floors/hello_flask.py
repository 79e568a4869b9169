"""The Flask floor: the framework's own hello world (dict → jsonify)."""

from __future__ import annotations

from flask import Flask

from flashcards.runtime import apply_gc_policy

app = Flask(__name__)


@app.get("/")
def hello() -> dict[str, str]:
    return {"message": "hello"}


apply_gc_policy()  # the same GC policy as the apps (flashcards.runtime)
