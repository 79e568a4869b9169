"""The simulator's behaviour settings, their validation, and the ways to override them.

One `SimConfig` is the startup configuration (defaults < `UPSTREAM_SIM_*` environment < CLI
flags); `/control` replaces it at runtime; a request narrows it further with `X-Sim-*` headers
and a `[[key:value ...]]` magic prefix in its last user message (see the package docstring).
Every value from any of these sources goes through `coerce`, so a bad value is one 400 message
wherever it came from.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

# Plain fault names; `status:NNN` is the one parameterised fault.
FAULTS = ("none", "fail", "slow", "disconnect", "truncate", "malformed")
MAX_MS = 3_600_000.0  # an hour: beyond any client timeout, short of a typo like 1e12
MAX_TOKENS = 100_000

HEADER_KEYS: dict[bytes, str] = {
    b"x-sim-ttft-ms": "ttft_ms",
    b"x-sim-inter-token-ms": "inter_token_ms",
    b"x-sim-tokens": "tokens",
    b"x-sim-fault": "fault",
    b"x-sim-slow-ms": "slow_ms",
    b"x-sim-fault-after": "fault_after",
}
ENV_PREFIX = "UPSTREAM_SIM_"


class ConfigError(ValueError):
    """A setting the simulator refuses; its message is sent back in a 400 error body."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


@dataclass(frozen=True, slots=True)
class SimConfig:
    ttft_ms: float = 300.0
    inter_token_ms: float = 30.0
    tokens: int = 20
    fault: str = "none"
    slow_ms: float = 60_000.0  # the `slow` fault's time to first token
    fault_after: int = 3  # content tokens sent before `disconnect`/`truncate`/`malformed` strike
    model: str = "tutor-sim"  # listed by /v1/models; completions echo the request's model

    def updated(self, changes: Iterable[tuple[str, Any]]) -> SimConfig:
        """A copy with `changes` applied, each validated; raises ConfigError."""
        values = {key: coerce(key, value) for key, value in changes}
        return dataclasses.replace(self, **values) if values else self

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def status(self) -> int | None:
        """The HTTP status of a `status:NNN` fault, `500` for `fail`, else None."""
        if self.fault == "fail":
            return 500
        if self.fault.startswith("status:"):
            return int(self.fault[7:])
        return None


KEYS = frozenset(field.name for field in dataclasses.fields(SimConfig))


def coerce(key: str, value: Any) -> Any:
    """Validate one setting from a header, env var, magic prefix (strings) or JSON (typed)."""
    if key not in KEYS:
        raise ConfigError(f"Unknown simulator setting {key!r}; known: {', '.join(sorted(KEYS))}.", key)
    if key == "fault":
        return _fault(value)
    if key == "model":
        if not isinstance(value, str) or not 0 < len(value) <= 256:
            raise ConfigError("'model' must be a non-empty string.", key)
        return value
    if isinstance(value, bool):  # True is an int in Python, never a duration
        raise ConfigError(f"{key!r} must be a number.", key)
    integral = key in ("tokens", "fault_after")
    try:
        number = int(value) if integral and isinstance(value, str) else float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{key!r} must be a number, not {value!r}.", key) from None
    if integral:
        if number != int(number) or not 0 <= number <= MAX_TOKENS:
            raise ConfigError(f"{key!r} must be an integer from 0 to {MAX_TOKENS}.", key)
        return int(number)
    if not 0 <= number <= MAX_MS:  # also refuses NaN
        raise ConfigError(f"{key!r} must be from 0 to {MAX_MS:.0f} ms.", key)
    return number


def _fault(value: Any) -> str:
    if not isinstance(value, str):
        raise ConfigError("'fault' must be a string.", "fault")
    fault = value.strip().lower() or "none"
    if fault in FAULTS:
        return fault
    if fault.startswith("status:"):
        code = fault[7:]
        if code.isdigit() and 200 <= int(code) <= 599:
            return f"status:{int(code)}"
    raise ConfigError(
        f"Unknown fault {value!r}; use one of {', '.join(FAULTS)} or status:NNN (200-599).", "fault"
    )


def from_env(environ: Mapping[str, str] | None = None, base: SimConfig | None = None) -> SimConfig:
    """`base` (default: the defaults) updated from `UPSTREAM_SIM_TTFT_MS` and friends."""
    environ = os.environ if environ is None else environ
    changes = [
        (key, environ[ENV_PREFIX + key.upper()])
        for key in sorted(KEYS)
        if ENV_PREFIX + key.upper() in environ
    ]
    return (base or SimConfig()).updated(changes)


def to_env(config: SimConfig) -> dict[str, str]:
    """The environment that makes `from_env` rebuild `config` (how workers get their config)."""
    return {ENV_PREFIX + key.upper(): str(value) for key, value in config.as_dict().items()}


def header_overrides(headers: Iterable[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    """The `X-Sim-*` request headers as (setting, raw value) pairs."""
    found = []
    for name, value in headers:
        if name.startswith(b"x-sim-"):  # ASGI servers lower-case header names
            key = HEADER_KEYS.get(name)
            if key is None:
                raise ConfigError(f"Unknown simulator header {name.decode('latin-1')!r}.")
            found.append((key, value.decode("latin-1")))
    return found


def magic_overrides(text: str) -> list[tuple[str, str]]:
    """Settings from a `[[fault:disconnect tokens:5]]` prefix of the last user message: the one
    channel that reaches the simulator through an app, which sets no headers of its own."""
    if not text.startswith("[["):
        return []
    end = text.find("]]")
    if end < 0:
        return []
    found = []
    for item in text[2:end].replace(",", " ").split():
        key, sep, value = item.partition(":")
        if not sep:
            raise ConfigError(f"Simulator magic item {item!r} is not key:value.")
        found.append((key.strip().lower().replace("-", "_"), value))
    return found
