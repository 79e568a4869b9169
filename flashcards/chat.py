"""What a tutor chat stream carries to a client, whatever the transport (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import orjson

ChatEventType = Literal["message", "token", "done", "error"]

TUTOR_SYSTEM_PROMPT = (
    "You are a patient tutor. Answer the learner's question about their flashcards briefly."
)


@dataclass(frozen=True, slots=True)
class ChatEvent:
    """`message` (the stored user message and the id the answer will have), then `token`s, then
    `done` (the stored answer) or `error` (code, detail, and the partial answer stored as failed)."""

    type: ChatEventType
    data: dict[str, Any]

    def sse(self) -> bytes:
        return b"event: %s\ndata: %s\n\n" % (self.type.encode(), orjson.dumps(self.data))


def upstream_messages(message: str) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": TUTOR_SYSTEM_PROMPT},
        {"role": "user", "content": message},
    ]
