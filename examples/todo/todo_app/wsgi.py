"""The todo service as a WSGI app (Flask), behind a factory: `todo_app.wsgi:create_app`."""

from __future__ import annotations

from typing import Any

from flask import Flask, jsonify, request

from todo_app.store import Store, parse_limit, parse_new


def create_app() -> Flask:
    app = Flask(__name__)
    store = Store()

    @app.get("/health")
    def health() -> Any:
        return jsonify(status="ok")

    @app.get("/todos")
    def list_todos() -> Any:
        limit = parse_limit(request.args.get("limit"))
        if isinstance(limit, str):
            return jsonify(error=limit), 400
        return jsonify(store.page(limit))

    @app.get("/todos/<int:item_id>")
    def get_todo(item_id: int) -> Any:
        item = store.get(item_id)
        return (jsonify(item), 200) if item else (jsonify(error="no such todo"), 404)

    @app.post("/todos")
    def create_todo() -> Any:
        data = request.get_json(silent=True)
        if data is None:
            return jsonify(error="body is not JSON"), 400
        parsed = parse_new(data)
        if isinstance(parsed, str):
            return jsonify(error=parsed), 422
        return jsonify(store.add(*parsed)), 201

    return app
