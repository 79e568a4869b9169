"""Is `module:attr` a WSGI app, an ASGI app, or a factory of one? Run in a child process
(`python -m loadtests.appdetect module:attr`, the user's directory on PYTHONPATH) so that the
user's import side effects stay out of the harness; prints one JSON line
{"interface": "asgi"|"wsgi", "factory": bool} or {"error": "..."}."""

from __future__ import annotations

import importlib
import inspect
import json
import sys
from typing import Any


def _positional(fn: Any) -> int | None:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    params = [p for p in sig.parameters.values()
              if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty]
    return len(params)


def interface_of(obj: Any) -> str | None:
    """"asgi" for `async (scope, receive, send)`, "wsgi" for `(environ, start_response)`."""
    if not callable(obj):
        return None
    call = obj if inspect.isfunction(obj) or inspect.ismethod(obj) else type(obj).__call__
    bound = 0 if call is obj else 1  # an instance's __call__ takes self first
    count = _positional(call)
    if count is None:
        return None
    count -= bound
    is_async = inspect.iscoroutinefunction(call)
    if count == 3 and is_async:
        return "asgi"
    if count == 2 and not is_async:
        return "wsgi"
    return None


def detect(target: str) -> dict[str, Any]:
    module_name, _, attr = target.partition(":")
    if not module_name or not attr:
        return {"error": f"app must be 'module:attr', got {target!r}"}
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except Exception as exc:  # the user's import failed: say how
        return {"error": f"cannot import {target}: {type(exc).__name__}: {exc}"}
    kind = interface_of(obj)
    if kind is not None:
        return {"interface": kind, "factory": False}
    if callable(obj) and _positional(obj) == 0:
        try:
            built = obj()
        except Exception as exc:
            return {"error": f"{target}() (a factory?) raised {type(exc).__name__}: {exc}"}
        kind = interface_of(built)
        if kind is not None:
            return {"interface": kind, "factory": True}
    return {"error": f"{target} is neither a WSGI nor an ASGI app nor a factory of one; "
                     "give --interface asgi|wsgi (and --factory) to say which"}


if __name__ == "__main__":
    print(json.dumps(detect(sys.argv[1])))
