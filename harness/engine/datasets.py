"""A run's datasets and loaders (from ``harness.data``) and the manifest of its splits."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset

from harness.config import DataConfig, EvalConfig, TrainConfig
from harness.data import build_loader
from harness.data.annotations import AnnotationError, read_classes_json
from harness.engine.distributed import DistributedContext
from harness.errors import ConfigError, HarnessWarning
from harness.results.predictions import file_sha256


def build_train_loader(
    dataset: Dataset, tcfg: TrainConfig, dcfg: DataConfig, seed: int, ctx: DistributedContext, device: torch.device
) -> DataLoader:
    """The training loader of a run: ``harness.data.build_loader`` with the run's settings (shuffled,
    padded shards). ``benchmarks/loader_throughput.py`` times this very call. With ``data.clips_per_decode``
    k, a batch is ``train.batch_size / k`` videos of k samples each (``train.batch_size`` samples)."""
    return build_loader(
        dataset,
        tcfg.batch_size // dcfg.clips_per_decode,
        shuffle=True,
        seed=seed,
        num_workers=dcfg.num_workers,
        rank=ctx.rank,
        world_size=ctx.world_size,
        device=device,
    )


@dataclass
class RunData:
    """A run's datasets (None where the split is not given), class count and the batch normaliser."""

    train: Dataset | None
    val: Dataset | None
    test: Dataset | None
    num_classes: int
    factors: dict | None
    normalize: object
    classes_listed: int | None = None  # entries of the classes file (classes.json), when there is one


def build_data(data: DataConfig, ev: EvalConfig, num_snippets: int, num_frames: int, seed: int) -> RunData:
    """Datasets for the three splits from ``harness.data`` (train: random offsets, crop and flip;
    val: centred snippets, one centre crop of ``data.size``; test: ``test_groups`` interleaved groups x
    ``crops`` crops of the test size, ``EvalConfig.test_crop``)."""
    from harness.data.transforms import normalize

    splits = {
        split: _split_dataset(path, split, data, ev, num_snippets, num_frames, seed)
        for split, path in (("train", data.train), ("val", data.val), ("test", data.test))
        if path
    }
    labels = [lab for ds in splits.values() for lab in ds.labels]
    if not labels:
        raise ConfigError("no data: set data.train and/or data.test")
    num_classes, factors, classes_listed = max(labels) + 1, None, None
    ref = next(p for p in (data.train, data.val, data.test) if p)
    classes_file = Path(ref).parent / "classes.json"
    if classes_file.exists():  # the one reader of classes.json (names the file and entry); labels must fit it
        names, factors = read_classes_json(classes_file)
        num_classes = classes_listed = len(names)
        _check_labels_fit(splits, classes_file, num_classes)
    _warn_on_uneven_classes(splits, num_classes)

    def norm(x: torch.Tensor) -> torch.Tensor:  # (N, V*U, C, T, H, W) uint8 -> normalised float
        return normalize(x)

    train, val, test = (splits.get(s) for s in ("train", "val", "test"))
    return RunData(train, val, test, num_classes, factors, norm, classes_listed)


def _split_dataset(
    path: str, mode: str, data: DataConfig, ev: EvalConfig, num_snippets: int, num_frames: int, seed: int
):
    """One split's ``VideoDataset``: its sampler (``mode`` train | val | test) and transform."""
    from harness.data.sampling import SnippetSampler
    from harness.data.transforms import eval_transform, train_transform
    from harness.data.video import VideoDataset

    sampler = SnippetSampler(
        num_snippets,
        num_frames,
        data.frame_interval,
        mode,
        **({"test_groups": ev.test_groups} if mode == "test" else {}),
    )
    if mode == "train":
        transform = train_transform(
            data.size,
            flip=data.flip,
            crop=data.crop,
            area=data.crop_area,
            scales=data.scales if data.crop == "multiscale" else None,
        )
    elif mode == "test":  # the test crop (eval.size / eval.resize; None: the training ones)
        size, resize = ev.test_crop(data)
        transform = eval_transform(size, resize=resize, crops=ev.crops)
    else:
        transform = eval_transform(data.size, resize=data.resize, crops=1)
    extra = {"class_index": data.classes} if data.format == "kinetics_csv" and data.classes else {}
    if data.format == "frames":
        extra["frame_template"] = data.frame_template
    root = data.root if data.root else str(Path(path).resolve().parent)
    return VideoDataset(
        path,
        root,
        sampler,
        transform=transform,
        format=data.format,
        on_error=data.on_error,
        decode_threads=data.decode_threads,
        seed=seed,
        cache_decoded=data.cache_decoded,
        video_backend=data.video_backend,
        replace_skipped=mode == "train",  # val / test: an unreadable video is left out, never replaced
        clips_per_decode=data.clips_per_decode if mode == "train" else 1,
        **extra,
    )


def _check_labels_fit(splits: dict, classes_file: Path, num_classes: int) -> None:
    """Refuse a label beyond the classes file's entries, naming the list and its line."""
    for ds in splits.values():
        top = max(ds.records, key=lambda r: r.label)
        if top.label >= num_classes:
            raise AnnotationError(
                top.source,
                top.line,
                f"label {top.label}, but {classes_file} lists {num_classes} classes (0..{num_classes - 1})",
            )


def _warn_on_uneven_classes(splits: dict, num_classes: int) -> None:
    """Splits with labels of different numbers of classes are accepted (a small split may lack a class), but said."""
    present = {s: sorted(set(ds.labels)) for s, ds in splits.items()}
    if len({len(v) for v in present.values()}) > 1:
        counts = ", ".join(f"data.{s} {len(v)}" for s, v in present.items())
        missing = {s: sorted(set(range(num_classes)) - set(v)) for s, v in present.items()}
        first = next(s for s, v in missing.items() if v)
        warnings.warn(
            f"the splits have labels of different numbers of classes ({counts}; data.{first} has none of class "
            f"{', '.join(map(str, missing[first][:5]))}{', ...' if len(missing[first]) > 5 else ''}): "
            "accuracies per class cover only the classes a split has",
            HarnessWarning,
            stacklevel=3,
        )


def split_manifest(dataset, path: str, *, skipped: int, classes_listed: int | None) -> dict:
    """One split's entry of the dataset manifest (final.json / eval json ``manifest``): the list file and
    its full SHA-256, its listed videos (``rows``), how many were read and found unreadable, and its class
    count (the classes file's entries when there is one, else the list's labels up to the largest). A list
    file that can no longer be read (moved while the run trained) gets sha256 None: the run's result stands."""
    try:
        sha256 = file_sha256(path)
    except OSError:
        sha256 = None
    return {
        "list": str(path),
        "sha256": sha256,
        "rows": len(dataset),
        "readable": len(dataset) - skipped,
        "skipped": skipped,
        "num_classes": classes_listed if classes_listed is not None else max(dataset.labels) + 1,
    }


def dataset_manifest(data: RunData, dcfg: DataConfig, test: dict | None, unreadable: dict[str, set[int]]) -> dict:
    """The manifest of a training run's splits (those present). train / val: ``skipped`` counts the distinct
    videos found unreadable during the run (``unreadable``, kept in checkpoints across resumes), ``readable``
    the others; test: exactly the test's counts."""
    out = {}
    for split in ("train", "val", "test"):
        dataset = getattr(data, split)
        if dataset is None:
            continue
        bad = test["num_skipped"] if split == "test" and test is not None else len(unreadable.get(split, ()))
        out[split] = split_manifest(dataset, getattr(dcfg, split), skipped=bad, classes_listed=data.classes_listed)
    return out
