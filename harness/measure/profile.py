"""One profiling record per variant: FLOPs, params, paired latency, training-step time, peak memory and
the settings they were measured under — ready for a results table.

``profile_record`` builds the cost part (FLOPs, params) of the record: the ``profile`` task and command
(``profile_variants`` / ``profile_model``, which add what they measure) and training runs
(``final.json``'s ``profile``) use it, so their records carry the same cost keys.

``profile_variants`` is the one measuring path: the profiling grid (one variant and its baseline per
job), ``dsa-harness profile`` (every named variant and their baselines in one process) and
``benchmarks/dsa_overhead.py`` call it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from harness.measure.flops import count_flops, count_params
from harness.measure.latency import paired_ratio, summarize, time_interleaved
from harness.measure.peak_memory import peak_memory, resident_tensors
from harness.measure.runtime import Settings, inference_step, prepare, training_step
from harness.models import create_model, list_variants, resolve_config
from harness.models.config import ModelConfig

MEASURED_KEYS = (
    "batch",
    "device",
    "device_name",
    "threads",
    "settings",
    "rounds",
    "train_rounds",
    "timed_runs",
    "latency_ms",
    "latency_iqr_ms",
    "latency_ci_low_ms",
    "latency_ci_high_ms",
    "throughput_clips_s",
    "baseline",
    "baseline_latency_ms",
    "latency_ratio",
    "latency_ratio_ci_low",
    "latency_ratio_ci_high",
    "latency_rounds_ms",
    "baseline_latency_rounds_ms",
    "train_step_ms",
    "train_step_iqr_ms",
    "train_step_ci_low_ms",
    "train_step_ci_high_ms",
    "train_clips_s",
    "train_videos_s",
    "baseline_train_step_ms",
    "train_ratio",
    "train_ratio_ci_low",
    "train_ratio_ci_high",
    "train_step_rounds_ms",
    "baseline_train_step_rounds_ms",
    "infer_peak_mem_gb",
    "train_peak_mem_gb",
    "memory_method",
)
"""What a measured record adds to ``profile_record``'s cost keys (None where not measured).

Times are ms (medians over rounds; ``*_ci_*``: bootstrap 95% interval of the median); a *clip* is one
snippet of T frames (``throughput_clips_s`` = batch*U / latency); ``train_step_ms`` is one full training
step at ``batch`` videos; ``*_ratio`` = median over rounds of this model's time / the baseline's in the
same round; ``*_rounds_ms``: the per-round times (ms, in round order) the medians and ratios come from;
memory in GB (10^9 bytes) by ``memory_method``; ``settings``: ``Settings.describe()``."""


def profile_record(
    config: ModelConfig,
    *,
    size: int,
    views: int = 1,
    model: nn.Module | None = None,
    test_size: int | None = None,
) -> dict:
    """FLOPs and params of ``config`` on one view (1, U, 3, T, size, size), with the config's identity.

    ``gflops_per_video = gflops_per_view * views``. ``model`` (built from ``config``, e.g. a trained one)
    is counted instead of a fresh build when given; FLOPs and params depend only on the architecture.
    Counting runs on the CPU: a given model is moved there.

    With ``test_size`` (a train run's test crop, ``eval.size``), the record also gives the cost of the
    test: ``test_size``, ``test_gflops_per_view`` (one view at test_size x test_size) and
    ``test_gflops_per_video`` (x ``views``), counted again when the test size differs from ``size``.
    """
    if views < 1 or size < 16 or (test_size is not None and test_size < 16):
        raise ValueError(f"views={views}, size={size}, test_size={test_size}: need views >= 1, sizes >= 16")
    if model is None:
        model = create_model(config)
    model = model.cpu()
    U, T = config.num_snippets, config.num_frames
    flops = count_flops(model, (torch.zeros(1, U, 3, T, size, size),))
    params = count_params(model)
    record = {
        "variant": config.name,
        "flavour": config.flavour,
        "depth": config.depth,
        "width": config.width,
        "aggregator": config.aggregator,
        "position": config.position,
        "split_ratio": config.split_ratio,
        "alpha": config.alpha,
        "kernel_size": config.kernel_size,
        "snippets": U,
        "frames": T,
        "size": size,
        "num_classes": config.num_classes,
        "views": views,
        "gflops_per_view": flops["flops"] / 1e9,
        "gflops_per_video": flops["flops"] * views / 1e9,
        "aggregator_gflops_per_view": flops["aggregator_flops"] / 1e9,
        "flops_by_operator": flops["flops_by_operator"],
        "unsupported_ops": flops["unsupported_ops"],
        "params_m": params["params"] / 1e6,
        "params_m_no_classifier": params["params_no_classifier"] / 1e6,
        "aggregator_params": params["aggregator_params"],
    }
    if test_size is not None:
        test_input = torch.zeros(1, U, 3, T, test_size, test_size)
        test_flops = flops if test_size == size else count_flops(model, (test_input,))
        record.update(
            {
                "test_size": test_size,
                "test_gflops_per_view": test_flops["flops"] / 1e9,
                "test_gflops_per_video": test_flops["flops"] * views / 1e9,
            }
        )
    return record


def baseline_config(config: ModelConfig, baseline: str = "auto") -> ModelConfig | None:
    """The model ``config`` is timed beside: ``auto`` = the same model with no aggregator (aggregator
    ``avg``: its backbone; None for a model that inserts none), ``none`` = None, else the registered
    variant ``baseline`` at the same U, T and classes (None when it is ``config`` itself)."""
    if baseline == "none":
        return None
    if baseline == "auto":
        if not config.inserts:
            return None
        backbone = f"{config.flavour}_r{config.depth}"
        name = backbone if backbone in list_variants(backbone) else f"{config.name} (aggregator avg)"
        return config.replace(aggregator="avg", name=name)
    base = resolve_config(
        baseline, num_classes=config.num_classes, num_snippets=config.num_snippets, num_frames=config.num_frames
    )
    return None if _key(base) == _key(config) else base


def _key(config: ModelConfig) -> str:
    return json.dumps({k: v for k, v in config.to_dict().items() if k != "name"}, sort_keys=True, default=str)


def profile_variants(
    configs: list[ModelConfig],
    *,
    size: int = 224,
    views: int = 1,
    settings: Settings | None = None,
    latency: bool = True,
    rounds: int = 10,
    baseline: str = "auto",
    memory: bool = True,
    train: bool = False,
    train_rounds: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[dict]:
    """Profile ``configs`` together: FLOPs and params (``profile_record``), then on ``settings.device``
    at ``settings.batch`` videos per step, with every model and its baseline (``baseline_config``) timed
    in the same interleaved rounds (``harness.measure.latency``):

    * ``latency``: forward passes in inference mode (median, IQR, 95% interval; ratio to the baseline);
    * ``train``: full training steps (forward, backward, SGD step; autocast per ``settings.dtype``);
    * ``memory`` (with the timings: nothing is run on the device when ``latency`` and ``train`` are both
      False): the peak memory of one inference forward and (with ``train``) of one training step
      (``harness.measure.peak_memory``).

    Forward passes are timed over ``rounds`` rounds, training steps over ``train_rounds`` (None: ``rounds``).
    Returns one record per config, in order (``profile_record``'s keys and ``MEASURED_KEYS``).
    ``progress(text)`` is told what is being done.
    """
    settings = settings or Settings()
    say = progress or (lambda text: None)
    train_rounds = rounds if train_rounds is None else train_rounds
    if rounds < 1 or train_rounds < 1:
        raise ValueError(f"rounds={rounds}, train_rounds={train_rounds}: need >= 1")
    records = [profile_record(c, size=size, views=views) for c in configs]
    pairs = [baseline_config(c, baseline) for c in configs]
    timed: dict[str, ModelConfig] = {}
    for c in [*configs, *(b for b in pairs if b is not None)]:
        timed.setdefault(_key(c), c)
    memory = memory and (latency or train)
    measured = latency or train
    with settings.applied():
        _note_settings(records, pairs, settings)
        if not measured:
            return records
        bench = _Bench.build(timed, settings, size, say)
        results: dict[str, dict] = {k: {} for k in timed}
        _measure_inference(bench, results, rounds, latency, memory)
        if train:
            _measure_training(bench, results, train_rounds, memory)
    for r, c, b in zip(records, configs, pairs):
        own = results[_key(c)]
        base = results[_key(b)] if b is not None else None
        r["rounds"] = rounds if latency else None
        r["train_rounds"] = train_rounds if train else None
        for key in ("infer_peak_mem_gb", "train_peak_mem_gb", "memory_method"):
            r[key] = own.get(key)
        if "infer_times" in own:
            r.update(_latency_fields(own, base, settings.batch, c.num_snippets))
        if "train_times" in own:
            r.update(_train_fields(own, base, settings.batch, c.num_snippets))
    return records


def _note_settings(records: list[dict], pairs: list[ModelConfig | None], settings: Settings) -> None:
    """Give every record all of ``MEASURED_KEYS`` (None), then the settings and baseline it is measured with."""
    described = settings.describe()
    for r, b in zip(records, pairs):
        r.update({k: None for k in MEASURED_KEYS})
        r.update(
            batch=settings.batch,
            device=settings.device,
            device_name=described["device_name"],
            threads=described["threads"],
            settings=described,
            baseline=None if b is None else b.name,
        )


@dataclass
class _Bench:
    """The timed models (by ``_key``) on the device, with their input batch and labels."""

    settings: Settings
    dev: torch.device
    warmup: int
    say: Callable[[str], None]
    models: dict
    inputs: dict
    labels: dict

    @classmethod
    def build(cls, timed: dict[str, ModelConfig], settings: Settings, size: int, say) -> _Bench:
        """Build every model in ``timed`` for ``settings`` with a random batch of ``settings.batch`` videos."""
        dev = torch.device(settings.device)
        B = settings.batch
        models, inputs, labels = {}, {}, {}
        for k, c in timed.items():
            models[k] = prepare(create_model(c.replace(pretrained=None)).eval(), settings)
            x = torch.randn(B, c.num_snippets, 3, c.num_frames, size, size, device=dev)
            inputs[k] = x.contiguous(memory_format=torch.channels_last_3d) if settings.channels_last else x
            labels[k] = torch.randint(0, c.num_classes, (B,), device=dev)
        # untimed calls first: one settles eager kernels (oneDNN primitives, cuDNN autotuning); compiled
        # models need more (compilation, then CUDA-graph recording under reduce-overhead)
        warmup = 1 if settings.compile_mode == "none" else 3
        return cls(settings, dev, warmup, say, models, inputs, labels)


def _measure_inference(bench: _Bench, results: dict[str, dict], rounds: int, latency: bool, memory: bool) -> None:
    """Forward passes: timed in interleaved rounds (``latency``) and their peak memory (``memory``)."""
    models, inputs, settings = bench.models, bench.inputs, bench.settings
    infer = {k: inference_step(models[k], inputs[k], settings) for k in models}
    if latency:
        times = time_interleaved(
            infer,
            rounds=rounds,
            device=bench.dev,
            warmup=bench.warmup,
            progress=lambda i, n: bench.say(f"inference round {i}/{n}"),
        )
        for k in models:
            results[k]["infer_times"] = times[k]
    if memory:
        for k in models:
            m = peak_memory(infer[k], resident_tensors(models[k], [inputs[k]]), settings.device)
            results[k].update(infer_peak_mem_gb=m["peak_gb"], memory_method=m["method"])
        bench.say("inference memory measured")


def _measure_training(bench: _Bench, results: dict[str, dict], rounds: int, memory: bool) -> None:
    """Full training steps: timed in interleaved rounds and (``memory``) their peak memory."""
    models, inputs, labels, settings = bench.models, bench.inputs, bench.labels, bench.settings
    steps, opts = {}, {}
    for k in models:
        steps[k], opts[k] = training_step(models[k], inputs[k], labels[k], settings)
    times = time_interleaved(
        steps,
        rounds=rounds,
        device=bench.dev,
        warmup=bench.warmup,
        progress=lambda i, n: bench.say(f"training round {i}/{n}"),
    )
    for k in models:
        results[k]["train_times"] = times[k]
    if memory:
        for k in models:
            resident = resident_tensors(models[k], [inputs[k], labels[k]], opts[k])
            m = peak_memory(steps[k], resident, settings.device)
            results[k]["train_peak_mem_gb"] = m["peak_gb"]
        bench.say("training memory measured")


def _latency_fields(own: dict, base: dict | None, B: int, U: int) -> dict:
    """A record's forward-pass timing from the measured rounds, with the ratio to the baseline's."""
    s = summarize(own["infer_times"])
    fields = dict(
        latency_ms=s["median_ms"],
        latency_iqr_ms=s["iqr_ms"],
        latency_ci_low_ms=s["ci_low_ms"],
        latency_ci_high_ms=s["ci_high_ms"],
        throughput_clips_s=B * U / (s["median_ms"] / 1e3),
        timed_runs=len(own["infer_times"]),
        latency_rounds_ms=[1e3 * t for t in own["infer_times"]],
    )
    if base is not None:
        q = paired_ratio(own["infer_times"], base["infer_times"])
        fields.update(
            baseline_latency_ms=summarize(base["infer_times"])["median_ms"],
            latency_ratio=q["ratio"],
            latency_ratio_ci_low=q["ci_low"],
            latency_ratio_ci_high=q["ci_high"],
            baseline_latency_rounds_ms=[1e3 * t for t in base["infer_times"]],
        )
    return fields


def _train_fields(own: dict, base: dict | None, B: int, U: int) -> dict:
    """A record's training-step timing from the measured rounds, with the ratio to the baseline's."""
    s = summarize(own["train_times"])
    fields = dict(
        train_step_ms=s["median_ms"],
        train_step_iqr_ms=s["iqr_ms"],
        train_step_ci_low_ms=s["ci_low_ms"],
        train_step_ci_high_ms=s["ci_high_ms"],
        train_clips_s=B * U / (s["median_ms"] / 1e3),
        train_videos_s=B / (s["median_ms"] / 1e3),
        train_step_rounds_ms=[1e3 * t for t in own["train_times"]],
    )
    if base is not None:
        q = paired_ratio(own["train_times"], base["train_times"])
        fields.update(
            baseline_train_step_ms=summarize(base["train_times"])["median_ms"],
            train_ratio=q["ratio"],
            train_ratio_ci_low=q["ci_low"],
            train_ratio_ci_high=q["ci_high"],
            baseline_train_step_rounds_ms=[1e3 * t for t in base["train_times"]],
        )
    return fields


def profile_model(
    variant: str,
    overrides: dict | None = None,
    *,
    snippets: int | None = None,
    frames: int | None = None,
    size: int = 224,
    batch: int = 1,
    views: int = 1,
    device: str = "cpu",
    num_classes: int = 400,
    latency: bool = True,
    threads: int | None = None,
    rounds: int = 10,
    baseline: str = "auto",
    dtype: str = "fp32",
    tf32: bool | None = None,
    cudnn_benchmark: bool = False,
    channels_last: bool = False,
    compile_mode: str = "none",
    memory: bool = True,
    train: bool = False,
    train_rounds: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Profile one ``variant`` (with model ``overrides``) on input (batch, U, 3, T, size, size):
    ``profile_variants`` of its config, with the settings built from the keyword arguments (the fields
    of ``ProfileConfig``). FLOPs are counted at batch 1 (one view); ``gflops_per_video`` = per view x
    ``views``. Nothing is timed or allocated on the device when ``latency`` and ``train`` are both False
    (FLOPs and params only)."""
    overrides = dict(overrides or {})
    if snippets is not None:
        overrides["num_snippets"] = snippets
    if frames is not None:
        overrides["num_frames"] = frames
    overrides.setdefault("num_classes", num_classes)
    config = resolve_config(variant, **overrides)
    if views < 1 or batch < 1 or size < 16:
        raise ValueError(f"views={views}, batch={batch}, size={size}: need views >= 1, batch >= 1, size >= 16")
    settings = Settings(
        device=device,
        dtype=dtype,
        tf32=tf32,
        cudnn_benchmark=cudnn_benchmark,
        channels_last=channels_last,
        compile_mode=compile_mode,
        threads=threads,
        batch=batch,
    )
    (record,) = profile_variants(
        [config],
        size=size,
        views=views,
        settings=settings,
        latency=latency,
        rounds=rounds,
        baseline=baseline,
        memory=memory,
        train=train,
        train_rounds=train_rounds,
        progress=progress,
    )
    return record
