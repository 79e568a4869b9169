"""The Flask application factory (`impl_flask_baseline:create_app`)."""

from __future__ import annotations

import atexit

from flask import Flask, Response, request

from flashcards import web
from flashcards._sync.service import Service
from flashcards.runtime import apply_gc_policy
from flashcards.settings import Settings, get_settings
from impl_flask_baseline import auth, cards, chat, decks, events, health, problems
from impl_flask_baseline.cors import Cors
from impl_flask_baseline.edge import EXTENSION, State, check_declared_length


def create_app(settings: Settings | None = None, service: Service | None = None) -> Flask:
    """One app per worker process; `service` lets tests share theirs (it is not closed here)."""
    settings = settings or get_settings()
    app = Flask(__name__)
    app.config.update(
        # OPTIONS and HEAD are not served (the FastAPI app does not answer them either).
        PROVIDE_AUTOMATIC_OPTIONS=False,
        MAX_BODY_BYTES=settings.max_body_bytes,
        WEBSOCKET_PATHS=frozenset({events.WS_PATH}),
        SOCK_SERVER_OPTIONS={"ping_interval": 20, "max_message_size": settings.max_body_bytes},
    )
    app.url_map.merge_slashes = False  # `/api//decks` is no route (Starlette), not a redirect
    if service is None:
        service = Service(settings)
        atexit.register(service.close)
    app.extensions[EXTENSION] = State(settings, service, service.config.model_dump_json().encode())
    for blueprint in (health.bp, health.docs, auth.bp, decks.bp, cards.bp, chat.bp, events.bp):
        app.register_blueprint(blueprint)
    problems.install(app)

    cors = Cors(settings.cors_origins) if settings.cors_origins else None

    @app.before_request
    def edge() -> Response | None:
        check_declared_length()  # 413 first, for every request (routed or not)
        if cors is not None and cors.is_preflight(request.method, request.headers):
            return cors.preflight(request.headers)
        if request.method == "HEAD" and request.url_rule is not None:
            # Werkzeug serves HEAD wherever GET is; the contract does not.
            raise web.method_not_allowed("HEAD", problems.allowed_methods_here())
        return None

    security = list(web.SECURITY_HEADERS.items())

    @app.after_request
    def headers(response: Response) -> Response:
        for name, value in security:
            response.headers[name] = value
        if cors is not None:
            cors.decorate(request.headers.get("Origin"), response.headers)
        return response

    apply_gc_policy()  # flashcards.runtime: the same GC policy for every stack
    return app
