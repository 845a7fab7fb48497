"""Peak training memory per GPU: a stated model, and the measured peaks it gives way to.

**The model** (``estimate_train_memory``), for one training process (one GPU) at per-process batch B of
(U snippets x T frames) at S x S, with P parameters::

    peak ~= A + X + P * (4 weights + 4 gradients + 4 SGD momentum [+ 2 AMP weight copies] [+ 4 DDP buckets])

* A, the activations: the bytes of the tensors autograd saves for the backward pass in one forward pass of
  the real batch (B, U, 3, T, S, S), counted with ``torch.autograd.graph.saved_tensors_hooks`` on the meta
  device (shapes only: no memory, no compute, any size), each storage once (views and in-place ReLUs share
  one), parameters left out. Under AMP (bf16 / fp16) the whole model runs in that dtype for the count: CUDA
  autocast keeps the convolutions, batch norms and ReLUs (nearly all saved bytes) in half precision.
* X, the input batch: uint8 clips + their fp32 normalised copy.
* Parameters in fp32 with their gradients (counted whole, although the peak near the start of the backward
  pass holds few of them) and SGD's momentum buffers; under AMP autocast caches a half-precision copy of
  each weight (2 bytes per parameter); DDP (more than one GPU) keeps gradient buckets (4 more).

Not counted: cuDNN workspaces, the caching allocator's fragmentation and the CUDA context (outside
torch's count; ~0.5-1 GB), activation checkpointing. So the estimate is of
``torch.cuda.max_memory_allocated()``; ``sweep show`` warns when it exceeds 90% of the GPU's memory.

**Measured peaks** replace the model where they exist (``measured_peak``): a finished run's own
``final.json`` (``train.peak_mem_gb``, recorded by training on CUDA), else a record of
``RESULTS/benchmarks/train_memory.json`` (written by ``benchmarks/gpu_check.py``) for the same model
(all fields but num_classes and pretrained), batch, crop size and AMP.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from torch import nn

from harness.models import create_model
from harness.models.config import ModelConfig

GB = 1e9
"""Memory is stated in GB (10^9 bytes), like ``resources.mem_gb`` and GPU data sheets (an H200: 141 GB)."""
AMP_BYTES = {"none": 4, "bf16": 2, "fp16": 2}
WARN_FRACTION = 0.9
"""``sweep show`` warns when the estimate exceeds this fraction of the GPU's memory."""
MEASURED_FILE = "benchmarks/train_memory.json"
"""Measured peaks under the results root (see ``record_measured_peak``)."""


def saved_tensor_bytes(model: nn.Module, inputs: torch.Tensor) -> dict:
    """Run ``model(inputs)`` with grad enabled and count what autograd saves for the backward pass.

    Returns ``{"bytes": total, "tensors": distinct storages, "largest": bytes of the largest}``: each
    storage once (a saved view counts its whole storage, which it keeps alive), parameters left out.
    Works on any device, the meta device included (then nothing is computed or allocated)."""
    params = {p.untyped_storage()._cdata for p in model.parameters()}
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        key = storage._cdata
        if key not in params and key not in seen:
            seen[key] = storage.nbytes()
        return t

    with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = model(inputs)
    del out
    return {"bytes": sum(seen.values()), "tensors": len(seen), "largest": max(seen.values(), default=0)}


def _amp_name(amp: str | None) -> str:
    """The AMP setting the count uses: none | bf16 | fp16 (``auto`` and unknown values: bf16, the
    half-precision training of current GPUs)."""
    return amp if amp in AMP_BYTES else "bf16" if amp else "none"


def estimate_train_memory(
    config: ModelConfig, *, batch: int, size: int, amp: str | None = "none", ddp: bool = False
) -> dict:
    """The stated model of the module docstring for ``config`` at per-GPU ``batch`` videos of
    ``size`` x ``size`` crops. Returns the parts and the total in GB (10^9 bytes)::

        {"total_gb", "activations_gb", "input_gb", "params_gb", "grads_gb", "optimizer_gb",
         "amp_weights_gb", "ddp_buckets_gb", "params": P, "saved_tensors": n, "amp": ..., "source": "model"}
    """
    if batch < 1 or size < 16:
        raise ValueError(f"batch={batch}, size={size}: need batch >= 1, size >= 16")
    amp = _amp_name(amp)
    dtype = {"none": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[amp]
    config = config.replace(pretrained=None)
    with torch.device("meta"):
        model = create_model(config)
    model = model.to(dtype).train()
    U, T = config.num_snippets, config.num_frames
    x = torch.empty(batch, U, 3, T, size, size, device="meta", dtype=dtype)
    saved = saved_tensor_bytes(model, x)
    p = sum(t.numel() for t in model.parameters())
    pixels = batch * U * 3 * T * size * size
    parts = {
        "activations_gb": saved["bytes"] / GB,
        "input_gb": pixels * (1 + 4) / GB,
        "params_gb": 4 * p / GB,
        "grads_gb": 4 * p / GB,
        "optimizer_gb": 4 * p / GB,
        "amp_weights_gb": (2 * p if amp != "none" else 0) / GB,
        "ddp_buckets_gb": (4 * p if ddp else 0) / GB,
    }
    return {
        "total_gb": sum(parts.values()),
        **parts,
        "params": p,
        "saved_tensors": saved["tensors"],
        "batch": batch,
        "size": size,
        "amp": amp,
        "ddp": ddp,
        "source": "model",
    }


# ---------------------------------------------------------------------------------------------
# measured peaks
def memory_key(model: dict, batch: int, size: int, amp: str | None) -> str:
    """What a measured peak is matched on: the resolved model (``model_dict``, without num_classes and
    pretrained), the per-GPU batch, the crop size and the AMP setting."""
    m = {k: v for k, v in model.items() if k not in ("num_classes", "pretrained")}
    return json.dumps({"model": m, "batch": batch, "size": size, "amp": _amp_name(amp)}, sort_keys=True)


def read_measured(results_root: str | os.PathLike) -> dict[str, dict]:
    """Records of ``RESULTS/benchmarks/train_memory.json`` by :func:`memory_key` (empty when absent or
    unreadable)."""
    path = Path(results_root) / MEASURED_FILE
    try:
        records = json.loads(path.read_text(encoding="utf-8")).get("records", [])
        return {r["key"]: r for r in records if isinstance(r, dict) and "key" in r and "peak_gb" in r}
    except (OSError, ValueError, AttributeError):
        return {}


def record_measured_peak(
    results_root: str | os.PathLike, model: dict, *, batch: int, size: int, amp: str | None, peak_gb: float, **info
) -> dict:
    """Add (or replace) one measured peak (GB, ``torch.cuda.max_memory_allocated`` of a training step)
    in ``RESULTS/benchmarks/train_memory.json``; ``info`` (device name, when) is kept with it."""
    from harness.results.rundir import atomic_write_json

    key = memory_key(model, batch, size, amp)
    records = read_measured(results_root)
    records[key] = {"key": key, "peak_gb": float(peak_gb), "batch": batch, "size": size, "amp": _amp_name(amp), **info}
    doc = {"what": "measured peak training memory per GPU (harness.measure.memory)", "records": list(records.values())}
    atomic_write_json(Path(results_root) / MEASURED_FILE, doc)
    return records[key]


def measured_peak(
    results_root: str | os.PathLike,
    model: dict,
    *,
    batch: int,
    size: int,
    amp: str | None,
    final: dict | None = None,
    measured: dict | None = None,
) -> dict | None:
    """A measured peak for this setting: the run's own ``final`` record (``train.peak_mem_gb``), else a
    record of ``train_memory.json`` (``measured``: its :func:`read_measured`, read when not given).
    ``{"total_gb", "source", "device_name"}`` or None."""
    peak = ((final or {}).get("train") or {}).get("peak_mem_gb")
    if peak:
        name = ((final or {}).get("hardware") or {}).get("device_name")
        return {"total_gb": float(peak), "source": "final.json", "device_name": name}
    records = read_measured(results_root) if measured is None else measured
    rec = records.get(memory_key(model, batch, size, amp))
    if rec:
        return {"total_gb": rec["peak_gb"], "source": MEASURED_FILE, "device_name": rec.get("device_name")}
    return None
