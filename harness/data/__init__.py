"""Video data: annotations, snippet sampling, transforms, decoding, loaders, the synthetic set.

Public names (see each module's docstring for layouts and rules):

- :func:`read_annotations`, :class:`VideoRecord`, :class:`AnnotationError` (annotations.py)
- :class:`SnippetSampler` (sampling.py)
- :func:`train_transform`, :func:`eval_transform`, :func:`normalize`, IMAGENET_MEAN/STD, layout helpers
  (transforms.py)
- :class:`VideoDataset`, :class:`CorruptVideoError` (video.py)
- :func:`build_loader`, :func:`set_epoch`, :class:`EpochSampler`, :func:`auto_num_workers` (loader.py: the
  loader training and evaluation use)
- :func:`generate_synthetic`, :func:`factor_accuracy` (synthetic.py: the long-range order set)
- :func:`generate_cued`, :class:`CuedConfig`, CUED_BENCHMARK_SET (synthetic_cued.py: the embedded benchmark's set)
- :func:`check_dataset` (check.py)
- :func:`prepare_dataset` (prepare.py: Kinetics-400, Mini-Kinetics-200, Something-Something V1 -> our lists)
- :func:`open_video`, :func:`decode_frames`, VIDEO_BACKENDS (backends.py: auto / decord / PyAV / torchcodec)
- :func:`extract_frames` (extract.py: video lists -> JPEG frame folders and lists, `data prepare --extract-frames`)


Names are imported on first use (PEP 562), so that importing one submodule (the CLI imports
``harness.data.commands``) does not pull in torch."""

from harness.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "AnnotationError": "harness.data.annotations",
        "VideoRecord": "harness.data.annotations",
        "read_annotations": "harness.data.annotations",
        "read_class_index": "harness.data.annotations",
        "check_dataset": "harness.data.check",
        "EpochIndexed": "harness.data.loader",
        "EpochSampler": "harness.data.loader",
        "auto_num_workers": "harness.data.loader",
        "build_loader": "harness.data.loader",
        "set_epoch": "harness.data.loader",
        "prepare_dataset": "harness.data.prepare",
        "SnippetSampler": "harness.data.sampling",
        "SYNTHETIC_RECOMMENDED": ("harness.data.synthetic", "RECOMMENDED"),
        "SYNTHETIC_STUDY_SET": ("harness.data.synthetic", "STUDY_SET"),
        "SynthConfig": "harness.data.synthetic",
        "chance_levels": "harness.data.synthetic",
        "class_factors": "harness.data.synthetic",
        "factor_accuracy": "harness.data.synthetic",
        "generate_synthetic": "harness.data.synthetic",
        "write_mp4": "harness.data.synthetic",
        "CUED_BENCHMARK_SET": ("harness.data.synthetic_cued", "BENCHMARK_SET"),
        "CuedConfig": "harness.data.synthetic_cued",
        "generate_cued": "harness.data.synthetic_cued",
        "IMAGENET_MEAN": "harness.data.transforms",
        "IMAGENET_STD": "harness.data.transforms",
        "CenterCrop": "harness.data.transforms",
        "Compose": "harness.data.transforms",
        "MultiScaleCrop": "harness.data.transforms",
        "Normalize": "harness.data.transforms",
        "RandomHorizontalFlip": "harness.data.transforms",
        "RandomResizedCrop": "harness.data.transforms",
        "ResizeShortSide": "harness.data.transforms",
        "ThreeCrop": "harness.data.transforms",
        "eval_transform": "harness.data.transforms",
        "normalize": "harness.data.transforms",
        "snippets_to_clips": "harness.data.transforms",
        "snippets_to_frames": "harness.data.transforms",
        "split_views": "harness.data.transforms",
        "train_transform": "harness.data.transforms",
        "CorruptVideoError": "harness.data.video",
        "VIDEO_BACKENDS": "harness.data.backends",
        "extract_frames": "harness.data.extract",
        "VideoDataset": "harness.data.video",
        "decode_frames": "harness.data.video",
        "open_video": "harness.data.video",
        "video_info": "harness.data.video",
    },
)
