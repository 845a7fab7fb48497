"""Paired timing (interleaved rounds, bootstrap intervals, ratios), measured peak memory, training-step
timing and the settings a profile records: the one measuring path of the profiling grid, ``dsa-harness
profile`` and ``benchmarks/dsa_overhead.py``."""

from __future__ import annotations

import json
import statistics
import time

import pytest
import torch

from harness.cli import main
from harness.config import ConfigError, ProfileConfig
from harness.measure.latency import bootstrap_median_interval, paired_ratio, summarize, time_interleaved
from harness.measure.peak_memory import peak_memory, tensor_bytes
from harness.measure.profile import MEASURED_KEYS, baseline_config, profile_model, profile_variants
from harness.measure.runtime import Settings
from harness.models import resolve_config

TINY = {"width": 8, "num_snippets": 2, "num_frames": 2, "num_classes": 10}


def test_rounds_alternate_the_order_so_a_drift_hits_every_model_alike():
    calls = []

    def step(name):
        calls.append(name)
        time.sleep(0.06)  # longer than a block (BLOCK_S): one call per round

    steps = {name: (lambda name=name: step(name)) for name in ("a", "b", "c")}
    times = time_interleaved(steps, rounds=4, warmup=1)
    assert {k: len(v) for k, v in times.items()} == {"a": 4, "b": 4, "c": 4}
    assert all(t >= 0.06 for v in times.values() for t in v)
    # after the warm-up (one call each), each round calls every step once, in alternating order
    assert calls[3:] == ["a", "b", "c", "c", "b", "a", "a", "b", "c", "c", "b", "a"]


def test_paired_ratio_finds_a_real_two_fold_slowdown():
    times = time_interleaved({"slow": lambda: time.sleep(0.004), "fast": lambda: time.sleep(0.002)}, rounds=7, warmup=1)
    q = paired_ratio(times["slow"], times["fast"])
    assert q["ci_low"] <= q["ratio"] <= q["ci_high"]
    assert 1.3 < q["ratio"] < 3.5  # sleeps overshoot under load, never by a factor of two in a median


def test_ratio_is_the_median_of_per_round_ratios_and_its_interval_is_reproducible():
    variant, baseline = [1.02, 1.10, 0.99, 1.05, 1.01], [1.0, 1.08, 1.0, 1.0, 1.0]
    q = paired_ratio(variant, baseline)
    assert q["ratio"] == statistics.median(v / b for v, b in zip(variant, baseline))
    assert paired_ratio(variant, baseline) == q  # seeded bootstrap: same numbers, same interval
    assert q["ci_low"] <= q["ratio"] <= q["ci_high"]
    assert min(v / b for v, b in zip(variant, baseline)) <= q["ci_low"]
    assert bootstrap_median_interval([3.0] * 5) == (3.0, 3.0)
    with pytest.raises(ValueError):
        paired_ratio([1.0], [1.0, 2.0])
    s = summarize([0.001, 0.002, 0.003, 0.004])
    assert s["median_ms"] == pytest.approx(2.5) and s["iqr_ms"] == pytest.approx(1.5)


def test_interval_narrows_with_more_rounds():
    import random

    rng = random.Random(1)
    few = [1 + rng.gauss(0, 0.05) for _ in range(5)]
    many = [1 + rng.gauss(0, 0.05) for _ in range(200)]
    lo5, hi5 = bootstrap_median_interval(few)
    lo200, hi200 = bootstrap_median_interval(many)
    assert hi200 - lo200 < hi5 - lo5


def test_cpu_peak_memory_counts_what_a_step_holds_at_its_highest_point():
    def step():
        a = torch.empty(10_000_000)  # 40 MB, freed before b is made
        del a
        b = torch.empty(2_500_000)  # 10 MB, returned: still live at the end
        return b

    resident = [torch.empty(1_000_000)]  # 4 MB of the model's own
    m = peak_memory(step, resident, "cpu")
    assert m["resident_gb"] == pytest.approx(0.004)
    assert m["transient_gb"] == pytest.approx(0.040, rel=0.01)
    assert m["peak_gb"] == pytest.approx(0.044, rel=0.01)
    assert "profiler" in m["method"]


def test_tensor_bytes_counts_each_storage_once():
    x = torch.empty(1000)
    assert tensor_bytes([x, x[:10], x.view(10, 100), None]) == 4000


def test_baseline_is_the_same_model_without_its_aggregator():
    dsa = resolve_config("i3d_r50_dsa")
    base = baseline_config(dsa, "auto")
    assert base.name == "i3d_r50" and base.aggregator == "avg"
    assert base.replace(aggregator="dsa", name=dsa.name) == dsa
    assert baseline_config(resolve_config("i3d_r50"), "auto") is None  # a backbone is its own baseline
    assert baseline_config(dsa, "none") is None
    assert baseline_config(resolve_config("tsm_r50"), "tsn_r50").name == "tsn_r50"
    assert baseline_config(resolve_config("tsn_r50"), "tsn_r50") is None


def test_paired_profile_of_a_variant_with_training_steps_and_memory():
    r = profile_model("tsm_r18_dsa", TINY, size=32, batch=2, rounds=3, train=True)
    assert set(MEASURED_KEYS) <= set(r)
    assert r["baseline"] == "tsm_r18" and r["rounds"] == 3
    rounds, base = r["latency_rounds_ms"], r["baseline_latency_rounds_ms"]
    assert len(rounds) == len(base) == 3
    assert r["latency_ratio"] == pytest.approx(statistics.median(a / b for a, b in zip(rounds, base)))
    assert r["latency_ratio_ci_low"] <= r["latency_ratio"] <= r["latency_ratio_ci_high"]
    assert r["baseline_latency_ms"] == pytest.approx(statistics.median(base))
    t = r["train_step_rounds_ms"]
    assert r["train_step_ms"] == pytest.approx(statistics.median(t))
    assert r["train_clips_s"] == pytest.approx(2 * 2 / (r["train_step_ms"] / 1e3))
    assert r["train_videos_s"] == pytest.approx(2 / (r["train_step_ms"] / 1e3))
    assert r["train_ratio_ci_low"] <= r["train_ratio"] <= r["train_ratio_ci_high"]
    params = r["params_m"] * 1e6 * 4 / 1e9
    # a training step holds weights, gradients and momentum (3x the weights) besides its activations
    assert r["infer_peak_mem_gb"] > params and r["train_peak_mem_gb"] > 3 * params
    assert r["train_peak_mem_gb"] > r["infer_peak_mem_gb"]
    s = r["settings"]
    assert s["dtype"] == "fp32" and s["batch"] == 2 and s["compile_mode"] == "none" and s["torch"] == torch.__version__
    assert {"tf32_matmul", "tf32_cudnn", "cudnn_benchmark", "channels_last", "threads", "cuda", "cudnn"} <= set(s)


def test_a_backbone_has_no_ratio_and_unmeasured_fields_are_none():
    r = profile_model("tsm_r18", TINY, size=32, rounds=2)
    assert r["baseline"] is None and r["latency_ratio"] is None and r["latency_ms"] > 0
    assert r["train_step_ms"] is None and r["train_peak_mem_gb"] is None and r["infer_peak_mem_gb"] > 0
    cost_only = profile_model("tsm_r18_dsa", TINY, size=32, latency=False, memory=False)
    assert all(
        cost_only[k] is None
        for k in MEASURED_KEYS
        if k not in ("batch", "device", "device_name", "threads", "settings", "baseline")
    )


def test_variants_profiled_together_share_their_rounds_and_the_baseline():
    configs = [resolve_config(n, **TINY) for n in ("tsm_r18", "tsm_r18_dsa", "tsm_r18_static")]
    records = profile_variants(configs, size=32, rounds=3, memory=False)
    by = {r["variant"]: r for r in records}
    backbone = by["tsm_r18"]["latency_rounds_ms"]
    for name in ("tsm_r18_dsa", "tsm_r18_static"):
        # the backbone was timed once, in the same rounds as both variants: its rounds are their baseline's
        assert by[name]["baseline_latency_rounds_ms"] == backbone


def test_settings_are_applied_and_restored():
    before = (torch.get_num_threads(), torch.backends.cudnn.benchmark, torch.backends.cuda.matmul.allow_tf32)
    with Settings(threads=1, cudnn_benchmark=True, tf32=True).applied() as s:
        d = s.describe()
        assert torch.get_num_threads() == 1 and d["threads"] == 1
        assert d["cudnn_benchmark"] is True and d["tf32_matmul"] is True and d["tf32_cudnn"] is True
    assert (torch.get_num_threads(), torch.backends.cudnn.benchmark, torch.backends.cuda.matmul.allow_tf32) == before
    with pytest.raises(ValueError, match="compile_mode"):
        Settings(compile_mode="fast")


def test_bf16_autocast_profile_on_cpu_records_its_dtype():
    r = profile_model("tsm_r18_dsa", TINY, size=32, rounds=2, dtype="bf16", memory=False)
    assert r["settings"]["dtype"] == "bf16" and r["settings"]["autocast"] is True and r["latency_ms"] > 0


@pytest.mark.parametrize(
    "field, value, words",
    [
        ("baseline", "tsm_r05", "registered variant"),
        ("compile_mode", "fast", "reduce-overhead"),
        ("dtype", "fp8", "bf16"),
        ("rounds", 0, ">= 1"),
        ("device", "cuda:x", "cuda:N"),
    ],
)
def test_profile_config_refuses_bad_values_naming_the_field(field, value, words):
    with pytest.raises(ConfigError, match=f"profile.{field}") as e:
        ProfileConfig(**{field: value})
    assert words in str(e.value)


def test_profile_cli_times_each_batch_of_a_list_with_training_steps(capsys):
    args = ["profile", "tsm_r18_dsa", "-U", "2", "-T", "2", "--size", "32", "-o", "width=8", "--rounds", "2"]
    assert main([*args, "--batch", "1,2", "--train", "--json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert [r["batch"] for r in records] == [1, 2]
    assert all(r["train_step_ms"] > 0 and r["baseline"] == "tsm_r18" for r in records)
    assert main([*args, "--train"]) == 0
    out = capsys.readouterr().out
    for header in ("GFLOPs/view x views", "latency ratio [95% CI]", "train step ms [95% CI]", "peak GB train step"):
        assert header in out
    assert "settings: cpu:" in out and "fp32" in out


@pytest.mark.parametrize(
    "extra, words",
    [(["--batch", "1,0"], "--batch 0"), (["--baseline", "tsm_r05"], "--baseline"), (["--rounds", "0"], "--rounds")],
)
def test_profile_cli_refuses_bad_flags(capsys, extra, words):
    assert main(["profile", "tsm_r18_dsa", "--size", "32", *extra]) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err
