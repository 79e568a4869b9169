"""stackbench's Flask/WSGI implementation of the REST contract (`contract/REST.md`).

`create_app(settings)` returns the Flask app; WSGI servers call `impl_flask_baseline:create_app()`
as a factory (gunicorn `'impl_flask_baseline:create_app()'`, waitress `--call`, granian
`--factory`). Thin adapter over the sync twin of the service layer (`flashcards._sync`): the
validation rules, SQL and SM-2 live in `flashcards`, the HTTP-edge rules shared with the FastAPI
app in `flashcards.web`.
"""

from impl_flask_baseline.app import create_app

__all__ = ["create_app"]
