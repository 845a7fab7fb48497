"""Measurement: FLOPs/params (fvcore, every op accounted), latency/throughput, peak training memory (a stated
model, measured peaks), the environment of a run.

Names are imported on first use (PEP 562), so that importing one submodule (the CLI imports
``harness.measure.commands``) does not pull in torch."""

from __future__ import annotations

import importlib

_EXPORTS = {  # public name -> (module, name in the module)
    "describe_environment": ("harness.measure.environment", "describe_environment"),
    "device_name": ("harness.measure.environment", "device_name"),
    "count_flops": ("harness.measure.flops", "count_flops"),
    "count_params": ("harness.measure.flops", "count_params"),
    "estimate_train_memory": ("harness.measure.memory", "estimate_train_memory"),
    "measure_latency": ("harness.measure.latency", "measure_latency"),
    "profile_model": ("harness.measure.profile", "profile_model"),
    "profile_record": ("harness.measure.profile", "profile_record"),
    "saved_tensor_bytes": ("harness.measure.memory", "saved_tensor_bytes"),
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        module, attr = _EXPORTS[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'harness.measure' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
