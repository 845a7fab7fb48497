"""FLOPs/params with real fvcore counts; latency records; the profile and list commands."""

from __future__ import annotations

import json

import pytest
import torch

import harness.measure.profile
from harness.cli import main
from harness.measure import profile_model, profile_record
from harness.models import create_model, list_variants, resolve_config


def test_resnet50_8_frames_matches_reference_flops_and_params():
    # spec section 7: 2D ResNet-50, 8 frames, 224x224, 400 classes = 32.88 GFLOPs, 24.33 M params
    r = profile_model("tsm_r50", snippets=1, frames=8, size=224, num_classes=400, latency=False)
    assert r["gflops_per_view"] == pytest.approx(32.88, rel=0.005)
    assert r["params_m"] == pytest.approx(24.33, rel=0.001)
    assert r["unsupported_ops"] == {}
    # fvcore's own convention (conv + bn + linear) is reported in the breakdown and equals 32.88 too
    default_ops = sum(r["flops_by_operator"][k] for k in ("conv", "batch_norm", "linear")) / 1e9
    assert default_ops == pytest.approx(32.88, rel=0.001)


@pytest.mark.parametrize("backbone", ["tsm_r50", "i3d_r50"])
def test_default_dsa_adds_less_than_one_percent_flops(backbone):
    base = profile_model(backbone, latency=False, size=112)
    dsa = profile_model(backbone + "_dsa", latency=False, size=112)
    assert dsa["gflops_per_view"] > base["gflops_per_view"]
    assert dsa["gflops_per_view"] < 1.01 * base["gflops_per_view"]
    assert dsa["aggregator_gflops_per_view"] > 0
    assert dsa["aggregator_params"] == 360
    assert dsa["params_m"] * 1e6 - base["params_m"] * 1e6 == pytest.approx(360, abs=0.5)


@pytest.mark.parametrize("name", list_variants())
def test_every_variant_profiles_with_no_unaccounted_op(name):
    r = profile_model(name, {"width": 8}, snippets=4, frames=2, size=32, num_classes=10, latency=False)
    assert r["unsupported_ops"] == {}, r["unsupported_ops"]
    assert r["gflops_per_view"] > 0
    if r["aggregator"] != "avg":
        assert r["aggregator_gflops_per_view"] > 0


def test_views_multiply_per_video_cost():
    r = profile_model("i3d_r18_dsa", {"width": 8}, snippets=4, frames=2, size=32, views=6, latency=False)
    assert r["gflops_per_video"] == pytest.approx(6 * r["gflops_per_view"])


CONTRACT_KEYS = {  # CONTRACTS.md, "Measure API"
    "variant",
    "flavour",
    "depth",
    "aggregator",
    "snippets",
    "frames",
    "size",
    "views",
    "gflops_per_view",
    "gflops_per_video",
    "params_m",
    "params_m_no_classifier",
    "aggregator_params",
    "unsupported_ops",
    "latency_ms",
    "latency_iqr_ms",
    "throughput_clips_s",
    "batch",
    "threads",
    "device",
    "device_name",
}
MEASURED_KEYS = set(harness.measure.profile.MEASURED_KEYS)


def test_profile_record_is_the_cost_part_of_profile_model():
    """One builder of the cost record: profile_model = profile_record + what it measures on a device."""
    full = profile_model("i3d_r18_dsa", {"width": 8}, snippets=4, frames=2, size=32, views=6, latency=False)
    assert CONTRACT_KEYS <= set(full)
    config = resolve_config("i3d_r18_dsa", width=8, num_frames=2)
    cost = profile_record(config, size=32, views=6)
    assert set(full) - set(cost) == MEASURED_KEYS
    assert cost == {k: full[k] for k in cost}
    # a given (e.g. trained) model of the same architecture counts the same
    assert profile_record(config, size=32, views=6, model=create_model(config)) == cost


def test_latency_record_fields():
    r = profile_model("tsm_r18_dsa", {"width": 8}, snippets=2, frames=2, size=32, batch=2, rounds=3)
    assert r["latency_ms"] > 0 and r["latency_iqr_ms"] >= 0
    assert r["latency_ci_low_ms"] <= r["latency_ms"] <= r["latency_ci_high_ms"]
    assert r["throughput_clips_s"] == pytest.approx(2 * 2 / (r["latency_ms"] / 1e3))
    assert r["threads"] >= 1 and r["timed_runs"] == r["rounds"] == 3


def test_profile_cli_json(capsys):
    assert (
        main(
            [
                "profile",
                "i3d_r18_dsa",
                "-U",
                "2",
                "-T",
                "2",
                "--size",
                "32",
                "--no-latency",
                "-o",
                "width=8",
                "-o",
                "split_ratio=0.25",
                "--json",
            ]
        )
        == 0
    )
    rec = json.loads(capsys.readouterr().out)
    assert rec["split_ratio"] == 0.25 and rec["snippets"] == 2 and rec["latency_ms"] is None


def test_profile_cli_unknown_variant_exit_2(capsys):
    assert main(["profile", "i3d_r05_dsa"]) == 2
    err = capsys.readouterr().err
    assert "i3d_r50_dsa" in err and "Traceback" not in err


def test_profile_cli_invalid_value_exit_2(capsys):
    assert main(["profile", "i3d_r50_dsa", "-o", "kernel_size=4", "--no-latency"]) == 2
    assert "kernel_size" in capsys.readouterr().err


def test_list_cli(capsys):
    assert main(["list", "*r50_dsa"]) == 0
    out = capsys.readouterr().out
    assert "i3d_r50_dsa" in out and "tsm_r50_dsa" in out and "i3d_r18" not in out


def test_latency_on_cuda_n_synchronises_device_n(monkeypatch):
    """On ``cuda:1`` the timed step waits for cuda:1 (not the current device) and runs with cuda:1 current."""
    from harness.measure import latency

    synced, current = [], []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: synced.append(device))

    class Current:  # stands in for torch.cuda.device(...) on a machine without CUDA
        def __init__(self, device):
            self.device = device

        def __enter__(self):
            current.append(self.device)

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(torch.cuda, "device", Current)

    class OnCuda1:  # an input that says it lives on cuda:1; the model below never touches it
        device = torch.device("cuda", 1)

    class Nothing(torch.nn.Module):
        def forward(self, x):
            return x

    r = latency.measure_latency(Nothing(), OnCuda1(), clips_per_input=1, rounds=2)
    assert r["rounds"] == 2 and len(synced) >= 1 + 2
    assert set(synced) == {torch.device("cuda", 1)}
    assert current == [torch.device("cuda", 1)]
