"""The pieces of the training loop that keep count: the epoch's loss sum and first non-finite step on the
device (no host sync per step), the step clock (loader wait vs compute), divergence records, progress bars."""

from __future__ import annotations

import math
import sys
import time

import torch


class LossSum:
    """The epoch's summed training loss (loss x videos), kept on the device in float64: adding a step's
    loss costs no host synchronisation; reading it (logging, checkpoints, the epoch's end) is one. The
    sums equal Python's ``loss.item() * n`` accumulated in float64, bit for bit."""

    def __init__(self, device: torch.device):
        self.total = torch.zeros((), dtype=torch.float64, device=device)

    def reset(self, value: float = 0.0) -> None:
        self.total.fill_(value)

    def add(self, loss: torch.Tensor, n: int) -> None:
        self.total += loss.detach().double() * n

    def value(self) -> float:
        return float(self.total)


class NonFinite:
    """The first optimiser step whose training loss was NaN or inf, kept on the device (no host sync per
    step): ``note`` costs two element-wise ops; ``read`` (one sync) only once the loss sum, read anyway at a
    progress line, a checkpoint or the epoch's end, is no longer finite."""

    def __init__(self, device: torch.device):
        self.step = torch.zeros((), dtype=torch.int64, device=device)  # 0: none yet (steps count from 1)
        self.loss = torch.zeros((), dtype=torch.float32, device=device)

    def note(self, loss: torch.Tensor, global_step: int) -> None:
        new = (self.step == 0) & ~torch.isfinite(loss.detach())
        self.step = torch.where(new, self.step.new_full((), global_step), self.step)
        self.loss = torch.where(new, loss.detach().float(), self.loss)

    def read(self) -> tuple[int, float]:
        return int(self.step), float(self.loss)


class Diverged(Exception):
    """Raised inside the training loop (on every rank at once) when the loss turned non-finite and
    ``train.stop_on_nonfinite`` is on: the run ends as diverged."""


def diverged_record(global_step: int, loss: float, steps_per_epoch: int, stopped: bool) -> dict:
    """final.json's ``diverged``: where the training loss first turned NaN / inf. ``epoch`` 0-based (as
    metrics.jsonl), ``step`` 1-based within it (as the log's ``epoch E step S/N``), ``global_step`` the
    optimiser steps so far, ``loss`` "nan" | "inf" | "-inf" (JSON has no such numbers), ``stopped``."""
    epoch, step = divmod(global_step - 1, max(steps_per_epoch, 1))
    return {
        "epoch": epoch,
        "step": step + 1,
        "global_step": global_step,
        "loss": "nan" if math.isnan(loss) else ("inf" if loss > 0 else "-inf"),
        "stopped": stopped,
    }


def diverged_text(record: dict) -> str:
    """``training loss nan at epoch 1, step 2 (optimiser step 2)``: the record in the log's terms."""
    return (
        f"training loss {record['loss']} at epoch {record['epoch'] + 1}, step {record['step']} "
        f"(optimiser step {record['global_step']})"
    )


def peak_memory_mb(device: torch.device) -> float:
    """Peak memory of this process: on CUDA the allocator's max_memory_allocated on ``device`` (since the
    last reset: the epoch's), elsewhere the process's peak resident set (ru_maxrss, over its life; loader
    workers not included). Reads host-side counters: no device sync."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    import resource

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return rss / (2**20 if sys.platform == "darwin" else 2**10)


def hms(seconds: float) -> str:
    seconds = max(int(round(seconds)), 0)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class StepClock:
    """Where a step's time goes, with no host sync of its own: the loader wait is the host clock around
    ``next(loader)``; the rest of the wall time between two points where the loop reads the device anyway
    (a progress line's loss, the epoch's end) is compute. ``interval`` returns (wall s, data s, steps)
    since the previous call; the epoch's totals are kept too."""

    def __init__(self) -> None:
        self.start_epoch(time.perf_counter())

    def start_epoch(self, now: float) -> None:
        self.epoch_t0 = self.mark = now
        self.epoch_data = self.mark_data = 0.0
        self.epoch_steps = self.mark_steps = 0

    def data(self, seconds: float) -> None:
        self.epoch_data += seconds
        self.mark_data += seconds

    def step(self) -> None:
        self.epoch_steps += 1
        self.mark_steps += 1

    def interval(self, now: float) -> tuple[float, float, int]:
        out = (now - self.mark, self.mark_data, self.mark_steps)
        self.mark, self.mark_data, self.mark_steps = now, 0.0, 0
        return out


def skipped_text(metrics: dict) -> str:
    """The log line's account of the videos an evaluation left out as unreadable."""
    return f"left out {metrics['num_skipped']} unreadable video(s), scored {metrics['num_videos']}: " + "; ".join(
        f"{s['path']} (line {s['line']}, {s['reason']})" for s in metrics["skipped_videos"]
    )


def progress_bar(show: bool, total: int, initial: int, desc: str):
    if not show:
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=desc, leave=False, dynamic_ncols=True)
