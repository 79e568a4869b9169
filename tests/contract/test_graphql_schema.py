"""schemathesis against the GraphQL app, in-process (`schemathesis.graphql.from_asgi`), from the
schema the app itself serves by introspection (`test_drift.py` pins it to `contract/schema.graphql`).

schemathesis generates one test per root field, queries and mutations (subscriptions are not
generated: schemathesis 4.32 does not drive them; `tests/graphql/test_subscriptions.py` covers
them), with valid and invalid arguments and random selection sets, sent with the seeded user's
bearer token on a fresh database (PostgreSQL and SQLite), so generated ids sometimes hit the
seeded deck and card.

Checks: every default check stays on (server errors, response conformance, negative data
rejected, positive data accepted). Two kinds of failure are dropped by `filter_failure`, each
for a reason the schema cannot express:

* `not_a_server_error` flags every GraphQL error that has a `path` and no client-error code as a
  server error. This API answers its domain outcomes that way, with HTTP 200 as GraphQL does:
  `NOT_FOUND` (a random id; another user's object), `CONFLICT` (a taken username),
  `UNAUTHENTICATED` (a wrong password), `FORBIDDEN`, `RATE_LIMITED`; the REST apps send the same
  cases as 404/409/401/403/429. Such failures are dropped only when EVERY error of the response
  carries one of those codes; `INTERNAL_SERVER_ERROR`, `UNAVAILABLE`, an unknown code or no
  code at all still fails.
* `positive_data_acceptance` flags schema-valid arguments the server refuses. SDL types cannot
  say "an `ID` is a decimal 1..2^63-1", "a title has 1..200 characters", "a grade is 0..5" or
  "a username matches ^[a-z0-9_]{3,32}$", so the service answers `BAD_USER_INPUT` with its field
  errors (`extensions.errors`, as REST's 422). Dropped only when every error is such a field
  error; a `GRAPHQL_VALIDATION_FAILED` for a schema-valid query (other than the documented
  depth and alias limits, see `documented_limit`) still fails.

`assert_well_formed` then checks every response itself: HTTP 200 with a JSON object holding
`data` and/or `errors`, and every error with a message and a known `extensions.code` (never
`INTERNAL_SERVER_ERROR`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import Case, Config

from flashcards.settings import Settings
from impl_graphql import create_app
from tests.contract import support
from tests.contract.conftest import BACKENDS, contract_dsn

# Codes of outcomes the domain reports on purpose (REST: 401, 403, 404, 409, 429).
DOMAIN_CODES = frozenset({"NOT_FOUND", "CONFLICT", "UNAUTHENTICATED", "FORBIDDEN", "RATE_LIMITED"})
# Codes of a request refused before or while reading its arguments (REST: 400, 422).
CLIENT_CODES = frozenset(
    {"BAD_USER_INPUT", "BAD_REQUEST", "GRAPHQL_VALIDATION_FAILED", "GRAPHQL_PARSE_FAILED"}
)
# Limits that refuse a whole operation on purpose (cost estimated before execution, response size,
# per-user stream caps): the GraphQL counterparts of REST's 413 and 429.
LIMIT_CODES = frozenset({"QUERY_TOO_COSTLY", "RESPONSE_TOO_LARGE", "TOO_MANY_STREAMS"})
KNOWN_CODES = DOMAIN_CODES | CLIENT_CODES | LIMIT_CODES


@dataclass
class GraphQLTarget:
    backend: str
    settings: Settings
    seed: support.Seed
    app: Any


@pytest.fixture(params=BACKENDS)
def graphql_target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[GraphQLTarget]:
    """The GraphQL app on its own freshly created database, with a seeded user, deck and card.
    The app owns its Service: schemathesis runs the app's lifespan (created at startup on its
    event loop, closed by `shutdown_lifespans` here)."""
    backend = request.param
    settings = support.contract_settings(contract_dsn(backend, "graphql", tmp_path))
    support.fresh_database(settings)
    seeded = support.seed(settings)
    yield GraphQLTarget(backend, settings, seeded, create_app(settings))
    from schemathesis.python.asgi import shutdown_lifespans

    shutdown_lifespans()


def _codes(errors: Any) -> list[Any]:
    if not isinstance(errors, list):
        return [None]
    return [(e.get("extensions") or {}).get("code") if isinstance(e, dict) else None for e in errors]


def documented_limit(error: Any) -> bool:
    """The server's documented query limits (`graphql_max_depth`, `graphql_max_aliases`,
    `graphql_max_cost`, `graphql_max_response_bytes`): a random selection set may nest deeper or
    ask for more list items than the SDL can say is allowed."""
    if not isinstance(error, dict):
        return False
    message = error.get("message", "")
    code = (error.get("extensions") or {}).get("code")
    return ("exceeds maximum operation depth" in message or "aliases found" in message
            or code in ("QUERY_TOO_COSTLY", "RESPONSE_TOO_LARGE"))


def filter_failure(context: Any, failure: Any, case: Case, response: Any) -> bool:
    """Keep every failure but the two documented kinds (see the module docstring); what is
    dropped is listed in the run summary."""
    keep = _keep(failure)
    if not keep:
        codes = sorted({str(c) for c in _codes(failure.errors)})
        support.note(f"dropped {type(failure).__name__} {'/'.join(codes)}")
    return keep


def _keep(failure: Any) -> bool:
    kind = type(failure).__name__
    errors = getattr(failure, "errors", None)
    if not isinstance(errors, list) or not errors:
        return True
    if kind == "GraphQLServerError":
        return not all(code in DOMAIN_CODES for code in _codes(errors))
    if kind == "GraphQLClientError":
        return not all(
            ((e.get("extensions") or {}).get("code") == "BAD_USER_INPUT"
            and (e.get("extensions") or {}).get("errors"))
            or documented_limit(e)
            for e in errors
        )
    return True


def assert_well_formed(response: Any) -> None:
    assert response.status_code == 200, (response.status_code, response.text[:500])
    content_type = response.headers.get("content-type") or [""]  # schemathesis: name → [values]
    assert content_type[0].startswith("application/json"), response.headers
    body = response.json()
    assert isinstance(body, dict) and ("data" in body or "errors" in body), body
    assert set(body) <= {"data", "errors", "extensions"}, body
    for error in body.get("errors") or []:
        assert isinstance(error.get("message"), str), error
        code = (error.get("extensions") or {}).get("code")
        assert code in KNOWN_CODES, f"unexpected error code {code!r}: {error}"


@pytest.fixture
def graphql_schema(graphql_target: GraphQLTarget) -> Any:
    config = Config.from_dict(
        {
            "generation": {"max-examples": support.BUDGET.graphql_examples},
            "suppress-health-check": ["too_slow", "filter_too_much", "data_too_large"],
            "headers": {"Authorization": graphql_target.seed.authorization},
        }
    )
    schema = schemathesis.graphql.from_asgi("/graphql", graphql_target.app, config=config)
    schema.hook(filter_failure)
    return schema


lazy = schemathesis.pytest.from_fixture("graphql_schema")


@lazy.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck))
def test_graphql_contract(case: Case, graphql_target: GraphQLTarget) -> None:
    support.count()
    response = case.call_and_validate()
    assert_well_formed(response)
