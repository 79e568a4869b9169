"""The "journey" scenario for locust: a learner studying, through REST or GraphQL — and, with
``STACKBENCH_LOCUST_MODE=request``, a closed loop of one request (the wrk scenarios without wrk).

Each simulated user logs in once as a seeded user (``user00001`` …, password
``provision.seed.SEED_PASSWORD``; tokens are shared by the simulated users of one process that
play the same seeded user; a seeded user listed in ``STACKBENCH_JOURNEY_TOKENS``, a JSON file
``{username: token}``, starts with that token instead: one argon2 login costs the server ≈ 0.1 s
of CPU, so a hundred of them would outlast the warmup on one core), then loops:

1. the due cards of one of its decks (``due``),
2. a review with a random grade of 1–3 of them (``review``),
3. sometimes its deck list (``decks``, 30%), sometimes the public config (``config``, 10%).

Request names are the same for both APIs, so per-request statistics compare across stacks.
A GraphQL answer with ``errors`` counts as a failure. Configuration comes from the environment
(`loadtests.journey.journey_environment` builds it)::

    STACKBENCH_JOURNEY_API=rest|graphql       STACKBENCH_JOURNEY_SEED_USERS=10
    STACKBENCH_JOURNEY_DECKS_PER_USER=10      STACKBENCH_JOURNEY_THINK_S=0 (mean think time)
    STACKBENCH_JOURNEY_WARMUP_S=2             STACKBENCH_JOURNEY_PROCESSES=1
    STACKBENCH_JOURNEY_DURATION_S=10          (optional: stop warmup + duration after the start)
    STACKBENCH_JOURNEY_MARKS=/path            (optional: window marks, one JSON line each)
    STACKBENCH_JOURNEY_TOKENS=/path           (optional: signed tokens, see above)

    locust -f loadtests/locustfile.py --headless -u 10 -r 10 -t 10s --host http://127.0.0.1:8000

After ``STACKBENCH_JOURNEY_WARMUP_S`` every locust process resets its statistics (logins and the
ramp-up are left out; with ``--processes`` the master tells the workers when) and appends ``{"event": "reset", "pid", "role", "time", "cpu_s", "requests_before"}`` to the
marks file; when the test stops it appends ``"stopping"``, and when it exits the master (or the
only process) appends ``"errors"`` with its failures (``"errors": [{"method", "name", "error",
"occurrences"}]``: locust's ``_failures.csv`` can miss the last second). With ``STACKBENCH_JOURNEY_DURATION_S``
the master (or the only process) stops the run warmup + duration after the test started. `loadtests.journey` reads both: the
measurement window and each process's CPU inside it.

Modes (``STACKBENCH_LOCUST_MODE``; only the selected mode's User class is active, the other is
abstract, so locust spawns no users of it):

* ``journey`` (the default): `JourneyUser`, above.
* ``request``: `RequestUser`, a closed loop without think time sending the one request that
  ``STACKBENCH_LOCUST_SPEC`` describes — a `loadtests.wire.RequestSpec` as JSON (``method``,
  ``path``, ``body``, ``headers``, ``ids``, ``expect_status``; `loadtests.locust_closed` writes
  it), rendered per request by `RequestSpec.render` (``{id}``, ``{grade}``). A response whose
  status is not ``expect_status`` is a failure (``HTTP <status>``); a request without a response
  fails with locust's exception (connect, timeout, reset). The same warmup reset, stop and marks
  apply. This mode does not import the seed module and SQLAlchemy (≈ 0.9 s of client CPU).
"""

from __future__ import annotations

import itertools
import json
import os
import random
import threading
import time
from typing import Any

import gevent
from gevent.lock import Semaphore
from locust import between, constant, events, task
from locust.contrib.fasthttp import FastHttpUser
from locust.runners import MasterRunner, WorkerRunner
from locust.stats import StatsError

from loadtests.wire import RequestSpec

MODE = os.environ.get("STACKBENCH_LOCUST_MODE", "journey")
if MODE not in ("journey", "request"):
    raise ValueError(f"STACKBENCH_LOCUST_MODE must be 'journey' or 'request', got {MODE!r}")
if MODE == "journey":  # the request mode does without the seed module and SQLAlchemy
    from loadtests.verification import GQL_CONFIG, GQL_DUE, GQL_LOGIN, GQL_REVIEW
    from provision.seed import SEED_PASSWORD
else:
    from loadtests.locust_closed import status_failure

GQL_DECKS = (
    "query Decks { decks(limit: 20) { items { id title description card_count created_at "
    "updated_at } next_cursor } }"
)

API = os.environ.get("STACKBENCH_JOURNEY_API", "rest")
SEED_USERS = int(os.environ.get("STACKBENCH_JOURNEY_SEED_USERS", "10"))
DECKS_PER_USER = int(os.environ.get("STACKBENCH_JOURNEY_DECKS_PER_USER", "10"))
THINK_S = float(os.environ.get("STACKBENCH_JOURNEY_THINK_S", "0"))
WARMUP_S = float(os.environ.get("STACKBENCH_JOURNEY_WARMUP_S", "0"))
DURATION_S = float(os.environ.get("STACKBENCH_JOURNEY_DURATION_S", "0"))
PROCESSES = max(1, int(os.environ.get("STACKBENCH_JOURNEY_PROCESSES", "1")))
MARKS = os.environ.get("STACKBENCH_JOURNEY_MARKS")
DECKS_SHARE, CONFIG_SHARE = 0.3, 0.1

_next_user = itertools.count()
_tokens: dict[str, str] = {}
if os.environ.get("STACKBENCH_JOURNEY_TOKENS"):
    with open(os.environ["STACKBENCH_JOURNEY_TOKENS"]) as _f:
        _tokens.update({str(k): str(v) for k, v in json.load(_f).items()})
_login_locks: dict[str, Semaphore] = {}
_marks_lock = threading.Lock()


def _role(environment: Any) -> str:
    runner = environment.runner
    if isinstance(runner, MasterRunner):
        return "master"
    if isinstance(runner, WorkerRunner):
        return "worker"
    return "local"


def _mark(environment: Any, event: str, **fields: Any) -> None:
    if not MARKS:
        return
    line = json.dumps({"event": event, "pid": os.getpid(), "role": _role(environment),
                       "time": time.time(), "cpu_s": time.process_time(), **fields})
    with _marks_lock, open(MARKS, "a") as f:
        f.write(line + "\n")


RESET, RESET_ACK = "stackbench-reset", "stackbench-reset-ack"
_awaiting_ack: set[str] = set()  # master: workers whose reports may still hold warmup data
# master: requests each worker reported inside the window (after its reset), so a run can show
# that every worker — local (--processes) or on another host — was added up
_requests_by_worker: dict[str, int] = {}


@events.test_start.add_listener
def _schedule_window(environment: Any, **_kwargs: Any) -> None:
    runner = environment.runner

    def reset() -> None:
        if isinstance(runner, MasterRunner):
            _awaiting_ack.update(client.id for client in runner.clients.all)
            runner.send_message(RESET)
            _requests_by_worker.clear()
        # what the warmup answered: the server's CPU is measured over the whole run, so its cost
        # per request divides by the warmup's requests too (journey.to_sample, answered_total)
        before = runner.stats.total.num_requests
        runner.stats.reset_all()
        _mark(environment, "reset", requests_before=before)

    def stop() -> None:
        runner.quit()  # the workers send their final reports before the master writes its stats

    if isinstance(runner, WorkerRunner):
        return  # workers reset when the master says so (see _on_reset)
    # libev's cached clock can be seconds stale after locust's start-up: refresh it first
    # (locust's own --run-time timer is scheduled from the stale clock and fires early, so the
    # harness passes a generous -t and stops the run here)
    gevent.get_hub().loop.update_now()
    if WARMUP_S > 0:
        gevent.spawn_later(WARMUP_S, reset)
    else:
        reset()
    if DURATION_S > 0:
        gevent.spawn_later(WARMUP_S + DURATION_S, stop)


# Distributed (--processes): workers report deltas to the master every few seconds, so the
# master resetting its statistics alone would still receive warmup requests. The master resets
# and asks every worker to reset; until a worker acknowledges, its reports (sent before its
# reset, in order on the same connection) are emptied before the master adds them up.
@events.init.add_listener
def _register_messages(environment: Any, **_kwargs: Any) -> None:
    runner = environment.runner
    if isinstance(runner, MasterRunner):
        runner.register_message(RESET_ACK, _on_reset_ack)
    elif isinstance(runner, WorkerRunner):
        runner.register_message(RESET, _on_reset)


def _on_reset(environment: Any, msg: Any, **_kwargs: Any) -> None:
    environment.runner.stats.reset_all()
    _mark(environment, "reset")
    environment.runner.send_message(RESET_ACK)


def _on_reset_ack(environment: Any, msg: Any, **_kwargs: Any) -> None:
    _awaiting_ack.discard(msg.node_id)


@events.worker_report.add_listener
def _drop_warmup_reports(client_id: str, data: dict[str, Any], **_kwargs: Any) -> None:
    # registered when the locustfile is imported, before the runner's own listener that adds
    # the report to the master's statistics
    if client_id in _awaiting_ack:
        data["stats"] = []
        data["errors"] = {}
        total = data.get("stats_total")
        if isinstance(total, dict):
            total.update({"num_requests": 0, "num_none_requests": 0, "num_failures": 0,
                          "total_response_time": 0, "max_response_time": 0,
                          "min_response_time": None, "total_content_length": 0,
                          "response_times": {}, "num_reqs_per_sec": {}, "num_fail_per_sec": {}})


@events.worker_report.add_listener
def _count_worker_requests(client_id: str, data: dict[str, Any], **_kwargs: Any) -> None:
    # after _drop_warmup_reports (registered first): a report still holding warmup is zero here
    total = data.get("stats_total")
    if isinstance(total, dict):
        _requests_by_worker[client_id] = (_requests_by_worker.get(client_id, 0)
                                          + int(total.get("num_requests") or 0))


@events.test_stopping.add_listener
def _stopping(environment: Any, **_kwargs: Any) -> None:
    _mark(environment, "stopping")


_environments: list[Any] = []  # the quit event carries no environment: kept from init


@events.init.add_listener
def _keep_environment(environment: Any, **_kwargs: Any) -> None:
    _environments.append(environment)


@events.quit.add_listener
def _final_errors(**_kwargs: Any) -> None:
    # locust rewrites its _failures.csv once a second and not at exit, so it can miss the last
    # second of failures: the lead process lists them here, from the statistics the JSON holds
    if not MARKS or not _environments:
        return
    environment = _environments[-1]
    if environment.runner is None or _role(environment) == "worker":
        return
    rows = [{"method": e.method, "name": e.name, "error": StatsError.parse_error(e.error),
             "occurrences": e.occurrences} for e in environment.runner.stats.errors.values()]
    line = json.dumps({"event": "errors", "pid": os.getpid(), "role": _role(environment),
                       "time": time.time(), "cpu_s": time.process_time(), "errors": rows,
                       "requests_by_worker": dict(_requests_by_worker)})
    with _marks_lock, open(MARKS, "a") as f:
        f.write(line + "\n")


class JourneyUser(FastHttpUser):
    """One learner: logs in, then studies its decks (see the module docstring)."""

    abstract = MODE != "journey"
    wait_time = between(0, 2 * THINK_S) if THINK_S > 0 else constant(0)

    def on_start(self) -> None:
        index = next(_next_user)
        worker = getattr(self.environment.runner, "worker_index", 0) or 0
        number = (index * PROCESSES + worker) % SEED_USERS + 1
        self.username = f"user{number:05d}"
        first_deck = (number - 1) * DECKS_PER_USER + 1
        self.deck_ids = list(range(first_deck, first_deck + DECKS_PER_USER))
        token = self._token()
        self.auth = {"Authorization": f"Bearer {token}"} if token else {}

    # -- login (once per seeded user and process) ---------------------------------------------
    def _token(self) -> str | None:
        lock = _login_locks.setdefault(self.username, Semaphore())
        with lock:
            if self.username not in _tokens:
                token = self._login()
                if token is None:
                    return None
                _tokens[self.username] = token
            return _tokens[self.username]

    def _login(self) -> str | None:
        if API == "graphql":
            payload = {"query": GQL_LOGIN, "variables": {"u": self.username, "p": SEED_PASSWORD}}
            data = self._graphql("login", payload, auth=False)
            return None if data is None else str(data["login"]["access_token"])
        with self.client.post("/api/auth/token", name="login", catch_response=True,
                              json={"username": self.username, "password": SEED_PASSWORD}) as r:
            if r.status_code != 200:
                r.failure(f"HTTP {r.status_code}")
                return None
            try:
                return str(r.json()["access_token"])
            except (ValueError, KeyError, TypeError):
                r.failure("login: unexpected body")
                return None

    # -- one request each ---------------------------------------------------------------------
    def _graphql(self, name: str, payload: dict[str, Any], *, auth: bool = True) -> Any:
        headers = self.auth if auth else {}
        with self.client.post("/graphql", name=name, json=payload, headers=headers,
                              catch_response=True) as r:
            if r.status_code != 200:
                r.failure(f"HTTP {r.status_code}")
                return None
            try:
                doc = r.json()
            except ValueError:
                r.failure("graphql: body is not JSON")
                return None
            if doc.get("errors") or not isinstance(doc.get("data"), dict):
                r.failure(f"graphql errors: {str(doc.get('errors'))[:120]}")
                return None
            return doc["data"]

    def _rest(self, method: str, path: str, name: str, expect: int, body: Any = None) -> Any:
        with self.client.request(method, path, name=name, headers=self.auth, json=body,
                                 catch_response=True) as r:
            if r.status_code != expect:
                r.failure(f"HTTP {r.status_code}")
                return None
            try:
                return r.json()
            except ValueError:
                r.failure(f"{name}: body is not JSON")
                return None

    def due(self, deck_id: int) -> list[str]:
        if API == "graphql":
            data = self._graphql("due", {"query": GQL_DUE, "variables": {"id": str(deck_id)}})
            items = data["due_cards"]["items"] if data else []
        else:
            doc = self._rest("GET", f"/api/decks/{deck_id}/due?limit=20", "due", 200)
            items = doc["items"] if doc else []
        return [str(card["id"]) for card in items]

    def review(self, card_id: str, grade: int) -> None:
        if API == "graphql":
            self._graphql("review", {"query": GQL_REVIEW, "variables": {"id": card_id, "grade": grade}})
        else:
            self._rest("POST", f"/api/cards/{card_id}/reviews", "review", 201, {"grade": grade})

    def decks(self) -> None:
        if API == "graphql":
            self._graphql("decks", {"query": GQL_DECKS, "variables": {}})
        else:
            self._rest("GET", "/api/decks?limit=20", "decks", 200)

    def config(self) -> None:
        if API == "graphql":
            self._graphql("config", {"query": GQL_CONFIG, "variables": {}}, auth=False)
        else:
            with self.client.get("/api/config", name="config", catch_response=True) as r:
                if r.status_code != 200:
                    r.failure(f"HTTP {r.status_code}")

    @task
    def study(self) -> None:
        if not self.auth:  # the login failed (counted); try again next time round
            token = self._token()
            self.auth = {"Authorization": f"Bearer {token}"} if token else {}
            if not self.auth:
                gevent.sleep(0.5)
                return
        due = self.due(random.choice(self.deck_ids))
        for card_id in random.sample(due, k=min(len(due), random.randint(1, 3))):
            self.review(card_id, random.randint(0, 5))
        if random.random() < DECKS_SHARE:
            self.decks()
        if random.random() < CONFIG_SHARE:
            self.config()


# -- the request mode -------------------------------------------------------------------------


SPEC: RequestSpec | None = RequestSpec.from_json(os.environ["STACKBENCH_LOCUST_SPEC"]) if MODE == "request" else None
# wrk asks for no compression; neither do we (FastHttpSession would ask for gzip, deflate, br)
HEADERS = {"Accept-Encoding": "identity", **(SPEC.headers if SPEC else {})}
_rng = random.Random()


class RequestUser(FastHttpUser):
    """One connection of a closed loop: the next request as soon as the last one answered."""

    abstract = MODE != "request"
    wait_time = constant(0)

    @task
    def send(self) -> None:
        assert SPEC is not None
        headers, path, body = SPEC.render_as(_rng)  # a random user of SPEC.users, if any
        with self.client.request(SPEC.method, path, name=SPEC.path, headers={**HEADERS, **headers},
                                 data=body, catch_response=True) as r:
            message = status_failure(r.status_code, SPEC.expect_status)
            if message is not None:
                r.failure(message)
            elif r.status_code >= 400:
                r.success()  # expected, though locust would call it an error
