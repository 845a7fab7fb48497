"""data.clips_per_decode: k training samples from one decode of a video (repeated sampling), on real mp4 files.

k = 1 is the default and gives the samples of before (every other test of the suite runs it); k > 1 gives, per
video, the k samples its generator draws one after the other, decoded in one call, as k rows of the batch; the
engine trains k samples per video per epoch, resumes exactly inside such an epoch, and keeps k = 1's run ids.
"""

import numpy as np
import pytest
import torch
from test_engine import _config, _weights, colour_set  # noqa: F401  (the engine tests' 24 real mp4 files)

import harness.data.video as video
from harness.config import RunConfig
from harness.data import SnippetSampler, VideoDataset, build_loader, set_epoch, train_transform
from harness.engine import train_and_evaluate
from harness.errors import ConfigError
from harness.results.rundir import RunDir


def _dataset(root, k: int, **kw) -> VideoDataset:
    sampler = SnippetSampler(3, 2, 2, "train")
    return VideoDataset(root / "train.txt", root, sampler, train_transform(32), seed=5, clips_per_decode=k, **kw)


@pytest.mark.parametrize("cache", [False, True])
def test_k_samples_are_the_draws_of_the_samples_generator_from_one_decode(colour_set, monkeypatch, cache):  # noqa: F811
    ds = _dataset(colour_set, 3, cache_decoded=cache)
    ds.set_epoch(1)
    calls = []
    real = video.decode_frames
    monkeypatch.setattr(video, "decode_frames", lambda *a, **kw: calls.append(1) or real(*a, **kw))
    clips, label = ds[4]
    assert clips.shape == (3, 3, 3, 2, 32, 32) and clips.dtype == torch.uint8 and label == ds.records[4].label
    assert len(calls) == 1  # one decode for the three samples
    # the same samples, decoded one by one: three draws of the sampler, then three transforms, from rng(4)
    rng = ds.rng(4)
    reader = video.open_video(ds.records[4].path)
    draws = [ds.sampler(len(reader), rng) for _ in range(3)]
    for j, idx in enumerate(draws):
        x = torch.from_numpy(real(reader, idx)).permute(0, 4, 1, 2, 3)
        assert torch.equal(clips[j], ds.transform(x, rng=rng).contiguous())
    assert not torch.equal(clips[0], clips[1]) and not np.array_equal(draws[0], draws[1])
    # k = 1: the sample of a dataset without the option
    plain = VideoDataset(colour_set / "train.txt", colour_set, ds.sampler, ds.transform, seed=5)
    one = _dataset(colour_set, 1)
    plain.set_epoch(1), one.set_epoch(1)
    assert torch.equal(plain[4][0], one[4][0]) and plain[4][0].shape == (3, 3, 2, 32, 32)
    with pytest.raises(ValueError, match="clips_per_decode must be >= 1, not 0"):
        _dataset(colour_set, 0)


def test_the_loader_makes_k_consecutive_rows_per_video(colour_set):  # noqa: F811
    ds = _dataset(colour_set, 2)
    loader = build_loader(ds, 3, shuffle=True, seed=0)
    set_epoch(loader, 0)
    x, labels, indices = next(iter(loader))
    assert x.shape == (6, 3, 3, 2, 32, 32)
    assert torch.equal(indices[0::2], indices[1::2]) and torch.equal(labels[0::2], labels[1::2])
    assert labels.tolist() == [ds.records[i].label for i in indices.tolist()]


def test_training_with_k_2_trains_k_samples_per_video_and_resumes_exactly(colour_set, tmp_path, monkeypatch):  # noqa: F811
    import harness.engine.train as train

    def config(k: int) -> dict:
        cfg = _config(colour_set, epochs=2, checkpoint_every_steps=1)
        cfg["data"]["clips_per_decode"] = k
        return cfg

    one, two = RunConfig.from_dict(config(1)), RunConfig.from_dict(config(2))
    assert one.run_id == RunConfig.from_dict(_config(colour_set, epochs=2, checkpoint_every_steps=1)).run_id
    assert two.run_id != one.run_id
    train_and_evaluate(config(2), tmp_path / "ref", echo=False)
    ref = RunDir(tmp_path / "ref").read_metrics()
    # 18 videos x 2 samples, batch 6 (3 videos of 2 samples): 6 steps, 36 samples an epoch
    assert [m["videos_seen"] for m in ref] == [36, 36]
    assert "epoch 1 step 1/6 " in (tmp_path / "ref" / "log.txt").read_text()

    def stop_after(rd, epoch, step, log):  # a stop request right after the checkpoint of (0, 3)
        if (epoch, step) == (0, 3):
            train.STOP.set()

    monkeypatch.setattr(train, "_pause_after_checkpoint", stop_after)
    try:
        with pytest.raises(train.TrainingInterrupted, match="epoch 0 step 4"):
            train_and_evaluate(config(2), tmp_path / "run", echo=False)
    finally:
        train.STOP.clear()
    monkeypatch.undo()
    train_and_evaluate(config(2), tmp_path / "run", echo=False)
    a, b = _weights(tmp_path / "ref"), _weights(tmp_path / "run")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [m["train_loss"] for m in RunDir(tmp_path / "run").read_metrics()] == pytest.approx(
        [m["train_loss"] for m in ref], abs=1e-9
    )


def test_a_batch_that_is_not_a_multiple_of_k_is_refused_by_name(colour_set):  # noqa: F811
    cfg = _config(colour_set)
    cfg["data"]["clips_per_decode"] = 4
    with pytest.raises(ConfigError, match=r"train.batch_size=6 is not a multiple of data.clips_per_decode=4: .*=4"):
        RunConfig.from_dict(cfg)
    cfg["data"]["clips_per_decode"] = 0
    with pytest.raises(ConfigError, match="data.clips_per_decode"):
        RunConfig.from_dict(cfg)
