"""Bring your own app (`bench --app`) and your own running service (`bench --target`), end to end
on the example todo app in examples/todo (smoke-size windows: these check the path, not speed)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from loadtests import results
from loadtests.agent import Agent, make_server
from loadtests.document import Run
from loadtests.launcher import free_port
from stackbench.cli import app

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "todo"
SCENARIO = EXAMPLE / "scenario.toml"
SMOKE = ["--repetitions", "1", "--duration", "1", "--warmup", "0"]

pytestmark = pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")


def _bench(tmp_path: Path, *args: str) -> tuple[int, str, dict[str, Any] | None]:
    result = CliRunner().invoke(app, ["bench", *args, "--out", str(tmp_path), *SMOKE])
    found = sorted(tmp_path.glob("*/results.json"))
    return result.exit_code, result.output, results.load(found[-1]) if found else None


def test_the_example_asgi_app_on_two_servers(tmp_path: Path) -> None:
    code, output, doc = _bench(tmp_path, "--app", "todo_app.asgi:app", "--app-dir", str(EXAMPLE),
                               "--scenario-file", str(SCENARIO), "--server", "uvicorn", "--server", "granian-asgi")
    assert code == 0, output
    assert doc is not None and doc["profile"] == "byo:todo"
    Run.from_json(doc)  # an ordinary results document
    assert doc["settings"]["app"] == {"target": "todo_app.asgi:app", "interface": "asgi", "factory": False,
                                      "dir": str(EXAMPLE)}
    assert {s["server"] for s in doc["stacks"].values()} == {"uvicorn", "granian-asgi"}
    ids = {c["id"] for c in doc["cells"]}
    for server in ("uvicorn", "granian-asgi"):
        for name in ("list", "get", "create", "mix"):
            assert f"todo_app-{server}/{name}/wrk/c64" in ids
    for cell in doc["cells"]:
        assert cell["status"] == "ok", cell.get("error")
        (sample,) = cell["samples"]
        assert sample["requests"] > 0 and sample["rps"] > 0
        assert sample["errors"]["status"] == 0 and sample["errors"]["timeout"] == 0
        assert sample["server_cpu_pct"] > 0 and sample["server_peak_rss_bytes"] > 0  # the server's own usage
        assert cell["setup"]["server"] in ("uvicorn", "granian-asgi") and cell["setup"]["processes"] >= 1
    # the harness's worker rule and pinning: one serving process per server core, on the server cores
    cores = doc["settings"]["server_cpus"]
    for cell in doc["cells"]:
        assert cell["setup"]["cores"] == cores


def test_the_example_wsgi_factory_is_detected_and_served(tmp_path: Path) -> None:
    code, output, doc = _bench(tmp_path, "--app", "todo_app.wsgi:create_app", "--app-dir", str(EXAMPLE),
                               "--scenario-file", str(SCENARIO), "--server", "gunicorn-gthread")
    assert code == 0, output
    assert doc is not None and doc["settings"]["app"]["interface"] == "wsgi"
    assert doc["settings"]["app"]["factory"] is True
    assert all(c["status"] == "ok" and c["samples"][0]["errors"]["status"] == 0 for c in doc["cells"])
    # an ASGI-only server is refused for a WSGI app, with the servers that fit
    code, output, _ = _bench(tmp_path / "x", "--app", "todo_app.wsgi:create_app", "--app-dir", str(EXAMPLE),
                             "--scenario-file", str(SCENARIO), "--server", "uvicorn")
    assert code == 2 and "do not serve WSGI" in output


def test_a_request_that_fails_verification_is_not_measured(tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.toml"
    wrong.write_text(SCENARIO.read_text().replace("expect_status = 201", "expect_status = 200"))
    code, output, doc = _bench(tmp_path / "runs", "--app", "todo_app.asgi:app", "--app-dir", str(EXAMPLE),
                               "--scenario-file", str(wrong), "--server", "uvicorn")
    assert code == 1, output
    assert doc is not None and doc["cells"]
    for cell in doc["cells"]:
        assert cell["status"] == "refused" and not cell["samples"]
        assert "create: POST /todos answered 201, expected 200" in cell["error"]


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    for args, message in (
        (["--app", "todo_app.asgi:app"], "--scenario-file is required"),
        (["--app", "x:y", "--target", "http://h:1", "--scenario-file", str(SCENARIO)], "one of them"),
        (["--app", "todo_app.nope:app", "--app-dir", str(EXAMPLE), "--scenario-file", str(SCENARIO)], "cannot import"),
        (["--target", "ftp://h", "--scenario-file", str(SCENARIO)], "http(s) URL"),
    ):
        code, output, _ = _bench(tmp_path, *args)
        assert code == 2 and message in output, output


@pytest.fixture
def running_todo() -> Iterator[tuple[str, int]]:
    """The example app under uvicorn, started by the test as a user would."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "todo_app.asgi:app", "--port", str(port),
                             "--log-level", "warning"], cwd=EXAMPLE, stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if httpx.get(url + "/health").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield url, proc.pid
    finally:
        proc.terminate()
        proc.wait(10)


def test_target_with_an_agent_measures_the_server(running_todo: tuple[str, int], tmp_path: Path) -> None:
    url, pid = running_todo
    agent = Agent(pid)
    server = make_server(agent, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    agent_url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        assert httpx.post(agent_url + "/end").status_code == 409  # no window open
        assert httpx.get(agent_url + "/health").json()["alive"] is True
        code, output, doc = _bench(tmp_path, "--target", url, "--scenario-file", str(SCENARIO),
                                   "--agent", agent_url, "--rate", "200")
    finally:
        server.shutdown()
        agent.close()
    assert code == 0, output
    assert doc is not None and doc["stacks"]["target"]["server"] == url
    closed = [c for c in doc["cells"] if c["driver"] == "wrk"]
    opened = [c for c in doc["cells"] if c["driver"] == "openloop"]
    assert {c["scenario"] for c in closed} == {"list", "get", "create", "mix"}
    assert {c["scenario"] for c in opened} == {"list", "get", "create"}
    for cell in closed + opened:
        assert cell["status"] == "ok", cell.get("error")
        sample = cell["samples"][0]
        assert sample["extra"]["server"]["measured_by"] == "stackbench agent"
        assert sample["server_cpu_pct"] > 0 and sample["server_peak_rss_bytes"] > 0
    for cell in opened:
        assert cell["mode"] == "open" and cell["target_rate"] == 200.0
        assert cell["samples"][0]["rps"] == pytest.approx(200, rel=0.25)


def test_target_without_an_agent_says_not_measured(running_todo: tuple[str, int], tmp_path: Path) -> None:
    url, _ = running_todo
    code, output, doc = _bench(tmp_path, "--target", url, "--scenario-file", str(SCENARIO), "--rate", "100")
    assert code == 0, output
    assert doc is not None
    for cell in doc["cells"]:
        sample = cell["samples"][0]
        assert sample.get("server_cpu_pct") is None
        assert sample["extra"]["server"]["measured"] is False
    assert json.loads(json.dumps(doc["stacks"]["target"]["settings"]))["server_usage"] == "not measured"
