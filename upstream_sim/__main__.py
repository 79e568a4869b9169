"""`python -m upstream_sim`: run the simulator in the foreground under uvicorn.

Every behaviour flag defaults to its `UPSTREAM_SIM_*` environment variable, then to the
built-in default; see the package docstring for what each one does.
"""

from __future__ import annotations

import argparse
import os
import tempfile

from upstream_sim.config import FAULTS, ConfigError, SimConfig, from_env, to_env

_BEHAVIOUR = {  # flag -> SimConfig field
    "ttft_ms": "time to first token, ms",
    "inter_token_ms": "delay between tokens, ms",
    "tokens": "content tokens per answer",
    "fault": f"fault mode: {', '.join(FAULTS)} or status:NNN",
    "slow_ms": "time to first token of the `slow` fault, ms",
    "fault_after": "tokens sent before disconnect/truncate/malformed strike",
    "model": "model name listed by /v1/models",
}


def parse(argv: list[str] | None = None) -> tuple[argparse.Namespace, SimConfig]:
    env = os.environ
    parser = argparse.ArgumentParser(
        prog="python -m upstream_sim",
        description="OpenAI-compatible streaming chat-completions simulator.",
    )
    parser.add_argument("--host", default=env.get("UPSTREAM_SIM_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(env.get("UPSTREAM_SIM_PORT", "8099")))
    parser.add_argument("--workers", type=int, default=int(env.get("UPSTREAM_SIM_WORKERS", "1")),
                        help="worker processes (they share /control settings and /stats)")
    parser.add_argument("--backlog", type=int, default=4096,
                        help="listen backlog: a benchmark may open thousands of streams at once")
    parser.add_argument("--log-level", default="warning")
    for key, text in _BEHAVIOUR.items():
        parser.add_argument("--" + key.replace("_", "-"), dest=key, default=None,
                            help=f"{text} (env UPSTREAM_SIM_{key.upper()})")
    args = parser.parse_args(argv)
    if not 1 <= args.workers <= 64:
        parser.error("--workers must be from 1 to 64")
    try:
        flags = [(key, getattr(args, key)) for key in _BEHAVIOUR if getattr(args, key) is not None]
        config = from_env().updated(flags)
    except ConfigError as exc:
        parser.error(str(exc))
    return args, config


def main(argv: list[str] | None = None) -> None:
    args, config = parse(argv)
    import uvicorn

    from upstream_sim.app import create_app
    from upstream_sim.state import SharedState

    options = {
        "host": args.host,
        "port": args.port,
        "loop": "uvloop",
        "http": "httptools",
        "lifespan": "off",
        "access_log": False,  # a log line per request would cost more than the request
        "log_level": args.log_level,
        "backlog": args.backlog,
        "timeout_graceful_shutdown": 1,  # open streams must not hold a shutdown for minutes
        "timeout_keep_alive": 30,
    }
    if args.workers == 1:
        uvicorn.run(create_app(config), **options)  # type: ignore[arg-type]
        return
    # Several workers: uvicorn spawns fresh interpreters that import a factory; they inherit
    # the configuration through the environment and share settings/counters through a file.
    fd, path = tempfile.mkstemp(prefix="upstream-sim-", suffix=".state")
    os.close(fd)
    try:
        SharedState(config, path, create=True, claim=False)
        os.environ.update(to_env(config))
        os.environ["UPSTREAM_SIM_STATE_FILE"] = path
        uvicorn.run("upstream_sim.app:app_from_env", factory=True, workers=args.workers,
                    **options)  # type: ignore[arg-type]
    finally:
        os.unlink(path)


if __name__ == "__main__":
    main()
