"""DataLoader construction: seeded, resumable, DistributedSampler-ready.

Order and content of an epoch depend only on ``(seed, epoch)`` and the dataset's own seed:

- the index order comes from a :class:`torch.utils.data.DistributedSampler` (also on one
  process, with ``num_replicas=1``) whose permutation is seeded by ``seed + epoch``;
- every sample's random offsets/crops come from ``(dataset.seed, epoch, index)``
  (:class:`~harness.data.video.VideoDataset`), whichever worker reads it.

So an interrupted run resumed at epoch ``e`` sees exactly the batches it would have seen,
for any number of workers. Call :func:`set_epoch` (sampler and dataset) before iterating.

Evaluation (``shuffle=False``) across ranks uses :class:`ShardSampler`, which gives each
rank ``indices[rank::world_size]`` without padding, so every video is scored exactly once
(the ranks' counts may differ by one; gather predictions, not means).
"""

from __future__ import annotations

import random
from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler


class ShardSampler(Sampler[int]):
    """Indices ``rank, rank + world_size, ...`` in order, no padding, no shuffling."""

    def __init__(self, dataset: Dataset, num_replicas: int = 1, rank: int = 0):
        if not 0 <= rank < num_replicas:
            raise ValueError(f"ShardSampler rank {rank} outside 0..{num_replicas - 1}")
        self.dataset, self.num_replicas, self.rank = dataset, num_replicas, rank
        self.epoch = 0

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.rank, len(self.dataset), self.num_replicas))

    def __len__(self) -> int:
        return len(range(self.rank, len(self.dataset), self.num_replicas))

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch


def _dist_info(distributed: bool, rank: int | None, world_size: int | None) -> tuple[int, int]:
    if not distributed:
        return 0, 1
    if rank is None or world_size is None:
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()):
            raise ValueError("distributed=True needs an initialised process group or explicit rank/world_size")
        rank = dist.get_rank() if rank is None else rank
        world_size = dist.get_world_size() if world_size is None else world_size
    return int(rank), int(world_size)


def seed_worker(worker_id: int) -> None:
    """Seed numpy and ``random`` in a loader worker from torch's per-worker seed (which the
    loader derives from its seeded generator), for transforms that use global generators."""
    s = torch.initial_seed() % 2**32
    np.random.seed(s)
    random.seed(s)


def build_loader(
    dataset: Dataset,
    batch_size: int,
    shuffle: bool,
    num_workers: int = 0,
    seed: int = 0,
    distributed: bool = False,
    drop_last: bool | None = None,
    *,
    rank: int | None = None,
    world_size: int | None = None,
    pin_memory: bool | None = None,
    persistent_workers: bool = True,
    prefetch_factor: int | None = None,
) -> DataLoader:
    """A DataLoader yielding ``(uint8 (B, V*U, C, T, H, W), int64 (B,))`` batches.

    shuffle:            reshuffle every epoch (seeded by ``seed + epoch``; call :func:`set_epoch`).
    num_workers:        loader processes (0: load in the calling process). Workers are
                        persistent across epochs when ``persistent_workers``.
    distributed:        shard across the ranks of the process group (or explicit
                        ``rank``/``world_size``); shuffled sets pad to equal shards (DistributedSampler),
                        unshuffled ones are split without padding (:class:`ShardSampler`).
    drop_last:          drop the last incomplete batch; default: ``shuffle`` (train yes, eval no).
    pin_memory:         default: True when CUDA is available.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, not {batch_size}")
    if num_workers < 0:
        raise ValueError(f"num_workers must be >= 0, not {num_workers}")
    rank, world = _dist_info(distributed, rank, world_size)
    if drop_last is None:
        drop_last = bool(shuffle)
    if shuffle:
        sampler: Sampler = DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=True,
                                              seed=seed, drop_last=False)
    elif world > 1:
        sampler = ShardSampler(dataset, world, rank)
    else:
        sampler = ShardSampler(dataset, 1, 0)
    if pin_memory is None:
        pin_memory = torch.cuda.is_available()
    generator = torch.Generator().manual_seed(int(seed) * 1000 + rank)
    kwargs = {}
    if num_workers > 0:
        kwargs["persistent_workers"] = persistent_workers
        kwargs["worker_init_fn"] = seed_worker
        if prefetch_factor is not None:
            kwargs["prefetch_factor"] = prefetch_factor
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        pin_memory=pin_memory,
        drop_last=drop_last,
        generator=generator,
        **kwargs,
    )


def set_epoch(loader: DataLoader, epoch: int) -> None:
    """Tell the loader's sampler and dataset which epoch comes next (call before ``iter(loader)``)."""
    if hasattr(loader.sampler, "set_epoch"):
        loader.sampler.set_epoch(epoch)
    if hasattr(loader.dataset, "set_epoch"):
        loader.dataset.set_epoch(epoch)
