"""Models: TSN/TSM/I3D ResNets, cross-snippet aggregators (DSA, static conv, non-local), the variant registry.

Names load lazily (PEP 562): ``from harness.models import resolve_config, list_variants, ModelConfig``
imports neither torch nor the modules that build networks; ``create_model`` imports them when it runs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_SOURCES = {
    "AGGREGATORS": "config", "FLAVOURS": "config", "ModelConfig": "config",
    "PAPER_VARIANTS": "registry", "UnknownVariantError": "registry", "create_model": "registry",
    "list_variants": "registry", "register_variant": "registry", "resolve_config": "registry",
    "DynamicSegmentAggregation": "aggregators", "SnippetNonLocal": "aggregators", "StaticSnippetConv": "aggregators",
    "VideoResNet": "resnet",
    "temporal_shift": "shift",
    "WeightLoadError": "weights", "load_pretrained": "weights",
}

__all__ = [
    "AGGREGATORS", "FLAVOURS", "PAPER_VARIANTS", "DynamicSegmentAggregation", "ModelConfig", "SnippetNonLocal",
    "StaticSnippetConv", "UnknownVariantError", "VideoResNet", "WeightLoadError", "create_model",
    "list_variants", "load_pretrained", "register_variant", "resolve_config", "temporal_shift",
]


def __getattr__(name: str) -> Any:
    module = _SOURCES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:
    from harness.models.aggregators import DynamicSegmentAggregation, SnippetNonLocal, StaticSnippetConv
    from harness.models.config import AGGREGATORS, FLAVOURS, ModelConfig
    from harness.models.registry import (
        PAPER_VARIANTS,
        UnknownVariantError,
        create_model,
        list_variants,
        register_variant,
        resolve_config,
    )
    from harness.models.resnet import VideoResNet
    from harness.models.shift import temporal_shift
    from harness.models.weights import WeightLoadError, load_pretrained
