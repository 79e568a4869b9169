"""`stackbench serve` as a newcomer meets it (issue 20): the data already there is kept unless
`--reseed` says otherwise, a busy port is refused in one line (no traceback), and two serves do
not collide on the upstream simulator's port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from loadtests.servers import REPO_ROOT
from stackbench.cli import app
from stackbench.serve import existing_users, prepare_database


@pytest.fixture
def held_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


@pytest.mark.parametrize("option", ["--port", "--upstream-port"])
def test_a_busy_port_is_refused_in_one_line(tmp_path: Path, held_port: int, option: str) -> None:
    result = CliRunner().invoke(app, ["serve", option, str(held_port), "--dsn", f"sqlite:///{tmp_path / 's.db'}"])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and f"port {held_port} on 127.0.0.1 is in use" in lines[0], result.output
    assert option in lines[0] and "Traceback" not in result.output
    assert not (tmp_path / "s.db").exists()  # refused before touching the database


def test_serve_keeps_the_data_unless_reseed(tmp_path: Path) -> None:
    dsn = f"sqlite:///{tmp_path / 'serve.db'}"
    assert prepare_database(dsn, 2).startswith("seeded 2 users")
    said = prepare_database(dsn, 3)
    assert said.startswith("kept the existing data (2 users)") and "--reseed" in said
    assert existing_users(dsn) == 2
    assert prepare_database(dsn, 3, reseed=True).startswith("emptied every table and seeded 3 users")
    assert existing_users(dsn) == 3


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow  # ~13 s: two real serves (seed, simulator, uvicorn) side by side
@pytest.mark.server
def test_two_serves_run_side_by_side(tmp_path: Path) -> None:
    """Before, both took the simulator's fixed port 8099 and the second died with a traceback."""
    procs = []
    try:
        for i in range(2):
            argv = [sys.executable, "-c", "from stackbench.cli import app; app()", "serve", "--port", str(_free_port()),
                    "--seed-users", "1", "--dsn", f"sqlite:///{tmp_path / f's{i}.db'}"]
            procs.append(subprocess.Popen(argv, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                          text=True, env={**os.environ, "COLUMNS": "200"}))
        outputs = []
        for proc in procs:
            lines: list[str] = []
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline and proc.stdout is not None:
                line = proc.stdout.readline()
                lines.append(line)
                if not line or "serving on" in line:
                    break
            outputs.append("".join(lines))
        for out in outputs:
            assert "serving on" in out, out
        urls = [next(line for line in out.splitlines() if "upstream simulator at" in line) for out in outputs]
        assert urls[0] != urls[1]
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGINT)
        for proc in procs:
            try:
                proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
