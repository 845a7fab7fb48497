"""The one loader (harness.data.loader) on a tiny in-memory dataset: sampler order, shards, padding,
mid-epoch start, the epoch reaching persistent workers, the global RNG left alone, loader settings.
(On real videos: tests/test_data_video.py; through training: tests/test_engine.py.)"""

from __future__ import annotations

import os
import random

import numpy as np
import pytest
import torch
from torch.utils.data import Dataset

from harness.data import EpochSampler, build_loader, set_epoch


class EpochEcho(Dataset):
    """Sample ``i`` is ``(tensor([epoch, i]), i % 3)``, where ``epoch`` is a plain attribute: a
    persistent worker sees a new epoch only if ``set_epoch`` runs in that worker."""

    def __init__(self, n: int):
        self.n, self.epoch = n, -1

    def __len__(self) -> int:
        return self.n

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __getitem__(self, i: int):
        return torch.tensor([self.epoch, i]), i % 3


def _order(sampler: EpochSampler) -> list[int]:
    return [i for _, i in sampler]


def test_order_is_a_function_of_seed_and_epoch():
    a, b = EpochSampler(50, shuffle=True, seed=7), EpochSampler(50, shuffle=True, seed=7)
    a.set_epoch(3)
    b.set_epoch(3)
    assert _order(a) == _order(b) and sorted(_order(a)) == list(range(50))
    assert all(e == 3 for e, _ in a)
    c = EpochSampler(50, shuffle=True, seed=8)
    c.set_epoch(3)
    b.set_epoch(4)
    assert _order(c) != _order(a) and _order(b) != _order(a)
    assert _order(EpochSampler(5, shuffle=False, seed=7)) == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("size,world", [(10, 3), (11, 4), (2, 3), (1, 4), (12, 3)])
def test_training_shards_are_padded_to_equal_length(size, world):
    shards = []
    for rank in range(world):
        s = EpochSampler(size, shuffle=True, seed=1, rank=rank, world_size=world)
        s.set_epoch(2)
        shards.append(_order(s))
    assert {len(sh) for sh in shards} == {-(-size // world)}  # ceil: every rank runs the same steps
    flat = [i for sh in shards for i in sh]
    assert set(flat) == set(range(size))
    assert len(flat) - len(set(flat)) == len(flat) - size  # only the padding repeats


@pytest.mark.parametrize("size,world", [(10, 3), (2, 3), (7, 1)])
def test_evaluation_shards_are_not_padded(size, world):
    shards = [_order(EpochSampler(size, shuffle=False, seed=0, rank=r, world_size=world)) for r in range(world)]
    assert sorted(i for sh in shards for i in sh) == list(range(size))


@pytest.mark.parametrize("world", [1, 2])
def test_mid_epoch_start_yields_the_remaining_samples(world):
    for rank in range(world):
        s = EpochSampler(23, shuffle=True, seed=5, rank=rank, world_size=world)
        s.set_epoch(1)
        full = list(s)
        for start in (0, 1, 7, len(full) - 1, len(full), len(full) + 3):
            s.set_epoch(1, start=start)
            assert list(s) == full[start:] and len(s) == len(full[start:])
    with pytest.raises(ValueError, match="start"):
        s.set_epoch(1, start=-1)
    with pytest.raises(ValueError, match="rank"):
        EpochSampler(4, shuffle=True, seed=0, rank=2, world_size=2)


def _batches(loader, epoch, start=0):
    set_epoch(loader, epoch, start=start)
    return [(x.clone(), y.clone(), i.clone()) for x, y, i in loader]


def test_loader_order_is_independent_of_workers_and_workers_see_the_epoch():
    ds = EpochEcho(13)
    loaders = [build_loader(ds, 4, shuffle=True, seed=3, num_workers=w) for w in (0, 1, 2)]
    for epoch in (0, 1, 2):
        runs = [_batches(lo, epoch) for lo in loaders]
        for run in runs[1:]:
            assert len(run) == len(runs[0]) == 4  # 13 samples, batch 4: the short last batch is kept
            for (x0, y0, i0), (x, y, i) in zip(runs[0], run):
                assert torch.equal(x0, x) and torch.equal(y0, y) and torch.equal(i0, i)
        x = torch.cat([b[0] for b in runs[0]])
        assert (x[:, 0] == epoch).all()  # the epoch reached the (persistent) workers
        assert torch.equal(x[:, 1], torch.cat([b[2] for b in runs[0]]))
        sampler = EpochSampler(13, shuffle=True, seed=3)
        sampler.set_epoch(epoch)
        assert x[:, 1].tolist() == _order(sampler)
    # a mid-epoch start gives the rest of the epoch exactly, through persistent workers
    full = torch.cat([b[0] for b in _batches(loaders[2], 1)])
    rest = torch.cat([b[0] for b in _batches(loaders[2], 1, start=6)])
    assert torch.equal(rest, full[6:])


def test_loader_leaves_the_global_rng_alone():
    torch.manual_seed(123)
    np.random.seed(123)
    random.seed(123)
    states = torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate()
    for w in (0, 2):
        loader = build_loader(EpochEcho(9), 2, shuffle=True, seed=1, num_workers=w)
        for epoch in (0, 1):
            _batches(loader, epoch)
    assert torch.equal(torch.get_rng_state(), states[0])
    assert np.array_equal(np.random.get_state()[1], states[1]) and random.getstate() == states[2]


def test_loader_settings():
    ds = EpochEcho(10)
    train = build_loader(ds, 3, shuffle=True, seed=0, num_workers=1, rank=1, world_size=2, device="cpu")
    assert isinstance(train.sampler, EpochSampler) and train.sampler.shuffle and train.sampler.pad
    assert (train.sampler.rank, train.sampler.world_size) == (1, 2)
    assert train.persistent_workers and not train.pin_memory and not train.drop_last
    assert len(train) == 2  # 5 samples on this rank, batch 3
    ev = build_loader(ds, 3, shuffle=False, seed=0, device=torch.device("cuda"))
    assert not ev.sampler.shuffle and not ev.sampler.pad
    assert ev.pin_memory and not ev.persistent_workers and ev.num_workers == 0
    assert build_loader(ds, 3, shuffle=False, seed=0).pin_memory == torch.cuda.is_available()
    # per-rank private generators, rank 0 seeded with the run's seed
    seeds = {build_loader(ds, 3, shuffle=True, seed=5, rank=r, world_size=3).generator.initial_seed() for r in range(3)}
    assert len(seeds) == 3 and 5 in seeds
    with pytest.raises(ValueError, match="batch_size"):
        build_loader(ds, 0, shuffle=True, seed=0)
    with pytest.raises(ValueError, match="num_workers"):
        build_loader(ds, 2, shuffle=True, seed=0, num_workers=-1)


def test_auto_num_workers_leaves_one_cpu_and_caps_at_eight(monkeypatch):
    from harness.data import auto_num_workers

    for cpus, workers in ((1, 0), (2, 1), (4, 3), (10, 8), (64, 8)):
        monkeypatch.setattr(os, "sched_getaffinity", lambda pid, n=cpus: set(range(n)), raising=False)
        assert auto_num_workers() == workers
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)  # macOS: the machine's count
    monkeypatch.setattr(os, "cpu_count", lambda: 6)
    assert auto_num_workers() == 5
