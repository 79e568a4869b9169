"""Pair up a pytest-benchmark JSON into baseline/candidate speed ratios with 95 % intervals.

    python -m benchmarks.summarize out.json [-o summary.json] [--resamples 2000] [--seed 0]

Output (stdout, or `-o`):

    {"pairs": [{"group": "validate-dict-deck", "baseline": "test_validate_dict[deck-v1]",
                "candidate": "test_validate_dict[deck-v2]", "ratio_median": 9.87,
                "ci95": [9.71, 10.02], "ci_method": "bootstrap", ...}],
     "singles": [{"group": "sm2-review-step", "name": ..., "median_us": ..., "ci95_us": [...]}],
     "method": "..."}

`ratio_median` = median(baseline) / median(candidate): above 1 means the candidate is faster.
Roles come from `extra_info["role"]` ("baseline" / "candidate", set by benchmarks/test_micro.py).

Interval: `--benchmark-json` always writes the per-round timings (`stats.data`, each the mean
time of one call within a round), so the 95 % interval is a percentile bootstrap: resample each
side's rounds with replacement, take both medians, and read the 2.5/97.5 percentiles of the
ratio. Sides with more than `--max-samples` rounds are first thinned to a seeded random subset
(this widens the interval slightly, never narrows it). Without raw data (a file written by
`--benchmark-save` without `--benchmark-save-data`) it falls back to the boxplot-notch interval
of each median, median ± 1.57·IQR/√n, combined on the log scale.

Caveat: both methods treat rounds of one run as independent draws, so the interval covers
round-to-round noise in this process on this machine, not run-to-run or machine-to-machine
variation (CPU frequency, another interpreter build). Repeat runs to see that spread.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from loadtests.stats import bootstrap_medians, percentile

Z95 = 1.959963984540054
NOTCH = 1.57  # McGill, Tukey & Larsen (1978): median ± 1.57·IQR/√n is roughly a 95 % interval


def _thin(data: list[float], max_samples: int, seed: int) -> list[float]:
    if len(data) <= max_samples:
        return data
    return random.Random(seed).sample(data, max_samples)


def _notch_log_se(stats: dict[str, Any]) -> float:
    """Standard error of log(median) from the notch interval (no raw data needed)."""
    half_width = NOTCH * stats["iqr"] / math.sqrt(max(1, stats["rounds"]))
    return (half_width / Z95) / stats["median"]


def _role(bench: dict[str, Any]) -> str | None:
    role = (bench.get("extra_info") or {}).get("role")
    return role if role in ("baseline", "candidate") else None


def summarize(
    doc: dict[str, Any], resamples: int = 2000, seed: int = 0, max_samples: int = 20_000
) -> dict[str, Any]:
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for bench in doc.get("benchmarks", []):
        groups[bench.get("group") or bench["name"]].append(bench)

    boot: dict[str, list[float]] = {}

    def medians(bench: dict[str, Any], salt: int) -> list[float] | None:
        data = bench["stats"].get("data")
        if not data:
            return None
        if bench["fullname"] not in boot:
            sample = _thin(list(data), max_samples, seed + salt)
            boot[bench["fullname"]] = bootstrap_medians(sample, resamples, seed + salt)
        return boot[bench["fullname"]]

    pairs, singles = [], []
    for gi, (group, members) in enumerate(sorted(groups.items())):
        base = [b for b in members if _role(b) == "baseline"]
        cands = [b for b in members if _role(b) == "candidate"]
        if len(base) != 1 or not cands:
            for b in members:
                s = b["stats"]
                meds = medians(b, 1000 * gi)
                if meds is not None:
                    meds = sorted(meds)
                    ci = [percentile(meds, 0.025), percentile(meds, 0.975)]
                else:
                    half = NOTCH * s["iqr"] / math.sqrt(max(1, s["rounds"]))
                    ci = [s["median"] - half, s["median"] + half]
                singles.append(
                    {
                        "group": group,
                        "name": b["name"],
                        "median_us": round(s["median"] * 1e6, 4),
                        "ci95_us": [round(x * 1e6, 4) for x in ci],
                        "rounds": s["rounds"],
                    }
                )
            continue
        b = base[0]
        for ci_index, c in enumerate(cands):
            bs, cs = b["stats"], c["stats"]
            ratio = bs["median"] / cs["median"]
            bm, cm = medians(b, 1000 * gi), medians(c, 1000 * gi + 1 + ci_index)
            if bm is not None and cm is not None:
                ratios = sorted(x / y for x, y in zip(bm, cm, strict=True))
                ci95 = [percentile(ratios, 0.025), percentile(ratios, 0.975)]
                method = "bootstrap"
            else:
                se = math.hypot(_notch_log_se(bs), _notch_log_se(cs))
                ci95 = [ratio * math.exp(-Z95 * se), ratio * math.exp(Z95 * se)]
                method = "iqr-notch"
            pairs.append(
                {
                    "group": group,
                    "baseline": b["name"],
                    "candidate": c["name"],
                    "ratio_median": round(ratio, 3),
                    "ci95": [round(x, 3) for x in ci95],
                    "ci_method": method,
                    "baseline_median_us": round(bs["median"] * 1e6, 4),
                    "candidate_median_us": round(cs["median"] * 1e6, 4),
                    "rounds": [bs["rounds"], cs["rounds"]],
                }
            )
    machine = doc.get("machine_info", {})
    return {
        "pairs": pairs,
        "singles": singles,
        "method": (
            f"ratio = median(baseline)/median(candidate) of per-call times; ci95 = percentile "
            f"bootstrap over raw rounds ({resamples} resamples, seed {seed}, at most "
            f"{max_samples} rounds per side), else median ± 1.57·IQR/√n on the log scale; "
            "within-run noise only"
        ),
        "python": machine.get("python_version"),
        "cpu": (machine.get("cpu") or {}).get("brand_raw"),
        "datetime": doc.get("datetime"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("benchmark_json", type=Path)
    parser.add_argument("-o", "--output", type=Path)
    parser.add_argument("--resamples", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-samples", type=int, default=20_000)
    args = parser.parse_args(argv)
    doc = json.loads(args.benchmark_json.read_text())
    result = summarize(doc, args.resamples, args.seed, args.max_samples)
    text = json.dumps(result, indent=2, ensure_ascii=False) + "\n"
    if args.output:
        args.output.write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
