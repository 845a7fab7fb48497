"""DSA / aggregator overhead, TSM shift overhead and roofline fraction, measured in one run.

For each model: batch-1 forward latency (inference mode) at U x T frames of SIZE^2, measured in
interleaved rounds (every round times every model once, so drifts of a noisy machine hit all models
alike); the ratio of each aggregator variant to its own backbone and of TSM to the same ResNet without
shift (TSN) are medians of per-round ratios. Achieved GFLOP/s counts 2 FLOPs per multiply-add
(fvcore MACs x 2) and is compared with this machine's dense float32 matmul rate (roofline fraction).

    python benchmarks/dsa_overhead.py                  # R50, U=4, T=8, 224x224 (the paper's setting)
    python benchmarks/dsa_overhead.py --depth 18 --size 112 --rounds 5   # quick

Prints a table and writes results/benchmarks/dsa_overhead.json (with the hardware it ran on).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.measure import count_flops, describe_environment  # noqa: E402
from harness.models import create_model  # noqa: E402
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
    p.add_argument("--rounds", type=int, default=7, help="interleaved timing rounds (median taken)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", default="results/benchmarks/dsa_overhead.json")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    d = args.depth
    names = [
        f"{f}_r{d}{s}"
        for f in ("tsn", "tsm", "i3d")
        for s in ("", "_dsa", "_static", "_nonlocal")
        if not (f == "tsn" and s)
    ]
    models, inputs, flops = {}, {}, {}
    for name in names:
        m = create_model(name, num_classes=400, num_snippets=args.snippets, num_frames=args.frames).eval()
        x = torch.randn(1, args.snippets, 3, args.frames, args.size, args.size)
        flops[name] = count_flops(m, (x,))["flops"]
        models[name], inputs[name] = m, x
    peak = matmul_gflops()
    times = {n: [] for n in names}
    with torch.inference_mode():
        for n in names:  # warm-up
            models[n](inputs[n])
        for r in range(args.rounds):
            for n in names:
                t = time.perf_counter()
                models[n](inputs[n])
                times[n].append(time.perf_counter() - t)
            print(f"round {r + 1}/{args.rounds} done", file=sys.stderr, flush=True)

    def paired(a: str, b: str) -> float:
        return statistics.median(x / y for x, y in zip(times[a], times[b]))

    rows = []
    for n in names:
        flavour, _, rest = n.partition("_")
        backbone = f"{flavour}_r{d}"
        med = statistics.median(times[n])
        achieved = 2 * flops[n] / med / 1e9
        rows.append(
            {
                "model": n,
                "gflops_per_view": flops[n] / 1e9,
                "latency_ms": med * 1e3,
                "latency_iqr_ms": (statistics.quantiles(times[n], n=4)[2] - statistics.quantiles(times[n], n=4)[0])
                * 1e3
                if len(times[n]) >= 4
                else None,
                "vs_backbone": None if n == backbone else paired(n, backbone),
                "vs_no_shift": paired(n, f"tsn_r{d}") if n == f"tsm_r{d}" else None,
                "achieved_gflop_s": achieved,
                "roofline_fraction": achieved / peak,
            }
        )
    env = describe_environment("cpu")
    record = {
        "benchmark": "dsa_overhead",
        "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "setting": {
            "depth": d,
            "size": args.size,
            "snippets": args.snippets,
            "frames": args.frames,
            "rounds": args.rounds,
            "threads": torch.get_num_threads(),
        },
        "matmul_gflop_s": peak,
        "rows": rows,
        **env,
    }
    atomic_write_json(args.out, record)

    from tabulate import tabulate

    print(
        f"\nR{d}, U={args.snippets} x T={args.frames}, {args.size}x{args.size}, batch 1, "
        f"{torch.get_num_threads()} threads, {env['hardware']['device_name']}; "
        f"dense fp32 matmul: {peak:.1f} GFLOP/s"
    )
    print(
        tabulate(
            [
                (
                    r["model"],
                    f"{r['gflops_per_view']:.2f}",
                    f"{r['latency_ms']:.1f}",
                    "-" if r["vs_backbone"] is None else f"{r['vs_backbone']:.3f}x",
                    "-" if r["vs_no_shift"] is None else f"{r['vs_no_shift']:.3f}x",
                    f"{r['achieved_gflop_s']:.1f}",
                    f"{100 * r['roofline_fraction']:.1f}%",
                )
                for r in rows
            ],
            headers=(
                "model",
                "GFLOPs/view",
                "latency ms (median)",
                "vs its backbone",
                "TSM vs no shift",
                "achieved GFLOP/s",
                "of matmul peak",
            ),
        )
    )
    print(f"\nrecorded in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
