"""Client of the tutor's upstream: any OpenAI-compatible chat-completions server.

Streams the answer token by token (`stream: true`, server-sent events) and turns every failure
(connect, timeout, HTTP error, malformed chunk, stream cut before `[DONE]`) into
`UpstreamFailed`. (Async source of truth; see tools/unasync.py.)

Time limits (issue 19, finding 4: a token every 12 s held a chat, and its worker, forever):
every wait for the next bytes is bounded by `upstream_read_timeout_s` (the idle timeout between
tokens), the first content token must come within `upstream_first_token_timeout_s`, and the
whole answer within `chat_deadline_s`. The last two are checked whenever the upstream sends
anything, so a stream ends at most one idle timeout past either limit.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson

from flashcards.errors import UpstreamFailed
from flashcards.settings import Settings


class UpstreamClient:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.url = settings.upstream_url.rstrip("/") + "/chat/completions"
        self.http = httpx.AsyncClient(
            timeout=httpx.Timeout(
                connect=settings.upstream_connect_timeout_s,
                read=min(settings.upstream_read_timeout_s, settings.chat_deadline_s),
                write=settings.upstream_connect_timeout_s,
                pool=settings.upstream_connect_timeout_s,
            ),
            limits=httpx.Limits(
                max_connections=settings.upstream_max_connections,
                max_keepalive_connections=settings.upstream_max_connections,
            ),
        )

    async def aclose(self) -> None:
        await self.http.aclose()

    async def stream(self, messages: list[dict[str, str]]) -> AsyncIterator[str]:
        """Yield the answer's content deltas as they arrive."""
        body = {"model": self.settings.upstream_model, "messages": messages, "stream": True}
        done = False
        started = time.monotonic()
        first_token_by = started + self.settings.upstream_first_token_timeout_s
        deadline = started + self.settings.chat_deadline_s
        tokens = 0
        try:
            async with self.http.stream("POST", self.url, json=body) as response:
                if response.status_code != 200:
                    await response.aread()
                    raise UpstreamFailed(f"The tutor upstream answered HTTP {response.status_code}.")
                async for line in response.aiter_lines():
                    now = time.monotonic()
                    if now > deadline:
                        raise UpstreamFailed(f"The tutor answer passed its {self.settings.chat_deadline_s:g} s deadline.")
                    if not tokens and now > first_token_by:
                        raise UpstreamFailed("The tutor upstream sent no first token in time.")
                    if not line.startswith("data:"):
                        continue  # blank separators, comments, event names
                    payload = line[5:].strip()
                    if payload == "[DONE]":
                        done = True
                        break
                    content = _delta_content(payload)
                    if content:
                        tokens += 1
                        yield content
        except httpx.TimeoutException:
            raise UpstreamFailed("The tutor upstream timed out.") from None
        except httpx.HTTPError as exc:
            raise UpstreamFailed(f"The tutor upstream failed: {type(exc).__name__}.") from None
        if not done:
            raise UpstreamFailed("The tutor upstream closed the stream before it finished.")


def _delta_content(payload: str) -> str:
    try:
        chunk: Any = orjson.loads(payload)
        choice = chunk["choices"][0]
        return choice.get("delta", {}).get("content") or ""
    except (orjson.JSONDecodeError, KeyError, IndexError, TypeError, AttributeError):
        raise UpstreamFailed("The tutor upstream sent a malformed chunk.") from None
