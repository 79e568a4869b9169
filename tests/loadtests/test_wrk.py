"""wrk runs (loadtests/wrk.py and lua/common.lua): the latency mean a closed loop obeys Little's
law with, and responses slower than wrk's default timeout kept in the figures."""

from __future__ import annotations

import dataclasses
import json
import random
import shutil
from collections import Counter

import pytest

from loadtests import sanity
from loadtests.measure import Load, closed_fields, wrk_job
from loadtests.sample import Sample
from loadtests.scenarios import RequestSpec
from loadtests.wrk import WrkJob
from tests.loadtests.tiny_server import TinyServer

needs_wrk = pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")
CONNECTIONS = 8


@needs_wrk
@pytest.mark.parametrize("script", ["get", "get_ids"])
def test_the_mean_of_a_stalled_run_obeys_littles_law_where_wrks_corrected_mean_does_not(script: str) -> None:
    # one 0.6 s freeze of the whole server: every connection waits through it once. wrk adds
    # synthetic samples below each of those 8 slow responses (its coordinated-omission
    # correction), so its own mean lies far above N/X; the scripts' timed mean must not
    ids = ["1", "2", "3"] if script == "get_ids" else None
    with TinyServer(stall_at=300, stall_s=0.6) as server:
        job = WrkJob(url=server.url + "/", connections=CONNECTIONS, duration_s=3, script=script,
                     path="/x/{id}" if ids else None, ids=ids, timeout_s=3)
        raw = job.run()
    assert raw["requests"] > 300 and raw["errors"]["timeout"] == 0
    extra = raw["extra"]
    predicted_ms = 1000.0 * CONNECTIONS / raw["rps"]
    assert extra["latency_mean_source"].startswith("uncorrected")
    assert extra["uncorrected_latency"]["answered"] == raw["requests"]
    assert extra["uncorrected_latency"]["unanswered"] <= CONNECTIONS
    assert extra["latency_mean_corrected_ms"] > 1.5 * predicted_ms  # what the check used to read
    sample = Sample.model_validate(closed_fields(raw, CONNECTIONS))
    assert sample.latency_ms.mean == extra["latency_mean_ms"]
    ratio = sanity.little_ratio(sample, CONNECTIONS)
    assert ratio is not None and 0.9 < ratio < 1.1


@needs_wrk
def test_without_the_response_hook_the_mean_is_wrks_own() -> None:
    with TinyServer() as server:
        raw = WrkJob(url=server.url + "/", connections=2, duration_s=1, count_responses=False).run()
    assert raw["extra"]["latency_mean_source"].startswith("wrk")
    assert raw["extra"]["latency_mean_ms"] == raw["extra"]["latency_mean_corrected_ms"]


def test_a_bench_run_keeps_every_response_of_its_window_in_the_latency_figures() -> None:
    load = Load(url="http://127.0.0.1:1", server_pid=1, client_cpus=None)
    assert wrk_job(load, RequestSpec("GET", "/api/config"), 100, 10.0).timeout_s == 10
    assert "--timeout=10s" in wrk_job(load, RequestSpec("GET", "/api/config"), 100, 10.0).command()
    assert wrk_job(load, RequestSpec("GET", "/api/config"), 100, 1.0).timeout_s == WrkJob.timeout_s


@needs_wrk
@pytest.mark.parametrize("ids_per_user", [30, 20_000])  # preformatted in init / built per request
def test_a_load_spread_over_users_sends_each_request_as_a_user_with_one_of_its_own_ids(ids_per_user: int) -> None:
    # the review scenario's shape: POST /api/cards/{id}/reviews as three users, each its own cards
    users = [(f"token-{n}", list(range(n * 100_000 + 1, n * 100_000 + ids_per_user + 1))) for n in (1, 2, 3)]
    owner = {str(i): f"Bearer {token}" for token, ids in users for i in ids}
    spec = RequestSpec("POST", "/api/cards/{id}/reviews", '{"grade": {grade}}',
                       {"Authorization": "Bearer token-1", "Content-Type": "application/json"},
                       tuple(users[0][1]), expect_status=201,
                       users=tuple((token, tuple(ids)) for token, ids in users))
    load = Load(url="", server_pid=1, client_cpus=None)
    with TinyServer() as server:
        job = wrk_job(dataclasses.replace(load, url=server.url), spec, CONNECTIONS, 1.0, writes=True)
        assert job.describe()["users"] == 3
        sample = job.run()
        seen, auths = list(server.seen), list(server.authorizations)
    assert sample["requests"] > 100 and sample["writes"]["acknowledged"] == sample["requests"]
    assert sample["extra"]["wrk"]["users"] == 3
    sent = list(zip(seen, auths, strict=True))
    for (method, path, body), auth in sent:
        card = path.removeprefix("/api/cards/").removesuffix("/reviews")
        assert method == "POST" and owner[card] == auth, (path, auth)  # each id is its token's user's
        assert json.loads(body)["grade"] in range(6)
    per_user = Counter(auth for _, auth in sent)
    assert set(per_user) == {f"Bearer {token}" for token, _ in users}
    assert min(per_user.values()) > 0.15 * len(sent)  # drawn uniformly: about a third each


def test_a_spec_spread_over_users_renders_and_travels_as_them() -> None:
    spec = RequestSpec("POST", "/api/cards/{id}/reviews", '{"grade": {grade}}',
                       {"Authorization": "Bearer a", "Content-Type": "application/json"}, (1, 2),
                       users=(("a", (1, 2)), ("b", (3, 4))))
    assert RequestSpec.from_json(spec.to_json()) == spec  # what the open-loop and locust clients read
    rng = random.Random(1)
    seen = set()
    for _ in range(200):
        headers, path, _body = spec.render_as(rng)
        card = int(path.split("/")[3])
        assert headers["Authorization"] == ("Bearer a" if card in (1, 2) else "Bearer b")
        assert headers["Content-Type"] == "application/json"
        seen.add(headers["Authorization"])
    assert len(seen) == 2
    one = dataclasses.replace(spec, users=())
    assert one.render_as(random.Random(1))[0] == one.headers  # the one-user path is unchanged
    with pytest.raises(ValueError, match="post_json"):
        WrkJob(url="http://x/", script="get_ids", users=[("a", [1])])
