"""The scenario registry: every benchmark scenario, once, with all a part of the harness needs.

A `Scenario` says what it stresses, which driver family measures it, whether it writes (then
its server gets a fresh database after it, and — `counts_writes` — the acknowledged-vs-stored
check runs), the request a closed/open-loop driver sends over REST and over GraphQL, the
`verify()` that must pass before a stack is measured, and the load levels a profile gives it.
The runner, the report, the verdict registry, the profiles and the CLI read scenarios from
`SCENARIOS`; adding one is one entry here (plus its test). Other code asks a scenario's family
(closed, streams, fanout, session) or its properties (`open_loop`, `delay_sweep`, `floor_of`,
`fds_per_level`, ...), never compares its name; names stand elsewhere only as data that picks
scenarios: the profiles' and sweep presets' scenario lists, claims.toml, a floor's `as_app`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import httpx

from loadtests import verification as v
from loadtests.verification import BenchUser, VerificationFailed, bench_users, login, owned_ids
from loadtests.wire import RequestSpec

if TYPE_CHECKING:
    from loadtests.profiles import Profile

__all__ = ["SCENARIOS", "BenchUser", "RequestSpec", "Scenario", "VerificationFailed", "bench_users", "closed_loop",
           "get", "login", "owned_ids", "request_spec", "spread", "verify"]

Family = Literal["closed", "streams", "fanout", "session", "connect"]
Build = Callable[[BenchUser | None], RequestSpec]
Verify = Callable[[httpx.Client, str, RequestSpec, BenchUser | None], None]


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str  # the report's section title
    stresses: str  # what a difference between stacks here is evidence of
    family: Family  # closed: wrk (locust where wrk is missing); streams: held upstream streams (the chat
    # driver); fanout: held event streams; session: a locust user session; connect: WebSocket
    # sessions opened and closed in a closed loop (wsconnect.py)
    levels: Callable[[Profile], tuple[int, ...]]  # connections / users / subscribers per profile
    writes: bool = False  # the database is restored after the server that ran it
    counts_writes: bool = False  # acknowledged responses are checked against stored rows
    floors: bool = False  # a floor (no app) can answer it
    sweep: bool = False  # app stacks run it at every `profile.concurrency`, not just the primary level
    rest: Build | None = None
    graphql: Build | None = None
    check: Verify | None = None  # None: the driver itself checks every answer (realtime)
    needs: str | None = None  # a capability a stack may lack (`Stack.lacks`)
    transports: dict[str, str] = field(default_factory=dict)  # api → driver, for realtime families
    open_loop: bool = False  # the scenario the open-loop latency runs and the sweeps' open-loop cells use
    fds_per_level: int = 1  # client file descriptors one unit of load holds (capacity's ulimit check)
    delay_sweep: bool = False  # the latency sweep over injected database delay runs it (sweep.py)
    # The load is spread over every seeded user (the plan's `users`; standard and quick: 10): each
    # request as a random one, with its token and one of its ids (RequestSpec.users). For review:
    # a review takes its user's feed lock (statements.reserve_event_id, held to commit), so one
    # user's 256 parallel reviews serialize on it (≤ 1 / (lock-held round trips × delay) per user)
    # — a load no real user makes; the seed documents' claims are about many users.
    spread_users: bool = False
    # app implementation → the floor stack its rate is divided by (floor_ratios.py); None: no floor compares
    floor_of: dict[str, str | None] = field(default_factory=dict)

    def request(self, api: str, user: BenchUser | None, floor_path: str | None = None,
                users: Sequence[BenchUser] = ()) -> RequestSpec:
        """What a wrk/open-loop driver sends to an `api` ("rest", "graphql"); a floor answers one GET.
        With `users` (and `spread_users`) the spec spreads its requests over them (`spread`)."""
        if floor_path is not None:
            return floor_request(floor_path)
        build = self.graphql if api == "graphql" else self.rest
        if build is None:
            raise ValueError(f"{self.name} has no {api} request")
        spec = build(user)
        if self.spread_users and len(users) > 1:
            return spread(spec, [build(u) for u in users])
        return spec

    def verify(self, api: str, client: httpx.Client, user: BenchUser | None, floor_path: str | None = None) -> None:
        """Raise VerificationFailed unless the stack answers this scenario correctly."""
        if floor_path is not None:
            v.verify_floor(client, floor_path)
        elif self.check is not None:
            spec = self.request(api, user) if (self.rest or self.graphql) else RequestSpec("GET", "/")
            self.check(client, api, spec, user)

    def driver(self, api: str, closed_driver: str = "wrk") -> str:
        if self.family == "closed":
            return closed_driver
        return self.transports.get(api) or self.transports["*"]

    @property
    def scale_run(self) -> bool:
        """Realtime and journey cells are scale runs: measured in the first repetitions only."""
        return self.family != "closed"


def _gql(query: str, variables: dict[str, object] | None = None, ids: str | None = None,
         anonymous: bool = False) -> Build:
    def build(user: BenchUser | None) -> RequestSpec:
        headers = {"Content-Type": "application/json"} if anonymous else v.auth_headers(user, body=True)
        chosen = tuple(getattr(user, ids)) if (ids and user) else ()
        return RequestSpec("POST", "/graphql", v.gql_body(query, variables), headers, chosen)
    return build


def _get(path: str, ids: str | None = None, anonymous: bool = False) -> Build:
    def build(user: BenchUser | None) -> RequestSpec:
        chosen = tuple(getattr(user, ids)) if (ids and user) else ()
        return RequestSpec("GET", path, None, {} if anonymous else v.auth_headers(user), chosen)
    return build


def _post_review(user: BenchUser | None) -> RequestSpec:
    assert user is not None
    return RequestSpec("POST", "/api/cards/{id}/reviews", '{"grade": {grade}}', v.auth_headers(user, body=True),
                       tuple(user.card_ids), expect_status=201)


def spread(spec: RequestSpec, per_user: Sequence[RequestSpec]) -> RequestSpec:
    """`spec` sent as each of `per_user`'s users in turn at random: their tokens and ids."""
    users = []
    for one in per_user:
        auth = one.headers.get("Authorization", "")
        if not auth.startswith("Bearer "):
            raise ValueError("a spread request needs a bearer token per user")
        users.append((auth.removeprefix("Bearer "), one.ids))
    return dataclasses.replace(spec, users=tuple(users))


def _primary(profile: Profile) -> tuple[int, ...]:
    return (profile.primary_concurrency,)


def _sweep(profile: Profile) -> tuple[int, ...]:
    return profile.concurrency


_ALL: tuple[Scenario, ...] = (
    Scenario("config", "config — GET the JSON config (framework + server overhead)",
             "framework and server overhead per request, no database", "closed", _sweep, floors=True, sweep=True,
             rest=_get("/api/config", anonymous=True), graphql=_gql(v.GQL_CONFIG, anonymous=True),
             check=v.verify_config,
             floor_of={"rest": "hello-fastapi", "flask": "hello-flask", "graphql": "hello-strawberry"}),
    Scenario("card", "card — GET one card by random id (one indexed read)",
             "one indexed read with authentication", "closed", _sweep, sweep=True,
             rest=_get("/api/cards/{id}", "card_ids"), graphql=_gql(v.GQL_CARD, {"id": "__ID__"}, "card_ids"),
             check=v.verify_card, open_loop=True, delay_sweep=True,
             floor_of={"rest": "db-fastapi", "flask": "db-flask", "graphql": "db-strawberry"}),
    Scenario("decks", f"decks — GET a user's decks, a page of {v.DECKS_PAGE} (paginated list with counts)",
             "a paginated list query with an aggregate per row", "closed", _primary,
             rest=_get(f"/api/decks?limit={v.DECKS_PAGE}"),
             graphql=_gql(v.GQL_DECKS, {"limit": v.DECKS_PAGE}), check=v.verify_decks),
    Scenario("due", "due — GET the due queue of a deck, 20 rows (range query + serialization)",
             "a range query and serializing 20 rows", "closed", _primary,
             rest=_get("/api/decks/{id}/due?limit=20", "deck_ids"),
             graphql=_gql(v.GQL_DUE, {"id": "__ID__"}, "deck_ids"), check=v.verify_due, delay_sweep=True),
    Scenario("review", "review — POST a review (read-modify-write transaction)",
             "a read-modify-write transaction", "closed", _primary, writes=True, counts_writes=True,
             rest=_post_review, graphql=_gql(v.GQL_REVIEW, {"id": "__ID__", "grade": "__GRADE__"}, "card_ids"),
             check=v.verify_review, delay_sweep=True, spread_users=True),
    Scenario("chat", "chat — concurrent tutor streams over a slow upstream",
             "holding many slow upstream streams at once", "streams", lambda p: p.chat_levels, writes=True,
             check=v.verify_chat, transports={"*": "chat"}, fds_per_level=2),
    Scenario("sse-fanout", "sse-fanout — held event streams, one publish reaching all",
             "held event streams and one publish reaching every subscriber", "fanout", lambda p: p.fanout_levels,
             writes=True, needs="held-streams", transports={"rest": "sse", "*": "ws"}),
    Scenario("ws", "ws — WebSocket feed: connects/s and fan-out",
             "WebSocket connects and fan-out", "fanout", lambda p: p.ws_levels, writes=True,
             needs="websocket-feed", transports={"*": "ws"}),
    # Its own closed loop at one fixed client count for every stack (`Profile.ws_connect_clients`),
    # repeated like a closed cell: the fan-out cells' connect burst is taken at each stack's own
    # subscriber level, so it cannot compare stacks like for like.
    Scenario("ws-connect", "ws-connect — WebSocket sessions opened and closed, closed loop",
             "WebSocket handshake, authentication and close per session", "connect",
             lambda p: (p.ws_connect_clients,), needs="websocket-feed", transports={"*": "ws"}),
    Scenario("journey", "journey — a locust user's study session",
             "a realistic mix of reads and writes per user", "session", lambda p: (p.journey_users,), writes=True,
             transports={"*": "locust"}),
)
SCENARIOS: dict[str, Scenario] = {s.name: s for s in _ALL}


def get(name: str) -> Scenario:
    try:
        return SCENARIOS[name]
    except KeyError:
        raise KeyError(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}") from None


def closed_loop() -> tuple[Scenario, ...]:
    """The closed-loop (wrk) scenarios, in report order."""
    return tuple(s for s in _ALL if s.family == "closed")


def of_family(family: Family) -> tuple[Scenario, ...]:
    return tuple(s for s in _ALL if s.family == family)


def family_of(name: str) -> Family | None:
    """The family of a scenario by name; None for a name the registry does not know (your own)."""
    known = SCENARIOS.get(name)
    return known.family if known else None


def names(*families: Family) -> tuple[str, ...]:
    """The names of the scenarios of these families, in registry order."""
    return tuple(s.name for s in _ALL if s.family in families)


def open_loop() -> Scenario:
    """The scenario the open-loop latency runs (fixed rates, the sustainable rate) measure."""
    return next(s for s in _ALL if s.open_loop)


def delay_sweep() -> tuple[str, ...]:
    """The database scenarios the latency sweep (injected database delay) runs, in registry order."""
    return tuple(s.name for s in _ALL if s.delay_sweep)


def streams() -> Scenario:
    """The chat scenario: held upstream streams (the sweep's TTFT grid, the report's chat section)."""
    return of_family("streams")[0]


def floor_request(path: str) -> RequestSpec:
    """What a driver sends to a floor (no app): one GET of its ready path."""
    return RequestSpec("GET", path)


# The names the closed-loop drivers run (kept for callers that test membership).
WRK_SCENARIOS = tuple(s.name for s in closed_loop())


def request_spec(scenario: str, api: str, user: BenchUser | None, floor_path: str | None = None,
                 users: Sequence[BenchUser] = ()) -> RequestSpec:
    return get(scenario).request(api, user, floor_path, users)


def verify(scenario: str, api: str, client: httpx.Client, user: BenchUser | None,
           floor_path: str | None = None) -> None:
    get(scenario).verify(api, client, user, floor_path)
