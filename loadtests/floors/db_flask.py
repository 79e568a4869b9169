"""The Flask database floor: one card read the way a Flask + psycopg 3 app writes it.

No ORM, no service layer, no stackbench app code: psycopg 3 (the driver the Flask app uses
under SQLAlchemy), one connection per server thread (``threading.local``: psycopg_pool is not
installed here, and a gthread worker's threads live as long as the worker, so each thread keeps
its connection, as a pool would), autocommit (one statement, no transaction to open or roll
back), one `SELECT` by primary key and owner, and the route returns a dict (Flask's `jsonify`).
The body is the rest app's `CardOut`, field for field (tests/loadtests/test_db_floors.py
compares them); timestamps are formatted as ISO 8601 with `Z` by hand, since Flask's JSON
provider would write HTTP dates.

What it does per request, so that the app-to-floor ratio is honest:

* authentication: the same PyJWT verification as the app (HS256, issuer ``stackbench``,
  ``exp``/``iat``/``sub``/``iss`` required, the secret from ``STACKBENCH_JWT_SECRET``). Not
  done: the app's "the user still exists" lookup (once per user every few seconds), its request
  checks at the edge and its RFC 9457 problem details beyond status and title.
* the query: the app's own (`cards.id = %s AND cards.owner_id = %s`); psycopg prepares it on
  the server after its fifth execution on a connection (its `prepare_threshold`).

``GET /`` answers ``{"message": "hello"}``: the servers' readiness probe.
"""

from __future__ import annotations

import os
import re
import threading
from datetime import datetime
from typing import Any

import psycopg
from flask import Flask, Response, jsonify, request
from psycopg.rows import dict_row

from flashcards.runtime import apply_gc_policy
from loadtests.floors.bearer import user_id
from loadtests.floors.card import card_body, card_sql

# The DSN the runner gives every stack; psycopg wants a plain libpq URL (no `+driver`).
DSN = re.sub(r"^postgresql\+\w+://", "postgresql://", os.environ.get("STACKBENCH_DSN", ""))
CARD_SQL = card_sql("%s", "%s")

app = Flask(__name__)
_local = threading.local()


def connection() -> psycopg.Connection[dict[str, Any]]:
    conn: psycopg.Connection[dict[str, Any]] | None = getattr(_local, "conn", None)
    if conn is None or conn.closed or conn.broken:
        if not DSN.startswith("postgresql://"):
            raise RuntimeError(f"the database floor needs PostgreSQL in STACKBENCH_DSN, got {DSN[:40]!r}")
        conn = psycopg.connect(DSN, autocommit=True, row_factory=dict_row)
        _local.conn = conn
    return conn


def problem(status: int, title: str) -> Response:
    response = jsonify({"type": "about:blank", "title": title, "status": status})
    response.status_code = status
    response.mimetype = "application/problem+json"
    return response


@app.get("/")
def hello() -> dict[str, str]:
    return {"message": "hello"}


@app.get("/api/cards/<int:card_id>")
def get_card(card_id: int) -> Any:
    owner = user_id(request.headers.get("Authorization"))
    if owner is None:
        return problem(401, "Unauthorized")
    row = connection().execute(CARD_SQL, (card_id, owner)).fetchone()
    if row is None:
        return problem(404, "Not Found")
    # Timestamps are stored as naive UTC (flashcards/tables.py); `Z` as the app writes them.
    return card_body(row, _iso_z)


def _iso_z(stamp: datetime) -> str:
    return stamp.isoformat() + "Z"


apply_gc_policy()  # the same GC policy as the apps (flashcards.runtime)
