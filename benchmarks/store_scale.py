"""The results store at scale: `dsa-harness report`, `load_runs`, `load_correct` and `sweep status` over
N realistic run folders (targets on the shared 2-core machine: report over 20,000 runs <= 5 s warm and
<= 60 s cold; `sweep status` of a 2,000-run grid <= 2 s warm). Replaces benchmarks/report_speed.py.

Generates N run folders in a temp dir, shaped like real ones: config.json as the launcher writes it;
final.json with a full profile record, hardware, versions, a ``manifest`` block and test metrics
(top1, top5, mean_class_acc, intervals, ..., no per-class list or confusion matrix: those live in
predictions.parquet now); metrics.jsonl with one line per epoch; predictions.parquet (200 classes,
5,000 test videos). The runs are spread over five training grids like the paper's (2-3 variants of a
knob x seeds, grid files and manifests) plus ``bench``, a 2,000-run profile grid whose folders are the
ones its grid file expands to (so `sweep status` reads them). Every run's predictions are its own (its seed's
common pattern with ~10% of videos redrawn), so the reports' paired comparisons (each variant against its
backbone, or the ablation grids' stated baseline) see distinct counts, as real runs give.

Then times, in one go:

* ``report cold``: `dsa-harness report` in a fresh process with no harness cache (``<root>/runs/.cache``
  removed); the OS page cache is warm (the files were just written), so "cold" is the harness's cold;
* ``report warm``: the same again, the caches present (the store's; the figure record and comparison memo of the
  reports folder) and nothing changed, three times in a row: the first and the median (the first after the cold
  run also waits for the pages it evicted); then into a new reports folder (the store's cache only: every figure
  drawn);
* ``report warm, 1% changed``: after rewriting final.json of 1% of the runs (their top-1: one grid's table and
  figures change);
* ``load_runs`` cold / warm, in-process;
* ``load_correct`` cold / warm, in-process, over every run with predictions;
* ``sweep status`` of the 2,000-run grid, a fresh process, warm (run twice, the second timed).

Commands are timed as wall-clock and as the CPU time of that process (on a shared machine the wall time
also counts the time other processes held the cores). Prints the figures and records them in
results/benchmarks/store_scale.json.

    python benchmarks/store_scale.py [--runs 20000] [--status-runs 2000] [--epochs 24]
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

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from harness.measure import describe_environment  # noqa: E402
from harness.results.rundir import RunDir, atomic_write_json, write_grid_manifest  # noqa: E402

BASELINES = {"ablation_split_ratio": 0.125, "ablation_alpha": 2, "ablation_kernel_size": 3}
"""report.baseline of the ablation grids (the paper's defaults); the other grids pair each variant with its backbone."""

GRIDS = {  # name -> (row key, values)
    "backbones": ("model.variant", ["tsm_r50", "tsm_r50_dsa", "i3d_r50", "i3d_r50_dsa"]),
    "ablation_split_ratio": ("model.split_ratio", [0.125, 0.25, 0.5, 1.0]),
    "ablation_alpha": ("model.alpha", [1, 2, 4, 8]),
    "ablation_kernel_size": ("model.kernel_size", [3, 5, 7]),
    "ablation_aggregators": ("model.variant", ["i3d_r50", "i3d_r50_static", "i3d_r50_nonlocal", "i3d_r50_dsa"]),
}
CLASSES = 200
VIDEOS = 5000


def _write(path: Path, obj) -> None:
    # plain writes (no fsync): generating the data is not what is measured
    path.write_text(json.dumps(obj, sort_keys=True, indent=2) + "\n")


class PredictionsWriter:
    """A distinct predictions.parquet per run (the schema the engine writes: 5,000 videos, 200 classes, 3
    skipped), so that paired comparisons see distinct counts as real runs do: the videos a run gets right are
    its seed's common pattern (what every variant of that seed gets right) with ~10% of videos redrawn."""

    def __init__(self) -> None:
        self.label = (np.arange(VIDEOS) % CLASSES).astype(np.int32)
        base = pa.table(
            {
                "index": pa.array(np.arange(VIDEOS, dtype=np.int32)),
                "line": pa.array(np.arange(1, VIDEOS + 1, dtype=np.int32)),
                "path": pa.array([f"videos/class_{lab:03d}/video_{i:05d}.mp4" for i, lab in enumerate(self.label)]),
                "label": pa.array(self.label),
            }
        )
        self.base = base
        self.skipped = np.zeros(VIDEOS, bool)
        self.skipped[[7, 1234, 4321]] = True
        self.offsets = pa.array(np.arange(0, 5 * VIDEOS + 1, 5, dtype=np.int32))

    def write(self, path: Path, i: int, seed: int, accuracy: float) -> None:
        common = np.random.default_rng([seed, 99]).random(VIDEOS) < accuracy
        rng = np.random.default_rng(i)
        redraw = rng.random(VIDEOS) < 0.1
        right = np.where(redraw, rng.random(VIDEOS) < accuracy, common)
        pred = np.where(right, self.label, (self.label + 1 + rng.integers(0, CLASSES - 1, VIDEOS)) % CLASSES)
        pred = pred.astype(np.int32)
        pred[self.skipped] = -1
        top5 = pa.ListArray.from_arrays(
            self.offsets,
            pa.array(((pred[:, None] + np.arange(5)) % CLASSES).astype(np.int32).ravel()),
            mask=pa.array(self.skipped),
        )
        score = np.where(self.skipped, np.nan, rng.random(VIDEOS)).astype(np.float32)
        table = self.base.append_column("pred", pa.array(pred)).append_column("top5", top5)
        table = table.append_column("true_score", pa.array(score, from_pandas=True))
        table = table.append_column("skipped", pa.array(self.skipped))
        table = table.append_column(
            "reason", pa.array(np.where(self.skipped, "undecodable", None).tolist(), type=pa.string())
        )
        meta = {
            "version": 1,
            "run_id": path.parent.name,
            "list": "data/minikinetics200/val.txt",
            "list_sha256": "0" * 64,
            "rows": VIDEOS,
            "num_classes": CLASSES,
            "views": 6,
        }
        pq.write_table(table.replace_schema_metadata({"harness.predictions": json.dumps(meta)}), path)


def _final(run_id: str, task: str, i: int, gflops: float, top1: float | None, variant: str) -> dict:
    final = {
        "run_id": run_id,
        "task": task,
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
        "manifest": {
            split: {
                "list": f"data/minikinetics200/{name}.txt",
                "sha256": "0" * 64,
                "rows": rows,
                "readable": rows - 3,
                "skipped": 3,
                "num_classes": CLASSES,
            }
            for split, name, rows in (("train", "train", 80000), ("val", "val", VIDEOS), ("test", "val", VIDEOS))
        },
        "profile": {
            "variant": variant,
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
            "latency_ci_low_ms": 39.8 + i % 3,
            "latency_ci_high_ms": 40.2 + i % 3,
            "throughput_clips_s": 25.0,
            "batch": 1,
            "threads": 10,
            "device": "cuda",
            "device_name": "NVIDIA H100",
            "flops_by_operator": {"conv": 1.6e11, "batch_norm": 7e8, "linear": 3e6},
            "settings": {
                "device": "cuda",
                "device_name": "NVIDIA H100",
                "threads": 10,
                "batch": 1,
                "dtype": "float32",
                "autocast": False,
                "tf32_matmul": False,
                "tf32_cudnn": True,
                "cudnn_benchmark": False,
                "channels_last": False,
                "compile_mode": "none",
                "torch": "2.13.0",
                "cuda": "12.4",
                "cudnn": 91000,
            },
        },
    }
    if top1 is not None:
        final["test"] = {
            "top1": top1,
            "top5": top1 + 15.0,
            "mean_class_acc": top1 - 1.0,
            "top1_ci_low": top1 - 1.3,
            "top1_ci_high": top1 + 1.3,
            "mean_class_acc_ci_low": top1 - 2.5,
            "mean_class_acc_ci_high": top1 + 0.5,
            "num_videos": VIDEOS - 3,
            "views": 6,
            "loss": 1.1,
            "num_skipped": 0,
            "skipped_videos": [],
            "predictions": "predictions.parquet",
            "groups": {"g0": {"top1": top1}},
        }
        final["train"] = {
            "epochs": 24,
            "global_batch": 96,
            "peak_lr": 0.12,
            "final_train_loss": 1.3,
            "clips_per_s": 900.0,
        }
    return final


def _train_config(run_id: str, grid: str, seed: int, model: dict, epochs: int) -> dict:
    return {
        "task": "train",
        "grid": grid,
        "run_id": run_id,
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
    }


def make_runs(root: Path, n: int, status_runs: int, epochs: int) -> Path:
    """``n`` run folders under root/runs (``status_runs`` of them in the ``bench`` profile grid) and grid
    files under root/experiments. Returns the bench grid file."""
    from benchmarks.sweep_overhead import write_bench_grid
    from harness.launch.grid import expand, load_grid

    exp = root / "experiments"
    exp.mkdir(parents=True)
    bench_file = write_bench_grid(exp, status_runs)
    bench = expand(load_grid(bench_file), root)[:status_runs]
    for j, spec in enumerate(bench):
        rd = RunDir(spec.run_dir).create()
        _write(rd.config_path, spec.config)
        _write(rd.job_path, {"state": "finished", "cluster": "local", "job_id": f"local-{j}", "attempts": 1})
        _write(rd.final_path, _final(spec.run_id, "profile", j, 0.5 + j % 5, None, spec.config["model"]["variant"]))
    write_grid_manifest(
        root / "runs" / "bench",
        grid="bench",
        grid_file=str(bench_file),
        run_ids=[s.run_id for s in bench],
        written_at="x",
    )
    for grid, (key, _) in GRIDS.items():
        (exp / f"{grid}.yaml").write_text(
            f"name: {grid}\ndescription: generated\npaper_table: generated\ntask: train\n"
            f"report:\n  rows: [{key}]\n  metrics: [test.top1, test.top5, profile.gflops_per_view, profile.params_m]\n"
            + (f"  baseline: {{{key}: {BASELINES[grid]}}}\n" if grid in BASELINES else "")
        )
    names = list(GRIDS)
    writer = PredictionsWriter()
    ids: dict[str, list[str]] = {g: [] for g in names}
    for i in range(n - len(bench)):
        grid = names[i % len(names)]
        key, values = GRIDS[grid]
        value = values[(i // len(names)) % len(values)]
        seed = i // (len(names) * len(values))
        model = {"variant": "i3d_r50_dsa", "num_classes": CLASSES, "pretrained": "data/pretrained/resnet50.pth"}
        model[key.split(".", 1)[1]] = value
        suffix = str(model["variant"]).rsplit("_", 1)[-1]
        model["aggregator"] = {"dsa": "dsa", "static": "static_conv", "nonlocal": "nonlocal"}.get(suffix, "avg")
        gflops = 168.0 + (0.02 if "dsa" in str(model["variant"]) else 0.0) - (36.2 if "tsm" in str(value) else 0.0)
        top1 = 70.0 + (i % 13) * 0.5
        run_id = f"{i:012x}"
        ids[grid].append(run_id)
        rd = RunDir(root / "runs" / grid / run_id).create()
        _write(rd.config_path, _train_config(run_id, grid, seed, model, epochs))
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
        _write(rd.job_path, {"state": "finished", "cluster": "slurm", "job_id": f"{1000 + i}", "attempts": 1})
        writer.write(rd.path / "predictions.parquet", i, seed, top1 / 100)
        _write(rd.final_path, _final(run_id, "train", i, gflops, top1, str(model["variant"])))
    for grid, run_ids in ids.items():
        write_grid_manifest(
            root / "runs" / grid, grid=grid, grid_file=str(exp / f"{grid}.yaml"), run_ids=run_ids, written_at="x"
        )
    return bench_file


def _command(args: list[str]) -> tuple[float, float]:
    """(wall s, CPU s) of one command in a fresh process (interpreter start and imports included)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "harness", *args], check=True, cwd=REPO, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _in_process(fn) -> tuple[tuple[float, float], object]:
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return (time.perf_counter() - t0, time.process_time() - c0), out


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=20000, help="run folders to generate (default 20000)")
    p.add_argument("--status-runs", type=int, default=2000, help="of them in the `sweep status` grid (default 2000)")
    p.add_argument("--epochs", type=int, default=24, help="metrics.jsonl lines per run (default 24)")
    p.add_argument("--out", default="results/benchmarks/store_scale.json", help="where to record the figures")
    p.add_argument("--keep", default=None, help="generate into this folder and keep it (default: a temp dir)")
    args = p.parse_args(argv)
    from harness.results.cache import RACY_NS, cache_dir, load_correct
    from harness.results.store import load_runs

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.keep) if args.keep else Path(tmp)
        t = time.perf_counter()
        bench_file = make_runs(root, args.runs, args.status_runs, args.epochs)
        t_make = time.perf_counter() - t
        # run folders are not cached while their files are younger than RACY_NS (a change within the clock's
        # tick could keep a signature): let the newest age past it, as finished runs have
        time.sleep(RACY_NS / 1e9 + 0.5)
        runs_root = root / "runs"
        report = [
            "report",
            "--results",
            str(root),
            "--out",
            str(root / "reports"),
            "--experiments",
            str(root / "experiments"),
        ]
        status = ["sweep", "status", str(bench_file), "--results-root", str(root)]
        timings: dict[str, tuple[float, float]] = {}
        load_before = os.getloadavg()[0]
        timings["report cold (no harness cache; OS page cache warm)"] = _command(report)
        index = (root / "reports" / "README.md").read_text()
        figures = len(list((root / "reports" / "figures").glob("*.png")))
        # warm: the median of 3 runs in a row; the first of them also waits for pages the cold run evicted
        runs3 = [_command(report) for _ in range(3)]
        timings["report warm, first run after the cold one"] = runs3[0]
        timings["report warm (caches present, nothing changed; median of 3)"] = sorted(runs3)[1]
        fresh = [*report[:4], str(root / "reports2"), *report[5:]]
        timings["report warm, new reports folder (figures drawn)"] = _command(fresh)
        touched = sorted(p for p in runs_root.glob("backbones/*") if p.is_dir())[: max(1, args.runs // 100)]
        for path in touched:
            rd = RunDir(path)
            final = rd.read_final()
            final["test"]["top1"] += 0.01  # the grid's table and figures change
            rd.write_final(final)
        timings[f"report warm, {len(touched)} runs (1%) changed"] = _command(report)
        shutil.rmtree(cache_dir(runs_root))
        timings["load_runs cold (in-process)"], cold = _in_process(lambda: load_runs(runs_root))
        timings["load_runs warm (in-process)"], warm = _in_process(lambda: load_runs(runs_root))
        timings["load_correct cold (in-process)"], (correct, problems) = _in_process(lambda: load_correct(cold))
        timings["load_correct warm (in-process)"], (correct2, _) = _in_process(lambda: load_correct(warm))
        _command(status)
        timings[f"sweep status of {args.status_runs} runs, warm"] = _command(status)
        load_after = os.getloadavg()[0]
        cache_files = {p.name: p.stat().st_size for p in cache_dir(runs_root).iterdir()}
        written = sorted(p.name for p in runs_root.iterdir() if p.is_file())
    assert f"runs: {args.runs} ({args.runs} done)" in index, index[:500]
    assert index.count("Δ top-1 vs baseline [95% CI]") == len(GRIDS), "every training grid pairs its runs"
    assert "no predictions" not in index and "not paired" not in index, "the paired columns were measured"
    assert not written, f"a report wrote into the results folder: {written}"
    assert len(correct) == len(correct2) == args.runs - args.status_runs and not problems
    record = {
        "benchmark": "store_scale",
        "runs": args.runs,
        "status_runs": args.status_runs,
        "epochs_per_run": args.epochs,
        "classes": CLASSES,
        "test_videos": VIDEOS,
        "grids": len(GRIDS) + 1,
        "figures_png": figures,
        "make_runs_s": t_make,
        "targets_s": {"report warm": 5.0, "report cold": 60.0, "sweep status warm": 2.0},
        "note": "cold = no harness cache; the OS page cache is warm (the files were just written)",
        "cache_files_bytes": cache_files,
        "timings": {k: {"wall_s": w, "cpu_s": c} for k, (w, c) in timings.items()},
        "load_average_1min": [load_before, load_after],
        "cpu_count": os.cpu_count(),
        "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **describe_environment(),
    }
    atomic_write_json(args.out, record)
    print(
        f"{args.runs} run folders ({args.status_runs} in the status grid), {args.epochs} epochs, {CLASSES} classes, "
        f"{VIDEOS} test videos with predictions.parquet, {len(GRIDS) + 1} grids (generated in {t_make:.0f} s); "
        f"{figures} figures; cache {cache_files}"
    )
    print(
        f"machine: {os.cpu_count()} cores, 1-min load average {load_before:.1f} before, {load_after:.1f} after; "
        "cold = no harness cache, OS page cache warm (files just written)"
    )
    print(f"{'':52s}  {'wall':>7s}  {'CPU':>7s}")
    for name, (wall, cpu) in timings.items():
        print(f"{name:52s}  {wall:6.2f}s  {cpu:6.2f}s")
    print("targets: report <= 5 s warm, <= 60 s cold (20,000 runs); sweep status <= 2 s warm (2,000 runs)")
    print(f"recorded in {args.out}")
    return record


if __name__ == "__main__":
    main()
    raise SystemExit(0)
