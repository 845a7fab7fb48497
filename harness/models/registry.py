"""Variant registry: names -> frozen configs -> models (timm style).

    @register_variant
    def i3d_r50_dsa():
        return dict(flavour="i3d", depth=50, aggregator="dsa")

    create_model("i3d_r50_dsa", num_classes=200, split_ratio=0.25)

A variant is a name with frozen defaults; every ablation knob is an override (see ``ModelConfig``).
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from harness.errors import ConfigError
from harness.models.config import ModelConfig

if TYPE_CHECKING:
    from torch import nn

_VARIANTS: dict[str, Mapping[str, Any]] = {}


class UnknownVariantError(ConfigError):
    """An unknown variant name (a ``ConfigError``, hence a ValueError); the message lists the closest
    registered names."""

    def __init__(self, name: str):
        close = difflib.get_close_matches(name, list(_VARIANTS), n=5, cutoff=0.5)
        hint = f"; closest: {', '.join(close)}" if close else ""
        super().__init__(f"unknown variant {name!r}{hint} (see `dsa-harness list`)")
        self.name = name
        self.close_matches = close


def register_variant(fn: Callable[[], Mapping[str, Any]]) -> Callable[[], Mapping[str, Any]]:
    """Register ``fn.__name__`` as a variant whose defaults are ``fn()`` (validated now)."""
    return _register(fn.__name__, fn())


def _register(name: str, defaults: Mapping[str, Any]):
    if name in _VARIANTS:
        raise ValueError(f"variant {name!r} is registered twice")
    ModelConfig(name=name, **defaults)  # fail at import time, not at first use
    _VARIANTS[name] = MappingProxyType(dict(defaults))
    return lambda: _VARIANTS[name]


def list_variants(pattern: str = "*") -> list[str]:
    """Registered names matching the shell-style ``pattern`` (e.g. ``'*_r50_*'``), sorted."""
    return sorted(n for n in _VARIANTS if fnmatch.fnmatchcase(n, pattern))


def variant_defaults(name: str) -> Mapping[str, Any]:
    if name not in _VARIANTS:
        raise UnknownVariantError(name)
    return _VARIANTS[name]


def resolve_config(name: str, **overrides: Any) -> ModelConfig:
    """The validated config of variant ``name`` with ``overrides`` applied. Cheap: builds nothing.

    Overrides are applied to the variant's *declared* defaults, so e.g. ``depth=18`` on a variant
    with the paper's stage masks gets the paper's masks for ResNet-18.
    """
    defaults = dict(variant_defaults(name))
    known = set(ModelConfig.__dataclass_fields__) - {"name"}
    unknown = set(overrides) - known
    if unknown:
        raise ConfigError(f"unknown model option(s) {sorted(unknown)}; options: {', '.join(sorted(known))}")
    defaults.update(overrides)
    return ModelConfig(name=name, **defaults)


def create_model(name: str | ModelConfig, **overrides: Any) -> nn.Module:
    """Build variant ``name`` (or a ready ``ModelConfig``) with ``overrides``; loads ``pretrained`` if set."""
    from harness.models.resnet import VideoResNet
    from harness.models.weights import load_pretrained

    config = name.replace(**overrides) if isinstance(name, ModelConfig) else resolve_config(name, **overrides)
    model = VideoResNet(config)
    if config.pretrained:
        load_pretrained(model, config.pretrained)
    return model


# ----------------------------------------------------------------------------------------
# The paper's variants. Backbones: TSN (2D, no temporal modelling), TSM, I3D; each with the
# cross-snippet aggregators compared in the paper. Defaults: U = 4 snippets of T = 8 frames,
# 400 classes; DSA at res_2 of every other block of res3/res4, split 1/8, alpha 2, K 3.


@register_variant
def tsm_r50():
    return dict(flavour="tsm", depth=50)


@register_variant
def tsm_r50_dsa():
    return dict(flavour="tsm", depth=50, aggregator="dsa")


@register_variant
def i3d_r50():
    return dict(flavour="i3d", depth=50)


@register_variant
def i3d_r50_dsa():
    return dict(flavour="i3d", depth=50, aggregator="dsa")


_SUFFIX = {"avg": "", "dsa": "_dsa", "static_conv": "_static", "nonlocal": "_nonlocal"}
for _flavour in ("tsn", "tsm", "i3d"):
    for _depth in (18, 34, 50, 101):
        for _agg, _suffix in _SUFFIX.items():
            _name = f"{_flavour}_r{_depth}{_suffix}"
            if _name not in _VARIANTS:
                _register(_name, dict(flavour=_flavour, depth=_depth, aggregator=_agg))

PAPER_VARIANTS = ("tsm_r50", "tsm_r50_dsa", "i3d_r50", "i3d_r50_dsa", "tsn_r50", "i3d_r50_static", "i3d_r50_nonlocal")
"""The variants of the paper's main comparisons (profiled by `make reproduce`)."""
