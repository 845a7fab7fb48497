"""Initialisation from a local torchvision-format ResNet state dict (no download, ever)."""

from __future__ import annotations

import os

import torch
from torch import nn

from harness.errors import HarnessError, MissingFileError


class WeightLoadError(HarnessError, ValueError):
    """A weights file that cannot be read, or whose state dict does not fit the model; the message names
    the file and lists missing/unexpected/mismatched keys."""


def _inflate(weight: torch.Tensor, target_shape: torch.Size) -> torch.Tensor:
    """2D conv kernel (O, I, k, k) -> 3D (O, I, kt, k, k): repeated over time and divided by kt,
    so a clip of identical frames gives the 2D network's response."""
    kt = target_shape[2]
    return weight.unsqueeze(2).repeat(1, 1, kt, 1, 1) / kt


def load_pretrained(model: nn.Module, path: str | os.PathLike, *, strict: bool = True) -> dict:
    """Load a torchvision ResNet state dict (keys as ``torchvision.models.resnet50().state_dict()``).

    2D kernels are inflated for I3D; the classifier is skipped when its class count differs; the
    aggregator parameters are new (initialised from scratch) and reported, not missing. Loaded with
    ``torch.load(weights_only=True)``. Raises ``MissingFileError`` (a FileNotFoundError) for a missing
    file and ``WeightLoadError`` for an unreadable one or, when ``strict``, listing every missing,
    unexpected or shape-mismatched key. Returns a summary dict.
    """
    if not os.path.isfile(path):
        raise MissingFileError(f"model.pretrained: weights file not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling problem is a bad file
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
        raise WeightLoadError(f"model.pretrained: cannot read {path} as a weights-only state dict: {reason}") from e
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightLoadError(f"model.pretrained: {path} is not a state dict (a mapping of names to tensors)")
    state = {k.removeprefix("module."): v for k, v in state.items()}
    own = model.state_dict()
    new_keys = {k for k in own if ".aggregator." in k}
    loaded, mismatched, skipped = {}, [], []
    for key, value in state.items():
        if key not in own:
            continue
        target = own[key]
        if value.shape != target.shape:
            if value.dim() == 4 and target.dim() == 5 and value.shape == target.shape[:2] + target.shape[3:]:
                value = _inflate(value, target.shape)
            elif key.startswith("fc."):
                skipped.append(key)
                continue
            else:
                mismatched.append(f"{key}: file {tuple(value.shape)} vs model {tuple(target.shape)}")
                continue
        loaded[key] = value.to(target.dtype)
    missing = sorted(
        k
        for k in own
        if k not in loaded and k not in new_keys and k not in skipped and not k.endswith("num_batches_tracked")
    )
    unexpected = sorted(k for k in state if k not in own and not k.endswith("num_batches_tracked"))
    if strict and (missing or unexpected or mismatched):
        lines = [f"weights in {path} do not fit {getattr(model, 'config', type(model)).__class__.__name__}"]
        for title, keys in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", mismatched)):
            if keys:
                lines.append(f"  {title} ({len(keys)}): " + ", ".join(keys[:20]) + (" ..." if len(keys) > 20 else ""))
        raise WeightLoadError("\n".join(lines))
    model.load_state_dict(loaded, strict=False)
    return {
        "loaded": len(loaded),
        "new": sorted(new_keys),
        "skipped": skipped,
        "missing": missing,
        "unexpected": unexpected,
        "mismatched": mismatched,
    }
