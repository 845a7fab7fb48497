"""Report generation time over N generated run records (target: 5,000 runs in <= 5 s).

Writes N run folders (config.json, final.json, metrics.jsonl through RunDir) in a temp dir, spread
over a few grids, then times `write_report` cold (no store cache) and warm (cache hit), with tables
and figures in every format. Prints the figures and records them under results/benchmarks/.

    python benchmarks/report_speed.py [--runs 5000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.measure import describe_environment  # noqa: E402
from harness.report import write_report  # noqa: E402
from harness.results.rundir import RunDir, atomic_write_json  # noqa: E402


def make_runs(root: Path, n: int) -> None:
    variants = ["tsm_r50", "tsm_r50_dsa", "i3d_r50", "i3d_r50_dsa", "i3d_r50_static", "i3d_r50_nonlocal"]
    for i in range(n):
        grid = f"grid{i % 5}"
        variant = variants[(i // 5) % len(variants)]
        ratio = [0.125, 0.25, 0.5, 1.0][(i // 30) % 4]
        rd = RunDir(root / "runs" / grid / f"run{i:05d}").create()
        rd.write_config({"task": "train", "grid": grid, "seed": i // 120, "model": {"variant": variant,
                                                                                      "split_ratio": ratio}})
        for e in range(3):
            rd.append_metrics({"epoch": e, "train_loss": 2.0 - 0.3 * e, "val_top1": 50 + e + (i % 7)})
        rd.write_final({"run_id": rd.run_id, "task": "train", "status": "done",
                        "finished_at": "2026-11-24T10:00:00+00:00",
                        "hardware": {"device": "cpu", "device_name": "bench CPU", "threads": 2},
                        "test": {"top1": 60 + (i % 13) * 0.5, "top5": 85.0, "views": 6},
                        "profile": {"gflops_per_view": 130.0 + (i % 6), "params_m": 24.3}})


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=5000)
    p.add_argument("--out", default="results/benchmarks/report_speed.json")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t = time.perf_counter()
        make_runs(root, args.runs)
        t_make = time.perf_counter() - t
        t = time.perf_counter()
        write_report(root, root / "reports", experiments_dir=root / "experiments")
        cold = time.perf_counter() - t
        t = time.perf_counter()
        write_report(root, root / "reports", experiments_dir=root / "experiments")
        warm = time.perf_counter() - t
        t = time.perf_counter()
        write_report(root, root / "reports", experiments_dir=root / "experiments", formats=("md", "tex"))
        tables_only = time.perf_counter() - t
    record = {"benchmark": "report_speed", "runs": args.runs, "make_runs_s": t_make, "report_cold_s": cold,
              "report_warm_s": warm, "report_warm_tables_only_s": tables_only, "target_s": 5.0,
              "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), **describe_environment()}
    atomic_write_json(args.out, record)
    print(f"{args.runs} runs (5 grids; writing them took {t_make:.1f} s)")
    print(f"full report, cold store cache : {cold:6.2f} s  (target <= 5 s)")
    print(f"full report, warm store cache : {warm:6.2f} s")
    print(f"tables only (md, tex), warm   : {tables_only:6.2f} s")
    print(f"recorded in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
