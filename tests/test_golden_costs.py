"""Golden cost numbers of the authors' I3D-R50 (+DSA), measured on the official DSANet code with fvcore's default
handles (one view: U=4 snippets x T=8 frames x 224x224, 400 classes, batch 1). Our models must give the same
parameter counts exactly and the same FLOPs within 1e-6 relative under fvcore's *default* handles; our own count
(``harness.measure.count_flops``) adds the element-wise ops fvcore skips and is checked apart (it must be the
default count plus exactly those ops, about +0.15%)."""

from __future__ import annotations

import pytest
import torch
from fvcore.nn import FlopCountAnalysis

from harness.measure.flops import count_flops, count_params
from harness.models import create_model

I3D_R50_PARAMS = 32_454_096
I3D_R50_FLOPS = 167_674_609_664
I3D_R50_DSA_PARAMS = 32_454_456
I3D_R50_DSA_FLOPS = 167_678_833_664

# ablations of i3d_r50_dsa (official code): override -> (DSA params or None, GFLOPs as published, to the
# decimals given, or None)
ABLATIONS = {
    "alpha=1": ({"alpha": 1}, 180, None),
    "alpha=4": ({"alpha": 4}, 720, None),
    "alpha=8": ({"alpha": 8}, 1440, None),
    "K=5": ({"kernel_size": 5}, 440, None),
    "U=2": ({"num_snippets": 2}, 140, "83.84"),
    "U=8": ({"num_snippets": 8}, 1040, "335.36"),
    "position=res": ({"position": "res"}, None, "167.6915"),
    "position=res_4": ({"position": "res_4"}, None, "167.6915"),
    "position=bottom": ({"position": "bottom"}, None, "167.6915"),
    "split=1": ({"split_ratio": 1.0}, None, "167.7084"),
    "split=1/2": ({"split_ratio": 0.5}, None, "167.6915"),
    "split=1/4": ({"split_ratio": 0.25}, None, "167.6831"),
    "split=1/16": ({"split_ratio": 1 / 16}, None, "167.6767"),
}


def _default_fvcore_flops(model, snippets: int = 4) -> int:
    model.eval()
    analysis = FlopCountAnalysis(model, (torch.zeros(1, snippets, 3, 8, 224, 224),))
    analysis.unsupported_ops_warnings(False)
    analysis.uncalled_modules_warnings(False)
    return int(analysis.total())


@pytest.mark.slow
@pytest.mark.parametrize(
    "variant,params,flops",
    [("i3d_r50", I3D_R50_PARAMS, I3D_R50_FLOPS), ("i3d_r50_dsa", I3D_R50_DSA_PARAMS, I3D_R50_DSA_FLOPS)],
)
def test_official_i3d_r50_costs(variant, params, flops):
    torch.manual_seed(0)
    model = create_model(variant, num_classes=400)
    assert count_params(model)["params"] == params
    default = _default_fvcore_flops(model)
    assert abs(default - flops) <= 1e-6 * flops, (default, flops)
    ours = count_flops(model, (torch.zeros(1, 4, 3, 8, 224, 224),))
    extra = sum(
        v
        for k, v in ours["flops_by_operator"].items()
        if k
        in (
            "add",
            "add_",
            "mul",
            "mul_",
            "sub",
            "div",
            "softmax",
            "mean",
            "sum",
            "max_pool3d",
            "max_pool2d",
            "adaptive_avg_pool3d",
            "adaptive_avg_pool2d",
        )
    )
    assert ours["unsupported_ops"] == {}
    assert 0 < ours["flops"] - default <= 0.002 * default  # only the element-wise ops fvcore skips
    assert ours["flops"] - default <= extra


@pytest.mark.slow
@pytest.mark.parametrize("name", list(ABLATIONS))
def test_official_dsa_ablation_costs(name):
    overrides, dsa_params, gflops = ABLATIONS[name]
    model = create_model("i3d_r50_dsa", num_classes=400, **overrides)
    if dsa_params is not None:
        assert count_params(model)["aggregator_params"] == dsa_params
    if gflops is not None:
        snippets = overrides.get("num_snippets", 4)
        got = _default_fvcore_flops(model, snippets) / 1e9
        decimals = len(gflops.split(".")[1])
        assert f"{got:.{decimals}f}" == gflops, (name, got)


@pytest.mark.parametrize("variant,params,shifted,blocks", [("tsm_r50", 24_327_632, 16, 16), ("tsm_r101", None, 18, 33)])
def test_tsm_shifts_the_blocks_the_reference_shifts(variant, params, shifted, blocks):
    """The TSM reference (mit-han-lab/temporal-shift-module) and DSANet's ResNetTSM shift every residual block of
    ResNet-50 but every other block (n_round = 2) of ResNet-101: 18 of 33. TSM-R50 has the reference's 24,327,632
    parameters (400 classes)."""
    model = create_model(variant, num_classes=400)
    flags = [m.shift_div for m in model.modules() if hasattr(m, "shift_div")]
    assert (sum(bool(f) for f in flags), len(flags)) == (shifted, blocks)
    if params is not None:
        assert count_params(model)["params"] == params
