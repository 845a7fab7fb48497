"""`dsa-harness data bench`: the harness's data path against the raw decoder on the same frames, in
interleaved rounds (harness/measure/loader.py), on real mp4 files and JPEG folders."""

from __future__ import annotations

import json

import av
import numpy as np
import pytest
from PIL import Image

from harness.cli import main
from harness.data.sampling import SnippetSampler
from harness.data.video import VideoDataset
from harness.measure.loader import _raw_decode, _raw_frames, bench_loader


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """4 real mp4 files (64x48, 30 frames, GOP 10) and the same frames as JPEG folders, with both lists."""
    root = tmp_path_factory.mktemp("bench")
    rng = np.random.default_rng(0)
    videos, frames = [], []
    for v in range(4):
        with av.open(str(root / f"{v}.mp4"), "w") as c:
            s = c.add_stream("libx264", rate=25)
            s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
            s.options = {"g": "10"}
            (root / f"f{v}").mkdir()
            for i in range(30):
                a = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
                Image.fromarray(a).save(root / f"f{v}" / f"img_{i + 1:05d}.jpg", quality=90)
                for p in s.encode(av.VideoFrame.from_ndarray(a, format="rgb24")):
                    c.mux(p)
            for p in s.encode():
                c.mux(p)
        videos.append(f"{v}.mp4 {v % 2}")
        frames.append(f"f{v} 30 {v % 2}")
    (root / "videos.txt").write_text("\n".join(videos) + "\n")
    (root / "frames.txt").write_text("\n".join(frames) + "\n")
    return root


SMALL = {"num_snippets": 2, "num_frames": 3, "frame_interval": 2, "size": 32, "rounds": 2}


@pytest.mark.parametrize("backend", ["decord", "pyav"])
def test_raw_and_harness_read_the_same_frames(clips, backend):
    """What is timed side by side is the same work: the raw decoder's frames at the sampler's indices are the
    harness's decoded frames (before its crop), bit for bit."""
    sampler = SnippetSampler(2, 3, 2, "train")
    ds = VideoDataset(clips / "videos.txt", clips, sampler, video_backend=backend)
    for i, record in enumerate(ds.records):
        idx = ds.sample_indices(i, 30).ravel()
        raw = _raw_decode(backend, record.path, idx)
        mine = ds.load(i).permute(0, 2, 3, 4, 1).reshape(-1, 48, 64, 3).numpy()
        assert raw.shape == (6, 48, 64, 3) and np.array_equal(raw, mine)
    frames = VideoDataset(clips / "frames.txt", clips, sampler, format="frames")
    idx = frames.sample_indices(0, 30).ravel()
    raw = _raw_frames(frames.records[0].path, idx, "img_{:05d}.jpg", 1)
    assert np.array_equal(raw, frames.load(0).permute(0, 2, 3, 4, 1).reshape(-1, 48, 64, 3).numpy())


def test_bench_records_videos_per_second_and_a_ratio_with_its_interval(clips):
    record = bench_loader(str(clips / "videos.txt"), backends=["decord", "pyav"], videos=3, **SMALL)
    assert set(record["results"]) == {"decord", "pyav"} and record["videos"] == 3 and record["rounds"] == 2
    for r in record["results"].values():
        assert r["raw_videos_per_s"] > 0 and r["harness_videos_per_s"] > 0
        assert r["ci_low"] <= r["harness_over_raw"] <= r["ci_high"]
        assert len(r["seconds"]["raw"]) == len(r["seconds"]["harness"]) == 2
    assert record["hardware"]["cpu_count"] >= 1 and "git_commit" in record and record["format"] == "video"
    frames = bench_loader(str(clips / "frames.txt"), format="frames", videos=2, **SMALL)
    assert list(frames["results"]) == ["frames"] and frames["results"]["frames"]["harness_videos_per_s"] > 0


def test_data_bench_command_prints_and_writes_the_record_and_refuses_bad_input(clips, tmp_path, capsys):
    out = tmp_path / "bench.json"
    argv = ["data", "bench", str(clips / "videos.txt"), "--videos", "2", "--rounds", "2", "--size", "32"]
    argv += ["--snippets", "2", "--frames", "2", "--interval", "2", "--out", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "harness / raw" in printed and "decord" in printed and "95% interval" in printed
    assert json.loads(out.read_text())["results"]["decord"]["harness_videos_per_s"] > 0
    assert main([*argv[:3], "--backend", "ffmpeg", "--out", str(tmp_path / "x.json")]) == 2
    err = capsys.readouterr().err
    assert "--backend ffmpeg: unknown" in err and "installed: decord, pyav" in err
    assert len(err.strip().splitlines()) == 1
    assert main([*argv[:3], "--rounds", "0", "--out", str(tmp_path / "x.json")]) == 2
    assert "--rounds 0: must be >= 1" in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists()
