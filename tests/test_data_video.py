"""VideoDataset on real mp4 files (PyAV-written, decord-read) and JPEG folders (Pillow).

Frame ``i`` of a test video is recognisable: its left half has grey level ``16 * (c // 16) + 8``
and its right half ``16 * (c % 16) + 8`` with code ``c = offset + i``, so the decoded tensor tells
exactly which frames (and which video) were sampled.
"""

import os

import numpy as np
import pytest
import torch

from harness.data import (
    CorruptVideoError,
    SnippetSampler,
    VideoDataset,
    build_loader,
    eval_transform,
    set_epoch,
    train_transform,
    write_mp4,
)

H, W = 48, 64


def coded_frames(n: int, offset: int = 0) -> np.ndarray:
    codes = offset + np.arange(n)
    assert codes.max() < 256
    out = np.empty((n, H, W, 3), np.uint8)
    out[:, :, : W // 2] = (16 * (codes // 16) + 8)[:, None, None, None]
    out[:, :, W // 2 :] = (16 * (codes % 16) + 8)[:, None, None, None]
    return out


def codes_of(x: torch.Tensor) -> np.ndarray:
    """uint8 (..., C, T, H, W) -> frame codes (..., T)."""
    x = x.float()
    left = x[..., 8:-8, 8 : W // 2 - 8].mean(dim=(-1, -2, -4))
    right = x[..., 8:-8, W // 2 + 8 : -8].mean(dim=(-1, -2, -4))
    hi = torch.round((left - 8) / 16)
    lo = torch.round((right - 8) / 16)
    return (16 * hi + lo).long().numpy()


def make_video(path, n, offset=0):
    write_mp4(path, coded_frames(n, offset), fps=25, qp=8)
    return path


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    root = tmp_path_factory.mktemp("videos")
    lengths = [60, 47, 120, 9]
    lines = []
    for k, n in enumerate(lengths):
        make_video(root / f"v{k}.mp4", n)
        lines.append(f"v{k}.mp4 {k}")
    (root / "list.txt").write_text("# test list\n" + "\n".join(lines) + "\n")
    return root, lengths


def test_val_reads_exactly_the_sampled_frames(videos):
    root, lengths = videos
    sampler = SnippetSampler(4, 4, 3, "val")
    ds = VideoDataset(root / "list.txt", root, sampler)
    assert ds.labels == [0, 1, 2, 3] and len(ds) == 4
    for i, n in enumerate(lengths):
        x, label = ds[i]
        assert x.dtype == torch.uint8 and x.shape == (4, 3, 4, H, W) and label == i
        assert np.array_equal(codes_of(x), sampler(n))


def test_train_offsets_deterministic_per_seed_epoch_index(videos):
    root, lengths = videos
    sampler = SnippetSampler(4, 4, 3, "train")
    ds = VideoDataset(root / "list.txt", root, sampler, seed=5)
    other = VideoDataset(root / "list.txt", root, sampler, seed=5)
    n = lengths[2]
    seen = set()
    for epoch in range(4):
        ds.set_epoch(epoch)
        other.set_epoch(epoch)
        got = codes_of(ds[2][0])
        assert np.array_equal(got, ds.sample_indices(2, n))
        assert np.array_equal(got, codes_of(other[2][0]))
        for k, row in enumerate(got):  # inside segment k
            assert (k * n) // 4 <= row[0] and row[-1] < ((k + 1) * n) // 4
        seen.add(got.tobytes())
    assert len(seen) > 1  # offsets change with the epoch


def test_test_mode_interleaved_groups_and_three_crops(videos):
    root, lengths = videos
    sampler = SnippetSampler(4, 2, 5, "test", test_groups=2)
    ds = VideoDataset(root / "list.txt", root, sampler)
    x, _ = ds[2]
    assert x.shape == (8, 3, 2, H, W)
    expected = sampler(lengths[2])
    assert np.array_equal(codes_of(x), expected)
    assert expected[:4, 0].tolist() == sorted(expected[:4, 0].tolist())  # group 0 runs through the video
    three = VideoDataset(root / "list.txt", root, sampler, transform=eval_transform(40, resize=44, crops=3))
    y, _ = three[2]
    assert y.shape == (3 * 8, 3, 2, 40, 40)  # V = groups x crops = 6 views of U = 4 snippets


def test_short_video_is_clamped_not_an_error(videos):
    root, lengths = videos
    sampler = SnippetSampler(4, 8, 8, "test")  # 8 snippets of span 57 on a 9-frame video
    x, _ = VideoDataset(root / "list.txt", root, sampler)[3]
    codes = codes_of(x)
    assert codes.shape == (8, 8) and codes.min() == 0 and codes.max() == lengths[3] - 1
    assert np.array_equal(codes, sampler(lengths[3]))


@pytest.mark.parametrize("mode", ["train", "val", "test"])
def test_cache_of_decoded_frames_gives_the_same_samples(videos, mode):
    root, lengths = videos
    sampler = SnippetSampler(4, 3, 4, mode, **({"test_groups": 2} if mode == "test" else {}))
    transform = train_transform(40, flip=True) if mode == "train" else eval_transform(40, resize=44, crops=1)
    plain = VideoDataset(root / "list.txt", root, sampler, transform=transform, seed=2)
    cached = VideoDataset(root / "list.txt", root, sampler, transform=transform, seed=2, cache_decoded=True)
    for epoch in range(3):
        plain.set_epoch(epoch)
        cached.set_epoch(epoch)
        for i in range(len(plain)):
            a, b = plain[i], cached[i]
            assert a[1] == b[1] and torch.equal(a[0], b[0]), (mode, epoch, i)
    assert sorted(cached._decoded) == [0, 1, 2, 3]
    assert [len(v) for _, v in sorted(cached._decoded.items())] == lengths  # every frame, decoded once


@pytest.fixture(scope="module")
def broken(tmp_path_factory):
    """4 good videos (codes identify the video) and 4 bad files of each kind."""
    root = tmp_path_factory.mktemp("broken")
    for k in range(4):
        make_video(root / f"good{k}.mp4", 40, offset=50 * k)
    data = (root / "good0.mp4").read_bytes()
    (root / "truncated.mp4").write_bytes(data[: len(data) // 2])
    (root / "zero.mp4").write_bytes(b"")
    (root / "random.mp4").write_bytes(np.random.default_rng(0).bytes(4000))
    lines = [
        "good0.mp4 0",
        "zero.mp4 1",
        "good1.mp4 1",
        "random.mp4 2",
        "good2.mp4 2",
        "truncated.mp4 3",
        "missing.mp4 0",
        "good3.mp4 3",
    ]
    (root / "list.txt").write_text("\n".join(lines) + "\n")
    return root


@pytest.mark.parametrize(
    "index,name,reason",
    [
        (1, "zero.mp4", "empty"),
        (3, "random.mp4", "undecodable"),
        (5, "truncated.mp4", "undecodable"),
        (6, "missing.mp4", "missing"),
    ],
)
@pytest.mark.parametrize("cache_decoded", [False, True])
def test_bad_files_raise_named_error(broken, index, name, reason, cache_decoded):
    ds = VideoDataset(broken / "list.txt", broken, SnippetSampler(2, 2, 2, "val"), cache_decoded=cache_decoded)
    with pytest.raises(CorruptVideoError) as e:
        ds[index]
    assert e.value.reason == reason and e.value.path == str(broken / name)
    assert name in str(e.value) and f"list.txt:{index + 1}" in str(e.value)


@pytest.mark.parametrize("cache_decoded", [False, True])
def test_skip_replaces_deterministically_and_counts(broken, cache_decoded):
    sampler = SnippetSampler(2, 2, 2, "val")
    ds = VideoDataset(broken / "list.txt", broken, sampler, on_error="skip", seed=3, cache_decoded=cache_decoded)
    first = []
    for i in range(len(ds)):
        x, label = ds[i]
        video = int(codes_of(x)[0, 0]) // 50  # which good video was returned
        assert label == video  # the label travels with its video, never shifted
        if i in (0, 2, 4, 7):
            assert video == {0: 0, 2: 1, 4: 2, 7: 3}[i]
        first.append(video)
    skipped = ds.pop_skipped()
    assert [(s["line"], s["reason"]) for s in skipped] == [
        (2, "empty"),
        (4, "undecodable"),
        (6, "undecodable"),
        (7, "missing"),
    ]
    assert all(s["annotation"] == str(broken / "list.txt") for s in skipped)
    assert ds.num_skipped() == 0 and ds.pop_skipped() == []
    again = VideoDataset(broken / "list.txt", broken, sampler, on_error="skip", seed=3)
    assert [int(codes_of(again[i][0])[0, 0]) // 50 for i in range(len(ds))] == first


def test_skip_table_is_shared_with_loader_workers(broken):
    ds = VideoDataset(broken / "list.txt", broken, SnippetSampler(2, 2, 2, "val"), on_error="skip")
    loader = build_loader(ds, batch_size=3, shuffle=False, seed=0, num_workers=2)
    labels = torch.cat([y for _, y, _ in loader])
    assert len(labels) == len(ds)
    assert sorted(s["index"] for s in ds.pop_skipped()) == [1, 3, 5, 6]


def test_loader_is_independent_of_worker_count_follows_set_epoch_and_resumes_mid_epoch(videos):
    root, _ = videos
    ds = VideoDataset(
        root / "list.txt",
        root,
        SnippetSampler(2, 3, 2, "train"),
        transform=train_transform(32, flip=True, area=(0.3, 1.0)),
        seed=11,
    )

    def epoch_batches(loader, epoch, start=0):
        set_epoch(loader, epoch, start=start)
        return [(x.clone(), y.clone(), i.clone()) for x, y, i in loader]

    single = build_loader(ds, batch_size=2, shuffle=True, seed=4, num_workers=0)
    multi = build_loader(ds, batch_size=2, shuffle=True, seed=4, num_workers=2)  # persistent workers
    for epoch in (0, 1):
        a, b = epoch_batches(single, epoch), epoch_batches(multi, epoch)
        assert len(a) == len(b) == 2
        for (xa, ya, ia), (xb, yb, ib) in zip(a, b):
            assert xa.shape == (2, 2, 3, 3, 32, 32) and xa.dtype == torch.uint8
            assert torch.equal(xa, xb) and torch.equal(ya, yb) and torch.equal(ia, ib)
        assert sorted(torch.cat([i for _, _, i in a]).tolist()) == [0, 1, 2, 3]
        if epoch == 0:
            e0 = a
    assert any(not torch.equal(x0, x1) for (x0, _, _), (x1, _, _) in zip(e0, a))  # epoch 1 differs
    # mid-epoch resume (after 3 samples): the remaining samples exactly, clips included, with workers
    rest = torch.cat([x for x, _, _ in epoch_batches(multi, 0, start=3)])
    assert torch.equal(rest, torch.cat([x for x, _, _ in e0])[3:])
    assert torch.equal(
        torch.cat([i for _, _, i in epoch_batches(single, 0, start=3)]), torch.cat([i for _, _, i in e0])[3:]
    )


def test_distributed_eval_shards_cover_every_video_once(videos):
    root, _ = videos
    ds = VideoDataset(root / "list.txt", root, SnippetSampler(2, 2, 2, "val"), transform=eval_transform(32))
    seen = []
    for rank in range(3):
        loader = build_loader(ds, batch_size=2, shuffle=False, seed=0, num_workers=0, rank=rank, world_size=3)
        seen += [int(y) for _, ys, _ in loader for y in ys]
    assert sorted(seen) == [0, 1, 2, 3]


def test_raw_frame_folders(tmp_path):
    from PIL import Image

    n = 30
    frames = coded_frames(n, offset=7)
    folder = tmp_path / "frames" / "clip a"
    folder.mkdir(parents=True)
    for i, f in enumerate(frames):
        Image.fromarray(f).save(folder / f"img_{i + 1:05d}.jpg", quality=95)
    (tmp_path / "broken").mkdir()
    Image.fromarray(frames[0]).save(tmp_path / "broken" / "img_00001.jpg")
    (tmp_path / "list.txt").write_text(f"clip a {n} 4\nbroken 5 1\n")
    sampler = SnippetSampler(3, 2, 4, "val")
    ds = VideoDataset(tmp_path / "list.txt", tmp_path / "frames", sampler, format="frames")
    x, label = ds[0]
    assert label == 4 and x.shape == (3, 3, 2, H, W)
    assert np.array_equal(codes_of(x), 7 + sampler(n))
    ds_root = VideoDataset(tmp_path / "list.txt", tmp_path, sampler, format="frames")
    with pytest.raises(CorruptVideoError, match=r"frame file .*img_0000\d\.jpg not found.*") as e:
        ds_root[1]
    assert "list.txt:2" in str(e.value)
    template = tmp_path / "t"
    template.mkdir()
    for i in range(n):
        Image.fromarray(frames[i]).save(template / f"{i:04d}.jpg", quality=95)
    (tmp_path / "t.txt").write_text(f"t {n} 0\n")
    ds0 = VideoDataset(
        tmp_path / "t.txt", tmp_path, sampler, format="frames", frame_template="{:04d}.jpg", frame_start=0
    )
    assert np.array_equal(codes_of(ds0[0][0]), 7 + sampler(n))


def test_kinetics_csv_dataset(tmp_path):
    root = tmp_path / "k400"
    os.makedirs(root / "tai chi")
    make_video(root / "tai chi" / "abc_000004_000014.mp4", 20, offset=100)
    (tmp_path / "val.csv").write_text("label,youtube_id,time_start,time_end,split\ntai chi,abc,4,14,val\n")
    (tmp_path / "classes.txt").write_text("archery\ntai chi\n")
    ds = VideoDataset(
        tmp_path / "val.csv",
        root,
        SnippetSampler(2, 2, 1, "val"),
        format="kinetics_csv",
        class_index=tmp_path / "classes.txt",
    )
    x, label = ds[0]
    assert label == 1 and np.array_equal(codes_of(x), 100 + SnippetSampler(2, 2, 1, "val")(20))


def test_dataset_argument_errors(videos):
    root, _ = videos
    with pytest.raises(ValueError, match="on_error"):
        VideoDataset(root / "list.txt", root, SnippetSampler(), on_error="ignore")
