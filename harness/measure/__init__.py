"""Measurement: FLOPs/params (fvcore, every op accounted), latency/throughput, the environment of a run."""

from harness.measure.environment import describe_environment, device_name
from harness.measure.flops import count_flops, count_params
from harness.measure.latency import measure_latency
from harness.measure.profile import profile_model, profile_record

__all__ = ["count_flops", "count_params", "describe_environment", "device_name", "measure_latency",
           "profile_model", "profile_record"]
