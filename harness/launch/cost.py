"""What a grid will cost before it runs: ``estimate_cost`` (device-hours per run from fvcore FLOPs or a
declared throughput) and ``show_table`` (the expanded runs with their estimate, printed by ``sweep show``)."""

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


def _progress(total: int, desc: str, enabled: bool = True):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="run", disable=not enabled, leave=False)


def show_table(grid: Grid, runs: list[RunSpec], costs: list[dict | None] | None = None) -> str:
    """The expanded runs of ``sweep show``, with the cost estimate when given."""
    from tabulate import tabulate

    keys = [k for k in grid.axis_keys]
    headers = ["#", "run_id"] + keys + ["seed"]
    with_cost = costs is not None and any(c for c in costs)
    if with_cost:
        headers += ["GFLOPs/view", "test GFLOPs/video", "epochs", "clips", "est. hours"]
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
    return text
