"""A user's scenario file (TOML): the requests `stackbench bench --app/--target` sends.

```toml
name = "todo"              # optional; the results' profile says "byo:<name>"
ready_path = "/health"     # optional: the path that answers 200 once the server is up ("/")

[[request]]
name = "list"              # letters, digits, "-" and "_": it names the results cell
method = "GET"             # default GET
path = "/todos"
expect_status = 200        # default 200
weight = 3                 # share in the weighted "mix" cell (default 1; 0: not in the mix)
check = { pointer = "/0/title", exists = true }      # optional JSON-pointer check (RFC 6901)

[[request]]
name = "get"
path = "/todos/{id}"
values.id = { range = [1, 20] }                        # inclusive; or { list = [...] }
check = { pointer = "/id", equals = "{id}" }           # "{var}" is filled in the expectation too

[[request]]
name = "create"
method = "POST"
path = "/todos"
headers = { "Content-Type" = "application/json" }
body = '{"title": "item {n}"}'                         # or json = { title = "item {n}" }
expect_status = 201
values.n = { range = [1, 1000] }
```

`{var}` in the path, a header or the body takes a value from `values.var` (drawn at random for
each prepared request). Every request is checked against a live server before anything is
measured (`verify`): the expected status, and the pointer check when given — a server that fails
is not benchmarked. Under load every response outside 2xx counts as a status error, as wrk counts
it (the verification is where other statuses are checked).
"""

from __future__ import annotations

import itertools
import json
import random
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

NAME = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
MAX_VARIANTS = 1000  # prepared requests per request entry (wrk picks among them at random)
MAX_RANGE = 1_000_000


class ScenarioFileError(ValueError):
    """The file does not say what the format above says (the message names the entry)."""


class VerificationFailed(RuntimeError):
    """A request did not get the answer its entry expects."""


@dataclass(frozen=True)
class Check:
    pointer: str
    equals: Any = None
    exists: bool = True
    has_equals: bool = False


@dataclass(frozen=True)
class Prepared:
    """One concrete request: what is sent, and the check with its placeholders filled."""

    method: str
    path: str
    headers: dict[str, str]
    body: str | None
    check: Check | None


@dataclass(frozen=True)
class UserRequest:
    name: str
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    body: str | None = None
    expect_status: int = 200
    weight: float = 1.0
    check: Check | None = None
    values: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def variants(self, seed: int = 1, limit: int = MAX_VARIANTS) -> list[Prepared]:
        """Up to `limit` concrete requests: every combination of the values when there are that
        few, else `limit` random draws (seeded: the same file gives the same requests)."""
        names = sorted(self.values)
        pools = [self.values[n] for n in names]
        total = 1
        for pool in pools:
            total *= len(pool)
        if total <= limit:
            combos = [dict(zip(names, combo, strict=True)) for combo in itertools.product(*pools)]
        else:
            rng = random.Random(seed)
            combos = [{n: rng.choice(p) for n, p in zip(names, pools, strict=True)} for _ in range(limit)]
        return [self._fill(values) for values in combos]

    def _fill(self, values: Mapping[str, str]) -> Prepared:
        def fill(text: str) -> str:
            return PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), text)
        check = self.check
        if check is not None and check.has_equals and isinstance(check.equals, str):
            check = Check(check.pointer, fill(check.equals), check.exists, True)
        return Prepared(self.method, fill(self.path), {k: fill(v) for k, v in self.headers.items()},
                        fill(self.body) if self.body is not None else None, check)


@dataclass(frozen=True)
class ScenarioFile:
    name: str
    requests: tuple[UserRequest, ...]
    ready_path: str = "/"
    source: str | None = None

    def request(self, name: str) -> UserRequest:
        for r in self.requests:
            if r.name == name:
                return r
        raise KeyError(name)

    @property
    def mix(self) -> tuple[UserRequest, ...]:
        """The requests in the weighted mix (weight > 0)."""
        return tuple(r for r in self.requests if r.weight > 0)


# -- parsing -----------------------------------------------------------------------------------

def _values(where: str, raw: Any) -> dict[str, tuple[str, ...]]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ScenarioFileError(f"{where}.values must be a table of name = {{list = [...]}} or {{range = [a, b]}}")
    out: dict[str, tuple[str, ...]] = {}
    for name, spec in raw.items():
        at = f"{where}.values.{name}"
        if not isinstance(spec, Mapping) or len(spec) != 1 or not ({"list", "range"} & set(spec)):
            raise ScenarioFileError(f"{at} must be {{list = [...]}} or {{range = [first, last]}}")
        if "list" in spec:
            items = spec["list"]
            if not isinstance(items, list) or not items:
                raise ScenarioFileError(f"{at}.list must be a non-empty list")
            out[name] = tuple(json.dumps(v) if isinstance(v, bool) else str(v) for v in items)
        else:
            bounds = spec["range"]
            if (not isinstance(bounds, list) or len(bounds) != 2
                    or not all(isinstance(b, int) and not isinstance(b, bool) for b in bounds)
                    or bounds[0] > bounds[1] or bounds[1] - bounds[0] >= MAX_RANGE):
                raise ScenarioFileError(f"{at}.range must be [first, last], integers, first ≤ last, "
                                        f"fewer than {MAX_RANGE:,} values")
            out[name] = tuple(str(i) for i in range(bounds[0], bounds[1] + 1))
    return out


def _check(where: str, raw: Any) -> Check | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping) or not isinstance(raw.get("pointer"), str):
        raise ScenarioFileError(f"{where}.check must be {{pointer = \"/a/0/b\", equals = … | exists = true}}")
    pointer = raw["pointer"]
    if pointer and not pointer.startswith("/"):
        raise ScenarioFileError(f"{where}.check.pointer must be empty or start with '/' (RFC 6901)")
    unknown = set(raw) - {"pointer", "equals", "exists"}
    if unknown:
        raise ScenarioFileError(f"{where}.check: unknown keys {sorted(unknown)}")
    exists = raw.get("exists", True)
    if not isinstance(exists, bool):
        raise ScenarioFileError(f"{where}.check.exists must be true or false")
    return Check(pointer, raw.get("equals"), exists, "equals" in raw)


def _request(i: int, raw: Any) -> UserRequest:
    where = f"request[{i}]"
    if not isinstance(raw, Mapping):
        raise ScenarioFileError(f"{where} must be a table")
    known = {"name", "method", "path", "headers", "body", "json", "expect_status", "weight", "check", "values"}
    unknown = set(raw) - known
    if unknown:
        raise ScenarioFileError(f"{where}: unknown keys {sorted(unknown)} (known: {', '.join(sorted(known))})")
    name = raw.get("name", f"r{i}")
    if not isinstance(name, str) or not NAME.match(name) or name == "mix":
        raise ScenarioFileError(f"{where}.name {name!r}: letters, digits, '-', '_' (and not 'mix')")
    where = f"request {name!r}"
    method = str(raw.get("method", "GET")).upper()
    if method not in METHODS:
        raise ScenarioFileError(f"{where}.method {method!r}: one of {', '.join(METHODS)}")
    path = raw.get("path")
    if not isinstance(path, str) or not path.startswith("/"):
        raise ScenarioFileError(f"{where}.path must start with '/'")
    headers = raw.get("headers") or {}
    if not isinstance(headers, Mapping) or not all(isinstance(v, str) for v in headers.values()):
        raise ScenarioFileError(f"{where}.headers must be a table of strings")
    headers = {str(k): v for k, v in headers.items()}
    if "body" in raw and "json" in raw:
        raise ScenarioFileError(f"{where}: body or json, not both")
    body = raw.get("body")
    if "json" in raw:
        body = json.dumps(raw["json"])
        headers.setdefault("Content-Type", "application/json")
    if body is not None and not isinstance(body, str):
        raise ScenarioFileError(f"{where}.body must be a string (use json = … for a table)")
    status = raw.get("expect_status", 200)
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
        raise ScenarioFileError(f"{where}.expect_status must be an HTTP status (100–599)")
    weight = raw.get("weight", 1)
    if not isinstance(weight, int | float) or isinstance(weight, bool) or weight < 0:
        raise ScenarioFileError(f"{where}.weight must be a number ≥ 0")
    values = _values(where, raw.get("values"))
    used = set(PLACEHOLDER.findall(path + (body or "") + "".join(headers.values())))
    missing = used - set(values)
    if missing and "json" not in raw:  # JSON bodies may hold braces of their own
        raise ScenarioFileError(f"{where}: placeholders {sorted(missing)} have no values")
    return UserRequest(name, method, path, headers, body, status, float(weight),
                       _check(where, raw.get("check")), values)


def parse(data: Mapping[str, Any], source: str | None = None) -> ScenarioFile:
    unknown = set(data) - {"name", "ready_path", "request"}
    if unknown:
        raise ScenarioFileError(f"unknown top-level keys {sorted(unknown)} (name, ready_path, [[request]])")
    raw = data.get("request")
    if not isinstance(raw, list) or not raw:
        raise ScenarioFileError("no [[request]] entries")
    requests = tuple(_request(i, r) for i, r in enumerate(raw))
    names = [r.name for r in requests]
    if len(set(names)) != len(names):
        raise ScenarioFileError(f"request names repeat: {names}")
    ready = data.get("ready_path", "/")
    if not isinstance(ready, str) or not ready.startswith("/"):
        raise ScenarioFileError("ready_path must start with '/'")
    name = data.get("name", "scenario")
    if not isinstance(name, str) or not NAME.match(name):
        raise ScenarioFileError(f"name {name!r}: letters, digits, '-', '_'")
    return ScenarioFile(name, requests, ready, source)


def load(path: Path | str) -> ScenarioFile:
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioFileError(f"{path}: {exc}") from exc
    return parse(data, str(path))


# -- verification ------------------------------------------------------------------------------

_MISSING = object()


def resolve_pointer(document: Any, pointer: str) -> Any:
    """RFC 6901: the value at `pointer` in `document`, or `_MISSING`."""
    if pointer == "":
        return document
    node = document
    for token in pointer[1:].split("/"):
        token = token.replace("~1", "/").replace("~0", "~")
        if isinstance(node, Mapping):
            if token not in node:
                return _MISSING
            node = node[token]
        elif isinstance(node, list):
            if not token.isdigit() or int(token) >= len(node):
                return _MISSING
            node = node[int(token)]
        else:
            return _MISSING
    return node


def _matches(value: Any, expected: Any) -> bool:
    """Equal, or a number whose text is the (filled-in) expected string (`{id}` → "5" vs 5)."""
    if value == expected:
        return True
    number = isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(expected, str) and number and str(value) == expected


def check_response(request: UserRequest, prepared: Prepared, status: int, body: bytes) -> str | None:
    """Why this answer is not the one the entry expects (None: it is)."""
    label = f"{request.name}: {prepared.method} {prepared.path}"
    if status != request.expect_status:
        return f"{label} answered {status}, expected {request.expect_status} ({body[:200]!r})"
    check = prepared.check
    if check is None:
        return None
    try:
        document = json.loads(body)
    except ValueError:
        return f"{label}: the body is not JSON, cannot check {check.pointer!r} ({body[:200]!r})"
    value = resolve_pointer(document, check.pointer)
    if value is _MISSING:
        return None if not check.exists else f"{label}: nothing at {check.pointer!r} in {body[:200]!r}"
    if not check.exists:
        return f"{label}: {check.pointer!r} exists ({value!r}), expected it absent"
    if check.has_equals and not _matches(value, check.equals):
        return f"{label}: {check.pointer!r} is {value!r}, expected {check.equals!r}"
    return None


def verify(base_url: str, scenario: ScenarioFile, *, per_request: int = 3, timeout_s: float = 10.0,
           seed: int = 1) -> list[str]:
    """Send every request (its first `per_request` prepared variants) to `base_url`; raise
    VerificationFailed with every mismatch, else return what was checked."""
    problems: list[str] = []
    checked: list[str] = []
    with httpx.Client(base_url=base_url, timeout=timeout_s) as client:
        for request in scenario.requests:
            for prepared in request.variants(seed)[:per_request]:
                try:
                    response = client.request(prepared.method, prepared.path, headers=prepared.headers,
                                              content=prepared.body.encode() if prepared.body is not None else None)
                except httpx.HTTPError as exc:
                    problems.append(f"{request.name}: {prepared.method} {prepared.path}: {exc!r}")
                    continue
                why = check_response(request, prepared, response.status_code, response.content)
                if why:
                    problems.append(why)
                else:
                    checked.append(f"{prepared.method} {prepared.path} → {response.status_code}")
    if problems:
        raise VerificationFailed("verification failed:\n  " + "\n  ".join(problems))
    return checked


def weighted(requests: Sequence[UserRequest]) -> list[tuple[float, UserRequest]]:
    total = sum(r.weight for r in requests)
    return [(r.weight / total, r) for r in requests] if total else []
