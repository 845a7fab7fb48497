"""DSA / aggregator overhead, TSM shift overhead and roofline fraction, measured in one run.

A thin caller of ``harness.measure.profile.profile_variants`` (the code of the profiling grid and of
``dsa-harness profile``): every model is timed in the same interleaved rounds; the ratio of each
aggregator variant to its own backbone (and of TSM to the same ResNet without shift, TSN) is the
median of per-round ratios with a bootstrap 95% interval. Achieved GFLOP/s counts 2 FLOPs per
multiply-add (fvcore MACs x 2) and is compared with this machine's dense float32 matmul rate.

    python benchmarks/dsa_overhead.py                  # R50, U=4, T=8, 224x224 (the paper's setting)
    python benchmarks/dsa_overhead.py --depth 18 --size 112 --rounds 5   # quick
    python benchmarks/dsa_overhead.py --train --rounds 6                 # training steps too

Prints a table and writes results/benchmarks/dsa_overhead.json (with the hardware it ran on).
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.measure import describe_environment  # noqa: E402
from harness.measure.commands import format_profile_table, format_settings  # noqa: E402
from harness.measure.latency import paired_ratio  # noqa: E402
from harness.measure.profile import profile_variants  # noqa: E402
from harness.measure.runtime import Settings  # noqa: E402
from harness.models import resolve_config  # noqa: E402
from harness.results.rundir import atomic_write_json  # noqa: E402


def matmul_gflops(n: int = 2048, repeats: int = 5) -> float:
    """Dense float32 matmul rate of this machine (GFLOP/s, 2 FLOPs per multiply-add), best of ``repeats``."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--depth", type=int, default=50)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--snippets", type=int, default=4)
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--rounds", type=int, default=7, help="interleaved timing rounds (default: %(default)s)")
    p.add_argument("--train", action="store_true", help="time training steps too")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", default="results/benchmarks/dsa_overhead.json")
    args = p.parse_args(argv)

    d = args.depth
    names = [
        f"{f}_r{d}{s}"
        for f in ("tsn", "tsm", "i3d")
        for s in ("", "_dsa", "_static", "_nonlocal")
        if not (f == "tsn" and s)
    ]
    configs = [resolve_config(n, num_classes=400, num_snippets=args.snippets, num_frames=args.frames) for n in names]
    peak = matmul_gflops()
    records = profile_variants(
        configs,
        size=args.size,
        settings=Settings(threads=args.threads),
        rounds=args.rounds,
        train=args.train,
        memory=False,
        progress=lambda text: print(text, file=sys.stderr, flush=True),
    )
    by_name = {r["variant"]: r for r in records}
    tsm, tsn = by_name[f"tsm_r{d}"], by_name[f"tsn_r{d}"]
    shift = paired_ratio(tsm["latency_rounds_ms"], tsn["latency_rounds_ms"])
    for r in records:
        r["achieved_gflop_s"] = 2 * r["gflops_per_view"] / (r["latency_ms"] / 1e3)
        r["roofline_fraction"] = r["achieved_gflop_s"] / peak
    env = describe_environment("cpu")
    record = {
        "benchmark": "dsa_overhead",
        "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "setting": {"depth": d, "size": args.size, "snippets": args.snippets, "frames": args.frames},
        "matmul_gflop_s": peak,
        "tsm_vs_no_shift": shift,
        "rows": records,
        **env,
    }
    atomic_write_json(args.out, record)

    setting = f"R{d}, U={args.snippets} x T={args.frames}, {args.size}x{args.size}, batch 1"
    print(f"\n{setting}; dense fp32 matmul {peak:.1f} GFLOP/s")
    print(format_profile_table(records))
    print(
        f"\nTSM vs no shift (tsm_r{d} / tsn_r{d}): {shift['ratio']:.3f} [{shift['ci_low']:.3f}, {shift['ci_high']:.3f}]"
    )
    achieved = ", ".join(f"{r['variant']} {100 * r['roofline_fraction']:.1f}%" for r in records)
    print(f"achieved / matmul peak: {achieved}")
    print(format_settings(records[0]["settings"]))
    print(f"\nrecorded in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
