"""The run configuration: one typed, frozen, validated config from grid and CLI to config.json and run id.

A run is described by :class:`RunConfig`, with sections::

    task      "train" | "profile"
    seed      int
    model     ModelConfig (harness.models): the variant's registered defaults + overrides
    data      DataConfig   (train runs)
    train     TrainConfig  (train runs)
    eval      EvalConfig   (train runs)
    profile   ProfileConfig (profile runs)

Everything enters through :meth:`RunConfig.from_dict` (a nested dict: a grid's run, a recipe file
merged with ``--set section.key=value`` overrides, a config.json): unknown keys are refused naming
the dotted key and the closest valid one, values are type-checked and normalised (``1`` and ``1.0``
for a float field, ``stage_masks: paper`` and the explicit masks of the paper placement are one value).
:meth:`RunConfig.to_dict` is the fully resolved canonical form written to config.json: every field
present, defaults filled in, only the sections the task uses.

**Run identity.** ``run_id`` = first 12 hex digits of the SHA-256 of the canonical JSON of
:meth:`RunConfig.identity`: the resolved config without the fields that cannot change a result
(:data:`NOT_IDENTITY`: worker counts, decode threads, the in-memory cache, CPU threads, checkpoint
spacing, the dataset root) and with every input *file* (annotation lists, class index, pretrained
weights: :data:`INPUT_FILES`) replaced by a hash of its contents, and the videos each list names by
a cheap fingerprint of theirs (:func:`videos_fingerprint`: size + the first 4 KiB of every video, paths
relative to the root). So one run spelled four ways has one id; a changed default changes it; moving a
dataset keeps it; editing a split changes it; equal lists over other (damaged, re-encoded) videos differ;
and a declared ``data.name`` tells two datasets with equal lists and videos apart. Resources and launcher
options are never part of it. ``IDENTITY_VERSION`` is hashed too: run folders made under an earlier scheme
(whose config.json has no or an older ``identity_version``: 1 hashed the unresolved config, 2 the lists
without their videos) are recognised as such, never silently reused.

A file that cannot be read is fingerprinted by its path (``path:...``) and the id is *provisional*
(:attr:`RunConfig.provisional`): ``sweep show --no-check-data`` prints such ids, submitting refuses.

This module imports neither torch nor decord: expanding a 200-run grid takes milliseconds.
"""

from __future__ import annotations

import contextlib
import copy
import difflib
import hashlib
import json
import math
import os
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from harness.errors import ConfigError, MissingFileError

IDENTITY_VERSION = 3
"""Bumped whenever the identity rule changes; part of every hash (see the module docstring)."""
TASKS = ("train", "profile")
AMP_MODES = ("auto", "none", "bf16", "fp16")
LOG_SINKS = ("tensorboard", "wandb")
"""Metric sinks of ``train.log_to`` (optional packages: ``pip install 'dsa-harness[tensorboard,wandb]'``)."""
SECTIONS_BY_TASK = {"train": ("model", "data", "train", "eval"), "profile": ("model", "profile")}
SECTIONS = ("model", "data", "train", "eval", "profile")
RUN_KEYS = ("task", "seed", *SECTIONS)
CARRIED_KEYS = ("run_id", "grid", "resources", "identity_version", "inputs", "model_resolved")
"""Keys a config.json may hold besides the run's own sections: written by the launcher (run_id, grid,
resources), by this module (identity_version, inputs) or by earlier versions (model_resolved); not config."""

INPUT_FILES = ("model.pretrained", "data.train", "data.val", "data.test", "data.classes")
"""Fields naming input files: hashed by content into the identity (``inputs``), never by path."""
NOT_IDENTITY = (
    "data.root",
    "data.num_workers",
    "data.decode_threads",
    "data.cache_decoded",
    "data.video_backend",
    "train.threads",
    "train.checkpoint_every_steps",
    "train.log_every_steps",
    "train.log_to",
    "eval.save_scores",
)
"""Fields that cannot change a result (same samples, same steps; tested) and stay out of the run id.
``eval.save_scores`` changes what is stored (the full score vectors in predictions.parquet), not the result."""


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
    **{f"data.{k}": (1, None, False, False) for k in ("frame_interval", "size", "resize", "decode_threads")},
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
    on_error: str = _help("unreadable video: raise | skip (counted and listed)", default="raise")
    video_backend: str = _help(
        "video decoder: auto (decord; PyAV for a file decord cannot read) | decord | pyav", default="auto"
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
            self.video_backend in ("auto", "decord", "pyav"),
            "data.video_backend",
            self.video_backend,
            "allowed: auto, decord, pyav",
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
        for name in ("frame_interval", "size", "decode_threads"):
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


# ---------------------------------------------------------------------------------------------
# values
def _closest(name: str, options: list[str]) -> str:
    close = difflib.get_close_matches(name, options, n=1, cutoff=0.5)
    return f"; did you mean {close[0]!r}?" if close else f"; valid: {', '.join(options)}"


def _coerce(key: str, annotation: str, value: Any) -> Any:
    """Check ``value`` against a field's type (annotations are strings here) and normalise it:
    ints given to float fields become floats, lists become tuples."""
    optional = annotation.endswith("| None")
    base = annotation.removesuffix("| None").strip()
    if value is None:
        if optional:
            return None
        raise ConfigError(f"{key}: null is not allowed (type {base})")
    bad = ConfigError(f"{key}={value!r} is invalid: expected {annotation}")
    if base == "bool":
        if not isinstance(value, bool):
            raise bad
        return value
    if base == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            if not (isinstance(value, float) and value.is_integer()):  # nan, inf and 2.5 too
                if isinstance(value, float) and not math.isfinite(value):
                    _check_number(key, value, value, integer=True)
                raise bad
            _check_number(key, int(value), value, integer=True)
            return int(value)
        _check_number(key, value, value, integer=True)
        return value
    if base == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad
        _check_number(key, float(value), float(value), integer=False)
        return float(value)
    if base == "str":
        if not isinstance(value, str):
            raise bad
        return value
    if base.startswith("tuple["):
        inner = base[6:-1].split(",")[0].strip()
        if not isinstance(value, (list, tuple)):
            raise bad
        return tuple(_coerce(f"{key}[{i}]", inner, v) for i, v in enumerate(value))
    if isinstance(value, (int, float)) and not isinstance(value, bool):  # a number in a union: data.num_workers
        if not math.isfinite(value) or abs(value) >= INT_LIMIT:  # (its range: the section's own check)
            raise ConfigError(f"{key}={value!r} is invalid: must be a finite number below 2**63")
    return value  # free-form (model.stage_masks): the model validates it


def _build_section(cls, section: str, values: Any):
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise ConfigError(f"{section}: must be a mapping of options, got {type(values).__name__}")
    known = {f.name: f for f in fields(cls)}
    kwargs = {}
    for k, v in values.items():
        if k not in known:
            raise ConfigError(f"unknown option {section}.{k}" + _closest(k, sorted(known)))
        kwargs[k] = _coerce(f"{section}.{k}", str(known[k].type), v)
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{section}: {e}") from None


def _resolve_model(values: Any):
    from harness.models.config import ModelConfig
    from harness.models.registry import resolve_config

    if not isinstance(values, dict):
        raise ConfigError(f"model: must be a mapping (variant, overrides), got {type(values).__name__}")
    values = dict(values)
    variant = values.pop("variant", None)
    if not variant or not isinstance(variant, str):
        raise ConfigError("model.variant is required (see `dsa-harness list`)")
    known = {f.name: f for f in fields(ModelConfig) if f.name != "name"}
    overrides = {}
    for k, v in values.items():
        if k not in known:
            raise ConfigError(f"unknown option model.{k}" + _closest(k, sorted(known)))
        overrides[k] = _coerce(f"model.{k}", str(known[k].type), v)
    try:
        return resolve_config(variant, **overrides)
    except (TypeError, ValueError) as e:  # ModelConfig's ConfigErrors too: their field gets the model. prefix
        msg = str(e)
        head = msg.split("=", 1)[0]
        if type(e).__name__ == "UnknownVariantError":
            msg = f"model.variant: {msg}"
        elif head in known:
            msg = f"model.{msg}"
        elif not msg.startswith("model."):
            msg = f"model: {msg}"
        raise ConfigError(msg) from None


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


# ---------------------------------------------------------------------------------------------
# input files
_HASHES: dict[tuple, str] = {}


def file_fingerprint(path: str | None) -> str | None:
    """``sha256:<16 hex>`` of a file's bytes (cached per process by path, size and mtime), or
    ``path:<path>`` when it cannot be read (the identity is then provisional); None for no file."""
    if not path:
        return None
    try:
        st = os.stat(path)
        key = (os.path.abspath(path), st.st_size, st.st_mtime_ns)
        if key not in _HASHES:
            h = hashlib.sha256()
            with open(path, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
            _HASHES[key] = "sha256:" + h.hexdigest()[:16]
        return _HASHES[key]
    except OSError:
        return f"path:{path}"


VIDEO_SAMPLE_BYTES = 4096
"""Bytes read from the start of every listed video for :func:`videos_fingerprint` (with its size)."""
_VIDEO_FPS: dict[tuple, str] = {}
_SCOPE: dict[tuple, str] | None = None


@contextlib.contextmanager
def fingerprint_scope():
    """Within it (nested: the outermost counts), each list's :func:`videos_fingerprint` is computed once: a
    grid's runs, or one command's several identity checks, share their lists' fingerprints. Outside, every call
    looks at the videos again (a video changed in place is seen). Also a decorator (``@fingerprint_scope()``)."""
    global _SCOPE
    outer = _SCOPE
    if outer is None:
        _SCOPE = {}
    try:
        yield
    finally:
        if outer is None:
            _SCOPE = None


def _video_entry(path: str) -> str:
    """``<size>:<sha256 of the first VIDEO_SAMPLE_BYTES, 16 hex>`` of one video (a raw-frame folder: the
    sizes of its first files), ``missing`` when it is not there; cached per process by path, size and mtime."""
    try:
        st = os.stat(path)
    except OSError:
        return "missing"
    key = (path, st.st_size, st.st_mtime_ns)
    if key not in _VIDEO_FPS:
        if os.path.isdir(path):  # raw frames: the folder's file names and sizes, a sample of them
            with os.scandir(path) as it:
                names = sorted(e.name for e in it)
            sample = [f"{n}={os.stat(os.path.join(path, n)).st_size}" for n in names[:2] + names[-2:]]
            _VIDEO_FPS[key] = f"dir{len(names)}:" + ",".join(sample)
        else:
            try:
                with open(path, "rb") as f:
                    head = f.read(VIDEO_SAMPLE_BYTES)
            except OSError:
                return f"{st.st_size}:unreadable"
            _VIDEO_FPS[key] = f"{st.st_size}:{hashlib.sha256(head).hexdigest()[:16]}"
    return _VIDEO_FPS[key]


def videos_fingerprint(data: DataConfig, split: str) -> str | None:
    """``videos:<16 hex>``: a cheap fingerprint of the videos a split's list names, in list order: each
    one's size and a SHA-256 of its first :data:`VIDEO_SAMPLE_BYTES` bytes (``missing`` for an absent one),
    located as training locates them (``data.root``, else the list's folder) but hashed without that root:
    the same dataset at another path or on another machine has the same fingerprint, a copy whose videos
    were truncated, replaced or re-encoded has another. Why not more, or less: a size alone misses a file
    overwritten in place; a full hash reads every byte (terabytes for Kinetics-400), so this reads one 4 KiB
    block per video (the container header, where damage and re-encoding show), one stat + one small read:
    about 240k of each for Kinetics-400, done by 16 threads and once per process (cached by path, size and
    mtime). Bytes past the first block are not seen. None without the list; ``path:<list>`` when the list
    cannot be read (the id is then provisional)."""
    listed = getattr(data, split)
    if not listed:
        return None
    from harness.data.annotations import read_annotations

    root = data.root if data.root else str(Path(listed).resolve().parent)
    try:
        st = os.stat(listed)
    except OSError:
        return f"path:{listed}"
    key = (os.path.abspath(listed), st.st_size, st.st_mtime_ns, os.path.abspath(root), data.format)
    if _SCOPE is not None and key in _SCOPE:
        return _SCOPE[key]
    records = read_annotations(listed, data.format, root)  # a malformed line: AnnotationError naming file:line
    paths = [r.path for r in records]
    from concurrent.futures import ThreadPoolExecutor

    chunks = [paths[i : i + 512] for i in range(0, len(paths), 512)]
    with ThreadPoolExecutor(max_workers=min(16, len(chunks))) as pool:
        entries = [e for chunk in pool.map(lambda c: [_video_entry(p) for p in c], chunks) for e in chunk]
    fingerprint = "videos:" + hashlib.sha256("\n".join(entries).encode()).hexdigest()[:16]
    if _SCOPE is not None:
        _SCOPE[key] = fingerprint
    return fingerprint


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


# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RunConfig:
    """One run, fully resolved. Build with :meth:`from_dict`; see the module docstring."""

    task: str
    seed: int
    model: Any  # harness.models.ModelConfig
    data: DataConfig | None = None
    train: TrainConfig | None = None
    eval: EvalConfig | None = None
    profile: ProfileConfig | None = None

    # construction ------------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, config: Any) -> RunConfig:
        """Validate and resolve a nested config dict (see the module docstring). Raises ConfigError
        naming the dotted key (and the closest valid one for an unknown key)."""
        if not isinstance(config, dict):
            raise ConfigError(f"a run config must be a mapping, got {type(config).__name__}")
        unknown = [k for k in config if k not in RUN_KEYS and k not in CARRIED_KEYS]
        if unknown:
            raise ConfigError(f"unknown key {unknown[0]!r}" + _closest(str(unknown[0]), list(RUN_KEYS)))
        task = config.get("task", "train")
        if task not in TASKS:
            raise ConfigError(f"task={task!r} is invalid: allowed: {', '.join(TASKS)}")
        seed = _coerce("seed", "int", config.get("seed", 0))
        used = SECTIONS_BY_TASK[task]
        for section in SECTIONS:
            if section not in used and config.get(section):
                raise ConfigError(f"{section}: not used by task {task} (sections: {', '.join(used)})")
        sections = {s: _build_section(SECTION_TYPES[s], s, config.get(s)) for s in used if s != "model"}
        model_values = dict(config.get("model") or {})
        model = _resolve_model(model_values)
        if task == "train" and "num_classes" not in model_values:
            model = model.replace(num_classes=count_classes(sections["data"]))
        if task == "train":
            sections["eval"].test_crop(sections["data"])  # resize >= crop size of the test views
        return cls(task=task, seed=seed, model=model, **sections)

    def with_overrides(self, overrides: dict[str, Any]) -> RunConfig:
        """A copy with ``{"section.key": value}`` applied (the ``--set`` rule)."""
        return RunConfig.from_dict(apply_overrides(self.to_dict(), overrides))

    # forms -------------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """The fully resolved canonical form (config.json): every field of the task's sections."""
        out: dict[str, Any] = {"task": self.task, "seed": self.seed, "model": model_dict(self.model)}
        for section in SECTIONS_BY_TASK[self.task]:
            if section != "model":
                out[section] = _plain(asdict(getattr(self, section)))
        return out

    def inputs(self) -> dict[str, str]:
        """Fingerprints of the input files (``{"data.train": "sha256:...", ...}``), absent ones left out."""
        flat = {"model.pretrained": self.model.pretrained}
        if self.data is not None:
            flat.update({f"data.{k}": getattr(self.data, k) for k in ("train", "val", "test", "classes")})
            cj = _classes_json(self.data)
            if cj and os.path.isfile(cj):
                flat["data.classes_json"] = cj
        out = {k: fp for k, p in flat.items() if (fp := file_fingerprint(p)) is not None}
        if self.data is not None:  # the videos the lists name (videos_fingerprint), not only the lists' text
            for split in ("train", "val", "test"):
                if out.get(f"data.{split}", "path:").startswith("sha256:"):
                    out[f"data.{split}.videos"] = videos_fingerprint(self.data, split)
        return out

    def identity(self) -> dict:
        """What the run id hashes: :meth:`to_dict` without paths and :data:`NOT_IDENTITY`, plus
        :meth:`inputs` and :data:`IDENTITY_VERSION`. The test crop (``eval.size``, ``eval.resize``)
        enters by its effective value (:meth:`EvalConfig.test_crop`) and only when it differs from the
        training crop: a run that tests at its training size keeps the id it had before those fields
        existed, however it spells them. ``train.stop_on_nonfinite`` enters only when false (the default,
        true, changes no result of a run whose loss stays finite: such runs keep their ids)."""
        d = self.to_dict()
        for dotted in (*INPUT_FILES, *NOT_IDENTITY):
            section, key = dotted.split(".")
            if section in d:
                d[section].pop(key, None)
        if self.eval is not None:  # the test crop by its effective value; left out when it is the training one
            size, resize = self.eval.test_crop(self.data)
            d["eval"].pop("size", None)
            d["eval"].pop("resize", None)
            if (size, resize) != (self.data.size, self.data.resize):
                d["eval"].update(size=size, resize=resize)
        if self.train is not None and self.train.stop_on_nonfinite:  # the default: runs keep their earlier ids
            d["train"].pop("stop_on_nonfinite", None)
        d["inputs"] = self.inputs()
        d["identity_version"] = IDENTITY_VERSION
        return d

    @property
    def run_id(self) -> str:
        return run_id_of(self.identity())

    @property
    def provisional(self) -> bool:
        """True when an input file could not be read: the id then hashes its path, not its contents."""
        return any(v.startswith("path:") for v in self.inputs().values())

    @fingerprint_scope()
    def record(self, **carried: Any) -> dict:
        """The dict written to config.json: :meth:`to_dict` + ``run_id``, ``identity_version``,
        ``inputs`` and the carried keys given (grid, resources)."""
        return {
            **self.to_dict(),
            "run_id": self.run_id,
            "identity_version": IDENTITY_VERSION,
            "inputs": self.inputs(),
            **carried,
        }


def config_problems(config: dict) -> list[str]:
    """Every problem of a config that :meth:`RunConfig.from_dict` refuses, not just the first: each field
    is tried alone on the task's defaults (with the model variant), so two bad fields give two messages;
    a problem only their combination has is the one message from_dict gives. Empty when it resolves."""
    try:
        RunConfig.from_dict(config)
        return []
    except ConfigError as e:
        first = str(e)
    if not isinstance(config, dict):
        return [first]
    base = {"task": config.get("task", "train"), "model": {"variant": (config.get("model") or {}).get("variant")}}
    if base["task"] == "train":  # fields are tried where the data question (num_classes) does not arise
        base["model"]["num_classes"] = 1
    fields = [
        (section, key, value)
        for section in SECTIONS
        if isinstance(config.get(section), dict)
        for key, value in config[section].items()
        if not (section == "model" and key == "variant")
    ]

    def attempt(items) -> str | None:
        doc = {**base, "model": dict(base["model"])}
        for section, key, value in items:
            doc.setdefault(section, {})[key] = value
        try:
            RunConfig.from_dict(doc)
        except ConfigError as e:
            return str(e)
        except (TypeError, ValueError):
            pass
        return None

    alone = [(f, attempt([f])) for f in fields]
    good = [f for f, message in alone if message is None]
    # a field refused alone is tried again beside the fields that are fine alone (data.resize=32 is valid
    # beside the config's data.size=32, not beside the default 224): only what stays refused is its problem
    found = [message for f, message in alone if message is not None and attempt([*good, f]) is not None]
    return list(dict.fromkeys(found)) or [first]


def _plain(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def run_id_of(identity: dict) -> str:
    """First 12 hex digits of the SHA-256 of the canonical JSON of an identity dict."""
    return hashlib.sha256(canonical_json(identity).encode()).hexdigest()[:12]


def identity_diff(a: dict, b: dict, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two (identity or config) dicts, sorted."""
    out = []
    for k in sorted(set(a) | set(b)):
        va, vb = a.get(k, MISSING), b.get(k, MISSING)
        if isinstance(va, dict) and isinstance(vb, dict):
            out += identity_diff(va, vb, f"{prefix}{k}.")
        elif va != vb:
            out.append(f"{prefix}{k}")
    return out


def describe_diff(old: dict, new: dict, keys: list[str], limit: int = 6) -> str:
    """``key: old -> new`` for the first ``limit`` keys."""

    def get(d: dict, dotted: str) -> Any:
        for p in dotted.split("."):
            d = d.get(p, "<absent>") if isinstance(d, dict) else "<absent>"
        return d

    parts = [f"{k}: {get(old, k)!r} -> {get(new, k)!r}" for k in keys[:limit]]
    more = f" (+{len(keys) - limit} more)" if len(keys) > limit else ""
    return "; ".join(parts) + more


# ---------------------------------------------------------------------------------------------
# files and overrides
RECIPE_KEYS = ("description", *SECTIONS, "resources")


def _strict_loader():
    """yaml.SafeLoader that refuses a key given twice in one mapping (PyYAML keeps the last silently)."""
    import yaml

    class StrictLoader(yaml.SafeLoader):
        pass

    def mapping(loader, node, deep=False):
        seen: dict = {}
        for key_node, _ in node.value:
            key = loader.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} given twice (first on line {seen[key] + 1})", key_node.start_mark
                )
            seen[key] = key_node.start_mark.line
        return yaml.SafeLoader.construct_mapping(loader, node, deep)

    StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    return StrictLoader


YAML_MAX_NODES = 100_000
"""The most nodes a YAML file may expand to, every alias counted as a copy of what it names (a grid of
hundreds of runs is a few thousand): an alias bomb (9 levels of 9 aliases: 9**9 nodes) is refused before
anything is built from it."""


def _check_expansion(root, path: Path) -> None:
    """Refuse (ConfigError naming the file and line) a YAML node graph that expands to more than
    :data:`YAML_MAX_NODES` nodes, or that contains itself (a recursive alias)."""
    import yaml

    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in active:
            raise ConfigError(
                f"{path}: line {node.start_mark.line + 1}: a YAML alias refers to itself; write the value out"
            )
        active.add(key)
        total = 1
        if isinstance(node, yaml.SequenceNode):
            children = node.value
        elif isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        else:
            children = ()
        for child in children:
            total += size(child)
            if total > YAML_MAX_NODES:
                raise ConfigError(
                    f"{path}: line {node.start_mark.line + 1}: its YAML aliases expand to more than "
                    f"{YAML_MAX_NODES:,} values (an alias bomb?); write the values out or use fewer nested aliases"
                )
        active.discard(key)
        sizes[key] = total
        return total

    size(root)


def read_yaml(path: str | os.PathLike, what: str) -> Any:
    """A YAML document (a byte-order mark accepted, a key given twice refused); ConfigError naming the file
    (and line) when missing or malformed, or when its aliases expand beyond :data:`YAML_MAX_NODES` values."""
    import yaml

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")  # a byte-order mark is accepted
    except FileNotFoundError:
        raise MissingFileError(f"{path}: {what} not found") from None
    except (IsADirectoryError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: {what} is not a UTF-8 text file ({type(e).__name__})") from None
    try:
        loader = _strict_loader()(text)
        try:
            node = loader.get_single_node()
            if node is None:
                return None
            _check_expansion(node, path)
            return loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}:{where}: not valid YAML: {getattr(e, 'problem', e)}") from None


def load_recipe(path: str | os.PathLike, where: str = "recipe") -> dict:
    """A recipe file (``experiments/recipes/*.yaml``): a mapping of run-config sections (model, data,
    train, eval, profile; ``resources`` for grids) and an optional description. Grids ``include`` it,
    ``dsa-harness train --recipe`` starts from it."""
    path = Path(path)
    doc = read_yaml(path, f"recipe file (from {where})")
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: a recipe must be a mapping of sections ({', '.join(SECTIONS)})")
    for key, value in doc.items():
        if key not in RECIPE_KEYS:
            raise ConfigError(f"{path}: {key}: unknown recipe key" + _closest(str(key), list(RECIPE_KEYS)))
        if key != "description" and not isinstance(value, dict):
            raise ConfigError(f"{path}: {key}: must be a mapping")
    return doc


def parse_set(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` of ``--set`` / ``-o``: the value is read as JSON when it parses (numbers, lists,
    true/false/null), else kept as a string (``position=res_3``). argparse type: raises ArgumentTypeError."""
    import argparse

    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key.strip(), json.loads(value)
    except json.JSONDecodeError:
        return key.strip(), value


def add_set_argument(parser: Any, help: str) -> None:
    """The ``--set KEY=VALUE`` option (repeatable, into ``args.sets`` as (key, value) pairs) of every command
    that takes run-config overrides: train, eval, sweep show|submit|status|cancel, reproduce."""
    parser.add_argument(
        "--set", dest="sets", type=parse_set, action="append", default=[], metavar="KEY=VALUE", help=help
    )


def set_dotted(config: dict, key: str, value: Any) -> None:
    """``config[a][b] = value`` for ``"a.b"``; mappings are merged into mappings."""
    parts = key.split(".")
    node = config
    for p in parts[:-1]:
        nxt = node.setdefault(p, {})
        if not isinstance(nxt, dict):
            raise ConfigError(f"cannot set {key}: {p} is not a mapping")
        node = nxt
    last = parts[-1]
    if isinstance(value, dict) and isinstance(node.get(last), dict):
        node[last] = deep_merge(node[last], value)
    else:
        node[last] = copy.deepcopy(value)


def get_dotted(config: dict, key: str, default: Any = None) -> Any:
    node: Any = config
    for p in key.split("."):
        if not isinstance(node, dict) or p not in node:
            return default
        node = node[p]
    return node


def deep_merge(a: dict, b: dict) -> dict:
    """``b`` merged into a copy of ``a`` (nested mappings merged, everything else replaced)."""
    out = copy.deepcopy(a)
    for k, v in b.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def check_dotted_key(key: str) -> None:
    """Refuse a ``--set`` key that names no field, suggesting the closest one."""
    section, _, name = key.partition(".")
    if key in ("seed", "task"):
        return
    if section not in SECTIONS or not name:
        raise ConfigError(
            f"--set {key}: keys are section.field with a section of {', '.join(SECTIONS)} "
            f"(or seed)" + _closest(key, all_keys())
        )
    if name not in section_fields(section):
        raise ConfigError(f"--set {key}: unknown field" + _closest(key, all_keys()))


def apply_overrides(config: dict, overrides: dict[str, Any] | list[tuple[str, Any]]) -> dict:
    """A copy of ``config`` with dotted overrides applied in order (each key checked first)."""
    out = copy.deepcopy(config)
    items = overrides.items() if isinstance(overrides, dict) else overrides
    for key, value in items:
        check_dotted_key(key)
        set_dotted(out, key, value)
    return out


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


def fields_help(sections: tuple[str, ...] = SECTIONS) -> str:
    """One line per settable field with its default: the ``--set`` reference printed by ``--help``."""
    lines = []
    for s in sections:
        for k, (default, _type, text) in section_fields(s).items():
            shown = "(variant's)" if s == "model" else json.dumps(_plain(default))
            lines.append(f"  {s}.{k} = {shown}".ljust(44) + f" {text}")
    return "\n".join(lines)


__all__ = [
    "IDENTITY_VERSION",
    "INPUT_FILES",
    "NOT_IDENTITY",
    "DataConfig",
    "EvalConfig",
    "ProfileConfig",
    "RunConfig",
    "TrainConfig",
    "all_keys",
    "apply_overrides",
    "canonical_json",
    "check_dotted_key",
    "count_classes",
    "deep_merge",
    "describe_diff",
    "fields_help",
    "file_fingerprint",
    "fingerprint_scope",
    "videos_fingerprint",
    "get_dotted",
    "identity_diff",
    "load_recipe",
    "model_dict",
    "parse_set",
    "read_yaml",
    "run_id_of",
    "section_fields",
    "set_dotted",
    "stage_masks_text",
]
