"""Paired timing: interleaved rounds, medians with bootstrap intervals, ratios to a baseline.

Why paired: on a shared machine the speed drifts by more than the few per cent a DSA module costs, so
two latencies measured one after the other (or in separate jobs) cannot be compared. Here every round
times every model once, in alternating order (round 1: A B, round 2: B A, ...), so a drift hits all of
them alike, and a ratio is the median of the *per-round* ratios, whose bootstrap interval says how sure
it is.

Definitions: a *clip* is one snippet of T frames; a forward pass of batch B processes B videos = B*U
clips. Times are seconds per call; one round's time of a model is the mean over a block of calls long
enough (``BLOCK_S``) for the timer to resolve it (one call for a ResNet-50 on a CPU, many for a small
model on a GPU). On CUDA every call is followed by a synchronisation of the inputs' own device
(``cuda:N``), which is made current for the measurement.
"""

from __future__ import annotations

import contextlib
import math
import random
import statistics
import time
from collections.abc import Callable, Sequence

import torch

BLOCK_S = 0.05
"""A round's timing of one model lasts at least this long (calls repeated; the mean per call is kept)."""
BOOTSTRAP_RESAMPLES = 2000
CONFIDENCE = 0.95


def cuda_synchronizer(device: torch.device):
    """A no-argument callable that waits for ``device``'s queued work: ``torch.cuda.synchronize(device)``
    on CUDA (that device, not the current one), nothing elsewhere."""
    device = torch.device(device)
    if device.type != "cuda":
        return lambda: None
    return lambda: torch.cuda.synchronize(device)


def on_device(device: torch.device):
    """Context making ``device`` the current CUDA device (a no-op off CUDA or for a bare ``cuda``)."""
    device = torch.device(device)
    if device.type != "cuda" or device.index is None:
        return contextlib.nullcontext()
    return torch.cuda.device(device)


def time_interleaved(
    steps: dict[str, Callable[[], object]],
    *,
    rounds: int,
    device: str | torch.device = "cpu",
    warmup: int = 2,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, list[float]]:
    """Time each of ``steps`` (name -> no-argument callable) once per round for ``rounds`` rounds, in
    alternating order; returns name -> seconds per call, one value per round.

    ``warmup`` untimed calls of each step come first (the last one sets the block size: calls per
    timing so that a block lasts >= ``BLOCK_S``). ``progress(done, rounds)`` is called after each round.
    """
    if rounds < 1:
        raise ValueError(f"rounds={rounds}: need >= 1")
    sync = cuda_synchronizer(device)
    names = list(steps)
    calls: dict[str, int] = {}
    times: dict[str, list[float]] = {n: [] for n in names}
    with on_device(device):
        for n in names:
            for _ in range(max(warmup, 1)):
                t = time.perf_counter()
                steps[n]()
                sync()
                one = time.perf_counter() - t
            calls[n] = max(1, math.ceil(BLOCK_S / max(one, 1e-9)))
        for r in range(rounds):
            for n in names if r % 2 == 0 else reversed(names):
                k = calls[n]
                t = time.perf_counter()
                for _ in range(k):
                    steps[n]()
                    sync()
                times[n].append((time.perf_counter() - t) / k)
            if progress:
                progress(r + 1, rounds)
    return times


def quantile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated quantile (numpy's default) of a non-empty sequence."""
    s = sorted(values)
    pos = q * (len(s) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def bootstrap_median_interval(
    values: Sequence[float], *, confidence: float = CONFIDENCE, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0
) -> tuple[float, float]:
    """Percentile-bootstrap interval of the median of ``values`` (seeded: the same values give the same
    interval). One value gives (value, value)."""
    values = list(values)
    if not values:
        raise ValueError("no values")
    rng = random.Random(seed)
    n = len(values)
    medians = [statistics.median(rng.choices(values, k=n)) for _ in range(resamples)]
    tail = (1 - confidence) / 2
    return quantile(medians, tail), quantile(medians, 1 - tail)


def summarize(seconds: Sequence[float]) -> dict:
    """Median, IQR and bootstrap 95% interval of the median, in ms."""
    ms = [1e3 * s for s in seconds]
    low, high = bootstrap_median_interval(ms)
    iqr = quantile(ms, 0.75) - quantile(ms, 0.25)
    return {"median_ms": statistics.median(ms), "iqr_ms": iqr, "ci_low_ms": low, "ci_high_ms": high}


def paired_ratio(variant: Sequence[float], baseline: Sequence[float]) -> dict:
    """Median over rounds of variant time / baseline time (same round), with its bootstrap 95% interval."""
    if len(variant) != len(baseline) or not variant:
        raise ValueError(f"paired times need equal, non-zero lengths: {len(variant)} vs {len(baseline)}")
    ratios = [v / b for v, b in zip(variant, baseline)]
    low, high = bootstrap_median_interval(ratios)
    return {"ratio": statistics.median(ratios), "ci_low": low, "ci_high": high}


def measure_latency(
    model: torch.nn.Module,
    inputs: torch.Tensor,
    *,
    clips_per_input: int,
    rounds: int = 10,
    threads: int | None = None,
) -> dict:
    """Latency of one model (no baseline): ``model(inputs)`` in eval and inference mode, ``rounds`` rounds.
    Returns ``latency_ms`` (median), ``latency_iqr_ms``, the interval, ``throughput_clips_s`` and the
    thread count; ``clips_per_input`` = N*U of one forward pass."""
    model = model.eval()
    threads = threads or torch.get_num_threads()
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.inference_mode():
            times = time_interleaved({"model": lambda: model(inputs)}, rounds=rounds, device=inputs.device)["model"]
    finally:
        torch.set_num_threads(old)
    s = summarize(times)
    return {
        "latency_ms": s["median_ms"],
        "latency_iqr_ms": s["iqr_ms"],
        "latency_ci_low_ms": s["ci_low_ms"],
        "latency_ci_high_ms": s["ci_high_ms"],
        "throughput_clips_s": clips_per_input / (s["median_ms"] / 1e3),
        "rounds": rounds,
        "threads": threads,
    }
