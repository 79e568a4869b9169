"""The GC policy (flashcards.runtime): every app factory and every floor applies it, through one
function, and `STACKBENCH_GC_POLICY=off` really leaves Python's collector as it is.

Each case runs in a fresh interpreter: the policy is process state.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from flashcards.runtime import GC_POLICY_ENV, GEN2_THRESHOLD, gc_policy

ROOT = Path(__file__).resolve().parents[1]
# Builds one app (a factory, or a floor module's import) and reports the collector's state.
PROBE = """
import gc, importlib, json, sys
target = sys.argv[1]
before = gc.get_threshold()
if ":" in target:
    module, name = target.split(":")
    from tests.support import make_settings
    getattr(importlib.import_module(module), name)(make_settings("sqlite:///" + sys.argv[2]))
else:
    importlib.import_module(target)
from flashcards.runtime import applied_gc_policy
print(json.dumps({"frozen": gc.get_freeze_count(), "threshold": gc.get_threshold(),
                  "default": before, "applied": applied_gc_policy()}))
"""
TARGETS = [
    "impl_flask_baseline:create_app",
    "impl_rest:create_app",
    "impl_graphql:create_app",
    "loadtests.floors.hello_fastapi",
    "loadtests.floors.hello_flask",
    "loadtests.floors.hello_strawberry",
    "loadtests.floors.raw_asgi",
    "loadtests.floors.raw_wsgi",
    "loadtests.floors.db_fastapi",
    "loadtests.floors.db_flask",
    "loadtests.floors.db_strawberry",
]


def probe(target: str, policy: str | None, tmp: Path) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if k != GC_POLICY_ENV}
    if policy is not None:
        env[GC_POLICY_ENV] = policy
    out = subprocess.run(
        [sys.executable, "-c", PROBE, target, str(tmp / "db.sqlite3")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


@pytest.mark.parametrize("target", TARGETS)
def test_every_app_applies_the_policy_and_off_turns_it_off(target: str, tmp_path: Path) -> None:
    frozen = probe(target, None, tmp_path)  # the default
    assert frozen["applied"] == "freeze"
    assert frozen["frozen"] > 1000  # the start-up heap is in the permanent generation
    assert frozen["threshold"][2] == GEN2_THRESHOLD
    off = probe(target, "off", tmp_path)
    assert off["applied"] == "off"
    assert off["frozen"] == 0
    assert off["threshold"] == off["default"]


def test_the_policy_name_is_checked() -> None:
    assert gc_policy({}) == "freeze"
    assert gc_policy({GC_POLICY_ENV: " OFF "}) == "off"
    with pytest.raises(ValueError, match=GC_POLICY_ENV):
        gc_policy({GC_POLICY_ENV: "sometimes"})
