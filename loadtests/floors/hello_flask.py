"""The Flask floor: the framework's own hello world (dict → jsonify)."""

from __future__ import annotations

from flask import Flask

app = Flask(__name__)


@app.get("/")
def hello() -> dict[str, str]:
    return {"message": "hello"}
