"""FLOPs and parameters with fvcore, with every op of our models accounted for.

Convention (as in video papers and fvcore): **1 multiply-add = 1 FLOP**; GFLOPs are given per view
(one forward pass over the U snippets x T frames of one crop) and per video (x views).

fvcore counts conv, linear/matmul/bmm, batch norm and a few others, and skips element-wise ops. We add
handles so that no op of the DSA / aggregator modules is dropped: element-wise ``add``/``mul``/``div``/
``sub`` and ``softmax`` 1 FLOP per output element, ``mean``/``sum`` and max pooling 1 per input element.
In a ResNet-50 these extra ops (residual additions, max pool) add about 0.15% to fvcore's default total;
``flops_by_operator`` keeps the breakdown. ``pad`` (the TSM shift) is data movement: 0 FLOPs, like
``cat`` and ``slice``. Any op still without a handle is returned in
``unsupported_ops`` (name -> call count), never silently ignored.
"""

from __future__ import annotations

from collections import Counter
from math import prod
from typing import Any

import torch
from fvcore.nn import FlopCountAnalysis
from torch import nn


def _shape(value: Any) -> list[int] | None:
    t = value.type()
    try:
        sizes = t.sizes()
    except RuntimeError:
        return None
    return list(sizes) if sizes is not None else None


def _per_output(inputs: list[Any], outputs: list[Any]) -> int:
    shape = _shape(outputs[0])
    return prod(shape) if shape else 0


def _per_input(inputs: list[Any], outputs: list[Any]) -> int:
    shape = _shape(inputs[0])
    return prod(shape) if shape else 0


def _data_movement(inputs: list[Any], outputs: list[Any]) -> int:
    return 0


EXTRA_HANDLES = {
    # padding moves data, like cat/slice/view which fvcore already ignores: 0 FLOPs, but accounted
    "aten::pad": _data_movement,
    **{
        op: _per_output
        for op in (
            "aten::add",
            "aten::add_",
            "aten::mul",
            "aten::mul_",
            "aten::sub",
            "aten::div",
            "aten::softmax",
            "aten::_softmax",
            "aten::sigmoid",
            "aten::rsub",
        )
    },
    **{
        op: _per_input
        for op in (
            "aten::mean",
            "aten::sum",
            "aten::max_pool2d",
            "aten::max_pool3d",
            "aten::adaptive_avg_pool3d",
            "aten::avg_pool2d",
            "aten::avg_pool3d",
        )
    },
}


def count_flops(model: nn.Module, inputs: torch.Tensor | tuple) -> dict:
    """Trace ``model`` on ``inputs`` (eval mode) and count. Returns a plain record:

    ``flops`` (total, 1 MAC = 1 FLOP), ``flops_by_operator``, ``aggregator_flops`` (inside aggregator
    modules), ``unsupported_ops``.
    """
    was_training = model.training
    model.eval()
    try:
        analysis = FlopCountAnalysis(model, inputs)
        analysis.set_op_handle(**EXTRA_HANDLES)
        analysis.unsupported_ops_warnings(False)
        analysis.uncalled_modules_warnings(False)
        total = analysis.total()
        by_module = analysis.by_module()
        aggregator_names = [n for n, _ in model.named_modules() if n.endswith(".aggregator")]
        return {
            "flops": int(total),
            "flops_by_operator": dict(analysis.by_operator()),
            "aggregator_flops": int(sum(by_module.get(n, 0) for n in aggregator_names)),
            "unsupported_ops": dict(Counter(analysis.unsupported_ops())),
        }
    finally:
        model.train(was_training)


def count_params(model: nn.Module) -> dict:
    """Parameters: total, without the classifier (``fc``), and inside aggregator modules."""
    total = sum(p.numel() for p in model.parameters())
    fc = sum(p.numel() for n, p in model.named_parameters() if n.startswith("fc."))
    agg = sum(p.numel() for n, p in model.named_parameters() if ".aggregator." in n)
    return {"params": total, "params_no_classifier": total - fc, "aggregator_params": agg}
