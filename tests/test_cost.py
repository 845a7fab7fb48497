"""`sweep show`'s estimates: the cost of a grid's runs (training and test FLOPs, device-hours) and the peak
training memory per GPU."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from harness.launch.cost import estimate_cost, show_table
from harness.launch.grid import expand, grid_from_dict
from harness.measure import profile_record
from harness.models import resolve_config

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
