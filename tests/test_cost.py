"""`sweep show`'s estimates: the cost of a grid's runs (training and test FLOPs, device-hours) and the peak
training memory per GPU."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import torch

from harness.launch.cost import estimate_cost, show_table
from harness.launch.grid import expand, grid_from_dict
from harness.measure import profile_record
from harness.models import create_model, resolve_config

TINY = {"variant": "tsm_r18_dsa", "width": 8, "num_snippets": 2, "num_frames": 2, "num_classes": 5}


def train_grid(tmp_path: Path, eval_section: dict | None = None, resources: dict | None = None, **extra) -> dict:
    (tmp_path / "train.txt").write_text("".join(f"v{i}.mp4 {i % 5}\n" for i in range(10)))
    (tmp_path / "val.txt").write_text("".join(f"w{i}.mp4 {i % 5}\n" for i in range(4)))
    return {
        "name": "tiny_train",
        "task": "train",
        "base": {
            "model": dict(TINY),
            "data": {"train": str(tmp_path / "train.txt"), "test": str(tmp_path / "val.txt"), "size": 32},
            "train": {"epochs": 2, "batch_size": 4},
            "eval": {"test_groups": 2, "crops": 3, **(eval_section or {})},
        },
        "axes": {"product": {"train.epochs": [2]}},
        "resources": {"gpus": 1, "mem_gb": 1, "time_min": 10, **(resources or {})},
        **extra,
    }


def sweep_cli(argv: list[str]) -> int:
    from harness.launch.commands import register_commands

    parser = argparse.ArgumentParser(prog="dsa-harness")
    register_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["sweep", *argv])
    return args.func(args)


def test_test_cost_is_counted_at_the_test_size_and_stated_per_video(tmp_path):
    doc = train_grid(tmp_path, {"size": 48, "resize": 48}, cost={"throughput": {"tflops": 1}})
    grid = grid_from_dict(doc, "tiny.yaml")
    runs = expand(grid)
    [c] = estimate_cost(grid, runs, progress=False)
    config = resolve_config("tsm_r18_dsa", **{k: v for k, v in TINY.items() if k != "variant"})
    f = profile_record(config, size=32)["gflops_per_view"]
    ft = profile_record(config, size=48)["gflops_per_view"]
    assert c["gflops_per_view"] == pytest.approx(f) and c["test_gflops_per_view"] == pytest.approx(ft)
    assert (c["test_size"], c["views"], c["train_clips"], c["test_clips"]) == (48, 6, 10, 4)
    assert c["test_gflops_per_video"] == pytest.approx(6 * ft)
    assert c["hours"] == pytest.approx((3 * 2 * 10 * f + 4 * 6 * ft) / 1000 / 3600)
    table = show_table(grid, runs, [c])
    assert "test GFLOPs/video" in table and f"6 x {ft:.1f} @48px = {6 * ft:.0f}" in table
    # without eval.size the test is counted at the training size
    [same] = estimate_cost(
        grid_from_dict(train_grid(tmp_path), "t.yaml"),
        expand(grid_from_dict(train_grid(tmp_path), "t.yaml")),
        progress=False,
    )
    assert same["test_size"] == 32 and same["test_gflops_per_view"] == pytest.approx(f)


# ---------------------------------------------------------------------------------------------
# peak training memory per GPU
def _real_saved_bytes(model, x, autocast=None) -> int:
    """A real forward pass on the CPU: bytes of the distinct storages autograd saves (by address), weights
    left out. Independent of harness.measure.memory (which counts on the meta device)."""
    weights = {p.untyped_storage().data_ptr() for p in model.parameters()}
    storages = {}

    def pack(t):
        s = t.untyped_storage()
        if s.data_ptr() not in weights:
            storages[s.data_ptr()] = s.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        with torch.autocast("cpu", dtype=autocast, enabled=autocast is not None):
            model(x)
    return sum(storages.values())


ACTIVATION_TOLERANCE = 0.01
"""The meta-device count of the saved activations agrees with a real forward pass within 1% (it is exact
on these models in fp32: the same tensors are saved)."""


@pytest.mark.parametrize("variant", ["tsm_r18_dsa", "i3d_r18_dsa", "tsm_r50"])
def test_memory_estimate_counts_the_activations_a_real_forward_saves(variant):
    from harness.measure.memory import GB, estimate_train_memory

    config = resolve_config(variant, width=8, num_frames=2, num_classes=5)
    torch.manual_seed(0)
    model = create_model(config).train()
    p = sum(t.numel() for t in model.parameters())
    for batch, size in ((2, 32), (3, 48)):
        x = torch.randn(batch, 4, 3, 2, size, size)
        est = estimate_train_memory(config, batch=batch, size=size, amp="none")
        real = _real_saved_bytes(model, x)
        assert est["activations_gb"] * GB == pytest.approx(real, rel=ACTIVATION_TOLERANCE)
        assert est["params"] == p and est["params_gb"] == est["grads_gb"] == est["optimizer_gb"] == 4 * p / GB
        assert est["input_gb"] == pytest.approx(batch * 4 * 3 * 2 * size * size * 5 / GB)
        parts = ("activations_gb", "input_gb", "params_gb", "grads_gb", "optimizer_gb", "amp_weights_gb")
        assert est["total_gb"] == pytest.approx(sum(est[k] for k in parts)) and est["ddp_buckets_gb"] == 0
        if size > 32:
            continue
        # AMP: the activations of the model run in bf16, plus a bf16 copy of every weight; DDP: + buckets
        half = estimate_train_memory(config, batch=batch, size=size, amp="bf16", ddp=True)
        real_bf16 = _real_saved_bytes(create_model(config).to(torch.bfloat16).train(), x.to(torch.bfloat16))
        assert half["activations_gb"] * GB == pytest.approx(real_bf16, rel=ACTIVATION_TOLERANCE)
        assert 0.45 < half["activations_gb"] / est["activations_gb"] < 0.55
        assert (half["amp_weights_gb"], half["ddp_buckets_gb"]) == (2 * p / GB, 4 * p / GB)
        if variant.startswith("tsm"):  # CPU autocast saves the same (its I3D max-pool runs in fp32: GPU check)
            autocast = _real_saved_bytes(model, x, autocast=torch.bfloat16)
            assert (half["activations_gb"] + half["amp_weights_gb"]) * GB == pytest.approx(autocast, rel=0.02)


def test_sweep_show_states_peak_memory_measured_first_and_warns_over_the_gpu(tmp_path, capsys):
    from harness.launch.cost import estimate_memory
    from harness.measure.memory import estimate_train_memory, record_measured_peak
    from harness.results.rundir import RunDir

    doc = train_grid(tmp_path, resources={"gpus": 2, "gpu_mem_gb": 0.05})
    doc["axes"] = {"product": {"model.variant": ["tsm_r18_dsa", "tsm_r18", "i3d_r18"]}}
    doc["base"]["train"]["amp"] = "none"  # fp32: the estimate and the records below are for amp none
    (tmp_path / "g.yaml").write_text(__import__("yaml").safe_dump(doc))
    runs = expand(grid_from_dict(doc, "g.yaml"), tmp_path / "results")
    results = tmp_path / "results"
    # run 1 has a measured peak in train_memory.json, run 2 in its own final.json
    record_measured_peak(results, runs[1].config["model"], batch=4, size=32, amp="none", peak_gb=0.01)
    rd = RunDir(runs[2].run_dir).create()
    rd.write_final({"run_id": runs[2].run_id, "status": "done", "train": {"peak_mem_gb": 0.07}})
    mem = estimate_memory(runs, results, cache_file=tmp_path / "memory.json")
    model = estimate_train_memory(runs[0].run_config.model, batch=4, size=32, amp="none", ddp=True)
    assert mem[0]["source"] == "model" and mem[0]["total_gb"] == pytest.approx(model["total_gb"])
    assert mem[0]["ddp_buckets_gb"] > 0  # 2 GPUs per run: DDP
    assert (mem[1]["source"], mem[1]["total_gb"]) == ("benchmarks/train_memory.json", 0.01)
    assert (mem[2]["source"], mem[2]["total_gb"]) == ("final.json", 0.07)
    assert [m["warn"] for m in mem] == [model["total_gb"] > 0.045, False, True]  # 90% of 0.05 GB
    # --gpu-mem-gb overrides resources.gpu_mem_gb; the table and the help state the model
    assert sweep_cli(["show", str(tmp_path / "g.yaml"), "--results", str(results), "--gpu-mem-gb", "0.001"]) == 0
    out = capsys.readouterr().out
    assert "peak mem/GPU" in out and "0.1 GB (measured)" in out and out.count("WARNING: over 90% of 0.001 GB") == 3
    assert "1 measured" not in out and "2 measured, 1 from the stated model" in out
    from harness.cli import build_parser

    sweep = build_parser()._subparsers._group_actions[0].choices["sweep"]
    show_help = sweep._subparsers._group_actions[0].choices["show"].format_help()
    assert "A + X + P x (4 weights + 4 gradients + 4 momentum" in show_help and "--gpu-mem-gb" in show_help
