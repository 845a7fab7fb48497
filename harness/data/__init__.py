"""Video data: annotations, snippet sampling, transforms, decoding, loaders, the synthetic set.

Public names (see each module's docstring for layouts and rules):

- :func:`read_annotations`, :class:`VideoRecord`, :class:`AnnotationError` (annotations.py)
- :class:`SnippetSampler` (sampling.py)
- :func:`train_transform`, :func:`eval_transform`, :func:`normalize`, IMAGENET_MEAN/STD, layout helpers
  (transforms.py)
- :class:`VideoDataset`, :class:`CorruptVideoError` (video.py)
- :func:`build_loader`, :func:`set_epoch`, :class:`EpochSampler`, :func:`auto_num_workers` (loader.py: the
  loader training and evaluation use)
- :func:`generate_synthetic`, :func:`factor_accuracy` (synthetic.py)
- :func:`check_dataset` (check.py)
- :func:`prepare_dataset` (prepare.py: Kinetics-400, Mini-Kinetics-200, Something-Something V1 -> our lists)
- :func:`open_video`, :func:`decode_frames`, VIDEO_BACKENDS (video.py: decord / PyAV / auto)


Names are imported on first use (PEP 562), so that importing one submodule (the CLI imports
``harness.data.commands``) does not pull in torch."""

from __future__ import annotations

import importlib

_EXPORTS = {  # public name -> (module, name in the module)
    "AnnotationError": ("harness.data.annotations", "AnnotationError"),
    "VideoRecord": ("harness.data.annotations", "VideoRecord"),
    "read_annotations": ("harness.data.annotations", "read_annotations"),
    "read_class_index": ("harness.data.annotations", "read_class_index"),
    "check_dataset": ("harness.data.check", "check_dataset"),
    "EpochIndexed": ("harness.data.loader", "EpochIndexed"),
    "EpochSampler": ("harness.data.loader", "EpochSampler"),
    "auto_num_workers": ("harness.data.loader", "auto_num_workers"),
    "build_loader": ("harness.data.loader", "build_loader"),
    "set_epoch": ("harness.data.loader", "set_epoch"),
    "prepare_dataset": ("harness.data.prepare", "prepare_dataset"),
    "SnippetSampler": ("harness.data.sampling", "SnippetSampler"),
    "SYNTHETIC_RECOMMENDED": ("harness.data.synthetic", "RECOMMENDED"),
    "SYNTHETIC_STUDY_SET": ("harness.data.synthetic", "STUDY_SET"),
    "SynthConfig": ("harness.data.synthetic", "SynthConfig"),
    "chance_levels": ("harness.data.synthetic", "chance_levels"),
    "class_factors": ("harness.data.synthetic", "class_factors"),
    "factor_accuracy": ("harness.data.synthetic", "factor_accuracy"),
    "generate_synthetic": ("harness.data.synthetic", "generate_synthetic"),
    "write_mp4": ("harness.data.synthetic", "write_mp4"),
    "IMAGENET_MEAN": ("harness.data.transforms", "IMAGENET_MEAN"),
    "IMAGENET_STD": ("harness.data.transforms", "IMAGENET_STD"),
    "CenterCrop": ("harness.data.transforms", "CenterCrop"),
    "Compose": ("harness.data.transforms", "Compose"),
    "MultiScaleCrop": ("harness.data.transforms", "MultiScaleCrop"),
    "Normalize": ("harness.data.transforms", "Normalize"),
    "RandomHorizontalFlip": ("harness.data.transforms", "RandomHorizontalFlip"),
    "RandomResizedCrop": ("harness.data.transforms", "RandomResizedCrop"),
    "ResizeShortSide": ("harness.data.transforms", "ResizeShortSide"),
    "ThreeCrop": ("harness.data.transforms", "ThreeCrop"),
    "eval_transform": ("harness.data.transforms", "eval_transform"),
    "normalize": ("harness.data.transforms", "normalize"),
    "snippets_to_clips": ("harness.data.transforms", "snippets_to_clips"),
    "snippets_to_frames": ("harness.data.transforms", "snippets_to_frames"),
    "split_views": ("harness.data.transforms", "split_views"),
    "train_transform": ("harness.data.transforms", "train_transform"),
    "CorruptVideoError": ("harness.data.video", "CorruptVideoError"),
    "VIDEO_BACKENDS": ("harness.data.video", "VIDEO_BACKENDS"),
    "VideoDataset": ("harness.data.video", "VideoDataset"),
    "decode_frames": ("harness.data.video", "decode_frames"),
    "open_video": ("harness.data.video", "open_video"),
    "video_info": ("harness.data.video", "video_info"),
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        module, attr = _EXPORTS[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'harness.data' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
