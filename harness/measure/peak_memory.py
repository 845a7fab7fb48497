"""Measured peak memory of one step (an inference forward, or a training step), per model.

Definition (the same on every device): peak = the bytes of the model's own tensors live when the step
starts (parameters, buffers, gradients, optimiser state, inputs; each storage once) + the highest
point the memory allocated *during* the step reaches above its level at the start. Counting the
resident part from the model's own tensors keeps a second model on the same device (the baseline of a
paired timing) out of the figure.

How the transient part is measured (``METHODS``):

* CUDA: ``torch.cuda.max_memory_allocated(device)`` after ``reset_peak_memory_stats(device)``, minus
  ``memory_allocated`` at the start: exact for torch's caching allocator (cuDNN workspaces allocated
  through it included; the CUDA context and fragmentation are not);
* CPU: the allocation and free events ``torch.profiler`` records with ``profile_memory=True``, summed in
  time order: the peak of live tensor bytes (allocator overhead and non-tensor buffers of oneDNN not
  included).

GB are 10^9 bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch

GB = 1e9
METHODS = {
    "cuda": "cuda max_memory_allocated (own tensors at start + transient peak)",
    "cpu": "torch.profiler memory events (own tensors at start + peak of live tensor bytes)",
}


def tensor_bytes(tensors: Iterable[torch.Tensor | None]) -> int:
    """Bytes of the distinct storages behind ``tensors`` (None entries skipped; views counted once)."""
    seen: dict[int, int] = {}
    for t in tensors:
        if t is None:
            continue
        s = t.untyped_storage()
        seen.setdefault(s.data_ptr() or id(s), s.nbytes())
    return sum(seen.values())


def resident_tensors(
    model: torch.nn.Module, inputs: Iterable[torch.Tensor], optimizer: torch.optim.Optimizer | None = None
) -> list[torch.Tensor]:
    """The model's parameters, buffers and gradients, the optimiser's state tensors and the inputs."""
    out: list[torch.Tensor] = [*model.parameters(), *model.buffers(), *inputs]
    out += [p.grad for p in model.parameters() if p.grad is not None]
    if optimizer is not None:
        for state in optimizer.state.values():
            out += [v for v in state.values() if isinstance(v, torch.Tensor)]
    return out


def _cpu_transient_peak(step: Callable[[], object]) -> int:
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        out = step()
    del out
    cpu = torch.autograd.DeviceType.CPU
    events = sorted(
        (e.start_ns(), e.nbytes())
        for e in prof.profiler.kineto_results.events()
        if e.name() == "[memory]" and e.device_type() == cpu
    )
    level = peak = 0
    for _, nbytes in events:
        level += nbytes
        peak = max(peak, level)
    return peak


def _cuda_transient_peak(step: Callable[[], object], device: torch.device) -> int:
    torch.cuda.synchronize(device)
    start = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    out = step()
    torch.cuda.synchronize(device)
    peak = torch.cuda.max_memory_allocated(device)
    del out
    return max(0, peak - start)


def peak_memory(step: Callable[[], object], resident: Iterable[torch.Tensor | None], device: str) -> dict:
    """Peak memory of one call of ``step`` (see the module docstring): ``{"peak_gb", "resident_gb",
    "transient_gb", "method"}``. ``resident``: the model's own tensors live at the start."""
    dev = torch.device(device)
    resident_b = tensor_bytes(resident)
    transient = _cuda_transient_peak(step, dev) if dev.type == "cuda" else _cpu_transient_peak(step)
    return {
        "peak_gb": (resident_b + transient) / GB,
        "resident_gb": resident_b / GB,
        "transient_gb": transient / GB,
        "method": METHODS["cuda" if dev.type == "cuda" else "cpu"],
    }
