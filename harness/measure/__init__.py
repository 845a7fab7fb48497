"""Measurement: FLOPs/params (fvcore, every op accounted), latency/throughput, peak training memory (a stated
model, measured peaks), the environment of a run.

Names are imported on first use (PEP 562), so that importing one submodule (the CLI imports
``harness.measure.commands``) does not pull in torch."""

from harness.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "describe_environment": "harness.measure.environment",
        "device_name": "harness.measure.environment",
        "count_flops": "harness.measure.flops",
        "count_params": "harness.measure.flops",
        "estimate_train_memory": "harness.measure.memory",
        "measure_latency": "harness.measure.latency",
        "profile_model": "harness.measure.profile",
        "profile_record": "harness.measure.profile",
        "saved_tensor_bytes": "harness.measure.memory",
    },
)
