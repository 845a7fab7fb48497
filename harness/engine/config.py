"""Training / data / evaluation configs: frozen dataclasses, validated on construction.

A run's ``config.json`` is a nested dict (see CONTRACTS.md); ``resolve_run_config`` fills every
default so that the file on disk is the complete, exact description of the run.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from harness.models import resolve_config


def _check(cond: bool, name: str, value: Any, allowed: str) -> None:
    if not cond:
        raise ValueError(f"{name}={value!r} is invalid: {allowed}")


@dataclass(frozen=True)
class DataConfig:
    """Where the videos are and how they are read. Paths are annotation files (see harness.data)."""

    train: str | None = None
    val: str | None = None
    test: str | None = None
    root: str | None = None  # folder the annotation paths are relative to (default: the annotation's folder)
    format: str = "video"  # video | frames | kinetics_csv
    frame_interval: int = 8  # source frames between sampled frames inside a snippet
    size: int = 224  # crop size (pixels)
    resize: int = 256  # short side before evaluation crops
    flip: bool = True  # horizontal flip in training (off for direction-sensitive labels)
    crop: str = "random_resized"  # training crop: random_resized (spec) | multiscale (TSN)
    crop_area: tuple[float, float] = (0.08, 1.0)  # random_resized: range of the crop's area fraction
    scales: tuple[float, ...] = (1.0, 0.875, 0.75, 0.66)  # multiscale: crop sides as fractions of the short side
    num_workers: int = 2
    decode_threads: int = 1
    cache_decoded: bool = False  # decode each video once per process and sample from memory (small sets)
    on_error: str = "raise"  # raise | skip
    classes: str | None = None  # class-index file (kinetics_csv)
    frame_template: str = "img_{:05d}.jpg"  # raw frames

    def __post_init__(self) -> None:
        _check(self.format in ("video", "frames", "kinetics_csv"), "data.format", self.format,
               "allowed: video, frames, kinetics_csv")
        _check(self.on_error in ("raise", "skip"), "data.on_error", self.on_error, "allowed: raise, skip")
        _check(self.crop in ("random_resized", "multiscale"), "data.crop", self.crop,
               "allowed: random_resized, multiscale")
        object.__setattr__(self, "crop_area", tuple(float(v) for v in self.crop_area))
        object.__setattr__(self, "scales", tuple(float(v) for v in self.scales))
        _check(len(self.crop_area) == 2 and 0 < self.crop_area[0] <= self.crop_area[1] <= 1, "data.crop_area",
               self.crop_area, "need 0 < min <= max <= 1")
        for name in ("frame_interval", "size", "resize", "decode_threads"):
            _check(isinstance(getattr(self, name), int) and getattr(self, name) >= 1, f"data.{name}",
                   getattr(self, name), "must be an integer >= 1")
        _check(self.num_workers >= 0, "data.num_workers", self.num_workers, "must be >= 0")


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation recipe (defaults: the paper's Kinetics-400 recipe, spec section 5)."""

    epochs: int = 100
    batch_size: int = 12  # videos per process per step
    base_lr: float = 0.015  # learning rate for base_batch videos; scaled linearly with the global batch
    base_batch: int = 12
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 1e-4
    clip_grad_norm: float | None = 40.0
    schedule: str = "step"  # step | cosine
    milestones: tuple[int, ...] = (50, 75, 90)
    gamma: float = 0.1
    warmup_epochs: float = 10
    warmup_start_factor: float = 0.01
    amp: str = "none"  # none | bf16 | fp16 (CUDA)
    grad_accum: int = 1
    checkpoint_every_steps: int = 0  # 0: at epoch ends only
    eval_every: int = 1  # epochs between validations (0: never)
    device: str = "auto"  # auto | cpu | cuda
    threads: int | None = None  # intra-op CPU threads (None: torch's default)
    deterministic: bool = True  # torch.use_deterministic_algorithms where possible (exact resume on CPU)
    max_steps_per_epoch: int | None = None  # cap for smoke runs

    def __post_init__(self) -> None:
        _check(self.epochs >= 1, "train.epochs", self.epochs, "must be >= 1")
        _check(self.batch_size >= 1, "train.batch_size", self.batch_size, "must be >= 1")
        _check(self.base_lr > 0, "train.base_lr", self.base_lr, "must be > 0")
        _check(self.schedule in ("step", "cosine"), "train.schedule", self.schedule, "allowed: step, cosine")
        _check(self.amp in ("none", "bf16", "fp16"), "train.amp", self.amp, "allowed: none, bf16, fp16")
        _check(self.grad_accum >= 1, "train.grad_accum", self.grad_accum, "must be >= 1")
        _check(self.device in ("auto", "cpu", "cuda"), "train.device", self.device, "allowed: auto, cpu, cuda")
        _check(0 <= self.warmup_start_factor <= 1, "train.warmup_start_factor", self.warmup_start_factor,
               "must be in [0, 1]")
        object.__setattr__(self, "milestones", tuple(int(m) for m in self.milestones))

    def lr_for(self, global_batch: int) -> float:
        """Linear scaling rule: base_lr * global_batch / base_batch."""
        return self.base_lr * global_batch / self.base_batch


@dataclass(frozen=True)
class EvalConfig:
    """Multi-view testing: ``test_groups`` interleaved groups of U snippets x ``crops`` spatial crops."""

    test_groups: int = 2
    crops: int = 3
    batch_size: int = 4

    def __post_init__(self) -> None:
        _check(self.test_groups >= 1, "eval.test_groups", self.test_groups, "must be >= 1")
        _check(self.crops in (1, 3), "eval.crops", self.crops, "allowed: 1 (centre), 3 (three-crop)")
        _check(self.batch_size >= 1, "eval.batch_size", self.batch_size, "must be >= 1")

    @property
    def views(self) -> int:
        return self.test_groups * self.crops


def _build(cls, section: str, values: dict | None):
    values = dict(values or {})
    known = {f.name for f in fields(cls)}
    unknown = set(values) - known
    if unknown:
        raise ValueError(f"unknown {section} option(s) {sorted(unknown)}; options: {', '.join(sorted(known))}")
    return cls(**values)


def resolve_run_config(config: dict) -> dict:
    """Validate a train run's config dict and return it with every default filled in."""
    out = dict(config)
    model = dict(out.get("model") or {})
    if "variant" not in model:
        raise ValueError("model.variant is required (see `dsa-harness list`)")
    variant = model.pop("variant")
    model_cfg = resolve_config(variant, **model)  # raises ValueError naming the field
    out["model"] = {"variant": variant, **model}
    out["model_resolved"] = model_cfg.to_dict()
    data = _build(DataConfig, "data", out.get("data"))
    out["data"] = {**asdict(data), "crop_area": list(data.crop_area), "scales": list(data.scales)}
    train = _build(TrainConfig, "train", out.get("train"))
    out["train"] = {**asdict(train), "milestones": list(train.milestones)}
    out["eval"] = asdict(_build(EvalConfig, "eval", out.get("eval")))
    out["task"] = out.get("task", "train")
    out["seed"] = int(out.get("seed", 0))
    return out
