"""Latency and throughput with ``torch.utils.benchmark`` (warm-up, median and IQR).

Definitions: a *clip* is one snippet of T frames; a forward pass of batch B processes B videos =
B*U clips. ``latency_ms`` is the median wall time of one forward pass at the given batch (batch 1:
the per-video latency); ``throughput_clips_s = B * U / median``.
"""

from __future__ import annotations

import contextlib

import torch
import torch.utils.benchmark as benchmark
from torch import nn


def cuda_synchronizer(device: torch.device):
    """A no-argument callable that waits for ``device``'s queued work: ``torch.cuda.synchronize(device)``
    on CUDA (that device, not the current one), nothing elsewhere."""
    device = torch.device(device)
    if device.type != "cuda":
        return lambda: None
    return lambda: torch.cuda.synchronize(device)


def on_device(device: torch.device):
    """Context making ``device`` the current CUDA device (a no-op off CUDA or for a bare ``cuda``)."""
    device = torch.device(device)
    if device.type != "cuda" or device.index is None:
        return contextlib.nullcontext()
    return torch.cuda.device(device)


def measure_latency(
    model: nn.Module,
    inputs: torch.Tensor,
    *,
    clips_per_input: int,
    min_run_time: float = 1.0,
    warmup: int = 2,
    threads: int | None = None,
    channels_last: bool = False,
    compile: bool = False,
) -> dict:
    """Time ``model(inputs)`` in eval mode under ``torch.inference_mode``.

    ``clips_per_input``: clips in one forward pass (N*U). Returns median/IQR in ms, throughput in
    clips/s, the number of timed runs and the thread count in force. On CUDA the inputs' own device
    (``cuda:N``) is made current for the measurement and synchronised after every forward pass, so
    timestamps never close before its work is done (``torch.cuda.synchronize()`` alone would wait for
    the current device only, which need not be N).
    """
    device = inputs.device
    model = model.eval()
    if channels_last:
        fmt = torch.channels_last_3d if getattr(model, "layout", "frames") == "clips" else torch.channels_last
        model = model.to(memory_format=fmt)
    if compile:
        model = torch.compile(model)
    threads = threads or torch.get_num_threads()
    sync = cuda_synchronizer(device)

    def step():
        model(inputs)
        sync()

    old_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with on_device(device), torch.inference_mode():
            for _ in range(max(warmup, 1)):
                step()
            timer = benchmark.Timer(stmt="step()", globals={"step": step}, num_threads=threads)
            m = timer.blocked_autorange(min_run_time=min_run_time)
    finally:
        torch.set_num_threads(old_threads)
    median = m.median
    return {
        "latency_ms": median * 1e3,
        "latency_iqr_ms": m.iqr * 1e3,
        "throughput_clips_s": clips_per_input / median,
        "timed_runs": len(m.times) * m.number_per_run,
        "threads": threads,
        "channels_last": channels_last,
        "compiled": compile,
    }
