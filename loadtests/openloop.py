"""Open-loop (fixed-rate) HTTP load with no coordinated omission.

Every request has a planned send time: request ``i`` is due at ``start + i / rate``, for
``warmup_s + duration_s`` seconds. Latency is counted from the planned time, not from the moment
the request went out, so a server stall shows in the tail as every user behind it saw it — a
closed-loop generator such as wrk stops sending while its connections wait and hides it
(wg/wrk #326, #485; Gil Tene's "coordinated omission").

The plan never waits for the server: a request due while every connection is busy opens a new
keep-alive HTTP/1.1 connection (raw asyncio streams, uvloop when importable), up to
``max_connections``; past the cap requests queue in the client and the sample says so
(``extra.connection_cap_hit``), their queueing still counted in their latency.

Only requests planned inside the measurement window (after the warmup) are measured. Per sample:

* ``latency_ms``: HdrHistogram(1 µs … 60 s, 3 digits) of completion − planned time over every
  measured request that got a response (any status, as wrk does); ``extra.latency_histogram`` is
  the histogram itself (HdrHistogram's base64 encoding) so that runs can be merged, not averaged.
  ``extra.latency_from_send_ms`` is the same population measured from the actual send (what a
  closed-loop tool would report; for comparison only).
* ``rps``: responses completed inside the window ÷ its length — the achieved rate, compared with
  the target: ``extra.achieved_fraction``; below `ACHIEVED_MIN` → ``extra.below_target``.
* ``extra.lag_ms``: actual send − planned time (client scheduling plus waiting for a
  connection); ``extra.schedule_lag_ms``: how late the client's own scheduler released the
  requests (its CPU); p99 above `LAG_LIMIT_MS` → ``extra.client_lagging``.
* ``errors``: connect (no connection), write, read (connection broken before a full response),
  timeout (no full response ``timeout_s`` after the send, or still waiting for a connection
  ``timeout_s`` after its planned time or at the end: ``extra.unsent``), status (a response
  outside 2xx). Timeouts are errors, not latencies (as in wrk).

The client is Python, so `run_open_loop` runs it in a separate process pinned to the client CPUs
(``python -m loadtests.openloop --json …``) and takes its CPU time from ``os.wait4``
(`loadtests.accounting.run_measured`), like the wrk driver. The client itself is
openloop_driver.py; its histograms, histograms.py.

`find_sustainable_rate` (loadtests/ratesearch.py) searches the highest offered rate that meets a p99 objective (with few
errors and the rate actually achieved): the figure TechEmpower #1227 asks for instead of a peak.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
import tempfile
from collections.abc import Sequence
from typing import Any

from loadtests.accounting import ChildResult, run_measured
from loadtests.openloop_driver import OpenLoopError, run_in_process
from loadtests.wire import RequestSpec

# -- the separate, pinned process ----------------------------------------------------------------


def command(url: str, spec_file: str, rate: float, duration_s: float, warmup_s: float,
            max_connections: int, timeout_s: float, seed: int | None,
            python: str = sys.executable) -> list[str]:
    argv = [python, "-m", "loadtests.openloop", "--json", "--url", url, "--spec-file", spec_file,
            "--rate", repr(float(rate)), "--duration", repr(float(duration_s)),
            "--warmup", repr(float(warmup_s)), "--max-connections", str(max_connections),
            "--timeout", repr(float(timeout_s))]
    if seed is not None:
        argv += ["--seed", str(seed)]
    return argv


def run_open_loop(
    url: str,
    spec: RequestSpec,
    rate: float,
    duration_s: float,
    warmup_s: float,
    *,
    max_connections: int = 512,
    timeout_s: float = 2.0,
    cpus: Sequence[int] | None = None,
    seed: int | None = None,
    python: str = sys.executable,
) -> dict[str, Any]:
    """Offer ``rate`` requests/s of ``spec`` to ``url`` for ``warmup_s`` + ``duration_s`` from a
    separate process pinned to ``cpus``; a RESULTS_SCHEMA sample (no server metrics).

    ``client_cpu_pct`` is the client process's whole life from ``os.wait4`` (interpreter start
    included, as for wrk); ``extra.client_cpu_pct_window`` is its CPU during the plan only.
    """
    with tempfile.NamedTemporaryFile("w", prefix="stackbench-openloop-", suffix=".json",
                                     delete=False) as f:
        f.write(spec.to_json())
        spec_file = f.name
    argv = command(url, spec_file, rate, duration_s, warmup_s, max_connections, timeout_s, seed,
                   python)
    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    try:
        child = run_measured(argv, cpus=cpus, env=env,
                             timeout=warmup_s + duration_s + 2 * timeout_s + 30)
    finally:
        os.unlink(spec_file)
    return parse_child(child, cpus)


def parse_child(child: ChildResult, cpus: Sequence[int] | None = None) -> dict[str, Any]:
    sample: dict[str, Any] | None = None
    for line in reversed(child.stdout.splitlines()):
        if line.startswith("{"):
            sample = json.loads(line)
            break
    if child.returncode != 0 or sample is None:
        tail = "\n".join((child.stdout + child.stderr).splitlines()[-20:])
        why = "timed out" if child.timed_out else f"exit status {child.returncode}"
        raise OpenLoopError(f"open-loop client failed ({why}): {child.argv}\n{tail}")
    sample["client_cpu_pct"] = child.cpu_pct
    sample["extra"].update({
        "client_cpu_s": child.cpu_s,
        "client_wall_s": child.wall_s,
        "client_max_rss_bytes": child.max_rss_bytes,
        "cpus": sorted(set(cpus)) if cpus else None,
    })
    return sample


# -- command line --------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests.openloop", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True, help="http://host:port")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--spec-file", help="a JSON RequestSpec (method, path, body, headers, ids)")
    source.add_argument("--spec", help="the same JSON inline")
    parser.add_argument("--rate", type=float, required=True, help="requests per second")
    parser.add_argument("--duration", type=float, required=True, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=0.0, help="seconds before the window")
    parser.add_argument("--max-connections", type=int, default=512)
    parser.add_argument("--timeout", type=float, default=2.0, help="per-request timeout, s")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--json", action="store_true", help="print one JSON line (the sample)")
    parser.add_argument("--offset", type=float, default=0.0, help="phase of this part, s")
    parser.add_argument("--ready-file", help="a split plan: created when this part is ready")
    parser.add_argument("--start-file", help="a split plan: holds the shared monotonic start")
    args = parser.parse_args(argv)
    if args.spec_file:
        with open(args.spec_file) as f:
            spec = RequestSpec.from_json(f.read())
    else:
        spec = RequestSpec.from_json(args.spec)
    with contextlib.suppress(ImportError, ValueError, OSError):
        from loadtests.realtime import raise_open_files_limit

        raise_open_files_limit(args.max_connections + 64)
    start_at = None
    if args.start_file:
        from loadtests.openloop_split import await_start

        start_at = await_start(args.ready_file, args.start_file)
    sample = run_in_process(args.url, spec, args.rate, args.duration, args.warmup,
                            max_connections=args.max_connections, timeout_s=args.timeout,
                            seed=args.seed, start_at=start_at, offset_s=args.offset,
                            part_histograms=start_at is not None)
    if args.json:
        print(json.dumps(sample), flush=True)
    else:
        lat = sample["latency_ms"]
        extra = sample["extra"]
        print(f"target {args.rate:g}/s achieved {sample['rps']:.1f}/s "
              f"({extra['achieved_fraction']:.1%}); p50 {lat['p50']} ms p99 {lat['p99']} ms "
              f"max {lat['max']} ms; errors {sample['errors']}; flags {extra['flags']}")
    return 0 if math.isfinite(sample["rps"]) else 1


if __name__ == "__main__":
    sys.exit(main())
