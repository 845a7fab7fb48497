"""How fast harness/report/stats.py answers at its defaults (RESAMPLES resamples, one core):

- ``accuracy_intervals`` of 20,000 videos of 400 classes (target < 50 ms): Wilson for top-1 / top-5, the
  mean-class bootstrap over the (class, correct) cells;
- ``paired_delta_counts`` of 10,000 distinct pairs (target: well under 1 s; each pair has its own seeded stream,
  so the cost is two binomial draws per resample and pair);
- ``paired_delta`` of one pair of 20,000 videos.

    .venv/bin/python benchmarks/stats_speed.py [--rounds 5] [--resamples N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.report import stats  # noqa: E402


def best_of(rounds: int, fn) -> tuple[float, float]:
    fn()  # warm-up
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--resamples", type=int, default=stats.RESAMPLES)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    m, k = 20_000, 400
    labels = rng.integers(0, k, m)
    pred = np.where(rng.random(m) < 0.7, labels, rng.integers(0, k, m))
    top5 = np.concatenate([pred[:, None], rng.integers(0, k, (m, 4))], axis=1)
    pairs = 10_000
    n = rng.integers(2_000, 50_000, pairs)
    a_only, b_only = rng.integers(0, 800, pairs), rng.integers(0, 800, pairs)
    correct_a, correct_b = rng.random(m) < 0.7, rng.random(m) < 0.7
    cases = [
        (
            "accuracy_intervals, 20,000 videos x 400 classes",
            lambda: stats.accuracy_intervals(labels, pred, top5, k, resamples=args.resamples),
            0.05,
        ),
        (
            "paired_delta_counts, 10,000 distinct pairs",
            lambda: stats.paired_delta_counts(n, a_only, b_only, resamples=args.resamples),
            1.0,
        ),
        (
            "paired_delta, 20,000 videos",
            lambda: stats.paired_delta(correct_a, correct_b, resamples=args.resamples),
            None,
        ),
    ]
    print(f"{args.resamples} resamples, best / median of {args.rounds} rounds")
    for name, fn, target in cases:
        best, median = best_of(args.rounds, fn)
        note = "" if target is None else f"  (target < {target * 1000:.0f} ms)"
        print(f"{name:52s} {best * 1000:8.1f} ms / {median * 1000:8.1f} ms{note}")


if __name__ == "__main__":
    main()
