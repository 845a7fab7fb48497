"""The one DataLoader of the harness: training and evaluation (``harness.engine``) both build it here.

Order and content of an epoch depend only on ``(seed, epoch)`` and the dataset's own seed:

- :class:`EpochSampler` yields ``(epoch, index)`` pairs: the indices are a permutation drawn from
  ``numpy.random.default_rng([seed, epoch])`` (training) or the identity (evaluation), sharded
  ``order[rank::world_size]``;
- :class:`EpochIndexed` hands the epoch carried by each pair to the dataset before reading the
  sample, so persistent workers see the epoch without any shared state being set beforehand, and
  every sample's random offsets / crops come from ``(dataset.seed, epoch, index)``
  (:class:`~harness.data.video.VideoDataset`), whichever worker reads it.

So neither the number of workers nor an interruption changes what a step sees. A run resumed in
the middle of an epoch calls ``set_epoch(loader, epoch, start=k)``: the loader yields this rank's
shard from position ``k`` on, exactly the samples the interrupted epoch had left.

Training shards (``shuffle=True``) are padded to equal length across ranks by repeating the head
of the order (like :class:`torch.utils.data.DistributedSampler`), so every rank runs the same number
of steps; evaluation shards (``shuffle=False``) are not padded, so every video is scored exactly
once (the ranks' counts may differ by one: gather predictions, not means).

The loader draws worker seeds from a private :class:`torch.Generator` seeded by ``(seed, rank)``;
it never reads nor advances the global RNG (torch seeds ``random``, numpy and torch in every
worker from it). Workers are persistent when there are any; memory is pinned for a CUDA device.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler, default_collate


class EpochSampler(Sampler[tuple[int, int]]):
    """Yields ``(epoch, index)`` pairs: a ``(seed, epoch)`` permutation (``shuffle``) or the identity,
    sharded ``i::world_size``, starting at position ``start`` of this rank's shard (mid-epoch resume).
    Shards are padded to equal length when ``pad`` (default: ``shuffle``), like DistributedSampler;
    unpadded shards hold each index once over all ranks."""

    def __init__(
        self, size: int, *, shuffle: bool, seed: int, rank: int = 0, world_size: int = 1, pad: bool | None = None
    ):
        if size < 0:
            raise ValueError(f"EpochSampler size must be >= 0, not {size}")
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"EpochSampler rank {rank} outside 0..{world_size - 1}")
        self.size, self.shuffle, self.seed = int(size), bool(shuffle), int(seed)
        self.rank, self.world_size = int(rank), int(world_size)
        self.pad = self.shuffle if pad is None else bool(pad)
        self.epoch, self.start = 0, 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """Select the epoch and the position in this rank's shard where iteration begins."""
        if start < 0:
            raise ValueError(f"start must be >= 0, not {start}")
        self.epoch, self.start = int(epoch), int(start)

    def indices(self) -> list[int]:
        """This rank's whole shard of the current epoch (ignoring ``start``)."""
        order = (
            np.random.default_rng([self.seed, self.epoch]).permutation(self.size)
            if self.shuffle
            else np.arange(self.size)
        )
        order = order.tolist()
        if self.pad and self.world_size > 1 and order:
            total = math.ceil(self.size / self.world_size) * self.world_size
            order += (order * math.ceil(total / len(order)))[: total - len(order)]
        return order[self.rank :: self.world_size]

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return iter([(self.epoch, i) for i in self.indices()[self.start :]])

    def __len__(self) -> int:
        return max(len(self.indices()) - self.start, 0)


class EpochIndexed(Dataset):
    """Wraps a dataset: takes ``(epoch, index)``, returns ``(clips, label, index)``. The epoch travels
    with the index, so persistent workers see it too (the dataset's ``set_epoch`` runs in the worker
    that reads the sample, right before reading it)."""

    def __init__(self, base: Dataset):
        self.base = base

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, key: tuple[int, int]):
        epoch, index = key
        if hasattr(self.base, "set_epoch"):
            self.base.set_epoch(epoch)
        clips, label = self.base[index]
        return clips, label, index


def collate_readable(samples: list):
    """``default_collate`` of the samples a dataset could read: a sample whose clips are None (an unreadable
    video left out at evaluation, ``VideoDataset(replace_skipped=False)``) is dropped; a batch of none
    readable is ``(empty uint8 tensor, empty labels, empty indices)``. A sample of k clips of one video
    (``VideoDataset(clips_per_decode=k)``: clips ``(k, V*U, C, T, H, W)``) becomes k consecutive rows that share
    its label and index, so a batch of b such samples has ``b * k`` rows."""
    kept = [s for s in samples if s[0] is not None]
    if not kept:
        return torch.zeros(0, dtype=torch.uint8), torch.zeros(0, dtype=torch.int64), torch.zeros(0, dtype=torch.int64)
    clips, labels, indices = default_collate(kept)
    if clips.dim() == 7:  # (b, k, V*U, C, T, H, W): k clips per sample
        k = clips.shape[1]
        return clips.flatten(0, 1), labels.repeat_interleave(k), indices.repeat_interleave(k)
    return clips, labels, indices


MAX_AUTO_WORKERS = 8


def auto_num_workers() -> int:
    """Loader workers for ``data.num_workers: auto``: ``min(8, CPUs this process may run on - 1)``, at
    least 0 (one CPU is left to the process that feeds the model). CPUs are the process's affinity
    (what SLURM's ``--cpus-per-task`` grants), not the machine's count."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # no sched_getaffinity (macOS)
        cpus = os.cpu_count() or 1
    return max(0, min(MAX_AUTO_WORKERS, cpus - 1))


def _generator_seed(seed: int, rank: int) -> int:
    """The loader generator's seed: ``seed`` itself on rank 0 (kept from the first engine loader),
    distinct per rank so that ranks' workers do not draw the same numbers."""
    return int(seed) + (int(rank) << 32)


def build_loader(
    dataset: Dataset,
    batch_size: int,
    *,
    shuffle: bool,
    seed: int,
    num_workers: int = 0,
    rank: int = 0,
    world_size: int = 1,
    device: torch.device | str | None = None,
) -> DataLoader:
    """The loader training (``shuffle=True``) and evaluation (``shuffle=False``) use.

    Yields ``(uint8 (B, V*U, C, T, H, W), int64 labels (B,), int64 dataset indices (B,))``; the last
    batch may be short (never dropped), and so may a batch holding samples left out as unreadable
    (:func:`collate_readable`; B = 0 when none was readable). Call :func:`set_epoch` before each ``iter(loader)``.

    shuffle:      reshuffle every epoch with ``(seed, epoch)`` and pad the shards to equal length
                  (training); otherwise dataset order, unpadded shards (evaluation).
    num_workers:  loader processes (0: load in the calling process); persistent across epochs.
    rank, world_size: this process's shard of the dataset.
    device:       where batches go; memory is pinned when it is a CUDA device (default: when CUDA
                  is available).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, not {batch_size}")
    if num_workers < 0:
        raise ValueError(f"num_workers must be >= 0, not {num_workers}")
    sampler = EpochSampler(len(dataset), shuffle=shuffle, seed=seed, rank=rank, world_size=world_size)
    pin_memory = torch.cuda.is_available() if device is None else torch.device(device).type == "cuda"
    return DataLoader(
        EpochIndexed(dataset),
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        persistent_workers=num_workers > 0,
        pin_memory=pin_memory,
        drop_last=False,
        collate_fn=collate_readable,
        generator=torch.Generator().manual_seed(_generator_seed(seed, rank)),  # never the global RNG
    )


def set_epoch(loader: DataLoader, epoch: int, start: int = 0) -> None:
    """Select the epoch the next ``iter(loader)`` yields, from sample ``start`` of this rank's shard
    (a mid-epoch resume: ``start`` = samples already consumed by this rank)."""
    loader.sampler.set_epoch(epoch, start=start)
