"""What a run's ``auto`` settings resolve to on the device it runs on: the device, autocast, determinism."""

from __future__ import annotations

import torch

from harness.config import TrainConfig
from harness.errors import ConfigError


def select_device(cfg: TrainConfig) -> torch.device:
    if cfg.device == "cuda" or (cfg.device == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise ConfigError("train.device=cuda but no CUDA device is visible; use train.device=auto or cpu")
        return torch.device("cuda")
    return torch.device("cpu")


def resolve_amp(setting: str, device: torch.device) -> tuple[torch.dtype | None, str]:
    """(autocast dtype or None, its name) for ``train.amp`` on ``device``; the name is what final.json
    records as ``train.amp_used``. ``auto``: bf16 on a CUDA device that runs it natively (Ampere and
    later), else fp16 (with a GradScaler); CPU: none. An explicit bf16 / fp16 is used as given on
    CUDA; on CPU every setting is none (autocast there is not what the recipe measures)."""
    if device.type != "cuda" or setting == "none":
        return None, "none"
    if setting == "auto":
        setting = "bf16" if torch.cuda.is_bf16_supported(including_emulation=False) else "fp16"
    return {"bf16": torch.bfloat16, "fp16": torch.float16}[setting], setting


def resolve_deterministic(setting: bool | str, device: torch.device) -> bool:
    """``train.deterministic`` on ``device``: ``auto`` is True on CPU (where exact resume is promised and
    tested) and False on CUDA (cudnn.benchmark picks the fastest kernels)."""
    return device.type == "cpu" if setting == "auto" else bool(setting)


def set_determinism(deterministic: bool, device: torch.device) -> bool:
    """Apply it process-wide (both ways, so that an earlier run in this process leaves nothing behind);
    returns whether cudnn.benchmark is on."""
    torch.use_deterministic_algorithms(deterministic, warn_only=True)
    torch.backends.cudnn.deterministic = deterministic
    torch.backends.cudnn.benchmark = not deterministic and device.type == "cuda"
    return torch.backends.cudnn.benchmark
