"""Reading the results document for the report: formatting, cell summaries, labels."""

from __future__ import annotations

from typing import Any


def fmt(value: Any, digits: int = 0) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def summary(cell: dict[str, Any], key: str) -> dict[str, Any]:
    return dict(cell.get("summary", {}).get(key) or {})


def median(cell: dict[str, Any], key: str) -> float | None:
    value = summary(cell, key).get("median")
    return None if value is None else float(value)


def median_ci(cell: dict[str, Any], key: str, digits: int = 0, scale: float = 1.0) -> str:
    s = summary(cell, key)
    if not s or s.get("median") is None:
        return "—"
    text = fmt(s["median"] / scale, digits)
    ci = s.get("ci95")
    if ci and s.get("n", 1) > 1 and ci[0] is not None:
        text += f" [{fmt(ci[0] / scale, digits)}–{fmt(ci[1] / scale, digits)}]"
    return text


def last_sample(cell: dict[str, Any]) -> dict[str, Any]:
    samples = cell.get("samples") or []
    return dict(samples[-1]) if samples else {}


def extra(sample: dict[str, Any]) -> dict[str, Any]:
    return dict(sample.get("extra") or {})


def cells_for(doc: dict[str, Any], scenario: str, driver: str | None = None) -> list[dict[str, Any]]:
    return [c for c in doc.get("cells", []) if c["scenario"] == scenario and (driver is None or c["driver"] == driver)]


def stack_label(doc: dict[str, Any], stack: str) -> str:
    info = doc.get("stacks", {}).get(stack, {})
    workers = info.get("workers")
    return f"{stack} ({workers}w)" if workers else stack


def flags(cell: dict[str, Any]) -> str:
    return ", ".join(cell.get("flags") or [])
