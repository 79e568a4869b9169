"""Fixtures of the HTTP scenario tests: ONE `http_client` fixture parametrized over every REST
app (Flask, FastAPI) × backend (PostgreSQL, SQLite) in-process, plus both apps over a real server
(PostgreSQL), so every test in this package runs against all of them.

Each app gets its own fresh database once per session; tests sign up their own users, so they
never see each other's data. One upstream simulator (a subprocess) serves every tutor chat.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.http.support import LIVE_VARIANTS, MEASUREMENTS, VARIANTS, Api, Target, Variant
from upstream_sim.server import SimulatorHandle, running_simulator

# the simulator's startup settings: quick answers of a known length
UPSTREAM_TOKENS = 12


@pytest.fixture(scope="session")
def upstream() -> Iterator[SimulatorHandle]:
    with running_simulator(ttft_ms=5, inter_token_ms=1, tokens=UPSTREAM_TOKENS) as sim:
        yield sim


class Targets:
    """Apps are built on first use and kept for the session (closed at its end)."""

    def __init__(self, upstream_url: str, tmp: Path) -> None:
        self.upstream_url = upstream_url
        self.tmp = tmp
        self.built: dict[Variant, Target] = {}

    def get(self, variant: Variant) -> Target:
        if variant not in self.built:
            self.built[variant] = Target(variant, self.upstream_url, self.tmp)
        return self.built[variant]

    def close(self) -> None:
        for target in self.built.values():
            target.close()


@pytest.fixture(scope="session")
def targets(upstream: SimulatorHandle, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Targets]:
    registry = Targets(upstream.url, tmp_path_factory.mktemp("http"))
    yield registry
    registry.close()


@pytest.fixture(params=VARIANTS, ids=lambda v: v.id)
def http_client(request: pytest.FixtureRequest, targets: Targets) -> Api:
    """Every REST app, in-process and live: each test using it runs once per variant."""
    return Api(targets.get(request.param))


@pytest.fixture(params=LIVE_VARIANTS, ids=lambda v: v.id)
def live_client(request: pytest.FixtureRequest, targets: Targets) -> Api:
    """Only the apps behind a real server over TCP (for timing measurements)."""
    return Api(targets.get(request.param))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if MEASUREMENTS:
        terminalreporter.section("http: measurements")
        for line in MEASUREMENTS:
            terminalreporter.write_line(line)
