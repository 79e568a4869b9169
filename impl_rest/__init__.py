"""stackbench's FastAPI implementation of the REST contract (`contract/REST.md`).

`create_app(settings)` returns the ASGI app; servers call `impl_rest:create_app` as a factory.
Thin adapter: validation rules, SQL and SM-2 live in `flashcards`, HTTP-edge rules shared with the
Flask app in `flashcards.web`.
"""

from impl_rest.app import create_app

__all__ = ["create_app"]
