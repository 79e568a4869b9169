"""The garbage-collection policy of every served app, in one place.

Every app factory (Flask, FastAPI, Strawberry) and every floor (`loadtests/floors/`) calls
`apply_gc_policy()` once the app is built, so every stack of a comparison runs under the same
policy. Choose it with the environment variable `STACKBENCH_GC_POLICY`:

* ``freeze`` (default): one full collection, then `gc.freeze()` — everything alive after
  start-up (modules, the app, its routes and schema) moves to the permanent generation and is
  never scanned again — and the generation-2 threshold raised from 10 to `GEN2_THRESHOLD`, so a
  full collection runs after 100 generation-1 passes instead of 10. Young cycles are still
  collected by generations 0 and 1 as usual. Why: a full pass over a start-up heap costs 50–950
  ms on this class of machine and lands inside short measurement windows (p99 swings 2–4x).
  Under gunicorn's pre-fork model it also keeps the frozen pages shared (no copy-on-write).
* ``off``: Python's defaults, nothing frozen (to see what the policy does).

The harness launches servers with the variable set and records its value in each cell's setup.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Mapping
from typing import Literal

GC_POLICY_ENV = "STACKBENCH_GC_POLICY"
GcPolicy = Literal["freeze", "off"]
POLICIES: tuple[GcPolicy, ...] = ("freeze", "off")
DEFAULT_POLICY: GcPolicy = "freeze"
GEN2_THRESHOLD = 100

_applied: GcPolicy | None = None


def gc_policy(environ: Mapping[str, str] | None = None) -> GcPolicy:
    """The policy named in the environment (`STACKBENCH_GC_POLICY`), `freeze` when unset."""
    value = (os.environ if environ is None else environ).get(GC_POLICY_ENV, "").strip().lower()
    if not value:
        return DEFAULT_POLICY
    if value not in POLICIES:
        raise ValueError(f"{GC_POLICY_ENV}={value!r}: expected one of {', '.join(POLICIES)}")
    return value  # type: ignore[return-value]


def apply_gc_policy(policy: GcPolicy | None = None) -> GcPolicy:
    """Apply `policy` (default: the environment's) to this process; returns its name.

    Call it when the app is built. Calling it again (another app in the same process) freezes
    what was created since, which is harmless.
    """
    global _applied
    chosen = policy or gc_policy()
    if chosen == "freeze":
        gc.collect()
        gc.freeze()
        first, second, _ = gc.get_threshold()
        gc.set_threshold(first, second, GEN2_THRESHOLD)
    _applied = chosen
    return chosen


def applied_gc_policy() -> GcPolicy | None:
    """What `apply_gc_policy` last applied in this process (None: never called)."""
    return _applied
