"""Models: TSN/TSM/I3D ResNets, cross-snippet aggregators (DSA, static conv, non-local), the variant registry.

Names are imported on first use (PEP 562), so that ``from harness.models import resolve_config,
list_variants, ModelConfig`` (grid expansion, ``sweep show``) does not pull in torch; ``create_model``
imports it when it builds a model."""

from harness.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "AGGREGATORS": "harness.models.config",
        "FLAVOURS": "harness.models.config",
        "ModelConfig": "harness.models.config",
        "PAPER_VARIANTS": "harness.models.registry",
        "UnknownVariantError": "harness.models.registry",
        "create_model": "harness.models.registry",
        "list_variants": "harness.models.registry",
        "register_variant": "harness.models.registry",
        "resolve_config": "harness.models.registry",
        "DynamicSegmentAggregation": "harness.models.aggregators",
        "SnippetNonLocal": "harness.models.aggregators",
        "StaticSnippetConv": "harness.models.aggregators",
        "VideoResNet": "harness.models.resnet",
        "temporal_shift": "harness.models.shift",
        "WeightLoadError": "harness.models.weights",
        "load_pretrained": "harness.models.weights",
        "load_checkpoint_into": "harness.models.weights",
        "model_from_checkpoint": "harness.models.weights",
        "read_weights": "harness.models.weights",
    },
)
