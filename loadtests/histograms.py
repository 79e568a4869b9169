"""Latency histograms of the open-loop driver: HdrHistogram (1 µs … 60 s, 3 significant digits),
recorded in seconds, read in milliseconds, merged (never averaged) across processes.
"""

from __future__ import annotations

from collections.abc import Sequence

from hdrh.histogram import HdrHistogram

from loadtests.stats import LATENCY_KEYS, latency_block

LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS = 1, 60_000_000, 3


def new_histogram() -> HdrHistogram:
    return HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)


def record(hist: HdrHistogram, seconds: float) -> None:
    hist.record_value(min(HIGHEST_US, max(LOWEST_US, round(seconds * 1e6))))


def histogram_ms(hist: HdrHistogram) -> dict[str, float | None]:
    """p50, p90, p99, p99.9, max and mean in milliseconds, all from this one histogram (None for
    an empty histogram)."""
    if hist.get_total_count() == 0:
        return {**dict.fromkeys(LATENCY_KEYS), "mean": None}
    block: dict[str, float | None] = dict(latency_block(lambda q: hist.get_value_at_percentile(q * 100) / 1000.0,
                                                        hist.get_max_value() / 1000.0))
    block["mean"] = hist.get_mean_value() / 1000.0
    return block


def merge_histograms(encoded: Sequence[str]) -> HdrHistogram:
    """One histogram from several ``extra.latency_histogram`` strings (merge, never average)."""
    hist = new_histogram()
    for item in encoded:
        hist.decode_and_add(item)
    return hist
