"""Report generation time over N generated run records (target: 5,000 runs in <= 5 s).

Writes N run folders in a temp dir, shaped like real ones (config.json as the launcher writes it;
final.json with a full profile record, hardware, versions, test metrics and a 200-entry per-class
list; metrics.jsonl with one line per epoch), spread over five grids like the paper's (backbones,
split-ratio, alpha and kernel-size ablations, aggregators; 2 or 3 seeds each) with grid files, then
times ``write_report`` in every format (md, tex, png, svg). Nothing is cached between reports: every
report reads and parses every run folder and draws every figure (the OS file cache is warm, as the files
were just written), so each report is a cold one:

* in-process: ``write_report`` with the modules already imported (as ``make reproduce`` calls it);
* command: one `dsa-harness report` in a fresh process (interpreter start and imports included), in
  every format, then tables only (md, tex).

Commands are timed as wall-clock and as the CPU time of that process: on a shared machine the wall time
also counts the time other processes held the cores.

Prints the figures and records them in results/benchmarks/report_speed.json.

    python benchmarks/report_speed.py [--runs 5000] [--epochs 24]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from harness.measure import describe_environment  # noqa: E402
from harness.results.rundir import RunDir, atomic_write_json  # noqa: E402

GRIDS = {  # name -> (row key, values)
    "backbones": ("model.variant", ["tsm_r50", "tsm_r50_dsa", "i3d_r50", "i3d_r50_dsa"]),
    "ablation_split_ratio": ("model.split_ratio", [0.125, 0.25, 0.5, 1.0]),
    "ablation_alpha": ("model.alpha", [1, 2, 4, 8]),
    "ablation_kernel_size": ("model.kernel_size", [3, 5, 7]),
    "ablation_aggregators": ("model.variant", ["i3d_r50", "i3d_r50_static", "i3d_r50_nonlocal", "i3d_r50_dsa"]),
}


def _write(path: Path, obj) -> None:
    # plain writes (no fsync): generating the data is not what is measured
    path.write_text(json.dumps(obj, sort_keys=True, indent=2) + "\n")


def make_runs(root: Path, n: int, epochs: int) -> None:
    """``n`` run folders under root/runs and grid files under root/experiments."""
    exp = root / "experiments"
    exp.mkdir(parents=True)
    for grid, (key, _) in GRIDS.items():
        (exp / f"{grid}.yaml").write_text(
            f"name: {grid}\ndescription: generated\npaper_table: generated\ntask: train\n"
            f"report:\n  rows: [{key}]\n  metrics: [test.top1, test.top5, profile.gflops_per_view, profile.params_m]\n"
        )
    names = list(GRIDS)
    for i in range(n):
        grid = names[i % len(names)]
        key, values = GRIDS[grid]
        value = values[(i // len(names)) % len(values)]
        seed = i // (len(names) * len(values))
        model = {
            "variant": "i3d_r50_dsa",
            "num_classes": 200,
            "pretrained": "data/pretrained/resnet50.pth",
            key.split(".", 1)[1]: value,
        }
        gflops = 168.0 + (0.02 if "dsa" in str(model["variant"]) else 0.0) - (36.2 if "tsm" in str(value) else 0.0)
        top1 = 70.0 + (i % 13) * 0.5
        rd = RunDir(root / "runs" / grid / f"{i:012x}").create()
        _write(
            rd.config_path,
            {
                "task": "train",
                "grid": grid,
                "run_id": f"{i:012x}",
                "seed": seed,
                "model": model,
                "data": {
                    "train": "data/minikinetics200/train.txt",
                    "val": "data/minikinetics200/val.txt",
                    "test": "data/minikinetics200/val.txt",
                    "root": "data/minikinetics200/videos",
                    "format": "video",
                    "frame_interval": 8,
                    "size": 224,
                    "resize": 256,
                },
                "train": {
                    "epochs": epochs,
                    "batch_size": 12,
                    "base_lr": 0.015,
                    "base_batch": 12,
                    "momentum": 0.9,
                    "nesterov": True,
                    "weight_decay": 1e-4,
                    "clip_grad_norm": 40.0,
                    "schedule": "step",
                    "milestones": [50, 75, 90],
                    "gamma": 0.1,
                    "warmup_epochs": 10,
                },
                "eval": {"test_groups": 2, "crops": 3},
                "resources": {"gpus": 8, "cpus_per_task": 10, "mem_gb": 256, "time_min": 2880},
            },
        )
        rd.metrics_path.write_text(
            "".join(
                json.dumps(
                    {
                        "epoch": e,
                        "train_loss": 5.3 - 4.0 * e / epochs,
                        "lr": 0.015,
                        "val_top1": top1 * (e + 1) / epochs,
                        "val_top5": 90.0,
                        "val_loss": 1.2,
                        "epoch_time_s": 1800.0,
                        "clips_per_s": 900.0,
                    },
                    sort_keys=True,
                )
                + "\n"
                for e in range(epochs)
            )
        )
        _write(
            rd.final_path,
            {
                "run_id": f"{i:012x}",
                "task": "train",
                "status": "done",
                "finished_at": "2026-11-24T10:00:00+00:00",
                "wall_time_s": 86400.0,
                "git_commit": "0" * 40,
                "hardware": {
                    "device": "cuda",
                    "device_name": "NVIDIA H100",
                    "cpu": "Xeon",
                    "threads": 10,
                    "hostname": f"node{i % 16:02d}",
                },
                "versions": {"python": "3.11.7", "torch": "2.13.0", "cuda": "12.4", "harness": "0.1.0"},
                "profile": {
                    "variant": model["variant"],
                    "flavour": "i3d",
                    "depth": 50,
                    "aggregator": "dsa",
                    "snippets": 4,
                    "frames": 8,
                    "size": 224,
                    "views": 1,
                    "gflops_per_view": gflops,
                    "gflops_per_video": gflops * 6,
                    "params_m": 32.45,
                    "params_m_no_classifier": 32.04,
                    "aggregator_params": 3000,
                    "unsupported_ops": {},
                    "latency_ms": 40.0 + i % 3,
                    "latency_iqr_ms": 0.4,
                    "throughput_clips_s": 25.0,
                    "batch": 1,
                    "threads": 10,
                    "device": "cuda",
                    "device_name": "NVIDIA H100",
                    "flops_by_operator": {"conv": 1.6e11, "batch_norm": 7e8, "linear": 3e6},
                },
                "test": {
                    "top1": top1,
                    "top5": top1 + 15.0,
                    "mean_class_acc": top1 - 1.0,
                    "num_videos": 5000,
                    "views": 6,
                    "loss": 1.1,
                    "predictions": "predictions.parquet",
                    "groups": {"g0": {"top1": top1}},
                },
            },
        )


def _clear_reports(root: Path) -> None:
    shutil.rmtree(root / "reports", ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=5000, help="run records to generate (default 5000)")
    p.add_argument("--epochs", type=int, default=24, help="metrics.jsonl lines per run (default 24)")
    p.add_argument("--out", default="results/benchmarks/report_speed.json", help="where to record the figures")
    args = p.parse_args(argv)
    from harness.report import plots, write_report  # noqa: F401 - imported before timing in-process runs

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t = time.perf_counter()
        make_runs(root, args.runs, args.epochs)
        t_make = time.perf_counter() - t

        def in_process() -> tuple[float, float]:
            """(wall s, CPU s) of write_report in this process, modules already imported (the main job's case)"""
            t0, c0 = time.perf_counter(), time.process_time()
            write_report(root, root / "reports", experiments_dir=root / "experiments")
            return time.perf_counter() - t0, time.process_time() - c0

        def command(formats: str = "md,tex,png,svg") -> tuple[float, float]:
            """(wall s, CPU s) of one `dsa-harness report` in a fresh process (interpreter start and
            every import included, as a user sees it)"""
            cmd = [
                sys.executable,
                "-m",
                "harness",
                "report",
                "--results",
                str(root),
                "--out",
                str(root / "reports"),
                "--experiments",
                str(root / "experiments"),
                "--formats",
                formats,
            ]
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            t0 = time.perf_counter()
            subprocess.run(cmd, check=True, cwd=REPO, stdout=subprocess.DEVNULL)
            wall = time.perf_counter() - t0
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)

        load_before = os.getloadavg()[0]
        timings = {"in-process": in_process()}
        _clear_reports(root)
        timings["command"] = command()
        index = (root / "reports" / "README.md").read_text()
        figures = len(list((root / "reports" / "figures").glob("*.png")))
        _clear_reports(root)
        timings["command, tables only (md,tex)"] = command("md,tex")
        load_after = os.getloadavg()[0]
        written = sorted(p.name for p in (root / "runs").iterdir() if p.is_file())
    assert f"runs: {args.runs} ({args.runs} done)" in index
    assert not written, f"a report wrote into the results folder: {written}"
    record = {
        "benchmark": "report_speed",
        "runs": args.runs,
        "epochs_per_run": args.epochs,
        "grids": len(GRIDS),
        "figures_png": figures,
        "make_runs_s": t_make,
        "target_s": 5.0,
        "timings": {k: {"wall_s": w, "cpu_s": c} for k, (w, c) in timings.items()},
        "load_average_1min": [load_before, load_after],
        "cpu_count": os.cpu_count(),
        "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **describe_environment(),
    }
    atomic_write_json(args.out, record)
    print(
        f"{args.runs} runs x {args.epochs} epochs in {len(GRIDS)} grids (generated in {t_make:.1f} s); "
        f"{figures} figures, each as PNG and SVG"
    )
    print(
        f"machine: {os.cpu_count()} cores, 1-min load average {load_before:.1f} before, {load_after:.1f} after "
        "(with other processes on the cores, wall > CPU)"
    )
    print(f"{'full report (md, tex, png, svg) unless stated':46s}  {'wall':>7s}  {'CPU':>7s}")
    for name, (wall, cpu) in timings.items():
        print(f"{name:46s}  {wall:6.2f}s  {cpu:6.2f}s")
    print(
        "target: <= 5 s; in-process = write_report as `make reproduce` calls it; command = `dsa-harness report` "
        "in a new process, interpreter start and imports included"
    )
    print(f"recorded in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
