"""The report's charts (matplotlib, Agg): one function per kind, each saving one PNG.

Series stay distinguishable however many there are: each gets a (colour, marker, line style)
triple from `series_style`, unique for up to 70 series, and floors (raw servers, bare
frameworks) are drawn dotted with hollow markers so they read as reference lines, not apps.
Bar charts put floors on their own panel with their own axis, so a client-bound floor at
30k req/s does not squeeze the apps into a sliver of the axis.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

MEASURED, CLIENT_BOUND, FLOOR = "#4c72b0", "#c44e52", "#9a9a9a"
_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
_MARKERS = ("o", "s", "^", "D", "v", "P", "X")
_LINESTYLES = ("-", "--", "-.", (0, (5, 1, 1, 1)))
PERCENTILES = ("p50", "p90", "p99", "p99_9", "max")


def series_style(index: int, floor: bool = False) -> dict[str, Any]:
    """Keyword arguments for `ax.plot` of the `index`-th series: colour cycles fastest, the
    marker next, so neighbours in the legend differ in colour and marker."""
    style: dict[str, Any] = {
        "color": _COLOURS[index % len(_COLOURS)],
        "marker": _MARKERS[index % len(_MARKERS)],
        "linestyle": _LINESTYLES[(index // len(_COLOURS)) % len(_LINESTYLES)],
    }
    if floor:
        style.update(linestyle=":", markerfacecolor="none")
    return style


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _bars(ax: Any, labels: list[str], values: list[float], errors: list[tuple[float, float]],
          colours: list[str]) -> None:
    lo = [max(0.0, v - e[0]) for v, e in zip(values, errors, strict=True)]
    hi = [max(0.0, e[1] - v) for v, e in zip(values, errors, strict=True)]
    ax.barh(labels, values, xerr=[lo, hi], color=colours, capsize=3)
    ax.invert_yaxis()
    ax.grid(axis="x", alpha=0.3)


def bar_chart(path: Path, title: str, labels: list[str], values: list[float], errors: list[tuple[float, float]],
              xlabel: str, highlight: Sequence[bool] | None = None, floors: Sequence[bool] | None = None) -> Path:
    """Horizontal bars with their 95% CI; `highlight` marks client-bound bars red, `floors`
    moves floors to a second panel below the apps, each panel with its own axis."""
    highlight = list(highlight or [False] * len(labels))
    floors = list(floors or [False] * len(labels))
    groups = [[i for i in range(len(labels)) if not floors[i]], [i for i in range(len(labels)) if floors[i]]]
    groups = [g for g in groups if g]
    heights = [0.35 * len(g) + 0.9 for g in groups]
    fig, axes = plt.subplots(len(groups), 1, figsize=(10, sum(heights) + 0.9), squeeze=False,
                             gridspec_kw={"height_ratios": heights})
    for ax, group in zip(axes[:, 0], groups, strict=True):
        is_floor = floors[group[0]]
        colours = [CLIENT_BOUND if highlight[i] else (FLOOR if is_floor else MEASURED) for i in group]
        _bars(ax, [labels[i] for i in group], [values[i] for i in group], [errors[i] for i in group], colours)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("floor (workers)" if is_floor else "stack (workers)")
        ax.set_title(title if ax is axes[0, 0] else "floors: raw servers and bare frameworks (own axis)",
                     fontsize=None if ax is axes[0, 0] else 10)
    first = axes[0, 0]
    handles = [Patch(color=MEASURED, label="measured")]
    if any(floors):
        handles.append(Patch(color=FLOOR, label="floor (no app: raw server or bare framework)"))
    if any(highlight):
        handles.append(Patch(color=CLIENT_BOUND, label="client-bound (the load generator's limit)"))
    if len(handles) > 1:
        first.legend(handles=handles, fontsize=8, loc="lower right")
    return _save(fig, path)


def latency_chart(path: Path, title: str, series: dict[str, dict[str, float]],
                  floors: Sequence[str] = ()) -> Path:
    fig, ax = plt.subplots(figsize=(10, 5.5))
    for i, (label, lat) in enumerate(series.items()):
        ax.plot(list(PERCENTILES), [lat.get(k, float("nan")) for k in PERCENTILES], label=label,
                **series_style(i, label in floors))
    ax.set_yscale("log")
    ax.set_ylabel("latency (ms, log scale)")
    ax.set_xlabel("percentile")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2 if len(series) < 12 else 3)
    return _save(fig, path)


def line_chart(path: Path, title: str, series: dict[str, list[tuple[float, float]]], xlabel: str, ylabel: str,
               logx: bool = False, objective: float | None = None, objective_label: str = "objective",
               floors: Sequence[str] = ()) -> Path:
    """One line per series; `objective` draws a horizontal line the series should stay under."""
    fig, ax = plt.subplots(figsize=(10, 5))
    for i, (label, points) in enumerate(series.items()):
        points = sorted(points)
        ax.plot([p[0] for p in points], [p[1] for p in points], label=label, **series_style(i, label in floors))
    if objective is not None:
        ax.axhline(objective, color="#b00", linestyle="--", linewidth=1.2, label=objective_label)
    if logx:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    return _save(fig, path)


def resource_chart(path: Path, title: str, labels: list[str], cpu: list[float], rss_mb: list[float]) -> Path:
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 0.35 * len(labels) + 1.6), sharey=True)
    a.barh(labels, cpu, color="#55a868")
    a.set_xlabel("server CPU (% of one core)")
    a.set_ylabel("stack (workers)")
    b.barh(labels, rss_mb, color="#8172b2")
    b.set_xlabel("server peak RSS, all processes (MiB)")
    a.invert_yaxis()
    fig.suptitle(title)
    return _save(fig, path)



def sweep_chart(path: Path, title: str, series: dict[str, list[tuple[float, float, float, float, bool]]],
                marks: Sequence[tuple[float, str]], xlabel: str, ylabel: str) -> Path:
    """Throughput against an injected delay: one line per series of (x, median, CI low, CI
    high, excluded) with error bars, excluded points (failing their sanity checks) hollow; each
    mark (x, label) is a dotted vertical line (a crossover). The x axis is linear up to 1 ms
    and logarithmic above (delays 0, 1, 5, 20 stay apart); the y axis stops at twice the
    largest median, so a two-sample interval cannot flatten every line (its bar is cut there)."""
    fig, ax = plt.subplots(figsize=(10, 5))
    xs_all: set[float] = set()
    handles: list[Line2D] = []
    for i, (label, points) in enumerate(series.items()):
        points = sorted(points)
        style = series_style(i)
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        xs_all.update(xs)
        err = [[max(0.0, y - p[2]) for y, p in zip(ys, points, strict=True)],
               [max(0.0, p[3] - y) for y, p in zip(ys, points, strict=True)]]
        ax.errorbar(xs, ys, yerr=err, capsize=3, color=style["color"], linestyle=style["linestyle"], marker="none")
        for excluded in (False, True):
            chosen = [p for p in points if p[4] == excluded]
            ax.plot([p[0] for p in chosen], [p[1] for p in chosen], linestyle="none", marker=style["marker"],
                    color=style["color"], markerfacecolor="white" if excluded else style["color"], markersize=7,
                    zorder=5)
        handles.append(Line2D([], [], label=label, **style))
    for j, (x, label) in enumerate(marks):
        ax.axvline(x, color="#555", linestyle=":", linewidth=1)
        ax.annotate(f"crossover: {label}", (x, 1 - 0.05 * (j + 1)), xycoords=("data", "axes fraction"), fontsize=7)
    if max(xs_all, default=0) > 2:
        ax.set_xscale("symlog", linthresh=1.0)
    ax.set_xticks(sorted(xs_all), [f"{x:g}" for x in sorted(xs_all)])
    if xs_all and min(xs_all) == 0:
        ax.set_xlim(left=-0.25)
    top = max((p[1] for pts in series.values() for p in pts), default=1.0)
    ax.set_ylim(0, 2 * top)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(handles=handles, fontsize=7, ncol=2)
    return _save(fig, path)
