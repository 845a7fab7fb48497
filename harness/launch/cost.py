"""What a grid will cost before it runs: ``estimate_cost`` (device-hours per run from fvcore FLOPs or a
declared throughput), ``estimate_memory`` (peak training memory per GPU, measured or from the stated model of
``harness.measure.memory``) and ``show_table`` (the expanded runs with their estimates, printed by ``sweep show``)."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

from harness.config import get_dotted
from harness.launch.grid import Grid, Resources, RunSpec
from harness.launch.status import format_value
from harness.results.rundir import atomic_write_json, read_json


def _count_lines(path: Any) -> int | None:
    if not path or not Path(path).is_file():
        return None
    with open(path, "rb") as f:
        return sum(1 for line in f if line.strip())


def _test_size(c: dict) -> int | None:
    """The test crop of a (resolved) train run config: ``eval.size``, None meaning ``data.size``."""
    return get_dotted(c, "eval.size") or get_dotted(c, "data.size")


def estimate_cost(
    grid: Grid,
    runs: list[RunSpec],
    throughput: dict | None = None,
    flops_cache: str | os.PathLike | None = None,
    progress: bool = True,
) -> list[dict | None]:
    """Estimated device-hours per run of a train grid (None per run for profile grids).

    With F = fvcore GFLOPs per view of the run's model at the training crop (one multiply-add = one
    FLOP; one view = U snippets x T frames at ``data.size``), Ft = the same at the test crop
    (``eval.size``, None: ``data.size``; the paper tests on crops of 256), E = ``train.epochs``,
    N = training clips per epoch (``cost.train_clips``, else the lines of ``data.train``), M = test
    clips (``cost.test_clips``, else the lines of ``data.test``/``data.val``) and V =
    ``eval.test_groups`` x ``eval.crops``:

    * with a declared or measured training throughput ``clips_per_s`` (per device):
      hours = (E*N + M*V*Ft/(3*F)) / clips_per_s / 3600 (a test view costs ~1/3 of a training step
      at the same size, scaled by Ft/F);
    * else with a sustained rate ``tflops`` (fvcore TFLOP/s per device):
      hours = (3*E*N*F + M*V*Ft) / (tflops * 1000) / 3600 (backward ~ 2x forward).

    Each record also states the test cost per video, ``test_gflops_per_video`` = Ft x V (with
    ``test_size``, ``test_gflops_per_view``, ``views``). Hours are GPU-hours when ``resources.gpus`` > 0
    (wall time ~ hours / gpus), else CPU-node hours. F and Ft come from
    ``harness.measure.profile_model(..., latency=False)``, cached in ``flops_cache``.
    """
    if grid.task != "train":
        return [None] * len(runs)
    cost = grid.cost or {}
    tp = dict(cost.get("throughput") or {})
    tp.update(throughput or {})
    cache_path = Path(flops_cache) if flops_cache else None
    cache: dict = {}
    if cache_path and cache_path.exists():
        with contextlib.suppress(OSError, ValueError):
            cache = read_json(cache_path)
    out: list[dict | None] = []

    def key(model: dict, size: int) -> str:
        return json.dumps({"model": model, "size": size}, sort_keys=True)

    keys = []  # per run: (training key, test key)
    wanted: dict[str, tuple[dict, int]] = {}
    for run in runs:
        model = dict(run.config.get("model") or {})
        size = get_dotted(run.config, "data.size") or 224
        test_size = _test_size(run.config) or size
        keys.append((key(model, size), key(model, test_size), test_size))
        wanted[key(model, size)] = (model, size)
        wanted[key(model, test_size)] = (model, test_size)
    missing = {k: v for k, v in wanted.items() if k not in cache}
    if missing:
        from harness.measure import profile_model

        bar = _progress(len(missing), "FLOPs for the estimate", progress)
        for k, (model, size) in missing.items():
            m = dict(model)
            variant = m.pop("variant")
            ncls = m.pop("num_classes", 400)
            m.pop("pretrained", None)
            rec = profile_model(variant, m, size=size, latency=False, num_classes=ncls)
            cache[k] = rec["gflops_per_view"]
            bar.update(1)
        bar.close()
        if cache_path:
            atomic_write_json(cache_path, cache)
    line_counts: dict = {}
    for run, (k, kt, test_size) in zip(runs, keys):
        c = run.config
        epochs = get_dotted(c, "train.epochs") or 0
        n = cost.get("train_clips")
        if n is None:
            p = get_dotted(c, "data.train")
            n = line_counts.setdefault(p, _count_lines(p))
        m = cost.get("test_clips")
        if m is None:
            p = get_dotted(c, "data.test") or get_dotted(c, "data.val")
            m = line_counts.setdefault(p, _count_lines(p))
        views = (get_dotted(c, "eval.test_groups") or 1) * (get_dotted(c, "eval.crops") or 1)
        f, ft = cache.get(k), cache.get(kt)
        hours = None
        if n is not None:
            m = m or 0
            if tp.get("clips_per_s"):
                scale = ft / f if f and ft else 1.0
                hours = (epochs * n + m * views * scale / 3) / float(tp["clips_per_s"]) / 3600
            elif tp.get("tflops") and f is not None and ft is not None:
                hours = (3 * epochs * n * f + m * views * ft) / (float(tp["tflops"]) * 1000) / 3600
        gpus = int((c.get("resources") or {}).get("gpus", 0))
        out.append(
            {
                "gflops_per_view": f,
                "test_size": test_size,
                "test_gflops_per_view": ft,
                "test_gflops_per_video": ft * views if ft is not None else None,
                "epochs": epochs,
                "train_clips": n,
                "test_clips": m,
                "views": views,
                "hours": hours,
                "unit": "GPU-h" if gpus else "CPU-h",
                "wall_h": (hours / gpus if gpus and hours is not None else hours),
            }
        )
    return out


MEMORY_CACHE_VERSION = 1
"""Part of the memory cache's keys: bump when the model of ``harness.measure.memory`` changes."""


def estimate_memory(
    runs: list[RunSpec],
    results_root: str | os.PathLike = "results",
    gpu_mem_gb: float | None = None,
    cache_file: str | os.PathLike | None = None,
) -> list[dict | None]:
    """Peak training memory per GPU of each train run (None for other tasks), in GB (10^9 bytes).

    Measured where a measurement exists (``harness.measure.memory.measured_peak``: the run's own
    final.json, else ``RESULTS/benchmarks/train_memory.json`` for the same model, batch, crop and AMP),
    else the stated model of ``harness.measure.memory.estimate_train_memory`` (activations counted on the
    meta device at the run's per-GPU batch ``train.batch_size``, crop ``data.size`` and ``train.amp``,
    plus parameters, gradients, momentum, AMP weight copies and DDP buckets when ``resources.gpus`` > 1).
    ``gpu_mem_gb`` (else ``resources.gpu_mem_gb``) is the memory of one GPU of the partition: a run whose
    peak exceeds ``WARN_FRACTION`` (90%) of it gets ``warn``. Model estimates are cached in ``cache_file``.
    """
    from harness.measure.memory import WARN_FRACTION, estimate_train_memory, measured_peak, memory_key, read_measured

    cache_path = Path(cache_file) if cache_file else None
    cache: dict = {}
    if cache_path and cache_path.exists():
        with contextlib.suppress(OSError, ValueError):
            cache = read_json(cache_path)
    measured = read_measured(results_root)
    out: list[dict | None] = []
    dirty = False
    for run in runs:
        c = run.config
        if c.get("task", "train") != "train":
            out.append(None)
            continue
        model = dict(c.get("model") or {})
        batch = int(get_dotted(c, "train.batch_size") or 1)
        size = int(get_dotted(c, "data.size") or 224)
        amp = get_dotted(c, "train.amp") or "none"
        res = c.get("resources") or {}
        ddp = int(res.get("gpus") or 0) > 1
        final = None
        if run.run_dir is not None:
            from harness.results.rundir import RunDir

            final = RunDir(run.run_dir).read_final()
        rec = measured_peak(results_root, model, batch=batch, size=size, amp=amp, final=final, measured=measured)
        if rec is None:
            key = json.dumps([MEMORY_CACHE_VERSION, memory_key(model, batch, size, amp), ddp])
            if key not in cache:
                rc = run.run_config
                if rc is None:
                    from harness.config import RunConfig

                    rc = RunConfig.from_dict(c)
                cache[key] = estimate_train_memory(rc.model, batch=batch, size=size, amp=amp, ddp=ddp)
                dirty = True
            rec = dict(cache[key])
        limit = gpu_mem_gb if gpu_mem_gb is not None else res.get("gpu_mem_gb")
        rec["gpu_mem_gb"] = limit
        rec["warn"] = bool(limit) and rec["total_gb"] > WARN_FRACTION * float(limit)
        out.append(rec)
    if dirty and cache_path:
        atomic_write_json(cache_path, cache)
    return out


def _progress(total: int, desc: str, enabled: bool = True):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="run", disable=not enabled, leave=False)


def show_table(
    grid: Grid, runs: list[RunSpec], costs: list[dict | None] | None = None, memory: list[dict | None] | None = None
) -> str:
    """The expanded runs of ``sweep show``, with the cost estimate and the peak memory per GPU when given."""
    from tabulate import tabulate

    keys = [k for k in grid.axis_keys]
    headers = ["#", "run_id"] + keys + ["seed"]
    with_cost = costs is not None and any(c for c in costs)
    if with_cost:
        headers += ["GFLOPs/view", "test GFLOPs/video", "epochs", "clips", "est. hours"]
    with_memory = memory is not None and any(m for m in memory)
    with_limit = with_memory and any(m and m.get("gpu_mem_gb") for m in memory)
    if with_memory:
        headers += ["peak mem/GPU"] + (["memory"] if with_limit else [])
    rows = []
    for i, run in enumerate(runs):
        row = [run.index, run.run_id] + [format_value(run.axes.get(k)) for k in keys] + [run.axes.get("seed")]
        if with_cost:
            c = costs[i] or {}
            f = c.get("gflops_per_view")
            h = c.get("hours")
            ft = c.get("test_gflops_per_view")
            row += [
                f"{f:.1f}" if f is not None else "",
                f"{c['views']} x {ft:.1f} @{c['test_size']}px = {c['test_gflops_per_video']:.0f}" if ft else "",
                c.get("epochs"),
                c.get("train_clips"),
                f"{h:,.1f} {c.get('unit')}" if h is not None else "n/a",
            ]
        if with_memory:
            mem = memory[i] or {}
            row.append(
                f"{mem['total_gb']:.1f} GB ({'model' if mem['source'] == 'model' else 'measured'})" if mem else ""
            )
            if with_limit:
                lim = mem.get("gpu_mem_gb")
                row.append(f"WARNING: over 90% of {lim:g} GB" if mem.get("warn") else ("ok" if lim else "?"))
        rows.append(row)
    res = Resources.from_dict(runs[0].config.get("resources")) if runs else None
    lines = [f"grid {grid.name} ({grid.path}): {grid.task}, {len(runs)} runs", f"  {grid.description}".rstrip()]
    if grid.paper_table:
        lines.append(f"  reproduces: {grid.paper_table}")
    if grid.paper_reference:
        lines.append(f"  paper reference: {grid.paper_reference}")
    if res:
        lines.append(
            f"  resources per run: {res.gpus} GPU(s) on {res.nodes} node(s), {res.cpus_per_task} CPUs/task, "
            f"{res.mem_gb:g} GB, {res.time_min} min"
        )
    text = "\n".join(lines) + "\n\n" + tabulate(rows, headers=headers, tablefmt="simple")
    if with_cost:
        hours = [c["hours"] for c in costs if c and c.get("hours") is not None]
        unit = next((c["unit"] for c in costs if c), "GPU-h")
        if hours:
            text += (
                f"\n\nestimated total: {sum(hours):,.1f} {unit} ({len(hours)} of {len(runs)} runs estimated; "
                "formula: harness.launch.cost.estimate_cost)"
            )
        else:
            text += "\n\nno estimate: declare cost.train_clips and cost.throughput in the grid"
    if with_memory:
        over = sum(1 for m in memory if m and m.get("warn"))
        measured = sum(1 for m in memory if m and m["source"] != "model")
        text += (
            f"\npeak training memory per GPU: {measured} measured, {len(runs) - measured} from the stated model "
            "(saved activations counted on the meta device + parameters, gradients, momentum, AMP weight copies, "
            "DDP buckets; harness.measure.memory)"
        )
        if with_limit:
            text += f"; {over} run(s) over 90% of the GPU memory" if over else "; every run fits"
    return text
