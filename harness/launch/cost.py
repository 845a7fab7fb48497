"""What a grid will cost before it runs: ``estimate_cost`` (device-hours per run from fvcore FLOPs or a
declared throughput), ``estimate_memory`` (peak training memory per GPU, measured or from the stated model of
``harness.measure.memory``) and ``show_table`` (the expanded runs with their estimates, printed by ``sweep show``)."""

from __future__ import annotations

import contextlib
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.config import get_dotted
from harness.errors import UsageError
from harness.launch.grid import Grid, GridError, Resources, RunSpec
from harness.launch.status import format_value
from harness.results.rundir import CONFIG, FINAL, atomic_write_json, read_json

# ---------------------------------------------------------------------------------------------
# measured training throughput (profile runs with profile.train)
MODEL_KEY_IGNORES = ("num_classes", "pretrained")
"""Model fields a measurement is not matched on (as ``harness.measure.memory.memory_key``)."""
RUN_DTYPE = {"none": ("fp32",), "auto": ("bf16", "fp16"), "bf16": ("bf16",), "fp16": ("fp16",)}
"""Profile dtypes (``settings.dtype``) that time a GPU run's ``train.amp``, preferred first (``auto`` is bf16
on current GPUs, fp16 on older ones). A CPU run trains in fp32 whatever ``train.amp`` says."""


def model_key(model: dict) -> str:
    """What a measurement is matched on: the resolved model (``model_dict``) without num_classes and
    pretrained, as in ``harness.measure.memory.memory_key``."""
    return json.dumps({k: v for k, v in model.items() if k not in MODEL_KEY_IGNORES}, sort_keys=True)


def _positive(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0 or v == float("inf"):
        return None
    return float(v)


@dataclass
class Calibration:
    """Measured training throughputs read from profile runs (``read_calibration``).

    ``records``: one per profile run with train timing, ``{"model_key", "videos_per_s", "batch", "size",
    "dtype", "device" ("cuda" | "cpu"), "device_name", "channels_last", "compile_mode", "where",
    "finished_at"}``; ``videos_per_s`` is ``profile.train_videos_s`` (videos of U snippets per second
    on one device, = batch / train step), never ``train_clips_s`` (snippets per second)."""

    root: str
    records: list = field(default_factory=list)
    finals: int = 0
    untimed: int = 0
    malformed: int = 0

    def match(self, run_config: dict, gpu: str | None = None) -> tuple[dict | None, str]:
        """The measurement for a train run (resolved config): same model (``model_key``), crop
        (``data.size``) and AMP dtype, on the named GPU (``gpu``: part of ``settings.device_name``,
        case-insensitive; "cpu": CPU records), else on any CUDA device (a CPU run, ``resources.gpus`` 0:
        CPU records); the exact per-GPU batch (``train.batch_size``), else the nearest. Among equals, the
        one with the run's ``train.channels_last`` / ``train.compile``, then the newest.
        Returns (record with ``note``, "") or (None, why not)."""
        gpus = int((run_config.get("resources") or {}).get("gpus") or 0)
        cpu = (gpu or "").strip().lower() == "cpu" or (not gpu and not gpus)
        name = None if cpu or not gpu else gpu.strip().lower()
        amp = get_dotted(run_config, "train.amp") or "auto"
        dtypes = ("fp32",) if cpu else RUN_DTYPE.get(amp, ("bf16", "fp16"))
        key = model_key(dict(run_config.get("model") or {}))
        size = int(get_dotted(run_config, "data.size") or 224)
        batch = int(get_dotted(run_config, "train.batch_size") or 1)
        cl = bool(get_dotted(run_config, "train.channels_last"))
        compiled = bool(get_dotted(run_config, "train.compile"))
        same_model = [r for r in self.records if r["model_key"] == key]
        on_device = [
            r
            for r in same_model
            if r["device"] == ("cpu" if cpu else "cuda") and (name is None or name in (r["device_name"] or "").lower())
        ]
        found = [r for r in on_device if r["size"] == size and r["dtype"] in dtypes]
        device = "cpu" if cpu else (gpu.strip() if gpu else "cuda")
        if not found:
            if not same_model:
                why = "no profile record of this model"
            elif not on_device:
                why = f"no profile record of this model on {device}"
            else:
                why = f"no profile record of this model at {size}px, {'/'.join(dtypes)} on {device}"
            return None, why

        def rank(r: dict) -> tuple:
            return (
                abs(r["batch"] - batch),
                -r["batch"],  # equally near: the larger batch
                dtypes.index(r["dtype"]),
                (r["channels_last"] is not None and r["channels_last"] != cl)
                + (r["compile_mode"] is not None and (r["compile_mode"] != "none") != compiled),
            )

        newest_first = sorted(found, key=lambda r: (str(r["finished_at"] or ""), r["where"]), reverse=True)
        best = dict(min(newest_first, key=rank))  # min keeps the first of equals: the newest
        note = f"measured: {best['device_name'] or best['device']}, batch {best['batch']}"
        if best["batch"] != batch:
            note += f" (nearest to the run's {batch})"
        best["note"] = f"{note}, {best['dtype']} ({best['where']})"
        return best, ""

    def summary(self) -> str:
        text = (
            f"{self.finals} final.json under {self.root}: {len(self.records)} profile record(s) with train timing, "
            f"{self.untimed} without"
        )
        if self.malformed:
            text += f"; warning: {self.malformed} unreadable or malformed final.json skipped"
        return text


def read_calibration(root: str | os.PathLike) -> Calibration:
    """The training throughputs measured by the profile runs under ``root`` (a results folder, its
    ``runs/``, one grid's ``runs/<grid>``, or one run folder): every ``final.json`` up to three folders
    down whose ``profile`` section times a training step (``train_videos_s``, else ``batch`` /
    ``train_step_ms``), matched through the run's ``config.json`` model. Records without train timing
    are skipped; an unreadable or malformed final.json (or its config.json) is counted in
    ``malformed``, never raised. Raises FileNotFoundError when ``root`` is not a folder."""
    root_path = Path(root)
    if not root_path.is_dir():
        raise FileNotFoundError(str(root))
    cal = Calibration(root=str(root))
    paths = sorted({p for depth in range(4) for p in root_path.glob("/".join(["*"] * depth + [FINAL]))})
    for path in paths:
        cal.finals += 1
        try:
            final = json.loads(path.read_text(encoding="utf-8"))
            prof = final.get("profile") if final.get("task", "profile") == "profile" else None
            if prof is None:
                continue
            if not isinstance(prof, dict):
                raise ValueError("profile is not a mapping")
            settings = prof.get("settings") or {}
            if not isinstance(settings, dict):
                raise ValueError("profile.settings is not a mapping")
            batch = settings.get("batch", prof.get("batch"))
            vps = _positive(prof.get("train_videos_s"))
            step = _positive(prof.get("train_step_ms"))
            if vps is None and step is not None and _positive(batch):
                vps = batch / (step / 1000)
            if vps is None:
                cal.untimed += 1
                continue
            config = json.loads((path.parent / CONFIG).read_text(encoding="utf-8"))
            model = config["model"]
            device = str(settings.get("device") or prof.get("device") or "")
            hardware = final.get("hardware") or {}
            name = settings.get("device_name") or prof.get("device_name") or hardware.get("device_name")
            cal.records.append(
                {
                    "model_key": model_key(model),
                    "videos_per_s": vps,
                    "batch": int(batch),
                    "size": int(prof["size"]),
                    "dtype": settings.get("dtype"),
                    "device": "cuda" if device.startswith("cuda") else device,
                    "device_name": name,
                    "channels_last": settings.get("channels_last"),
                    "compile_mode": settings.get("compile_mode"),
                    "where": str(path.parent),
                    "finished_at": final.get("finished_at"),
                }
            )
        except (OSError, ValueError, TypeError, KeyError, AttributeError):
            cal.malformed += 1
    return cal


def load_calibration(grid: Grid, calibrate: str | os.PathLike | None = None) -> Calibration | None:
    """The measurements for ``grid``'s estimate: ``calibrate`` (``sweep show --calibrate``), else the grid's
    ``cost.from`` (a path relative to the current folder, like the grid's data paths), else None. A folder
    that does not exist is an error naming where it came from and the fix."""
    path = calibrate if calibrate is not None else (grid.cost or {}).get("from")
    if path is None:
        return None
    try:
        return read_calibration(path)
    except FileNotFoundError:
        fix = (
            "a results folder, results/runs or results/runs/<grid> holding runs of a profile grid "
            "(task: profile, profile.train: true); run that grid first (`dsa-harness sweep submit`)"
        )
        if calibrate is not None:
            raise UsageError(f"--calibrate {path}: no such folder; give {fix}") from None
        raise GridError(f"{grid.path}: cost.from: {path}: no such folder; give {fix}, or drop cost.from") from None


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
    calibrate: str | os.PathLike | Calibration | None = None,
    gpu: str | None = None,
    loader: dict | None = None,
) -> list[dict | None]:
    """Estimated device-hours per run of a train grid (None per run for profile grids).

    With F = fvcore GFLOPs per view of the run's model at the training crop (one multiply-add = one
    FLOP; one view = U snippets x T frames at ``data.size``), Ft = the same at the test crop
    (``eval.size``, None: ``data.size``; the paper tests on crops of 256), E = ``train.epochs``,
    N = training videos per epoch (``cost.train_clips``, else the lines of ``data.train``; each line
    is one video, one training sample of U snippets), M = test videos (``cost.test_clips``, else the
    lines of ``data.test``/``data.val``) and V = ``eval.test_groups`` x ``eval.crops``:

    * with a training throughput of v videos per second per device (training samples of U snippets,
      at the run's per-GPU batch; NOT the "clips/s" of the training log, which counts snippets on all
      GPUs together):
      hours = (E*N + M*V*Ft/(3*F)) / v / 3600 (a test view costs ~1/3 of a training step at the same
      size, scaled by Ft/F);
    * else with a sustained rate ``tflops`` (fvcore TFLOP/s per device):
      hours = (3*E*N*F + M*V*Ft) / (tflops * 1000) / 3600 (backward ~ 2x forward).

    Where v comes from, first found per run (its ``throughput_source`` says which):

    1. measured: ``calibrate`` (``sweep show --calibrate DIR``), else the grid's ``cost.from``, is a folder
       of profile runs (``task: profile`` with ``profile.train: true``); v = their ``train_videos_s``
       (= batch / train step; ``train_clips_s`` = batch x U / step counts snippets and is not used) for
       the run's model (all fields but num_classes and pretrained), crop ``data.size`` and AMP dtype
       (``train.amp`` none: fp32, bf16, fp16, auto: bf16 else fp16; a CPU run: fp32), on the GPU that
       ``gpu`` (``--gpu``), else ``cost.gpu``, names (part of ``settings.device_name``, any case;
       "cpu": CPU records), else on any CUDA device (for a CPU run, ``resources.gpus`` 0: CPU records);
       a GPU run is never calibrated from a CPU record unless the grid names "cpu". The record at the
       run's per-GPU batch ``train.batch_size`` is preferred, else the nearest batch (the source says
       so). See :meth:`Calibration.match`;
    2. declared: ``throughput["videos_per_s"]`` (``--videos-per-s``) else ``cost.throughput.videos_per_s``;
       ``clips_per_s`` (``--clips-per-s``) is the older name of the same quantity, videos per second per
       device, still accepted;
    3. assumed: ``tflops`` (``--tflops``, else ``cost.throughput.tflops``) with the FLOPs formula.

    The data path (:func:`data_rate`): where the loader's videos/s per core is known (``loader``: a
    ``dsa-harness data bench`` record, ``--loader-record``, else ``{"videos_per_s_per_core": N}``,
    ``--loader-videos-per-s``, else the grid's ``cost.loader_videos_per_s``), a GPU run's training throughput
    is min(its GPU step throughput v (measured or declared; from ``tflops``: 1000 x tflops / (3 F)), that rate
    x cores per GPU (``resources.cpus_per_task``: one task per GPU)); the record says which bounds it
    (``data_bound``) and how many cores per GPU would make it GPU-bound (``cores_per_gpu_for_gpu``).

    Each record also states the test cost per video, ``test_gflops_per_video`` = Ft x V (with
    ``test_size``, ``test_gflops_per_view``, ``views``), ``videos_per_s`` and ``measured`` (the matched
    record or None). Hours are GPU-hours when ``resources.gpus`` > 0 (wall time ~ hours / gpus), else
    CPU-node hours. F and Ft come from ``harness.measure.profile_model(..., latency=False)``, cached in
    ``flops_cache``.
    """
    if grid.task != "train":
        return [None] * len(runs)
    cost = grid.cost or {}
    tp, declared = _stated_throughput(cost, throughput)
    calibration = calibrate if isinstance(calibrate, Calibration) else load_calibration(grid, calibrate)
    rates = _Rates(tp, declared, calibration, gpu or cost.get("gpu"), _loader_rate(loader, cost))
    keys, wanted = _flops_keys(runs)
    cache = _gflops_per_view(wanted, flops_cache, progress)
    line_counts: dict = {}
    return [
        _run_cost(run.config, cache.get(k), cache.get(kt), test_size, cost, line_counts, rates)
        for run, (k, kt, test_size) in zip(runs, keys)
    ]


def _stated_throughput(cost: dict, throughput: dict | None) -> tuple[dict, Any]:
    """(the grid's ``cost.throughput`` updated by the command line's ``throughput``, the declared videos/s)."""
    tp = {k: v for k, v in (cost.get("throughput") or {}).items() if v is not None}
    tp.update({k: v for k, v in (throughput or {}).items() if v is not None})
    declared = tp.get("videos_per_s") or tp.get("clips_per_s")
    if (throughput or {}).get("clips_per_s") and not (throughput or {}).get("videos_per_s"):
        declared = throughput["clips_per_s"]  # the command line's older name beats the grid's newer one
    return tp, declared


def _flops_key(model: dict, size: int) -> str:
    return json.dumps({"model": model, "size": size}, sort_keys=True)


def _flops_keys(runs: list[RunSpec]) -> tuple[list[tuple[str, str, int]], dict[str, tuple[dict, int]]]:
    """(per run: its training FLOPs key, test FLOPs key and test size; every key -> (model, size))."""
    keys = []  # per run: (training key, test key)
    wanted: dict[str, tuple[dict, int]] = {}
    for run in runs:
        model = dict(run.config.get("model") or {})
        size = get_dotted(run.config, "data.size") or 224
        test_size = _test_size(run.config) or size
        keys.append((_flops_key(model, size), _flops_key(model, test_size), test_size))
        wanted[_flops_key(model, size)] = (model, size)
        wanted[_flops_key(model, test_size)] = (model, test_size)
    return keys, wanted


def _gflops_per_view(wanted: dict[str, tuple[dict, int]], flops_cache, progress: bool) -> dict:
    """GFLOPs per view of every wanted (model, size), read from ``flops_cache`` where it has them, else
    counted (``profile_model(..., latency=False)``) and written back to it."""
    cache_path = Path(flops_cache) if flops_cache else None
    cache: dict = {}
    if cache_path and cache_path.exists():
        with contextlib.suppress(OSError, ValueError):
            cache = read_json(cache_path)
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
    return cache


@dataclass(frozen=True)
class _Rates:
    """Where a run's training throughput comes from: measured (``calibration``, on ``gpu``), declared
    (``declared`` videos/s) or assumed (``tp["tflops"]``)."""

    tp: dict
    declared: Any
    calibration: Calibration | None
    gpu: str | None
    loader: dict | None = None  # {"per_core": {backend or "any": videos/s}, "source": text}: see _loader_rate

    def for_run(self, c: dict) -> tuple[dict | None, float | None, str]:
        """(the matched measurement or None, videos/s or None, the 'throughput (source)' text)."""
        measured, why = self.calibration.match(c, self.gpu) if self.calibration is not None else (None, "")
        if measured is not None:
            vps, source = measured["videos_per_s"], measured["note"]
        elif self.declared:
            vps, source = float(self.declared), f"declared {float(self.declared):g} videos/s"
        elif self.tp.get("tflops"):
            vps, source = None, f"assumed {float(self.tp['tflops']):g} TFLOP/s"
        else:
            vps, source = None, "no throughput"
        if why:
            source += f" ({why})"
        return measured, vps, source


def _clip_counts(c: dict, cost: dict, line_counts: dict) -> tuple[Any, Any]:
    """(training videos per epoch, test videos) of a run: ``cost.train_clips`` / ``cost.test_clips``, else the
    lines of its lists (counted once per list in ``line_counts``)."""
    n = cost.get("train_clips")
    if n is None:
        p = get_dotted(c, "data.train")
        n = line_counts.setdefault(p, _count_lines(p))
    m = cost.get("test_clips")
    if m is None:
        p = get_dotted(c, "data.test") or get_dotted(c, "data.val")
        m = line_counts.setdefault(p, _count_lines(p))
    return n, m


def _hours(epochs, n, m, views, f, ft, vps, tp: dict, data_vps: float | None = None) -> float | None:
    """Device-hours of a run by the formulas of :func:`estimate_cost` (None: no throughput to use); training
    at min(GPU step throughput, ``data_vps``) where the data path's rate is known."""
    if vps:
        scale = ft / f if f and ft else 1.0
        train_vps = min(vps, data_vps) if data_vps else vps
        return (epochs * n / train_vps + m * views * scale / 3 / vps) / 3600
    if tp.get("tflops") and f is not None and ft is not None:
        rate = float(tp["tflops"]) * 1000  # GFLOP/s
        train_s = max(3 * epochs * n * f / rate, epochs * n / data_vps if data_vps else 0.0)
        return (train_s + m * views * ft / rate) / 3600
    return None


def _loader_rate(loader: dict | None, cost: dict) -> dict | None:
    """The data path's videos/s per core, first found: a ``data bench`` record (``loader`` holding
    ``results``: per backend or ``frames``, the harness's videos/s of one process), a declared rate
    (``loader["videos_per_s_per_core"]``, else the grid's ``cost.loader_videos_per_s``); None: unknown."""
    if loader and loader.get("results"):
        per = {k: float(r["harness_videos_per_s"]) for k, r in loader["results"].items()}
        where = loader.get("path", "a data bench record")
        return {"per_core": per, "source": f"measured ({where}, {loader.get('created_at', '?')})"}
    declared = (loader or {}).get("videos_per_s_per_core") or cost.get("loader_videos_per_s")
    if declared:
        return {"per_core": {"any": float(declared)}, "source": f"declared {float(declared):g} videos/s per core"}
    return None


def data_rate(c: dict, loader: dict | None, gpu_vps: float | None) -> dict | None:
    """The data path of a GPU run (resolved config ``c``) with the loader rate ``loader`` (:func:`_loader_rate`):
    ``{"per_core", "cores_per_gpu", "videos_per_s", "data_bound", "cores_per_gpu_for_gpu", "source"}``; the
    per-core rate of the run's backend (``data.video_backend``; auto: decord; raw frames: frames) where the
    record has it, else the slowest it has. None for CPU runs and without a loader rate."""
    res = c.get("resources") or {}
    gpus, tasks = int(res.get("gpus", 0) or 0), int(res.get("tasks") or res.get("gpus", 0) or 1)
    if not loader or not gpus:
        return None
    fmt, backend = get_dotted(c, "data.format"), get_dotted(c, "data.video_backend") or "auto"
    want = "frames" if fmt == "frames" else ("decord" if backend == "auto" else backend)
    per = loader["per_core"]
    per_core = per.get(want, per.get("any", min(per.values())))
    cores = int(res.get("cpus_per_task") or 1) * tasks / gpus  # each task holds one GPU
    vps = per_core * cores
    return {
        "per_core": per_core,
        "cores_per_gpu": cores,
        "videos_per_s": vps,
        "data_bound": gpu_vps is not None and vps < gpu_vps,
        "cores_per_gpu_for_gpu": math.ceil(gpu_vps / per_core) if gpu_vps else None,
        "source": loader["source"] + ("" if want in per or "any" in per else f" (no {want} rate: the slowest)"),
    }


def _run_cost(c: dict, f, ft, test_size: int, cost: dict, line_counts: dict, rates: _Rates) -> dict:
    """The estimate of one run (resolved config ``c``; ``f``, ``ft``: GFLOPs per view at its training and
    test crop): one record of :func:`estimate_cost`."""
    epochs = get_dotted(c, "train.epochs") or 0
    n, m = _clip_counts(c, cost, line_counts)
    if n is not None:  # data.clips_per_decode k: an epoch trains k samples per video (the data rate stays k = 1's)
        n = n * (get_dotted(c, "data.clips_per_decode") or 1)
    views = (get_dotted(c, "eval.test_groups") or 1) * (get_dotted(c, "eval.crops") or 1)
    measured, vps, source = rates.for_run(c)
    gpu_vps = vps or (float(rates.tp["tflops"]) * 1000 / (3 * f) if rates.tp.get("tflops") and f else None)
    data = data_rate(c, rates.loader, gpu_vps)
    hours = None
    if n is not None:
        m = m or 0
        hours = _hours(epochs, n, m, views, f, ft, vps, rates.tp, data["videos_per_s"] if data else None)
    gpus = int((c.get("resources") or {}).get("gpus", 0))
    calibration = rates.calibration
    return {
        "gflops_per_view": f,
        "test_size": test_size,
        "test_gflops_per_view": ft,
        "test_gflops_per_video": ft * views if ft is not None else None,
        "epochs": epochs,
        "train_clips": n,
        "test_clips": m,
        "views": views,
        "hours": hours,
        "videos_per_s": vps,
        "gpu_videos_per_s": gpu_vps,
        "data": data,
        "throughput_source": source,
        "measured": measured,
        "calibration": calibration.summary() if calibration is not None else None,
        "unit": "GPU-h" if gpus else "CPU-h",
        "wall_h": (hours / gpus if gpus and hours is not None else hours),
    }


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
        headers += ["GFLOPs/view", "test GFLOPs/video", "epochs", "train videos", "est. hours", "throughput (source)"]
    with_data = with_cost and any(c and c.get("data") for c in costs)
    if with_data:
        headers += ["data path (videos/s/GPU)"]
    with_memory = memory is not None and any(m for m in memory)
    with_limit = with_memory and any(m and m.get("gpu_mem_gb") for m in memory)
    if with_memory:
        headers += ["peak mem/GPU"] + (["memory"] if with_limit else [])
    rows = []
    for i, run in enumerate(runs):
        row = [run.index, run.run_id] + [format_value(run.axes.get(k)) for k in keys] + [run.axes.get("seed")]
        if with_cost:
            row += _cost_cells(costs[i] or {})
        if with_data:
            row += [_data_cell((costs[i] or {}).get("data"), (costs[i] or {}).get("gpu_videos_per_s"))]
        if with_memory:
            row += _memory_cells(memory[i] or {}, with_limit)
        rows.append(row)
    text = _grid_header(grid, runs) + "\n\n" + tabulate(rows, headers=headers, tablefmt="simple")
    if with_cost:
        text += _cost_totals(costs, runs) + _data_totals(costs, runs)
    if with_memory:
        text += _memory_totals(memory, runs, with_limit)
    return text


def _cost_cells(c: dict) -> list:
    """The cost columns of one run's row."""
    f = c.get("gflops_per_view")
    h = c.get("hours")
    ft = c.get("test_gflops_per_view")
    return [
        f"{f:.1f}" if f is not None else "",
        f"{c['views']} x {ft:.1f} @{c['test_size']}px = {c['test_gflops_per_video']:.0f}" if ft else "",
        c.get("epochs"),
        c.get("train_clips"),
        f"{h:,.1f} {c.get('unit')}" if h is not None else "n/a",
        (f"{c['videos_per_s']:.1f} videos/s " if c.get("measured") else "") + (c.get("throughput_source") or ""),
    ]


def _data_cell(data: dict | None, gpu_vps: float | None) -> str:
    """``56 (8 cores x 7.0) < GPU 397: DATA-BOUND``: the loader's videos/s per GPU beside the GPU step's."""
    if not data:
        return ""
    text = f"{data['videos_per_s']:.0f} ({data['cores_per_gpu']:g} cores x {data['per_core']:.1f})"
    if gpu_vps is None:
        return text
    return text + (f" < GPU {gpu_vps:.0f}: DATA-BOUND" if data["data_bound"] else f" >= GPU {gpu_vps:.0f}")


def _data_totals(costs: list[dict | None], runs: list[RunSpec]) -> str:
    """The line below the table on the data path: data-bound runs and the cores per GPU that would free them,
    or (GPU runs, no loader rate) that the estimate counts the GPU alone."""
    gpu_runs = [c for c, r in zip(costs, runs) if c and int((r.config.get("resources") or {}).get("gpus", 0) or 0)]
    if not gpu_runs:
        return ""
    known = [c["data"] for c in gpu_runs if c.get("data")]
    if not known:
        return (
            "\ndata path: not counted (the GPU step alone): measure the loader with `dsa-harness data bench LIST`, "
            "then --loader-record FILE, or declare cost.loader_videos_per_s (videos/s per core)"
        )
    bound = [d for d in known if d["data_bound"]]
    text = f"\ndata path: {len(bound)} of {len(known)} runs data-bound (loader videos/s per core x cores per GPU < GPU)"
    if bound:
        need = max(d["cores_per_gpu_for_gpu"] for d in bound if d["cores_per_gpu_for_gpu"])
        text += f"; {need} cores per GPU (resources.cpus_per_task) would make them GPU-bound"
    return text + f"; loader: {known[0]['source']}"


def _memory_cells(mem: dict, with_limit: bool) -> list:
    """The memory column(s) of one run's row: the peak, and with a GPU memory given, whether it fits."""
    cells = [f"{mem['total_gb']:.1f} GB ({'model' if mem['source'] == 'model' else 'measured'})" if mem else ""]
    if with_limit:
        lim = mem.get("gpu_mem_gb")
        cells.append(f"WARNING: over 90% of {lim:g} GB" if mem.get("warn") else ("ok" if lim else "?"))
    return cells


def _grid_header(grid: Grid, runs: list[RunSpec]) -> str:
    """The lines above the table: the grid, its description, paper table and reference, resources per run."""
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
    return "\n".join(lines)


def _cost_totals(costs: list[dict | None], runs: list[RunSpec]) -> str:
    """The lines below the table on cost: the total estimate and where the throughputs came from."""
    text = ""
    hours = [c["hours"] for c in costs if c and c.get("hours") is not None]
    unit = next((c["unit"] for c in costs if c), "GPU-h")
    if hours:
        text += (
            f"\n\nestimated total: {sum(hours):,.1f} {unit} ({len(hours)} of {len(runs)} runs estimated; "
            "formula: harness.launch.cost.estimate_cost)"
        )
    else:
        text += "\n\nno estimate: declare cost.train_clips and cost.throughput in the grid"
    calibration = next((c["calibration"] for c in costs if c and c.get("calibration")), None)
    if calibration:
        measured = sum(1 for c in costs if c and c.get("measured"))
        text += (
            f"\nthroughput: {measured} of {len(runs)} runs measured (videos/s per device = profile "
            f"train_videos_s), the others as declared or assumed; {calibration}"
        )
    return text


def _memory_totals(memory: list[dict | None], runs: list[RunSpec], with_limit: bool) -> str:
    """The lines below the table on memory: how many peaks are measured, and whether every run fits."""
    over = sum(1 for m in memory if m and m.get("warn"))
    measured = sum(1 for m in memory if m and m["source"] != "model")
    text = (
        f"\npeak training memory per GPU: {measured} measured, {len(runs) - measured} from the stated model "
        "(saved activations counted on the meta device + parameters, gradients, momentum, AMP weight copies, "
        "DDP buckets; harness.measure.memory)"
    )
    if with_limit:
        text += f"; {over} run(s) over 90% of the GPU memory" if over else "; every run fits"
    return text
