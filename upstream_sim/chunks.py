"""Bytes on the wire, in OpenAI's chat-completions format; built so that a token costs one
`bytes` concatenation.

A streamed chunk is `data: {"id":…,"object":"chat.completion.chunk","created":…,"model":…,
"system_fingerprint":…,"choices":[{"index":0,"delta":{…},"logprobs":null,"finish_reason":…}]}`
plus a blank line. Everything before `"choices":` depends on the request only (its `head`);
everything after depends on the token's position in the answer only, and the answer cycles a
fixed list of words, so those tails are encoded once per process, at import.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

ANSWER = (
    "Spaced repetition works because each review, timed just before you would forget, makes "
    "the memory last longer. Answer the card from memory first, then check it, and grade "
    "yourself honestly: a lapse today saves a week of false confidence."
)
WORDS = tuple(ANSWER.split())
FINGERPRINT = "fp_upstream_sim"
DONE = b"data: [DONE]\n\n"


def token_text(i: int) -> str:
    """The i-th content token (0-based): a word and a trailing space."""
    return WORDS[i % len(WORDS)] + " "


def answer_text(tokens: int) -> str:
    """What `"".join(...)` of a complete answer's content deltas is."""
    return "".join(token_text(i) for i in range(tokens))


def _choice(delta: bytes, finish: bytes) -> bytes:
    return b'[{"index":0,"delta":' + delta + b',"logprobs":null,"finish_reason":' + finish + b"}]"


# With `stream_options.include_usage` every chunk carries `"usage":null`, as OpenAI's do.
_CLOSE = (b"}\n\n", b',"usage":null}\n\n')
_TOKEN_TAILS = tuple(
    tuple(
        _choice(b'{"content":' + orjson.dumps(word + " ") + b"}", b"null") + close
        for word in WORDS
    )
    for close in _CLOSE
)
_ROLE_TAILS = tuple(
    _choice(b'{"role":"assistant","content":"","refusal":null}', b"null") + close
    for close in _CLOSE
)
_STOP_TAILS = tuple(_choice(b"{}", b'"stop"') + close for close in _CLOSE)


class StreamChunks:
    """The chunks of one streamed answer."""

    __slots__ = ("head", "tails", "usage")

    def __init__(self, cid: str, created: int, model: str, usage: dict[str, int] | None):
        self.head = (
            b'data: {"id":"%s","object":"chat.completion.chunk","created":%d,"model":%s,'
            b'"system_fingerprint":"%s","choices":'
            % (cid.encode(), created, orjson.dumps(model), FINGERPRINT.encode())
        )
        self.usage = usage  # None unless the request asked for a usage chunk
        self.tails = _TOKEN_TAILS[usage is not None]

    def role(self) -> bytes:
        return self.head + _ROLE_TAILS[self.usage is not None]

    def tokens(self, start: int, stop: int) -> bytes:
        """Content tokens start..stop-1 (usually just one: then no join)."""
        head, tails, n = self.head, self.tails, len(self.tails)
        if stop == start + 1:
            return head + tails[start % n]
        return b"".join([head + tails[i % n] for i in range(start, stop)])

    def finish(self) -> bytes:
        """The stop chunk, the usage chunk if asked for, and `[DONE]`."""
        parts = [self.head + _STOP_TAILS[self.usage is not None]]
        if self.usage is not None:
            parts.append(self.head + b'[],"usage":' + orjson.dumps(self.usage) + b"}\n\n")
        parts.append(DONE)
        return b"".join(parts)

    def malformed(self) -> bytes:
        """A chunk cut off mid-JSON, as a broken proxy or a crashed generator sends it."""
        return self.head + b'[{"index":0,"delta":{"content":"Spac\n\n'


def completion(cid: str, model: str, tokens: int, usage: dict[str, int]) -> bytes:
    """The `stream: false` answer."""
    body: dict[str, Any] = {
        "id": cid,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": FINGERPRINT,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": answer_text(tokens), "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": usage,
    }
    return orjson.dumps(body)


# OpenAI's error `type` and a typical message for the statuses a fault can answer.
_ERRORS = {
    400: ("invalid_request_error", None, "Bad request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: ("invalid_request_error", "unsupported_country_region_territory", "Forbidden."),
    404: ("invalid_request_error", "model_not_found", "The model does not exist."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached. Please try again later."),
    500: ("server_error", None, "The server had an error while processing your request."),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
}


def error(message: str | None = None, status: int = 400, *, param: str | None = None,
          code: str | None = None, kind: str | None = None) -> bytes:
    """An OpenAI-style error body: `{"error": {"message", "type", "param", "code"}}`; without a
    `message`, the typical message and code of `status` (how faults answer)."""
    default_kind, default_code, default_message = _ERRORS.get(
        status, ("server_error" if status >= 500 else "invalid_request_error", None,
                 f"The simulator answered HTTP {status}.")
    )
    return orjson.dumps(
        {
            "error": {
                "message": message or default_message,
                "type": kind or default_kind,
                "param": param,
                "code": code if message else code or default_code,
            }
        }
    )
