"""Video data: annotations, snippet sampling, transforms, decoding, loaders, the synthetic set.

Public names (see each module's docstring for layouts and rules):

- :func:`read_annotations`, :class:`VideoRecord`, :class:`AnnotationError` (annotations.py)
- :class:`SnippetSampler` (sampling.py)
- :func:`train_transform`, :func:`eval_transform`, :func:`normalize`, IMAGENET_MEAN/STD, layout helpers
  (transforms.py)
- :class:`VideoDataset`, :class:`CorruptVideoError` (video.py)
- :func:`build_loader`, :func:`set_epoch`, :class:`EpochSampler` (loader.py: the loader training and
  evaluation use)
- :func:`generate_synthetic`, :func:`factor_accuracy` (synthetic.py)
- :func:`check_dataset` (check.py)
"""

from harness.data.annotations import AnnotationError, VideoRecord, read_annotations, read_class_index
from harness.data.check import check_dataset
from harness.data.loader import EpochIndexed, EpochSampler, build_loader, set_epoch
from harness.data.sampling import SnippetSampler
from harness.data.synthetic import (
    RECOMMENDED as SYNTHETIC_RECOMMENDED,
)
from harness.data.synthetic import (
    STUDY_SET as SYNTHETIC_STUDY_SET,
)
from harness.data.synthetic import (
    SynthConfig,
    chance_levels,
    class_factors,
    factor_accuracy,
    generate_synthetic,
    write_mp4,
)
from harness.data.transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    CenterCrop,
    Compose,
    MultiScaleCrop,
    Normalize,
    RandomHorizontalFlip,
    RandomResizedCrop,
    ResizeShortSide,
    ThreeCrop,
    eval_transform,
    normalize,
    snippets_to_clips,
    snippets_to_frames,
    split_views,
    train_transform,
)
from harness.data.video import CorruptVideoError, VideoDataset, open_video, video_info

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "SYNTHETIC_RECOMMENDED",
    "SYNTHETIC_STUDY_SET",
    "AnnotationError",
    "CenterCrop",
    "Compose",
    "CorruptVideoError",
    "EpochIndexed",
    "EpochSampler",
    "MultiScaleCrop",
    "Normalize",
    "RandomHorizontalFlip",
    "RandomResizedCrop",
    "ResizeShortSide",
    "SnippetSampler",
    "SynthConfig",
    "ThreeCrop",
    "VideoDataset",
    "VideoRecord",
    "build_loader",
    "chance_levels",
    "check_dataset",
    "class_factors",
    "eval_transform",
    "factor_accuracy",
    "generate_synthetic",
    "normalize",
    "open_video",
    "read_annotations",
    "read_class_index",
    "set_epoch",
    "snippets_to_clips",
    "snippets_to_frames",
    "split_views",
    "train_transform",
    "video_info",
    "write_mp4",
]
