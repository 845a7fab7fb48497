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


def train_grid(
    tmp_path: Path,
    eval_section: dict | None = None,
    resources: dict | None = None,
    extra_train: dict | None = None,
    **extra,
) -> dict:
    (tmp_path / "train.txt").write_text("".join(f"v{i}.mp4 {i % 5}\n" for i in range(10)))
    (tmp_path / "val.txt").write_text("".join(f"w{i}.mp4 {i % 5}\n" for i in range(4)))
    return {
        "name": "tiny_train",
        "task": "train",
        "base": {
            "model": dict(TINY),
            "data": {"train": str(tmp_path / "train.txt"), "test": str(tmp_path / "val.txt"), "size": 32},
            "train": {"epochs": 2, "batch_size": 4, **(extra_train or {})},
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


# ---------------------------------------------------------------------------------------------
# measured training throughput: profile runs with profile.train (schema of issue 13)
def write_profile_runs(results: Path, records: list[dict], grid: str = "profile_gpu") -> list[Path]:
    """Profile runs as the launcher lays them out (results/runs/<grid>/<run_id>/ with config.json from a real
    expansion of a profile grid) with a hand-written final.json in the schema of a `profile.train: true` run:
    each record gives variant, batch, and optionally size, dtype, device, device_name, videos_s, timed."""
    dirs = []
    for i, r in enumerate(records):
        model = {k: v for k, v in TINY.items() if k != "num_classes"} | {"variant": r.get("variant", "tsm_r18_dsa")}
        doc = {
            "name": grid,
            "task": "profile",
            "base": {"model": model, "profile": {"size": r.get("size", 32), "batch": r["batch"], "latency": False}},
            "axes": {"product": {"profile.views": [i + 1]}},  # one run id per record
            "resources": {"gpus": 1, "mem_gb": 1, "time_min": 10},
        }
        [run] = expand(grid_from_dict(doc, f"{grid}.yaml"), results)
        from harness.results.rundir import RunDir

        rd = RunDir(run.run_dir).create()
        rd.write_config(run.config)
        device, name = r.get("device", "cuda"), r.get("device_name", "NVIDIA H200")
        batch, U, vps = r["batch"], TINY["num_snippets"], r.get("videos_s", 2.0)
        step_ms = batch / vps * 1000
        timed = r.get("timed", True)
        settings = {
            "device": device,
            "device_name": name,
            "dtype": r.get("dtype", "bf16"),
            "autocast": r.get("dtype", "bf16") != "fp32",
            "tf32_matmul": True,
            "tf32_cudnn": True,
            "cudnn_benchmark": True,
            "channels_last": False,
            "compile_mode": "none",
            "torch": torch.__version__,
            "cuda": "12.4",
            "cudnn": 90100,
            "threads": 1,
            "batch": batch,
        }
        profile = {
            "variant": model["variant"],
            "snippets": U,
            "frames": TINY["num_frames"],
            "size": r.get("size", 32),
            "batch": batch,
            "device": device,
            "device_name": name,
            "latency_ms": 1.0,
            "throughput_clips_s": batch * U / 1e-3,
            "train_step_ms": step_ms if timed else None,
            "train_clips_s": batch * U / (step_ms / 1000) if timed else None,  # snippets/s: never the cost's unit
            "train_videos_s": vps if timed else None,
            "settings": settings,
        }
        rd.write_final(
            {
                "run_id": run.run_id,
                "task": "profile",
                "status": "done",
                "finished_at": f"2025-01-0{i + 1}T00:00:00+00:00",
                "hardware": {"device_name": name},
                "profile": profile,
            }
        )
        dirs.append(run.run_dir)
    return dirs


def _flops(size: int) -> float:
    config = resolve_config("tsm_r18_dsa", **{k: v for k, v in TINY.items() if k != "variant"})
    return profile_record(config, size=size)["gflops_per_view"]


def test_measured_videos_per_second_give_the_hours_and_the_table_says_where_from(tmp_path, capsys):
    import yaml

    results = tmp_path / "results"
    profiles = results / "runs" / "profile_gpu"
    dirs = write_profile_runs(
        results,
        [
            {"batch": 4, "videos_s": 2.0},  # the match: same model, crop, bf16, H200, batch
            {"batch": 4, "videos_s": 50.0, "device_name": "NVIDIA A100-SXM4-80GB"},  # another GPU
            {"batch": 4, "videos_s": 90.0, "device": "cpu", "device_name": "x86_64", "dtype": "fp32"},
            {"batch": 4, "videos_s": 70.0, "dtype": "fp16"},  # train.amp auto on an H200: bf16 first
            {"batch": 4, "variant": "tsm_r18", "device_name": "NVIDIA A100-SXM4-80GB"},  # tsm_r18: not on H200
            {"batch": 8, "timed": False},  # profile.train off: skipped
        ],
    )
    (profiles / "broken").mkdir()
    (profiles / "broken" / "final.json").write_text("{not json")
    (profiles / "list").mkdir()
    (profiles / "list" / "final.json").write_text("[1, 2]")
    doc = train_grid(tmp_path, cost={"throughput": {"tflops": 1}, "from": str(profiles), "gpu": "H200"})
    doc["axes"] = {"product": {"model.variant": ["tsm_r18_dsa", "tsm_r18"]}}
    grid = grid_from_dict(doc, "g.yaml")
    runs = expand(grid, results)
    c, fallback = estimate_cost(grid, runs, progress=False)
    f, ft = _flops(32), _flops(32)
    # videos/s = profile.train_videos_s (batch / step), not train_clips_s (batch x U / step)
    assert c["videos_per_s"] == 2.0 and c["measured"]["where"] == str(dirs[0])
    assert c["hours"] == pytest.approx((2 * 10 + 4 * 6 * (ft / f) / 3) / 2.0 / 3600)
    assert c["throughput_source"] == f"measured: NVIDIA H200, batch 4, bf16 ({dirs[0]})"
    # no record of tsm_r18 on an H200: the assumed TFLOP/s, saying why
    config = resolve_config("tsm_r18", **{k: v for k, v in TINY.items() if k != "variant"})
    f18 = profile_record(config, size=32)["gflops_per_view"]
    assert fallback["measured"] is None and fallback["videos_per_s"] is None
    assert fallback["hours"] == pytest.approx((3 * 2 * 10 * f18 + 4 * 6 * f18) / 1000 / 3600)
    assert fallback["throughput_source"] == "assumed 1 TFLOP/s (no profile record of this model on H200)"
    assert "8 final.json" in c["calibration"] and "5 profile record(s) with train timing, 1 without" in c["calibration"]
    assert "warning: 2 unreadable or malformed final.json skipped" in c["calibration"]
    # the same through the command line, from the grid's cost.from and from --calibrate (results root, runs/)
    (tmp_path / "g.yaml").write_text(yaml.safe_dump(doc))
    for extra in ([], ["--calibrate", str(results)], ["--calibrate", str(results / "runs")]):
        assert sweep_cli(["show", str(tmp_path / "g.yaml"), "--results", str(results), *extra]) == 0
        out = capsys.readouterr().out
        assert "throughput (source)" in out and "2.0 videos/s measured: NVIDIA H200, batch 4, bf16 (" in out
        assert "assumed 1 TFLOP/s (no profile record of this model on H200)" in out
        assert "throughput: 1 of 2 runs measured" in out and "warning: 2 unreadable or malformed" in out
    # --gpu overrides cost.gpu: on the A100 both runs are measured
    assert sweep_cli(["show", str(tmp_path / "g.yaml"), "--results", str(results), "--gpu", "a100"]) == 0
    out = capsys.readouterr().out
    assert "throughput: 2 of 2 runs measured" in out and "measured: NVIDIA A100-SXM4-80GB, batch 4, bf16" in out


def test_calibration_prefers_the_batch_then_the_nearest_and_never_a_cpu_record_for_a_gpu_run(tmp_path):
    from harness.launch.cost import read_calibration

    results = tmp_path / "results"
    dirs = write_profile_runs(
        results,
        [
            {"batch": 2, "videos_s": 3.0},
            {"batch": 16, "videos_s": 9.0},
            {"batch": 4, "videos_s": 5.0, "device": "cpu", "device_name": "x86_64", "dtype": "fp32"},
            {"batch": 4, "videos_s": 6.0, "dtype": "fp32", "device_name": "NVIDIA H100 80GB HBM3"},
        ],
    )
    cal = read_calibration(results / "runs" / "profile_gpu")
    grid = grid_from_dict(train_grid(tmp_path), "g.yaml")
    [run] = expand(grid, results)
    # no GPU named: any CUDA record; batch 4 in bf16 is not there: the nearest batch, said so
    [c] = estimate_cost(grid, [run], progress=False, calibrate=cal)
    assert c["videos_per_s"] == 3.0
    assert c["throughput_source"] == f"measured: NVIDIA H200, batch 2 (nearest to the run's 4), bf16 ({dirs[0]})"
    # train.amp none on a GPU: the fp32 record at the run's batch
    fp32 = grid_from_dict(train_grid(tmp_path, extra_train={"amp": "none"}), "g.yaml")
    [c] = estimate_cost(fp32, expand(fp32, results), progress=False, calibrate=cal)
    assert c["videos_per_s"] == 6.0 and "NVIDIA H100 80GB HBM3, batch 4, fp32" in c["throughput_source"]
    # a GPU it was not measured on: the assumed rate
    a100 = grid_from_dict(train_grid(tmp_path, cost={"gpu": "A100", "throughput": {"tflops": 3}}), "g.yaml")
    [c] = estimate_cost(a100, expand(a100, results), progress=False, calibrate=cal)
    assert c["measured"] is None
    assert c["throughput_source"] == "assumed 3 TFLOP/s (no profile record of this model on A100)"
    # a GPU run never takes the CPU record; a grid that asks for cpu (or a CPU run) does
    for doc in (train_grid(tmp_path, cost={"gpu": "cpu"}), train_grid(tmp_path, resources={"gpus": 0})):
        g = grid_from_dict(doc, "g.yaml")
        [c] = estimate_cost(g, expand(g, results), progress=False, calibrate=cal)
        assert c["videos_per_s"] == 5.0 and c["throughput_source"].startswith("measured: x86_64, batch 4, fp32")
    # with no measurement and a declared throughput: the declared videos/s (clips_per_s: its older name)
    for tp in ({"videos_per_s": 7}, {"clips_per_s": 7}):
        g = grid_from_dict(train_grid(tmp_path, cost={"gpu": "A100", "throughput": tp}), "g.yaml")
        [c] = estimate_cost(g, expand(g, results), progress=False, calibrate=cal)
        assert c["videos_per_s"] == 7 and c["throughput_source"].startswith("declared 7 videos/s")


def test_cost_section_is_validated_and_a_missing_calibration_folder_is_one_line(tmp_path, capsys):
    import yaml

    from harness.errors import UsageError
    from harness.launch.grid import GridError, GridValidationError

    with pytest.raises(GridValidationError) as e:
        grid_from_dict(train_grid(tmp_path, cost={"form": "x", "throughput": {"clip_per_s": 3}, "gpu": 80}), "g.yaml")
    text = str(e.value)
    assert "cost.form: unknown key; cost keys are train_clips, test_clips, throughput, from, gpu" in text
    assert "cost.throughput.clip_per_s: unknown key; throughput keys are videos_per_s, clips_per_s, tflops" in text
    assert "cost.gpu: must be part of the GPU's name" in text
    doc = train_grid(tmp_path, cost={"from": str(tmp_path / "nowhere"), "throughput": {"tflops": 1}})
    (tmp_path / "g.yaml").write_text(yaml.safe_dump(doc))
    with pytest.raises(GridError) as e:
        sweep_cli(["show", str(tmp_path / "g.yaml"), "--results", str(tmp_path / "results")])
    message = str(e.value)
    assert "\n" not in message and message.startswith(f"{tmp_path / 'g.yaml'}: cost.from: {tmp_path / 'nowhere'}")
    assert "no such folder" in message and "profile.train: true" in message and "drop cost.from" in message
    with pytest.raises(UsageError, match=r"^--calibrate \S+: no such folder; give a results folder"):
        sweep_cli(["show", str(tmp_path / "g.yaml"), "--calibrate", str(tmp_path / "nowhere2")])
    # --no-cost does not read it
    assert sweep_cli(["show", str(tmp_path / "g.yaml"), "--no-cost"]) == 0
    from harness.cli import build_parser

    sweep = build_parser()._subparsers._group_actions[0].choices["sweep"]
    show_help = sweep._subparsers._group_actions[0].choices["show"].format_help()
    assert "--calibrate DIR" in show_help and "sweep show experiments/ablation_alpha.yaml" in show_help
    assert "train_videos_s" in show_help and "--clips-per-s" in show_help


def test_a_gpu_run_trains_at_the_slower_of_its_gpu_step_and_its_data_path(tmp_path, capsys):
    """Throughput = min(GPU step, loader videos/s per core x cores per GPU): a data bench record (or a declared
    rate) bounds the hours where the loader is the slower, the table marks the run data-bound and says how
    many cores per GPU would make it GPU-bound; a CPU run has no data bound; a bad record is one line."""
    import json

    import yaml

    from harness.errors import UsageError

    f = _flops(32)
    doc = train_grid(tmp_path, resources={"cpus_per_task": 4}, cost={"throughput": {"videos_per_s": 100}})
    grid = grid_from_dict(doc, "g.yaml")
    runs = expand(grid)
    record = {"task": "data_bench", "created_at": "t", "results": {"decord": {"harness_videos_per_s": 5.0}}}
    [alone] = estimate_cost(grid, runs, progress=False)
    assert alone["data"] is None and alone["hours"] == pytest.approx((2 * 10 + 4 * 6 / 3) / 100 / 3600)
    [bound] = estimate_cost(grid, runs, progress=False, loader=record)
    assert bound["data"]["videos_per_s"] == 20.0 and bound["data"]["data_bound"]  # 4 cores x 5 < 100
    assert bound["data"]["cores_per_gpu_for_gpu"] == 20  # 100 / 5
    assert bound["hours"] == pytest.approx((2 * 10 / 20 + 4 * 6 / 3 / 100) / 3600)  # training at the data's pace
    table = show_table(grid, runs, [bound])
    assert "20 (4 cores x 5.0) < GPU 100: DATA-BOUND" in table
    assert "1 of 1 runs data-bound" in table and "20 cores per GPU (resources.cpus_per_task)" in table
    [fast] = estimate_cost(grid, runs, progress=False, loader={"videos_per_s_per_core": 50.0})
    assert not fast["data"]["data_bound"] and fast["hours"] == pytest.approx(alone["hours"])
    assert ">= GPU 100" in show_table(grid, runs, [fast]) and "0 of 1 runs data-bound" in show_table(grid, runs, [fast])
    assert "data path: not counted" in show_table(grid, runs, [alone])
    # from tflops: the GPU step is 1000 x tflops / (3 F) videos/s
    tflops = grid_from_dict(
        train_grid(tmp_path, resources={"cpus_per_task": 1}, cost={"throughput": {"tflops": 1}}), "t"
    )
    [c] = estimate_cost(tflops, expand(tflops), progress=False, loader={"videos_per_s_per_core": 1e-3})
    assert c["gpu_videos_per_s"] == pytest.approx(1000 / (3 * f)) and c["data"]["data_bound"]
    assert c["hours"] == pytest.approx((2 * 10 / 1e-3 + 4 * 6 * f / 1000) / 3600)
    # a CPU run: no data bound
    cpu = grid_from_dict(train_grid(tmp_path, resources={"gpus": 0}, cost={"throughput": {"videos_per_s": 1}}), "c")
    assert estimate_cost(cpu, expand(cpu), progress=False, loader=record)[0]["data"] is None
    # the command line and the grid's cost.loader_videos_per_s
    (tmp_path / "bench.json").write_text(json.dumps(record))
    (tmp_path / "g.yaml").write_text(yaml.safe_dump(doc))
    show = ["show", str(tmp_path / "g.yaml"), "--results", str(tmp_path / "results")]
    assert sweep_cli([*show, "--loader-record", str(tmp_path / "bench.json")]) == 0
    assert "DATA-BOUND" in capsys.readouterr().out
    (tmp_path / "h.yaml").write_text(yaml.safe_dump({**doc, "cost": {**doc["cost"], "loader_videos_per_s": 5}}))
    assert sweep_cli(["show", str(tmp_path / "h.yaml"), "--results", str(tmp_path / "results")]) == 0
    assert "declared 5 videos/s per core" in capsys.readouterr().out
    (tmp_path / "other.json").write_text(json.dumps({"task": "profile"}))
    with pytest.raises(UsageError, match=r"^--loader-record \S+other.json: not a `dsa-harness data bench` record"):
        sweep_cli([*show, "--loader-record", str(tmp_path / "other.json")])
    with pytest.raises(UsageError, match=r"^--loader-record \S+: cannot be read"):
        sweep_cli([*show, "--loader-record", str(tmp_path / "missing.json")])
    with pytest.raises(Exception, match="cost.loader_videos_per_s: must be videos/s of one loader process"):
        grid_from_dict({**doc, "cost": {"loader_videos_per_s": -1}}, "bad.yaml")
