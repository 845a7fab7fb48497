"""Our DSA module against input/output pairs of the authors' released module (shared/paper/vectors)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from harness.models import DynamicSegmentAggregation

# a copy of shared/paper/vectors (the authors' module's outputs) travels with the repository, so a clone
# anywhere runs these tests; where shared/ sits beside the repository the copy must equal it
VECTORS = Path(__file__).resolve().parent / "data" / "dsa_reference" / "dsa_reference.npz"
SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "paper" / "vectors" / "dsa_reference.npz"
CASES = ["res2_split1-4_a2_k3", "bottom_split1-8_a2_k3", "res2_split1-2_a4_k5_U8"]


@pytest.fixture(scope="module")
def vectors():
    if not VECTORS.exists():
        pytest.fail(f"reference vectors not found at {VECTORS}")
    return np.load(VECTORS)


def test_vendored_vectors_equal_the_shared_ones():
    if not SHARED.exists():
        pytest.skip(f"no shared/ beside the repository ({SHARED}): only the vendored copy is tested")
    assert VECTORS.read_bytes() == SHARED.read_bytes()


def _module(d, case):
    g = lambda k: d[f"{case}/{k}"]  # noqa: E731
    m = DynamicSegmentAggregation(
        int(g("C")),
        int(g("U")),
        int(g("T")),
        split_ratio=float(g("split_ratio")),
        alpha=int(g("alpha")),
        kernel_size=int(g("kernel_size")),
        with_identity=bool(g("with_identity")),
        layout="clips",
    )
    lin1, bn, _, lin2 = m.kernel_generator
    with torch.no_grad():
        lin1.weight.copy_(torch.from_numpy(g("linear1_weight")))
        lin2.weight.copy_(torch.from_numpy(g("linear2_weight")))
        bn.weight.copy_(torch.from_numpy(g("bn_weight")))
        bn.bias.copy_(torch.from_numpy(g("bn_bias")))
        bn.running_mean.copy_(torch.from_numpy(g("bn_running_mean")))
        bn.running_var.copy_(torch.from_numpy(g("bn_running_var")))
    return m, torch.from_numpy(g("x")), g


def _recover_pre_pass_stats(m, x):
    """Invert the one running-statistics update of the reference's train-mode pass (momentum 0.1,
    unbiased batch variance); returns the stored (post-pass) statistics."""
    bn = m.kernel_generator[1]
    s = m.to_snippets(x)
    n, c, U, _ = s.shape
    h = m.kernel_generator[0](m.pooled(s).reshape(n * c, U))
    stored_mean, stored_var = bn.running_mean.clone(), bn.running_var.clone()
    bn.running_mean.copy_((stored_mean - 0.1 * h.mean(0)) / 0.9)
    bn.running_var.copy_((stored_var - 0.1 * h.var(0, unbiased=True)) / 0.9)
    return stored_mean, stored_var


@pytest.mark.parametrize("case", CASES)
def test_train_mode_matches_reference(vectors, case):
    m, x, g = _module(vectors, case)
    with torch.no_grad():
        y = m.train()(x)
    np.testing.assert_allclose(y.numpy(), g("y_train"), atol=1e-5, rtol=0)


@pytest.mark.parametrize("case", CASES)
def test_eval_mode_matches_reference(vectors, case):
    """The stored running statistics were saved *after* the reference's train-mode pass had updated them
    (momentum 0.1, unbiased batch variance), while ``y_eval`` was computed before it. We recover the
    statistics in force for ``y_eval`` by inverting that one update — which also pins down our BatchNorm1d
    semantics — and compare."""
    m, x, g = _module(vectors, case)
    with torch.no_grad():
        _recover_pre_pass_stats(m, x)
        y = m.eval()(x)
    np.testing.assert_allclose(y.numpy(), g("y_eval"), atol=1e-5, rtol=0)


def test_train_pass_updates_running_stats_like_the_reference(vectors):
    """Running our module in train mode from the recovered statistics reproduces the stored ones."""
    case = CASES[0]
    m, x, g = _module(vectors, case)
    bn = m.kernel_generator[1]
    with torch.no_grad():
        stored_mean, stored_var = _recover_pre_pass_stats(m, x)
        m.train()(x)
    torch.testing.assert_close(bn.running_mean, stored_mean, atol=1e-6, rtol=0)
    torch.testing.assert_close(bn.running_var, stored_var, atol=1e-6, rtol=0)
