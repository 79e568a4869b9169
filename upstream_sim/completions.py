"""`POST /v1/chat/completions`: request validation, then the answer on its schedule.

Schedule: the request's start `t0` is `time.monotonic()` once its body is read (sent back as
`X-Sim-Started`); the role chunk and content token 0 go out at `t0 + ttft`, token i at
`t0 + ttft + i * inter_token`. The schedule is absolute, so a late wake-up (a busy loop) is
caught up by writing every token already due in one write rather than drifting later and later.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

from upstream_sim import chunks
from upstream_sim.config import SimConfig
from upstream_sim.state import INDEX, SharedState

Message = MutableMapping[str, Any]  # ASGI messages and scopes, typed as ASGI servers type them
Scope = Message
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
CUTTING = frozenset({"disconnect", "truncate", "malformed"})  # faults that strike mid-answer
SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]
JSON_HEADERS = [(b"content-type", b"application/json")]


class BadRequest(Exception):
    """Answered as a 4xx OpenAI-style error before any response byte is sent."""

    def __init__(self, message: str, param: str | None = None, code: str | None = None,
                 status: int = 400) -> None:
        super().__init__(message)
        self.param, self.code, self.status = param, code, status


class ChatRequest:
    __slots__ = ("include_usage", "messages", "model", "stream")

    def __init__(self, body: bytes) -> None:
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise BadRequest("We could not parse the JSON body of your request.") from None
        if not isinstance(data, dict):
            raise BadRequest("The request body must be a JSON object.")
        model = data.get("model")
        if model is None:
            raise BadRequest("You must provide a model parameter.", "model",
                             "missing_required_parameter")
        if not isinstance(model, str) or not 0 < len(model) <= 256:
            raise BadRequest("Invalid 'model': expected a non-empty string.", "model", "invalid_type")
        self.model: str = model
        self.messages: list[Message] = _messages(data.get("messages"))
        stream = data.get("stream")
        if stream is not None and not isinstance(stream, bool):
            raise BadRequest("Invalid type for 'stream': expected a boolean.", "stream", "invalid_type")
        self.stream = bool(stream)
        self.include_usage = _include_usage(data.get("stream_options"), self.stream)

    def last_user_text(self) -> str:
        for message in reversed(self.messages):
            if message["role"] == "user":
                return _text(message.get("content"))
        return ""

    def usage(self, completion_tokens: int) -> dict[str, int]:
        """Word counts stand in for a tokenizer: clients only check the shape and the sum."""
        prompt = sum(len(_text(m.get("content")).split()) + 3 for m in self.messages)
        return {"prompt_tokens": prompt, "completion_tokens": completion_tokens,
                "total_tokens": prompt + completion_tokens}


def _messages(messages: Any) -> list[Message]:
    if messages is None:
        raise BadRequest("Missing required parameter: 'messages'.", "messages",
                         "missing_required_parameter")
    if not isinstance(messages, list):
        raise BadRequest("Invalid type for 'messages': expected an array.", "messages", "invalid_type")
    if not messages:
        raise BadRequest("Invalid 'messages': empty array. Expected an array with minimum length 1.",
                         "messages", "empty_array")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise BadRequest(f"Invalid 'messages[{i}]': expected an object with a string 'role'.",
                             f"messages[{i}]", "invalid_type")
        if message["role"] not in ROLES:
            raise BadRequest(f"Invalid value for 'messages[{i}].role': {message['role']!r}.",
                             f"messages[{i}].role", "invalid_value")
        if not isinstance(message.get("content"), str | list | None):
            raise BadRequest(f"Invalid type for 'messages[{i}].content'.",
                             f"messages[{i}].content", "invalid_type")
    return messages


def _include_usage(options: Any, stream: bool) -> bool:
    if options is None:
        return False
    if not stream:
        raise BadRequest("The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                         "stream_options", "invalid_value")
    if not isinstance(options, dict) or not isinstance(options.get("include_usage", False), bool):
        raise BadRequest("Invalid 'stream_options'.", "stream_options", "invalid_type")
    return bool(options.get("include_usage", False))


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: [{"type": "text", "text": …}, …]
        return " ".join(p["text"] for p in content if isinstance(p, dict)
                        and isinstance(p.get("text"), str))
    return ""


class Watch:
    """Notices the client leaving without polling: one task parked on `receive()` per request.
    uvicorn silently drops a `send` to a gone client, so without it an abandoned stream (a 60 s
    `slow` one above all) would keep its slot and count as active to its scheduled end."""

    __slots__ = ("finished", "gone", "task")

    def __init__(self, receive: Receive) -> None:
        self.gone = False
        self.finished = False
        self.task = asyncio.ensure_future(self._wait(receive))

    async def _wait(self, receive: Receive) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        # uvicorn also reports a disconnect once the response is complete: not a departure.
        self.gone = not self.finished

    async def sleep_until(self, when: float, strict: bool = False) -> bool:
        """Sleep until monotonic `when`; False if the client left meanwhile. uvloop's timers
        have 1 ms resolution and may wake up to 1 ms early: `strict` sleeps again then."""
        delay = when - time.monotonic()
        if delay > 1.0:  # only long waits race the watcher: a task switch is not free
            await asyncio.wait((self.task,), timeout=delay)
            delay = when - time.monotonic()
        while delay > 0 and not self.gone:
            await asyncio.sleep(delay)
            delay = when - time.monotonic() if strict else 0
        return not self.gone

    def close(self) -> None:
        self.finished = True
        self.task.cancel()


async def stream(send: Send, receive: Receive, state: SharedState, request: ChatRequest,
                 config: SimConfig, t0: float, cid: str, headers: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS + headers})
    fault = config.fault
    limit = min(config.fault_after, config.tokens) if fault in CUTTING else config.tokens
    usage = request.usage(limit) if request.include_usage else None
    out = chunks.StreamChunks(cid, int(time.time()), request.model, usage)
    t_first = t0 + (config.slow_ms if fault == "slow" else config.ttft_ms) / 1000
    inter = config.inter_token_ms / 1000
    state.bump(INDEX["streams_active"])
    watch = Watch(receive)
    sent = 0
    try:
        if not await watch.sleep_until(t_first, strict=True):
            return
        body = out.role()
        while True:
            due = limit
            if inter > 0:
                due = min(limit, max(sent + 1, int((time.monotonic() - t_first) / inter) + 1))
            body += out.tokens(sent, due) if due > sent else b""
            sent = due
            if sent >= limit:
                break
            await send({"type": "http.response.body", "body": body, "more_body": True})
            body = b""
            if not await watch.sleep_until(t_first + sent * inter):
                return
        watch.finished = True
        if fault == "disconnect":
            # Returning mid-response makes the server drop the connection: no last chunk.
            await send({"type": "http.response.body", "body": body, "more_body": True})
            return
        if fault == "malformed":
            body += out.malformed()
        if fault != "truncate":  # truncate: a clean end of the HTTP body, but no [DONE]
            body += out.finish()
        await send({"type": "http.response.body", "body": body, "more_body": False})
        if fault == "none" or fault == "slow":
            state.bump(INDEX["streams_completed"])
    finally:
        # Counted once per stream, not per token: a per-token shared-memory write is measurable.
        state.bump(INDEX["tokens_sent"], sent)
        state.bump(INDEX["streams_active"], -1)
        state.bump(INDEX["client_disconnects"], watch.gone)
        watch.close()


async def complete(send: Send, receive: Receive, state: SharedState, request: ChatRequest,
                   config: SimConfig, t0: float, cid: str, headers: list[tuple[bytes, bytes]]) -> None:
    """`stream: false`: the whole answer once it would have finished streaming."""
    fault = config.fault
    first = (config.slow_ms if fault == "slow" else config.ttft_ms) / 1000
    total = first + max(0, config.tokens - 1) * config.inter_token_ms / 1000
    watch = Watch(receive)
    try:
        if not await watch.sleep_until(t0 + total, strict=True):
            state.bump(INDEX["client_disconnects"])
            return
        watch.finished = True
        body = chunks.completion(cid, request.model, config.tokens, request.usage(config.tokens))
        sent = body
        if fault in CUTTING:
            sent = body[: len(body) // 2]  # malformed: invalid JSON; the others: cut short
            if fault == "malformed":
                body = sent
        start_headers = [*JSON_HEADERS, (b"content-length", b"%d" % len(body)), *headers]
        await send({"type": "http.response.start", "status": 200, "headers": start_headers})
        # With `sent` shorter than content-length, returning makes the server drop the connection.
        await send({"type": "http.response.body", "body": sent, "more_body": sent is not body})
    finally:
        watch.close()
