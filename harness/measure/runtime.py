"""The settings a timing is made under, applied and recorded; the inference and training steps timed.

Two tables made under different settings (dtype, TF32, cuDNN autotuning, memory format, compilation,
threads, batch) cannot be compared, so every profile record carries ``Settings.describe()``.

Layouts: a model takes (N, U, 3, T, H, W) float clips and returns (N, classes) logits.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
COMPILE_MODES = ("none", "default", "reduce-overhead", "max-autotune")
"""``torch.compile`` modes; ``reduce-overhead`` replays CUDA graphs (the launch-bound case of DSA's small
kernels at batch 1)."""


@dataclass(frozen=True)
class Settings:
    """How a model is run while it is timed. ``dtype`` other than fp32 runs under autocast; ``tf32`` None
    leaves torch's defaults (matmul off, cuDNN on) alone; ``threads`` None keeps torch's count."""

    device: str = "cpu"
    dtype: str = "fp32"
    tf32: bool | None = None
    cudnn_benchmark: bool = False
    channels_last: bool = False
    compile_mode: str = "none"
    threads: int | None = None
    batch: int = 1

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype={self.dtype!r}: allowed {', '.join(DTYPES)}")
        if self.compile_mode not in COMPILE_MODES:
            raise ValueError(f"compile_mode={self.compile_mode!r}: allowed {', '.join(COMPILE_MODES)}")
        if self.batch < 1 or (self.threads is not None and self.threads < 1):
            raise ValueError(f"batch={self.batch}, threads={self.threads}: need >= 1")

    @contextlib.contextmanager
    def applied(self):
        """Set threads, TF32 and cudnn.benchmark for the block, restoring torch's values after it."""
        old = (
            torch.get_num_threads(),
            torch.backends.cuda.matmul.allow_tf32,
            torch.backends.cudnn.allow_tf32,
            torch.backends.cudnn.benchmark,
        )
        try:
            if self.threads:
                torch.set_num_threads(self.threads)
            if self.tf32 is not None:
                torch.backends.cuda.matmul.allow_tf32 = self.tf32
                torch.backends.cudnn.allow_tf32 = self.tf32
            torch.backends.cudnn.benchmark = self.cudnn_benchmark
            yield self
        finally:
            torch.set_num_threads(old[0])
            torch.backends.cuda.matmul.allow_tf32 = old[1]
            torch.backends.cudnn.allow_tf32 = old[2]
            torch.backends.cudnn.benchmark = old[3]

    def autocast(self):
        """Autocast to ``dtype`` on the device (a no-op for fp32)."""
        if self.dtype == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(torch.device(self.device).type, dtype=DTYPES[self.dtype])

    def describe(self) -> dict:
        """The settings in force (call inside ``applied()``), with the device and library versions."""
        from harness.measure.environment import device_name

        cuda = torch.device(self.device).type == "cuda"
        return {
            "device": self.device,
            "device_name": device_name(self.device),
            "dtype": self.dtype,
            "autocast": self.dtype != "fp32",
            "tf32_matmul": bool(torch.backends.cuda.matmul.allow_tf32),
            "tf32_cudnn": bool(torch.backends.cudnn.allow_tf32),
            "cudnn_benchmark": bool(torch.backends.cudnn.benchmark),
            "channels_last": self.channels_last,
            "compile_mode": self.compile_mode,
            "torch": torch.__version__,
            "cuda": torch.version.cuda if cuda else None,
            "cudnn": torch.backends.cudnn.version() if cuda else None,
            "threads": torch.get_num_threads(),
            "batch": self.batch,
        }


def prepare(model: nn.Module, settings: Settings) -> nn.Module:
    """``model`` on the device in the memory format asked, compiled when asked."""
    model = model.to(settings.device)
    if settings.channels_last:
        fmt = torch.channels_last_3d if getattr(model, "layout", "frames") == "clips" else torch.channels_last
        model = model.to(memory_format=fmt)
    if settings.compile_mode != "none":
        model = torch.compile(model, mode=None if settings.compile_mode == "default" else settings.compile_mode)
    return model


def inference_step(model: nn.Module, inputs: torch.Tensor, settings: Settings) -> Callable[[], torch.Tensor]:
    """One forward pass in eval and inference mode under the settings' autocast."""
    model.eval()

    def step() -> torch.Tensor:
        with torch.inference_mode(), settings.autocast():
            return model(inputs)

    return step


def training_step(
    model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor, settings: Settings
) -> tuple[Callable[[], None], torch.optim.Optimizer]:
    """One full training step as the engine takes it: forward under autocast, cross-entropy, backward
    (through a gradient scaler for fp16), SGD with momentum 0.9, gradients set to None first."""
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
    scaler = torch.amp.GradScaler(torch.device(settings.device).type, enabled=settings.dtype == "fp16")

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with settings.autocast():
            loss = F.cross_entropy(model(inputs), labels)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    return step, opt
