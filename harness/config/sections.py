"""The run config's sections: the frozen, validated dataclasses (DataConfig, TrainConfig, EvalConfig,
ProfileConfig), the valid range of every numeric field (:data:`FIELD_RANGES`), the model section's field help,
and the catalogue of settable fields (:func:`section_fields`, :func:`all_keys`). See :mod:`harness.config`.
"""

from __future__ import annotations

import math
import os
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from harness.data.backends import VIDEO_BACKENDS
from harness.errors import ConfigError

TASKS = ("train", "profile")
AMP_MODES = ("auto", "none", "bf16", "fp16")
LOG_SINKS = ("tensorboard", "wandb")
"""Metric sinks of ``train.log_to`` (optional packages: ``pip install 'dsa-harness[tensorboard,wandb]'``)."""
SECTIONS_BY_TASK = {"train": ("model", "data", "train", "eval"), "profile": ("model", "profile")}
SECTIONS = ("model", "data", "train", "eval", "profile")
RUN_KEYS = ("task", "seed", *SECTIONS)


SEED_MAX = 2**32 - 1
"""Largest ``seed`` (numpy's legacy seed range; torch and numpy's SeedSequence take it as is)."""
INT_LIMIT = 2**63
"""Every integer field is below it (torch's int64): a larger one is refused, never an overflow in training."""

FIELD_RANGES: dict[str, tuple[float, float | None, bool, bool]] = {
    # dotted field (a tuple field: each element): (low, high or None, low open, high open). Every int and float
    # field of every section is listed (tests/test_faults.py walks the dataclasses and refuses a new numeric
    # field without a range here, then tries nan, inf, -inf and a value beyond each end): from_dict refuses a
    # value outside in one line naming the field and this range, before the section's own checks.
    "seed": (0, SEED_MAX, False, False),
    "model.depth": (18, 101, False, False),
    **{f"model.{k}": (1, None, False, False) for k in ("width", "num_classes", "num_snippets", "num_frames")},
    **{f"model.{k}": (1, None, False, False) for k in ("alpha", "kernel_size", "shift_div")},
    "model.split_ratio": (0, 1, True, False),
    "model.dropout": (0, 1, False, True),
    **{
        f"data.{k}": (1, None, False, False)
        for k in ("frame_interval", "size", "resize", "decode_threads", "clips_per_decode")
    },
    "data.crop_area": (0, 1, True, False),
    "data.scales": (0, 1, True, False),
    "data.num_workers": (0, None, False, False),
    **{f"train.{k}": (1, None, False, False) for k in ("epochs", "batch_size", "base_batch", "grad_accum")},
    "train.base_lr": (0, None, True, False),
    "train.momentum": (0, 1, False, True),
    "train.weight_decay": (0, None, False, False),
    "train.clip_grad_norm": (0, None, True, False),
    "train.milestones": (1, None, False, False),
    "train.gamma": (0, 1, True, False),
    "train.warmup_epochs": (0, None, False, False),
    "train.warmup_start_factor": (0, 1, False, False),
    **{f"train.{k}": (0, None, False, False) for k in ("checkpoint_every_steps", "eval_every", "log_every_steps")},
    **{f"train.{k}": (1, None, False, False) for k in ("threads", "max_steps_per_epoch")},
    **{f"eval.{k}": (1, None, False, False) for k in ("test_groups", "batch_size")},
    "eval.crops": (1, 3, False, False),
    **{f"eval.{k}": (16, None, False, False) for k in ("size", "resize")},
    "profile.size": (16, None, False, False),
    **{f"profile.{k}": (1, None, False, False) for k in ("batch", "views", "rounds", "train_rounds", "threads")},
}


def range_text(rng: tuple[float, float | None, bool, bool], integer: bool) -> str:
    """``an integer >= 1``, ``a finite number in (0, 1]``: the valid values of a :data:`FIELD_RANGES` entry."""
    lo, hi, lo_open, hi_open = rng
    kind = "an integer" if integer else "a finite number"
    if hi is None:
        return f"{kind} {'>' if lo_open else '>='} {lo}"
    return f"{kind} in {'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}"


def _check_number(key: str, value: Any, shown: Any, integer: bool) -> None:
    """Refuse a non-finite number, an integer beyond :data:`INT_LIMIT` and a value outside the field's
    :data:`FIELD_RANGES` entry (``key`` may carry an element index: ``data.scales[1]``)."""
    rng = FIELD_RANGES.get(key.split("[", 1)[0])
    allowed = range_text(rng, integer) if rng else ("an integer" if integer else "a finite number")
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{key}={shown!r} is invalid: must be {allowed}")
    if rng:
        lo, hi, lo_open, hi_open = rng
        below = value <= lo if lo_open else value < lo
        above = hi is not None and (value >= hi if hi_open else value > hi)
        if below or above:
            raise ConfigError(f"{key}={shown!r} is invalid: must be {allowed}")
    if integer and abs(value) >= INT_LIMIT:
        raise ConfigError(f"{key}={shown!r} is invalid: must be {allowed} (and below 2**63)")


def _check(cond: bool, name: str, value: Any, allowed: str) -> None:
    if not cond:
        raise ConfigError(f"{name}={value!r} is invalid: {allowed}")


def _help(text: str, **kw: Any) -> Any:
    return field(metadata={"help": text}, **kw)


# ---------------------------------------------------------------------------------------------
# sections
@dataclass(frozen=True)
class DataConfig:
    """Where the videos are and how they are read. Paths are annotation files (see harness.data)."""

    name: str | None = _help("dataset name, part of the run id (tells datasets with equal lists apart)", default=None)
    train: str | None = _help("training annotation file", default=None)
    val: str | None = _help("validation annotation file (one view, every train.eval_every epochs)", default=None)
    test: str | None = _help("test annotation file (multi-view, at the end)", default=None)
    root: str | None = _help(
        "folder the annotation paths are relative to (None: the annotation's folder)", default=None
    )
    format: str = _help("annotation layout: video | frames | kinetics_csv", default="video")
    classes: str | None = _help("class-index file (kinetics_csv)", default=None)
    frame_template: str = _help("raw-frame file name (format frames)", default="img_{:05d}.jpg")
    frame_interval: int = _help("source frames between sampled frames inside a snippet", default=8)
    size: int = _help("crop size in pixels (train and test)", default=224)
    resize: int | None = _help("short side before evaluation crops (None: round(size * 256 / 224))", default=None)
    flip: bool = _help("horizontal flip in training (off for direction-sensitive labels)", default=True)
    crop: str = _help("training crop: random_resized (spec) | multiscale (TSN)", default="random_resized")
    crop_area: tuple[float, float] = _help("random_resized: range of the crop's area fraction", default=(0.08, 1.0))
    scales: tuple[float, ...] = _help(
        "multiscale: crop sides as fractions of the short side", default=(1.0, 0.875, 0.75, 0.66)
    )
    num_workers: int | str | None = _help(
        "loader worker processes per training process, for training and evaluation "
        "(null or auto: min(8, CPUs available to the process - 1), resolved where the run runs)",
        default=None,
    )
    decode_threads: int = _help("decoder threads per video", default=1)
    cache_decoded: bool = _help("decode each video once per process and sample from memory (small sets)", default=False)
    clips_per_decode: int = _help(
        "training samples drawn from one decode of a video, each with its own snippet offsets and augmentation "
        "(repeated sampling); an epoch still reads every training video once, so it holds k times the samples "
        "and optimiser steps (divide train.epochs by k to keep the samples seen); train.batch_size counts "
        "samples and must be a multiple of k",
        default=1,
    )
    on_error: str = _help("unreadable video: raise | skip (counted and listed)", default="raise")
    video_backend: str = _help(
        "video decoder: auto (torchcodec where it loads, else decord; PyAV for a file that one cannot read) | "
        "decord | pyav | torchcodec | torchcodec-cuda (same frames; see harness/data/backends.py)",
        default="auto",
    )

    def __post_init__(self) -> None:
        _check(
            self.format in ("video", "frames", "kinetics_csv"),
            "data.format",
            self.format,
            "allowed: video, frames, kinetics_csv",
        )
        _check(self.on_error in ("raise", "skip"), "data.on_error", self.on_error, "allowed: raise, skip")
        _check(
            self.video_backend in VIDEO_BACKENDS,
            "data.video_backend",
            self.video_backend,
            f"allowed: {', '.join(VIDEO_BACKENDS)}",
        )
        _check(
            self.crop in ("random_resized", "multiscale"), "data.crop", self.crop, "allowed: random_resized, multiscale"
        )
        _check(
            len(self.crop_area) == 2 and 0 < self.crop_area[0] <= self.crop_area[1] <= 1,
            "data.crop_area",
            self.crop_area,
            "need 0 < min <= max <= 1",
        )
        _check(
            len(self.scales) >= 1 and all(0 < s <= 1 for s in self.scales),
            "data.scales",
            self.scales,
            "need one or more fractions in (0, 1]",
        )
        for name in ("frame_interval", "size", "decode_threads", "clips_per_decode"):
            _check(getattr(self, name) >= 1, f"data.{name}", getattr(self, name), "must be an integer >= 1")
        if self.resize is None:
            object.__setattr__(self, "resize", round(self.size * 256 / 224))
        _check(self.resize >= self.size, "data.resize", self.resize, f"must be >= data.size ({self.size})")
        if self.num_workers == "auto":
            object.__setattr__(self, "num_workers", None)
        _check(
            self.num_workers is None
            or (isinstance(self.num_workers, int) and not isinstance(self.num_workers, bool) and self.num_workers >= 0),
            "data.num_workers",
            self.num_workers,
            "must be an integer >= 0, or auto / null",
        )

    @property
    def annotation(self) -> str | None:
        """The first annotation file given (train, val, test): where classes.json is looked for."""
        return next((p for p in (self.train, self.val, self.test) if p), None)


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation recipe (defaults: the paper's Kinetics-400 recipe, spec section 5)."""

    epochs: int = _help("training epochs", default=100)
    batch_size: int = _help("videos per process per step", default=12)
    base_lr: float = _help("learning rate for base_batch videos, scaled linearly with the global batch", default=0.015)
    base_batch: int = _help("global batch at which the learning rate is base_lr", default=12)
    momentum: float = _help("SGD momentum", default=0.9)
    nesterov: bool = _help("Nesterov momentum", default=True)
    weight_decay: float = _help("weight decay on conv/linear weights (not BN, not biases)", default=1e-4)
    clip_grad_norm: float | None = _help("max gradient norm (None: no clipping)", default=40.0)
    schedule: str = _help("learning-rate schedule after warm-up: step | cosine", default="step")
    milestones: tuple[int, ...] = _help(
        "step schedule: epochs at which the lr is multiplied by gamma", default=(50, 75, 90)
    )
    gamma: float = _help("step schedule: lr factor at each milestone", default=0.1)
    warmup_epochs: float = _help("linear warm-up length in epochs", default=10.0)
    warmup_start_factor: float = _help("lr factor at the start of the warm-up", default=0.01)
    amp: str = _help(
        "mixed precision: auto (CUDA: bf16 where supported, else fp16 with loss scaling; CPU: none) | none | "
        "bf16 | fp16 (CUDA only; on CPU: none); what a run used is train.amp_used in final.json",
        default="auto",
    )
    grad_accum: int = _help("micro-batches accumulated per optimiser step", default=1)
    checkpoint_every_steps: int = _help("steps between mid-epoch checkpoints (0: at epoch ends only)", default=0)
    eval_every: int = _help("epochs between validations (0: never; the last epoch always)", default=1)
    device: str = _help("auto | cpu | cuda", default="auto")
    threads: int | None = _help("intra-op CPU threads (None: torch's default)", default=None)
    deterministic: bool | str = _help(
        "deterministic algorithms, cudnn.benchmark off: auto (CPU: true, the exact-resume setting; CUDA: false, "
        "cudnn.benchmark on) | true | false; what a run used is train.deterministic_used in final.json",
        default="auto",
    )
    activation_checkpointing: str | tuple[str, ...] = _help(
        "stages whose activations are recomputed in the backward pass instead of kept (less memory, about one "
        "more forward of them): none | all | a list of res2, res3, res4, res5 (same results)",
        default=(),
    )
    channels_last: bool = _help(
        "channels_last memory format for model and inputs (I3D: channels_last_3d)", default=False
    )
    compile: bool = _help("torch.compile the model for training (evaluation runs it eagerly)", default=False)
    max_steps_per_epoch: int | None = _help("cap on steps per epoch (smoke runs)", default=None)
    log_every_steps: int = _help(
        "steps between progress lines (loss, lr, clips/s, data / compute time, peak memory, ETA) in log.txt "
        "(0: four per epoch); each reads the loss back (on a GPU, a host sync)",
        default=0,
    )
    stop_on_nonfinite: bool = _help(
        "a training loss that turns NaN or inf ends the run as diverged (final.json status diverged, naming the "
        "epoch and step; no test); false: train on and test as before, the record still says diverged",
        default=True,
    )
    log_to: str | tuple[str, ...] = _help(
        "metric sinks besides log.txt and metrics.jsonl, written by rank 0 under the run folder: none | "
        "tensorboard (tb/) | wandb (wandb/, offline unless WANDB_MODE is set) | a list of both",
        default=(),
    )

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "base_batch", "grad_accum"):
            _check(getattr(self, name) >= 1, f"train.{name}", getattr(self, name), "must be an integer >= 1")
        _check(self.base_lr > 0, "train.base_lr", self.base_lr, "must be > 0")
        _check(0 <= self.momentum < 1, "train.momentum", self.momentum, "must be in [0, 1)")
        _check(self.weight_decay >= 0, "train.weight_decay", self.weight_decay, "must be >= 0")
        _check(
            self.clip_grad_norm is None or self.clip_grad_norm > 0,
            "train.clip_grad_norm",
            self.clip_grad_norm,
            "must be > 0, or null for no clipping",
        )
        _check(self.schedule in ("step", "cosine"), "train.schedule", self.schedule, "allowed: step, cosine")
        _check(
            list(self.milestones) == sorted(self.milestones) and all(m >= 1 for m in self.milestones),
            "train.milestones",
            self.milestones,
            "must be increasing epochs >= 1",
        )
        _check(0 < self.gamma <= 1, "train.gamma", self.gamma, "must be in (0, 1]")
        _check(self.warmup_epochs >= 0, "train.warmup_epochs", self.warmup_epochs, "must be >= 0")
        _check(
            0 <= self.warmup_start_factor <= 1,
            "train.warmup_start_factor",
            self.warmup_start_factor,
            "must be in [0, 1]",
        )
        _check(self.amp in AMP_MODES, "train.amp", self.amp, "allowed: " + ", ".join(AMP_MODES))
        _check(
            self.deterministic is True or self.deterministic is False or self.deterministic == "auto",
            "train.deterministic",
            self.deterministic,
            "allowed: auto, true, false",
        )
        object.__setattr__(
            self, "activation_checkpointing", _stages("train.activation_checkpointing", self.activation_checkpointing)
        )
        _check(
            self.checkpoint_every_steps >= 0,
            "train.checkpoint_every_steps",
            self.checkpoint_every_steps,
            "must be >= 0",
        )
        _check(self.eval_every >= 0, "train.eval_every", self.eval_every, "must be >= 0")
        _check(self.device in ("auto", "cpu", "cuda"), "train.device", self.device, "allowed: auto, cpu, cuda")
        _check(self.threads is None or self.threads >= 1, "train.threads", self.threads, "must be >= 1 or null")
        _check(
            self.max_steps_per_epoch is None or self.max_steps_per_epoch >= 1,
            "train.max_steps_per_epoch",
            self.max_steps_per_epoch,
            "must be >= 1 or null",
        )
        _check(self.log_every_steps >= 0, "train.log_every_steps", self.log_every_steps, "must be >= 0")
        sinks = self.log_to.split(",") if isinstance(self.log_to, str) else self.log_to
        sinks = [] if self.log_to in (None, "none") else sinks
        _check(
            isinstance(sinks, (list, tuple)) and all(isinstance(v, str) and v.strip() in LOG_SINKS for v in sinks),
            "train.log_to",
            self.log_to,
            "none, or a list of " + ", ".join(LOG_SINKS),
        )
        object.__setattr__(self, "log_to", tuple(k for k in LOG_SINKS if k in [v.strip() for v in sinks]))

    def lr_for(self, global_batch: int) -> float:
        """Linear scaling rule: base_lr * global_batch / base_batch."""
        return self.base_lr * global_batch / self.base_batch


@dataclass(frozen=True)
class EvalConfig:
    """Multi-view testing: ``test_groups`` interleaved groups of U snippets x ``crops`` spatial crops."""

    test_groups: int = _help("interleaved groups of U snippets per test video", default=2)
    crops: int = _help("spatial crops per test view: 1 (centre) | 3 (three-crop)", default=3)
    batch_size: int = _help("videos per evaluation batch", default=4)
    size: int | None = _help("test crop size in pixels (None: data.size; the paper: 256)", default=None)
    resize: int | None = _help(
        "short side before the test crops (None: data.resize, or eval.size when larger)", default=None
    )
    save_scores: bool = _help(
        "also store every test video's full view-averaged score vector (float16) in its predictions file",
        default=False,
    )

    def __post_init__(self) -> None:
        _check(self.test_groups >= 1, "eval.test_groups", self.test_groups, "must be >= 1")
        _check(self.crops in (1, 3), "eval.crops", self.crops, "allowed: 1 (centre), 3 (three-crop)")
        _check(self.batch_size >= 1, "eval.batch_size", self.batch_size, "must be >= 1")
        _check(self.size is None or self.size >= 16, "eval.size", self.size, "must be >= 16 or null")
        _check(self.resize is None or self.resize >= 16, "eval.resize", self.resize, "must be >= 16 or null")

    @property
    def views(self) -> int:
        return self.test_groups * self.crops

    def test_crop(self, data: DataConfig) -> tuple[int, int]:
        """(crop size, resize) of the test views: ``eval.size`` / ``eval.resize``, None meaning the
        training ones (``data.size``; ``data.resize``, raised to the test size when smaller). Validation
        crops always use ``data.size`` / ``data.resize``. Raises ConfigError when resize < size."""
        size = self.size if self.size is not None else data.size
        resize = self.resize if self.resize is not None else max(data.resize, size)
        _check(resize >= size, "eval.resize", resize, f"must be >= the test crop size ({size})")
        return size, resize


@dataclass(frozen=True)
class ProfileConfig:
    """What ``task: profile`` measures: FLOPs/params at ``size``; on ``device`` at ``batch`` videos per step,
    forward latency and (``train``) training-step time, each timed in interleaved rounds beside its
    ``baseline``, and peak memory (``harness.measure.profile.profile_variants``)."""

    size: int = _help("input crop size in pixels", default=224)
    batch: int = _help("videos per timed step (each U snippets x T frames)", default=1)
    views: int = _help("views per video (GFLOPs/video = GFLOPs/view x views)", default=1)
    device: str = _help("cpu | cuda | cuda:N (timed on device N)", default="cpu")
    latency: bool = _help("time forward passes (False and train False: FLOPs and params only)", default=True)
    rounds: int = _help("interleaved timing rounds (each times the model and its baseline once)", default=10)
    baseline: str = _help(
        "model timed beside it for the ratio: auto (its backbone, aggregator avg) | none | a variant", default="auto"
    )
    train: bool = _help("also time full training steps (forward, backward, SGD step)", default=False)
    train_rounds: int | None = _help("interleaved rounds of training steps (None: rounds)", default=None)
    memory: bool = _help(
        "with the timings, measure the peak memory of a forward pass (and of a training step)", default=True
    )
    dtype: str = _help("fp32 | bf16 | fp16 (autocast)", default="fp32")
    tf32: bool | None = _help("TF32 matmul/cuDNN on or off (None: torch's defaults)", default=None)
    cudnn_benchmark: bool = _help("torch.backends.cudnn.benchmark while timing", default=False)
    threads: int | None = _help("intra-op CPU threads while timing (None: torch's default)", default=None)
    channels_last: bool = _help("time in channels_last memory format", default=False)
    compile_mode: str = _help(
        "none | default | reduce-overhead (CUDA graphs) | max-autotune: torch.compile mode", default="none"
    )

    def __post_init__(self) -> None:
        for name in ("size", "batch", "views", "rounds"):
            _check(getattr(self, name) >= 1, f"profile.{name}", getattr(self, name), "must be an integer >= 1")
        _check(self.size >= 16, "profile.size", self.size, "must be >= 16")
        _check(
            self.device in ("cpu", "cuda") or (self.device.startswith("cuda:") and self.device[5:].isdigit()),
            "profile.device",
            self.device,
            "allowed: cpu, cuda, cuda:N",
        )
        _check(self.threads is None or self.threads >= 1, "profile.threads", self.threads, "must be >= 1 or null")
        _check(
            self.train_rounds is None or self.train_rounds >= 1,
            "profile.train_rounds",
            self.train_rounds,
            "must be >= 1 or null",
        )
        _check(self.dtype in ("fp32", "bf16", "fp16"), "profile.dtype", self.dtype, "allowed: fp32, bf16, fp16")
        modes = ("none", "default", "reduce-overhead", "max-autotune")
        _check(self.compile_mode in modes, "profile.compile_mode", self.compile_mode, f"allowed: {', '.join(modes)}")
        if self.baseline not in ("auto", "none"):
            from harness.models.registry import list_variants

            _check(
                self.baseline in list_variants(),
                "profile.baseline",
                self.baseline,
                "allowed: auto, none or a registered variant (`dsa-harness list`)",
            )


def _stages(name: str, value: Any) -> tuple[str, ...]:
    """Stage names (res2..res5) in network order from none | all | "res3,res4" | a list."""
    from harness.models.config import STAGE_NAMES

    if value in (None, "none"):
        return ()
    if value == "all":
        return STAGE_NAMES
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not all(isinstance(v, str) for v in items):
        raise ConfigError(f"{name}={value!r} is invalid: none, all, or a list of {', '.join(STAGE_NAMES)}")
    items = [v.strip() for v in items]
    unknown = [v for v in items if v not in STAGE_NAMES]
    _check(
        not unknown, name, value, f"unknown stage {unknown[0] if unknown else ''!r}; stages: {', '.join(STAGE_NAMES)}"
    )
    return tuple(s for s in STAGE_NAMES if s in items)


SECTION_TYPES = {"data": DataConfig, "train": TrainConfig, "eval": EvalConfig, "profile": ProfileConfig}

MODEL_HELP = {
    "variant": "registered variant (`dsa-harness list`); its defaults, then these overrides",
    "flavour": "tsn | tsm | i3d",
    "depth": "ResNet depth: 18 | 34 | 50 | 101",
    "width": "stem channels (64: the standard ResNet)",
    "num_classes": "classifier outputs (train: from the data)",
    "num_snippets": "U, snippets per clip",
    "num_frames": "T, frames per snippet",
    "aggregator": "dsa | avg | static_conv | nonlocal",
    "position": "res | res_2 | res_3 | res_4 | bottom",
    "stage_masks": "blocks with an aggregator: paper | none | all | 'res3:0101,res4:all'",
    "split_ratio": "fraction of channels through the aggregator",
    "alpha": "DSA kernel-generator reduction",
    "kernel_size": "K, taps across snippets (odd)",
    "with_identity": "DSA adds an identity path",
    "shift_div": "TSM: 1/shift_div of the channels shifted each way",
    "dropout": "before the classifier",
    "pretrained": "starting weights (path): ImageNet (`dsa-harness weights imagenet`) or a checkpoint",
}


def stage_masks_text(masks: tuple[tuple[int, ...], ...]) -> str:
    """Canonical text of normalised stage masks: ``res3:01,res4:all`` (stages without a block left out,
    ``all`` for a full stage), ``none`` when no block has one. ``normalize_stage_masks`` reads it back."""
    from harness.models.config import STAGE_NAMES

    parts = [f"{name}:{'all' if all(m) else ''.join(map(str, m))}" for name, m in zip(STAGE_NAMES, masks) if any(m)]
    return ",".join(parts) or "none"


def model_dict(model) -> dict:
    """A ModelConfig as the run config writes it: ``variant`` first, every field, masks as canonical text."""
    d = {"variant": model.name, **{k: v for k, v in asdict(model).items() if k != "name"}}
    d["stage_masks"] = stage_masks_text(model.stage_masks)
    return d


def _classes_json(data: DataConfig) -> str | None:
    ref = data.annotation
    return str(Path(ref).parent / "classes.json") if ref else None


def count_classes(data: DataConfig) -> int:
    """Classes of a dataset as training sees them: the length of a ``classes.json`` beside the first
    annotation file when there is one (a label beyond it is refused naming file and line), else the largest
    label + 1 over the splits given. Raises ConfigError when an annotation file is missing (then set
    model.num_classes); a malformed line raises the data's AnnotationError (file:line)."""
    from harness.data.annotations import read_annotations

    top = None  # the record with the largest label
    for path in (data.train, data.val, data.test):
        if not path:
            continue
        try:
            recs = read_annotations(
                path, data.format, None, class_index=data.classes if data.format == "kinetics_csv" else None
            )
        except FileNotFoundError as e:
            raise ConfigError(
                f"model.num_classes: not given and cannot be counted from {path} ({e}); set model.num_classes"
            ) from None
        best = max(recs, key=lambda r: r.label)
        top = best if top is None or best.label > top.label else top
    if top is None:
        raise ConfigError("model.num_classes: not given and no annotation file to count it from")
    cj = _classes_json(data)
    if not (cj and os.path.isfile(cj)):
        return top.label + 1
    from harness.data.annotations import read_classes_json

    n = len(read_classes_json(cj)[0])  # the one reader: AnnotationError naming the file and entry
    if top.label >= n:
        raise ConfigError(f"{top.source}:{top.line}: label {top.label}, but {cj} lists {n} classes (0..{n - 1})")
    return n


def _plain(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


def section_fields(section: str) -> dict[str, tuple[Any, str, str]]:
    """``{field: (default, type, help)}`` of one section (the model's: of ModelConfig, defaults of the
    class, which a variant overrides)."""
    if section == "model":
        from harness.models.config import ModelConfig

        out = {"variant": (None, "str", MODEL_HELP["variant"])}
        for f in fields(ModelConfig):
            if f.name != "name":
                out[f.name] = (f.default, str(f.type), MODEL_HELP.get(f.name, ""))
        return out
    cls = SECTION_TYPES[section]
    return {
        f.name: (
            f.default if f.default is not MISSING else f.default_factory(),
            str(f.type),
            f.metadata.get("help", ""),
        )
        for f in fields(cls)
    }


def all_keys() -> list[str]:
    """Every settable dotted key (``seed`` and ``section.field``)."""
    return ["seed"] + [f"{s}.{k}" for s in SECTIONS for k in section_fields(s)]
