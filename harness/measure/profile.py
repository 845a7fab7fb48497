"""One profiling record per variant: FLOPs, params, latency — ready for a results table.

``profile_record`` builds the cost part (FLOPs, params) of the record: both the ``profile`` task
(``profile_model``, which adds latency) and training runs (``final.json``'s ``profile``) use it, so
their records carry the same cost keys.
"""

from __future__ import annotations

import torch
from torch import nn

from harness.measure.environment import device_name
from harness.measure.flops import count_flops, count_params
from harness.measure.latency import measure_latency
from harness.models import create_model, resolve_config
from harness.models.config import ModelConfig


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
    min_run_time: float = 1.0,
    channels_last: bool = False,
    compile: bool = False,
) -> dict:
    """Profile ``variant`` (with model ``overrides``) on input (batch, U, 3, T, size, size).

    FLOPs are counted at batch 1 (one view = U snippets x T frames of one size x size crop);
    ``gflops_per_video = gflops_per_view * views``. Latency is measured at ``batch`` (skipped when
    ``latency`` is False; the fields are then None).
    """
    overrides = dict(overrides or {})
    if snippets is not None:
        overrides["num_snippets"] = snippets
    if frames is not None:
        overrides["num_frames"] = frames
    overrides.setdefault("num_classes", num_classes)
    config = resolve_config(variant, **overrides)
    if views < 1 or batch < 1 or size < 16:
        raise ValueError(f"views={views}, batch={batch}, size={size}: need views >= 1, batch >= 1, size >= 16")
    model = create_model(config).eval()
    U, T = config.num_snippets, config.num_frames
    record = profile_record(config, size=size, views=views, model=model)
    record.update(
        {
            "batch": batch,
            "device": device,
            "device_name": device_name(device),
            "latency_ms": None,
            "latency_iqr_ms": None,
            "throughput_clips_s": None,
            "threads": threads or torch.get_num_threads(),
        }
    )
    if latency:
        dev = torch.device(device)
        model = model.to(dev)
        x = torch.randn(batch, U, 3, T, size, size, device=dev)
        record.update(
            measure_latency(
                model,
                x,
                clips_per_input=batch * U,
                threads=threads,
                min_run_time=min_run_time,
                channels_last=channels_last,
                compile=compile,
            )
        )
    return record
