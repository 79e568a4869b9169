"""Locust across hosts: a master that waits for workers started by `stackbench loadgen worker`."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from typing import Any

import pytest
from typer.testing import CliRunner

from loadtests import loadgen
from loadtests.launcher import serving
from loadtests.servers import AppTarget, ServerSpec
from loadtests.wire import RequestSpec
from stackbench.cli import app

GET = RequestSpec("GET", "/")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_worker_and_master_commands() -> None:
    argv = loadgen.worker_command("10.0.0.5", 6000, processes=3, mode="request")
    assert argv[argv.index("--master-host") + 1] == "10.0.0.5"
    assert argv[argv.index("--master-port") + 1] == "6000"
    assert argv[argv.index("--processes") + 1] == "3" and "--worker" in argv
    assert argv[-1] == "RequestUser"
    args = loadgen.master_args(2, 6000)
    assert args[:3] == ["--master", "--expect-workers", "2"] and "6000" in args
    env = loadgen.worker_environment(api="graphql", seed_users=4, workers=3)
    assert env["STACKBENCH_JOURNEY_API"] == "graphql" and env["STACKBENCH_JOURNEY_PROCESSES"] == "3"
    with pytest.raises(ValueError):
        loadgen.worker_environment(mode="request")
    with pytest.raises(ValueError):
        loadgen.master_args(0)


def test_the_cli_refuses_a_bad_mode() -> None:
    result = CliRunner().invoke(app, ["loadgen", "worker", "--master", "127.0.0.1", "--mode", "nope"])
    assert result.exit_code == 2 and "mode" in result.output


@pytest.mark.server
def test_a_master_adds_up_two_workers_started_by_the_cli() -> None:
    port = _free_port()
    floor = ServerSpec("uvicorn", AppTarget("loadtests.floors.raw_asgi:app", "asgi"), port=0, workers=1)
    with serving(floor) as server:
        out: dict[str, Any] = {}
        master = threading.Thread(target=lambda: out.update(loadgen.run_closed_master(
            server.url, GET, users=4, duration_s=2.0, warmup_s=1.0, expect_workers=2, bind_port=port)))
        master.start()
        workers = [subprocess.Popen([sys.executable, "-m", "stackbench.cli", "loadgen", "worker",
                                     "--master", "127.0.0.1", "--master-port", str(port),
                                     "--mode", "request", "--spec", GET.to_json(), "--workers", "2"])
                   for _ in range(2)]
        master.join(timeout=120)
        codes = [w.wait(timeout=30) for w in workers]
    assert not master.is_alive() and codes == [0, 0]
    by_worker = out["extra"]["requests_by_worker"]
    assert len(by_worker) == 2 and all(n > 0 for n in by_worker.values()), by_worker
    assert sum(by_worker.values()) == out["requests"] > 0
    assert out["errors"] == dict.fromkeys(out["errors"], 0)
    assert out["extra"]["remote_workers"] == 2


def test_a_request_mode_master_without_a_spec_is_refused() -> None:
    result = CliRunner().invoke(app, ["loadgen", "master", "--url", "http://127.0.0.1:1", "--workers", "1",
                                      "--mode", "request"])
    assert result.exit_code == 2 and "--spec" in result.output
