"""Model correctness: shapes, shift, DSA semantics, isolation between videos, registry, validation."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from harness.models import (
    DynamicSegmentAggregation,
    UnknownVariantError,
    create_model,
    list_variants,
    resolve_config,
    temporal_shift,
)
from harness.models.config import paper_stage_masks

ROOT = Path(__file__).resolve().parents[1]
SMALL = dict(width=8, num_classes=7, num_snippets=4, num_frames=2)


@pytest.mark.parametrize("name", list_variants())
def test_every_variant_builds_and_has_the_right_output_shape(name):
    torch.manual_seed(0)
    model = create_model(name, **SMALL).eval()
    x = torch.randn(2, 4, 3, 2, 32, 32)
    with torch.no_grad():
        assert model(x).shape == (2, 7)
        assert model.forward_snippets(x).shape == (2, 4, 7)
    expected = (
        0 if name.endswith(tuple(f"r{d}" for d in (18, 34, 50, 101))) else sum(map(sum, model.config.stage_masks))
    )
    assert len(model.aggregator_modules()) == expected


@pytest.mark.parametrize("flavour", ["tsm", "i3d"])
@pytest.mark.parametrize(
    ("depth", "position"),
    [(d, p) for d in (18, 50) for p in ("res", "res_2", "res_3", "bottom") + (("res_4",) if d == 50 else ())],
)
def test_aggregators_fit_the_channels_at_every_position(flavour, depth, position):
    """The one channel map (config.aggregator_channels) sizes every block's aggregator, first blocks included:
    each aggregator is built for the channels of the tensor it actually receives at its position."""
    torch.manual_seed(0)
    model = create_model(f"{flavour}_r{depth}_dsa", position=position, stage_masks="all", **SMALL).eval()
    aggregators = model.aggregator_modules()
    assert len(aggregators) == sum(model.config.stage_blocks)
    seen = {}
    for agg in aggregators:
        agg.register_forward_pre_hook(lambda m, args: seen.__setitem__(m, args[0].shape[1]))
    with torch.no_grad():
        assert model(torch.randn(1, 4, 3, 2, 32, 32)).shape == (1, 7)
    assert [agg.channels for agg in aggregators] == [seen[agg] for agg in aggregators]


def test_paper_default_placement_r50():
    cfg = resolve_config("i3d_r50_dsa")
    assert cfg.stage_masks == ((0, 0, 0), (0, 1, 0, 1), (0, 1, 0, 1, 0, 1), (0, 0, 0))
    assert (cfg.position, cfg.split_ratio, cfg.alpha, cfg.kernel_size, cfg.num_snippets, cfg.num_frames) == (
        "res_2",
        0.125,
        2,
        3,
        4,
        8,
    )
    assert paper_stage_masks(18) == ((0, 0), (0, 1), (0, 1), (0, 0))
    # overriding the depth re-derives the paper masks for that depth
    assert resolve_config("i3d_r50_dsa", depth=18).stage_masks == paper_stage_masks(18)


def test_dsa_inserted_at_bottleneck_width_in_default_r50():
    model = create_model("i3d_r50_dsa", num_classes=10)
    aggs = model.aggregator_modules()
    assert [a.channels for a in aggs] == [128, 128, 256, 256, 256]
    assert [a.split_channels for a in aggs] == [16, 16, 32, 32, 32]
    # spec: U*U*alpha + 2*U*alpha + U*alpha*K parameters per insertion
    U, a, K = 4, 2, 3
    assert sum(p.numel() for m in aggs for p in m.parameters()) == 5 * (U * U * a + 2 * U * a + U * a * K)


def test_shift_moves_one_eighth_each_way_within_snippets():
    T, C = 4, 16
    x = torch.arange(2 * T * C, dtype=torch.float32).reshape(2 * T, C, 1, 1) + 1  # 2 snippets, no zeros
    y = temporal_shift(x, num_frames=T, shift_div=8).reshape(2, T, C)
    x = x.reshape(2, T, C)
    fold = C // 8
    # back: frame t takes t+1, last frame of each snippet zero-padded (never the next snippet's frame 0)
    assert torch.equal(y[:, :-1, :fold], x[:, 1:, :fold])
    assert torch.all(y[:, -1, :fold] == 0)
    # forward: frame t takes t-1, first frame zero
    assert torch.equal(y[:, 1:, fold : 2 * fold], x[:, :-1, fold : 2 * fold])
    assert torch.all(y[:, 0, fold : 2 * fold] == 0)
    # the rest untouched
    assert torch.equal(y[:, :, 2 * fold :], x[:, :, 2 * fold :])
    # exactly 1/8 each way moved: every other value of the shifted channels comes from its own snippet
    assert (y[:, :, : 2 * fold] != x[:, :, : 2 * fold]).all()


def _dsa(layout="clips", **kw):
    args = dict(split_ratio=0.25, alpha=2, kernel_size=3, layout=layout)
    args.update(kw)
    return DynamicSegmentAggregation(16, 4, 2, **args)


def test_dsa_kernel_size_one_is_identity():
    m = _dsa(kernel_size=1).train()
    x = torch.randn(3 * 4, 16, 2, 3, 3)
    assert torch.allclose(m(x), x, atol=1e-6)


def test_dsa_kernels_are_positive_and_sum_to_one():
    m = _dsa(kernel_size=5).train()
    pooled = torch.randn(3, 4, 4)
    k = m.generate_kernels(pooled)
    assert k.shape == (3, 4, 5)
    assert (k > 0).all()
    assert torch.allclose(k.sum(-1), torch.ones(3, 4))


@pytest.mark.parametrize("layout", ["clips", "frames"])
def test_dsa_never_mixes_videos_but_mixes_snippets(layout):
    torch.manual_seed(0)
    m = _dsa(layout=layout).eval()  # eval: BN statistics must not couple the videos either
    N, U, T = 2, 4, 2
    shape = (N * U, 16, T, 3, 3) if layout == "clips" else (N * U * T, 16, 3, 3)
    x = torch.randn(shape)
    y = m(x)
    x2 = x.clone()
    per_video = x2.shape[0] // N
    x2[:per_video] += torch.randn_like(x2[:per_video])  # perturb video 0 only
    y2 = m(x2)
    assert torch.equal(y[per_video:], y2[per_video:]), "video 1 changed when video 0 did"
    # perturb snippet 0 of video 1: snippet 1 of video 1 must change (aggregated channels only)
    x3 = x.clone()
    per_snippet = per_video // U
    x3[per_video : per_video + per_snippet, :4] += 1.0
    y3 = m(x3)
    s1 = slice(per_video + per_snippet, per_video + 2 * per_snippet)
    assert not torch.allclose(y3[s1, :4], y[s1, :4])
    assert torch.equal(y3[s1, 4:], y[s1, 4:])  # channels outside the split pass unchanged


def test_dsa_layouts_agree():
    """The same features in I3D (clips) and TSM (frames) layout give the same aggregation."""
    torch.manual_seed(0)
    a, b = _dsa(layout="clips").eval(), _dsa(layout="frames").eval()
    b.load_state_dict(a.state_dict())
    N, U, C, T, H, W = 2, 4, 16, 2, 3, 3
    clips = torch.randn(N * U, C, T, H, W)
    frames = clips.transpose(1, 2).reshape(N * U * T, C, H, W)
    out_frames = b(frames).reshape(N * U, T, C, H, W).transpose(1, 2)
    assert torch.allclose(a(clips), out_frames, atol=1e-6)


def test_gradients_reach_the_kernel_generator():
    torch.manual_seed(0)
    model = create_model("i3d_r18_dsa", **SMALL).train()
    x = torch.randn(2, 4, 3, 2, 32, 32)
    # give the zero-initialised last BN of each block some weight so that gradients flow everywhere
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm3d):
            torch.nn.init.ones_(m.weight)
    model(x).logsumexp(-1).sum().backward()
    gens = [a.kernel_generator for a in model.aggregator_modules()]
    assert gens
    for g in gens:
        for p in g.parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0


@pytest.mark.parametrize("agg", ["static_conv", "nonlocal"])
def test_other_aggregators_start_as_identity_and_isolate_videos(agg):
    from harness.models.aggregators import build_aggregator

    m = build_aggregator(
        agg,
        16,
        num_snippets=4,
        num_frames=2,
        split_ratio=0.5,
        alpha=2,
        kernel_size=3,
        with_identity=False,
        layout="clips",
    ).eval()
    x = torch.randn(8, 16, 2, 3, 3)
    assert torch.allclose(m(x), x, atol=1e-6)
    with torch.no_grad():  # make it mix
        for p in m.parameters():
            p.add_(torch.rand_like(p))
    y = m(x)
    x2 = x.clone()
    x2[:4] += 1
    assert torch.equal(m(x2)[4:], y[4:])
    assert not torch.allclose(m(x2)[:4, :8], y[:4, :8] + 1)


@pytest.mark.parametrize(
    "name, order_sensitive",
    [
        ("i3d_r18_dsa", True),
        ("tsm_r18_dsa", True),
        ("i3d_r18_static", True),
        ("i3d_r18_nonlocal", False),
        ("tsm_r18", False),
    ],
)
def test_which_models_can_tell_the_order_of_snippets(name, order_sensitive):
    """Reversing a video's snippets changes the prediction only where an aggregator sees snippet
    positions (DSA and the static conv: kernel taps for u-1, u, u+1). Non-local attention across
    snippets has no position encoding: equivariant to permuting them, so with the mean over snippets the
    prediction is order-blind (why it stays at chance on the synthetic set's order classes)."""
    torch.manual_seed(0)
    m = create_model(name, num_classes=5, width=8, num_snippets=4, num_frames=2).eval()
    with torch.no_grad():  # aggregators start as the identity and the last BN of a block at 0: make them act
        for mod_name, p in m.named_parameters():
            if "aggregator" in mod_name or not p.any():
                p.add_(torch.rand_like(p))
        x = torch.randn(2, 4, 3, 2, 32, 32)
        y, y_rev = m(x), m(x.flip(1))
    change = ((y - y_rev).abs().max() / y.abs().max()).item()
    assert change > 1e-4 if order_sensitive else change < 1e-5, change


@pytest.mark.parametrize(
    "overrides, field",
    [
        (dict(kernel_size=4), "kernel_size"),
        (dict(split_ratio=0), "split_ratio"),
        (dict(split_ratio=1.5), "split_ratio"),
        (dict(split_ratio=0.001), "split_ratio"),  # leaves 0 channels
        (dict(num_snippets=0), "num_snippets"),
        (dict(stage_masks=((0, 1), (0, 1, 0, 1), (0,) * 6, (0,) * 3)), "stage_masks"),
        (dict(position="top"), "position"),
        (dict(position="res_4", depth=18), "position"),
        (dict(aggregator="lstm"), "aggregator"),
        (dict(no_such_knob=1), "no_such_knob"),
    ],
)
def test_invalid_values_name_the_field(overrides, field):
    with pytest.raises(ValueError, match=field):
        resolve_config("i3d_r50_dsa", **overrides)


def test_unknown_variant_lists_close_names():
    with pytest.raises(UnknownVariantError) as e:
        resolve_config("i3d_r05_dsa")
    assert "i3d_r50_dsa" in e.value.close_matches


def test_stage_mask_spellings():
    assert resolve_config("i3d_r50_dsa", stage_masks="res3:0101,res4:all").stage_masks == (
        (0, 0, 0),
        (0, 1, 0, 1),
        (1,) * 6,
        (0, 0, 0),
    )
    assert resolve_config("i3d_r50_dsa", stage_masks={"res5": "all"}).stage_masks[3] == (1, 1, 1)
    assert resolve_config("i3d_r50_dsa", stage_masks="none").inserts is False


def test_list_variants_wildcards():
    assert {"tsm_r50", "tsm_r50_dsa", "i3d_r50", "i3d_r50_dsa", "tsm_r18_dsa", "i3d_r18_dsa"} <= set(list_variants())
    assert list_variants("i3d_r50*") == ["i3d_r50", "i3d_r50_dsa", "i3d_r50_nonlocal", "i3d_r50_static"]


def test_registry_and_config_import_without_torch():
    """Resolving and listing variants (grid expansion, `sweep show`) must not pay for importing torch."""
    code = (
        "import sys, harness.models.registry as r; r.resolve_config('i3d_r50_dsa'); "
        "from harness.models import list_variants, resolve_config, ModelConfig; list_variants(); "
        "resolve_config('tsm_r18', width=16); ModelConfig(); "
        "assert 'torch' not in sys.modules, sorted(m for m in sys.modules if m.startswith('torch'))"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_every_public_model_name_resolves():
    import harness.models as models

    for name in models.__all__:
        assert getattr(models, name) is not None, name
    assert models.create_model is create_model
    with pytest.raises(AttributeError):
        models.no_such_name  # noqa: B018


def test_model_rejects_wrong_input_layout():
    model = create_model("tsm_r18", **SMALL)
    with pytest.raises(ValueError, match="U=3"):
        model(torch.randn(1, 3, 3, 2, 32, 32))


# ---------------------------------------------------------------------------------------------
# memory format and activation checkpointing (train.channels_last, train.activation_checkpointing)
def _channels_last(x: torch.Tensor) -> torch.Tensor:
    return x.contiguous(memory_format=torch.channels_last_3d if x.dim() == 5 else torch.channels_last)


def _is_channels_last(x: torch.Tensor) -> bool:
    fmt = torch.channels_last_3d if x.dim() == 5 else torch.channels_last
    return x.is_contiguous(memory_format=fmt) and not x.is_contiguous()


def test_shift_keeps_channels_last_with_the_same_values():
    torch.manual_seed(0)
    x = torch.randn(3 * 4, 16, 5, 7, requires_grad=True)  # 3 snippets of T=4
    y = temporal_shift(x, num_frames=4)
    xc = _channels_last(x.detach()).requires_grad_()
    yc = temporal_shift(xc, num_frames=4)
    assert _is_channels_last(yc) and y.is_contiguous()
    assert torch.equal(yc, y)
    g = torch.randn_like(y)
    y.backward(g)
    yc.backward(g)
    assert torch.equal(xc.grad, x.grad)


@pytest.mark.parametrize("kind", ["dsa", "static_conv", "nonlocal"])
@pytest.mark.parametrize(("layout", "split_ratio"), [("clips", 0.25), ("frames", 0.25), ("frames", 1.0)])
def test_aggregators_keep_channels_last_with_the_same_values(kind, layout, split_ratio):
    from harness.models.aggregators import build_aggregator

    torch.manual_seed(0)
    m = build_aggregator(
        kind,
        16,
        num_snippets=4,
        num_frames=2,
        split_ratio=split_ratio,
        alpha=2,
        kernel_size=3,
        with_identity=False,
        layout=layout,
    ).train()
    if kind == "nonlocal":
        torch.nn.init.ones_(m.gamma)  # not the identity it starts as
    x = torch.randn((2 * 4, 16, 2, 3, 5) if layout == "clips" else (2 * 4 * 2, 16, 3, 5))
    y = m(x)
    yc = m(_channels_last(x))
    assert _is_channels_last(yc) and y.is_contiguous()
    assert torch.equal(yc, y)


@pytest.mark.parametrize("name", ["tsm_r18_dsa", "i3d_r18_dsa", "tsm_r50_nonlocal"])
def test_channels_last_model_keeps_the_layout_in_every_block(name):
    """set_channels_last(): inputs and weights channels_last(_3d), every block, shift and aggregator
    returns that layout (no conversion inside the network), and the outputs equal the ordinary
    layout's up to the convolutions' rounding."""
    import copy

    from harness.models.resnet import _Block

    torch.manual_seed(0)
    model = create_model(name, **{**SMALL, "dropout": 0.0}, stage_masks="all").eval()
    cl = copy.deepcopy(model).set_channels_last()
    assert cl.memory_format == (torch.channels_last_3d if name.startswith("i3d") else torch.channels_last)
    formats = []
    for m in cl.modules():
        if isinstance(m, _Block) or m in cl.aggregator_modules():
            m.register_forward_hook(lambda m, args, out: formats.append((type(m).__name__, _is_channels_last(out))))
    x = torch.randn(2, 4, 3, 2, 64, 64)  # res5 at 2x2: a 1x1 map would be both layouts at once
    with torch.no_grad():
        assert _is_channels_last(cl.to_backbone_layout(x))
        torch.testing.assert_close(cl(x), model(x), atol=1e-4, rtol=1e-4)
    assert len(formats) == sum(cl.config.stage_blocks) * 2
    assert all(ok for _, ok in formats), [n for n, ok in formats if not ok]


@pytest.mark.parametrize("name", ["tsm_r18_dsa", "i3d_r18_nonlocal"])
def test_activation_checkpointing_recomputes_with_equal_outputs_gradients_and_statistics(name):
    import copy

    torch.manual_seed(0)
    model = create_model(name, **{**SMALL, "dropout": 0.0}, stage_masks="all")
    for m in model.modules():  # undo the zero-init of the last BN of each block: gradients everywhere
        if isinstance(m, (torch.nn.BatchNorm2d, torch.nn.BatchNorm3d)):
            torch.nn.init.ones_(m.weight)
    ck = copy.deepcopy(model).set_activation_checkpointing(["res3", "res5"])
    assert ck.checkpoint_stages == ("res3", "res5")
    calls = {"res2": 0, "res3": 0}
    ck.layer1.register_forward_pre_hook(lambda m, a: calls.__setitem__("res2", calls["res2"] + 1))
    ck.layer2.register_forward_pre_hook(lambda m, a: calls.__setitem__("res3", calls["res3"] + 1))
    x, y = torch.randn(2, 4, 3, 2, 32, 32), torch.tensor([1, 5])
    losses = []
    for m in (model, ck):
        m.train()
        loss = torch.nn.functional.cross_entropy(m(x), y)
        loss.backward()
        losses.append(loss.detach())
    assert calls == {"res2": 1, "res3": 2}  # res3 ran again in the backward pass, res2 did not
    assert torch.equal(losses[0], losses[1])
    grads = dict(model.named_parameters())
    for k, p in ck.named_parameters():
        torch.testing.assert_close(p.grad, grads[k].grad, atol=1e-6, rtol=1e-5)
    ref = model.state_dict()  # BatchNorm running statistics and batch counters updated once, not twice
    for k, v in ck.state_dict().items():
        assert torch.equal(v, ref[k]), k
    with torch.no_grad():  # evaluation recomputes nothing
        ck.eval()(x)
    assert calls["res3"] == 3
    with pytest.raises(ValueError, match="res6"):
        ck.set_activation_checkpointing(["res6"])
