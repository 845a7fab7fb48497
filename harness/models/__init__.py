"""Models: TSN/TSM/I3D ResNets, cross-snippet aggregators (DSA, static conv, non-local), the variant registry."""

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

__all__ = [
    "AGGREGATORS", "FLAVOURS", "PAPER_VARIANTS", "DynamicSegmentAggregation", "ModelConfig", "SnippetNonLocal",
    "StaticSnippetConv", "UnknownVariantError", "VideoResNet", "WeightLoadError", "create_model",
    "list_variants", "load_pretrained", "register_variant", "resolve_config", "temporal_shift",
]
