"""Closed-loop throughput with wrk: ``wrk -t1 -cN -dDs --latency -s script.lua URL``.

The Lua scripts under ``loadtests/lua`` print one ``STACKBENCH_RESULT {json}`` line from
wrk's ``done()`` hook; `run_wrk` parses it into one results-document "sample" (RESULTS_SCHEMA.md)
without the server metrics, with the client's CPU measured from ``os.wait4``'s rusage.

Scripts: ``get`` (one fixed request, built once), ``get_ids`` (``path`` with ``{id}``
replaced by a random id), ``post_json`` (``body`` with ``{id}`` and ``{grade}`` replaced by a
random id and a random grade 0–5). All can send ``Authorization: Bearer <token>``. With
``count_responses`` the ``response()`` hook counts 2xx and non-2xx per wrk thread (aggregated in
``done()`` through the thread tables); for write scenarios ``writes.acknowledged`` is the 2xx
count.

wrk measures latency from the moment a request is sent on a free connection, so its tail hides
coordinated omission (wg/wrk #326, #485): use the open-loop driver for latency objectives.
wrk 4 then "corrects" its histogram for it (``stats_correct``: synthetic samples below every
response slower than twice the per-connection interval) before ``done()`` reads it, so its
percentiles and mean are of that corrected histogram. The mean a closed loop obeys Little's law
with is the uncorrected one: the scripts time every send and receive themselves
(lua/common.lua) and the sample's ``latency_ms.mean`` is that uncorrected mean
(``extra.latency_mean_source``; wrk's own is ``extra.latency_mean_corrected_ms``). Measured here
on gunicorn-gevent at 16 connections: wrk's mean 15.9 ms, the uncorrected mean 5.86 ms, N/X 5.88 ms.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from loadtests.accounting import ChildResult, run_measured

LUA_DIR = Path(__file__).resolve().parent / "lua"
SCRIPTS = {
    "get": LUA_DIR / "get.lua",
    "get_ids": LUA_DIR / "get_ids.lua",
    "post_json": LUA_DIR / "post_json.lua",
}
RESULT_MARKER = "STACKBENCH_RESULT "

ScriptName = Literal["get", "get_ids", "post_json"]


class DriverUnavailable(RuntimeError):
    """A load generator is not installed; the harness may fall back to another driver."""


class WrkNotFound(DriverUnavailable):
    """The ``wrk`` executable is not on PATH (Debian/Ubuntu: ``apt-get install wrk``)."""


class WrkError(RuntimeError):
    """wrk ran but failed, or printed no result line."""


def find_wrk(path: str | None = None) -> str:
    """The wrk executable: ``path``, else $STACKBENCH_WRK, else ``wrk`` on PATH."""
    candidate = path or os.environ.get("STACKBENCH_WRK") or "wrk"
    found = shutil.which(candidate)
    if not found:
        raise WrkNotFound(
            f"wrk not found ({candidate!r}); install it (apt-get install wrk) "
            "or use the locust driver"
        )
    return found


def wrk_available(path: str | None = None) -> bool:
    try:
        find_wrk(path)
    except WrkNotFound:
        return False
    return True


@dataclass
class WrkJob:
    """One wrk run. ``run()`` returns a results sample (without server metrics)."""

    url: str  # scheme://host:port/path; the path is used when no ``path`` template is given
    connections: int = 64
    duration_s: float = 5.0
    threads: int = 1
    script: ScriptName | str | Path = "get"
    path: str | None = None  # path template, ``{id}`` → a random id
    ids: Sequence[str | int] | None = None
    ids_file: str | Path | None = None
    # the load spread over users: (token, ids) each; every request as a random one of them, with
    # its own token and one of its own ids (post_json only; written to STACKBENCH_USERS_FILE)
    users: Sequence[tuple[str, Sequence[str | int]]] | None = None
    body: str | None = None  # body template (post_json), ``{id}`` and ``{grade}``
    method: str | None = None
    token: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    count_responses: bool = True
    timeout_s: float = 2.0  # wrk --timeout: a response slower than this is a timeout error
    cpus: Sequence[int] | None = None
    writes: bool = False  # add writes.acknowledged (= 2xx responses); stored is the harness's
    wrk_path: str | None = None

    def __post_init__(self) -> None:
        if self.threads < 1 or self.connections < self.threads:
            raise ValueError("wrk needs threads >= 1 and connections >= threads")
        if self.writes and not self.count_responses:
            raise ValueError("acknowledged writes need count_responses=True")
        if self.users and self.script_path != SCRIPTS["post_json"]:
            raise ValueError("a load spread over users needs the post_json script")

    @property
    def script_path(self) -> Path:
        if isinstance(self.script, Path):
            return self.script
        if self.script in SCRIPTS:
            return SCRIPTS[self.script]
        return Path(self.script)

    @property
    def seconds(self) -> int:
        return max(1, round(self.duration_s))

    def command(self, wrk: str = "wrk") -> list[str]:
        return [
            wrk,
            f"-t{self.threads}",
            f"-c{self.connections}",
            f"-d{self.seconds}s",
            f"--timeout={self.timeout_s:g}s",
            "--latency",
            "-s",
            str(self.script_path),
            self.url,
        ]

    def environment(self, ids_file: str | None = None, users_file: str | None = None) -> dict[str, str]:
        """STACKBENCH_* variables read by the Lua scripts (see lua/common.lua)."""
        env: dict[str, str] = {
            "STACKBENCH_COUNT_RESPONSES": "1" if self.count_responses else "0",
            "STACKBENCH_CONNECTIONS": str(-(-self.connections // self.threads)),
        }
        if self.path is not None:
            env["STACKBENCH_PATH"] = self.path
        if ids_file is not None:
            env["STACKBENCH_IDS_FILE"] = ids_file
        elif self.ids_file is not None:
            env["STACKBENCH_IDS_FILE"] = str(self.ids_file)
        if users_file is not None:
            env["STACKBENCH_USERS_FILE"] = users_file
        if self.body is not None:
            env["STACKBENCH_BODY"] = self.body
        if self.method is not None:
            env["STACKBENCH_METHOD"] = self.method
        if self.token is not None:
            env["STACKBENCH_TOKEN"] = self.token
        if self.headers:
            env["STACKBENCH_HEADERS"] = "\n".join(f"{k}: {v}" for k, v in self.headers.items())
        return env

    def describe(self) -> dict[str, Any]:
        """What the results print about the driver (no token)."""
        return {
            "driver": "wrk",
            "command": self.command(),
            "script": self.script_path.name,
            "threads": self.threads,
            "connections": self.connections,
            "duration_s": self.seconds,
            "timeout_s": self.timeout_s,
            "path": self.path,
            "ids": len(self.ids) if self.ids is not None else None,
            "users": len(self.users) if self.users else 1,  # the users the requests are spread over
            "count_responses": self.count_responses,
            "cpus": list(self.cpus) if self.cpus else None,
        }

    def run(self) -> dict[str, Any]:
        wrk = find_wrk(self.wrk_path)
        ids_file: str | None = None
        users_file: str | None = None
        try:
            if self.ids is not None:
                with tempfile.NamedTemporaryFile(
                    "w", prefix="stackbench-ids-", suffix=".txt", delete=False
                ) as f:
                    f.write("\n".join(str(i) for i in self.ids))
                    ids_file = f.name
            if self.users:
                with tempfile.NamedTemporaryFile(
                    "w", prefix="stackbench-users-", suffix=".txt", delete=False
                ) as f:
                    f.write(users_text(self.users))
                    users_file = f.name
            env = {**os.environ, **self.environment(ids_file, users_file)}
            result = run_measured(
                self.command(wrk),
                cpus=self.cpus,
                env=env,
                timeout=self.seconds + self.timeout_s + 30,
            )
        finally:
            for name in (ids_file, users_file):
                if name is not None:
                    os.unlink(name)
        return self.parse(result)

    def parse(self, result: ChildResult) -> dict[str, Any]:
        raw = parse_result_line(result.stdout)
        if result.returncode != 0 or raw is None:
            tail = "\n".join((result.stdout + result.stderr).splitlines()[-20:])
            why = "timed out" if result.timed_out else f"exit status {result.returncode}"
            raise WrkError(f"wrk failed ({why}): {result.argv}\n{tail}")
        return to_sample(raw, result, self)


def parse_result_line(stdout: str) -> dict[str, Any] | None:
    """The JSON object printed by lua/common.lua's done(), or None."""
    for line in reversed(stdout.splitlines()):
        if line.startswith(RESULT_MARKER):
            value = json.loads(line[len(RESULT_MARKER) :])
            return value if isinstance(value, dict) else None
    return None


def _ms(us: float | None) -> float | None:
    return None if us is None else us / 1000.0


def users_text(users: Sequence[tuple[str, Sequence[str | int]]]) -> str:
    """STACKBENCH_USERS_FILE: one line a user, its token then its ids, space separated."""
    for token, _ in users:
        if not token or any(c.isspace() for c in token):
            raise ValueError("a user's token must be non-empty and without whitespace")
    return "".join(f"{token} {' '.join(str(i) for i in ids)}\n" for token, ids in users)


def to_sample(raw: Mapping[str, Any], child: ChildResult, job: WrkJob) -> dict[str, Any]:
    """A RESULTS_SCHEMA sample from wrk's done() JSON and the client's rusage."""
    requests = int(raw["requests"])
    duration_s = float(raw["duration_us"]) / 1e6
    lat = raw["latency_us"]
    if requests > 0:
        latency_ms: dict[str, float | None] = {
            "p50": _ms(lat["p50"]),
            "p90": _ms(lat["p90"]),
            "p99": _ms(lat["p99"]),
            "p99_9": _ms(lat["p99_9"]),
            "max": _ms(lat["max"]),
        }
    else:  # wrk's empty histogram reports min = UINT64_MAX and zeros
        latency_ms = dict.fromkeys(("p50", "p90", "p99", "p99_9", "max"))
    errors = {k: int(raw["errors"][k]) for k in ("connect", "read", "write", "timeout", "status")}
    corrected_mean = _ms(lat.get("mean")) if requests else None
    uncorrected = raw.get("uncorrected_latency_us") or {}
    mean, source = corrected_mean, "wrk (corrected for coordinated omission)"
    if uncorrected.get("mean") is not None and uncorrected.get("answered"):
        mean, source = _ms(uncorrected["mean"]), "uncorrected (the scripts' own send and receive times)"
    sample: dict[str, Any] = {
        "requests": requests,
        "duration_s": duration_s,
        "rps": requests / duration_s if duration_s > 0 else 0.0,
        "latency_ms": latency_ms,
        "errors": errors,
        "client_cpu_pct": child.cpu_pct,
        "extra": {
            "driver": "wrk",
            "status_2xx": raw.get("status_2xx"),
            "non_2xx": raw.get("non_2xx"),
            "bytes": raw.get("bytes"),
            "latency_mean_ms": mean,
            "latency_mean_source": source,
            "latency_mean_corrected_ms": corrected_mean,
            "uncorrected_latency": uncorrected or None,
            "latency_stdev_ms": _ms(lat.get("stdev")) if requests else None,
            "latency_min_ms": _ms(lat.get("min")) if requests else None,
            "client_cpu_s": child.cpu_s,
            "client_wall_s": child.wall_s,
            "client_max_rss_bytes": child.max_rss_bytes,
            "wrk": job.describe(),
        },
    }
    if job.writes:
        sample["writes"] = {"acknowledged": raw.get("status_2xx"), "stored": None}
    return sample


def run_wrk(url: str, **options: Any) -> dict[str, Any]:
    """Shorthand for ``WrkJob(url, **options).run()``."""
    return WrkJob(url, **options).run()
