"""The raw ASGI application: routing and the small JSON endpoints.

No framework on purpose: the simulator must never be the slowest part of a benchmark, and a
framework's per-request routing, validation and response objects would cost more than the
simulated work itself.
"""

from __future__ import annotations

import itertools
import logging
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from upstream_sim import chunks
from upstream_sim.completions import (
    JSON_HEADERS,
    BadRequest,
    ChatRequest,
    Message,
    Receive,
    Scope,
    Send,
    complete,
    stream,
)
from upstream_sim.config import ConfigError, SimConfig, from_env, header_overrides, magic_overrides
from upstream_sim.state import INDEX, SharedState

MAX_BODY = 4 * 1024 * 1024  # prompts can be long; anything larger is a client bug
CREATED = int(time.time())
Handler = Callable[["Simulator", Scope, Receive, Send], Awaitable[None]]
_CUT_MESSAGE = "ASGI callable returned without completing response."


class Simulator:
    """The ASGI callable. `config` is the startup configuration (what `/control` `reset`
    restores); `state` is shared with sibling workers, a private one by default."""

    def __init__(self, config: SimConfig | None = None, state: SharedState | None = None):
        self.startup = config or SimConfig()
        self.state = state or SharedState(self.startup)
        self._ids = itertools.count(1)
        self._id_prefix = f"chatcmpl-sim{os.getpid():x}x"
        _quiet_intentional_cuts()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return  # websockets: returning without accepting makes the server answer 403
        self.state.bump(INDEX["requests"])
        try:
            await self._route(scope, receive, send)
        except BadRequest as exc:
            self.state.bump(INDEX["bad_requests"])
            body = chunks.error(str(exc), exc.status, param=exc.param, code=exc.code)
            await _json(send, exc.status, body)

    async def _route(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"]
        # Clients differ on whether the base URL ends in /v1; both spellings are served.
        key = path[3:] if path.startswith("/v1/") else path
        methods = ROUTES.get(key)
        if methods is None and key.startswith("/models/"):
            methods = {"GET": Simulator._model}
        if methods is None:
            raise BadRequest(f"Invalid URL ({scope['method']} {path})", status=404)
        handler = methods.get(scope["method"])
        if handler is None:
            raise BadRequest(f"Invalid method for URL ({scope['method']} {path})", status=405)
        await handler(self, scope, receive, send)

    # --- POST /v1/chat/completions ------------------------------------------------------------
    async def _completions(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = await _read_body(receive)
        if body is None:
            self.state.bump(INDEX["client_disconnects"])
            return
        request = ChatRequest(body)
        try:
            # Magic comes last: it is the most specific (this one conversation turn).
            changes = header_overrides(scope["headers"]) + magic_overrides(request.last_user_text())
            config = self.state.config().updated(changes)
        except ConfigError as exc:
            raise BadRequest(str(exc), exc.param, "invalid_value") from None
        self.state.bump(INDEX["completions"])
        t0 = time.monotonic()
        cid = self._id_prefix + str(next(self._ids))
        headers = [
            (b"x-request-id", cid.encode()),
            (b"x-sim-started", b"%.6f" % t0),
            (b"x-sim-ttft-ms", b"%g" % config.ttft_ms),
            (b"x-sim-inter-token-ms", b"%g" % config.inter_token_ms),
            (b"x-sim-tokens", b"%d" % config.tokens),
            (b"x-sim-fault", config.fault.encode()),
        ]
        if config.fault != "none":
            self.state.bump(INDEX["faults"])
        status = config.status
        if status is not None:
            await _json(send, status, chunks.error(status=status), headers)
        elif request.stream:
            await stream(send, receive, self.state, request, config, t0, cid, headers)
        else:
            await complete(send, receive, self.state, request, config, t0, cid, headers)

    # --- models, health, control, stats -------------------------------------------------------
    async def _models(self, scope: Scope, receive: Receive, send: Send) -> None:
        await _json(send, 200, orjson.dumps({"object": "list", "data": [self._model_object()]}))

    async def _model(self, scope: Scope, receive: Receive, send: Send) -> None:
        name = scope["path"].rsplit("/models/", 1)[1]
        if name != self.state.config().model:
            raise BadRequest(f"The model '{name}' does not exist", "model", "model_not_found", 404)
        await _json(send, 200, orjson.dumps(self._model_object()))

    def _model_object(self) -> dict[str, Any]:
        return {"id": self.state.config().model, "object": "model", "created": CREATED,
                "owned_by": "upstream-sim"}

    async def _health(self, scope: Scope, receive: Receive, send: Send) -> None:
        await _json(send, 200, b'{"status":"ok"}')

    async def _get_control(self, scope: Scope, receive: Receive, send: Send) -> None:
        await _json(send, 200, orjson.dumps(self.state.config().as_dict()))

    async def _post_control(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Partial update of the runtime settings; `"reset": true` first restores the startup
        configuration. Answers the settings now in force."""
        body = await _read_body(receive)
        if body is None:
            return
        try:
            changes = orjson.loads(body or b"{}")
        except orjson.JSONDecodeError:
            raise BadRequest("We could not parse the JSON body of your request.") from None
        if not isinstance(changes, dict):
            raise BadRequest("The /control body must be a JSON object.")
        reset = changes.pop("reset", False)
        if not isinstance(reset, bool):
            raise BadRequest("'reset' must be a boolean.", "reset", "invalid_type")
        base = self.startup if reset else self.state.config()
        try:
            config = base.updated(changes.items())
        except ConfigError as exc:
            raise BadRequest(str(exc), exc.param, "invalid_value") from None
        self.state.set_config(config)
        await _json(send, 200, orjson.dumps(config.as_dict()))

    async def _stats(self, scope: Scope, receive: Receive, send: Send) -> None:
        await _json(send, 200, orjson.dumps(self.state.stats()))

    async def _reset_stats(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.state.reset_stats()
        await _json(send, 200, orjson.dumps(self.state.stats()))


ROUTES: dict[str, dict[str, Handler]] = {
    "/chat/completions": {"POST": Simulator._completions},
    "/models": {"GET": Simulator._models},
    "/health": {"GET": Simulator._health},
    "/control": {"GET": Simulator._get_control, "POST": Simulator._post_control},
    "/stats": {"GET": Simulator._stats},
    "/stats/reset": {"POST": Simulator._reset_stats},
}


def create_app(config: SimConfig | None = None, state: SharedState | None = None) -> Simulator:
    """The ASGI app, for in-process use or any ASGI server."""
    return Simulator(config, state)


def app_from_env() -> Simulator:
    """uvicorn factory for `--workers N`: each worker process rebuilds the configuration from
    `UPSTREAM_SIM_*` and maps the state file the parent created (`UPSTREAM_SIM_STATE_FILE`)."""
    config = from_env()
    path = os.environ.get("UPSTREAM_SIM_STATE_FILE")
    return Simulator(config, SharedState(config, path, create=False) if path else None)


async def _read_body(receive: Receive) -> bytes | None:
    """The request body, or None if the client left first."""
    parts = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        part = message.get("body", b"")
        size += len(part)
        if size > MAX_BODY:
            raise BadRequest(f"Request body larger than {MAX_BODY} bytes.", status=413)
        parts.append(part)
        if not message.get("more_body", False):
            return b"".join(parts)


async def _json(send: Send, status: int, body: bytes,
                headers: list[tuple[bytes, bytes]] | None = None) -> None:
    start_headers = [*JSON_HEADERS, (b"content-length", b"%d" % len(body)), *(headers or ())]
    await send({"type": "http.response.start", "status": status, "headers": start_headers})
    await send({"type": "http.response.body", "body": body})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message: Message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def _drop_cut_message(record: logging.LogRecord) -> bool:
    return record.msg != _CUT_MESSAGE


def _quiet_intentional_cuts() -> None:
    """The `disconnect` fault cuts responses on purpose; uvicorn logs each cut as an error, which
    would bury real errors in a fault test's log. Idempotent."""
    logger = logging.getLogger("uvicorn.error")
    if _drop_cut_message not in logger.filters:
        logger.addFilter(_drop_cut_message)
