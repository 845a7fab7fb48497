"""`data prepare ... --extract-frames` (harness.data.extract) on real mp4 files: the frames of the videos as JPEG
folders the frames format reads, resumable, refusing other settings, listing undecodable videos, stopping on
a full disk (a real tmpfs where this machine lets us mount one)."""

import json
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image
from test_data_backend import moving

from harness.cli import main
from harness.data import SnippetSampler, VideoDataset, write_mp4
from harness.data.annotations import read_annotations
from harness.data.extract import DiskFullError, extract_frames
from harness.data.video import decode_frames, open_video
from harness.errors import ConfigError


@pytest.fixture
def videos(tmp_path):
    root = tmp_path / "set"
    (root / "v").mkdir(parents=True)
    for i in range(5):
        write_mp4(root / "v" / f"{i}.mp4", moving(12 + i, 48, 64, seed=i), gop=6)
    (root / "v" / "bad.mp4").write_text("not a video\n")
    (root / "train.txt").write_text("v/0.mp4 0\nv/1.mp4 1\nv/bad.mp4 0\nv/2.mp4 0\n")
    (root / "val.txt").write_text("v/3.mp4 1\nv/4.mp4 0\n")
    return root


def _splits(root):
    return {s: read_annotations(root / f"{s}.txt", "video", root) for s in ("train", "val")}


def test_frames_are_the_videos_frames_and_the_frames_format_reads_them(videos, tmp_path):
    out = tmp_path / "frames_out"
    s = extract_frames(_splits(videos), videos, out, short_side=None, quality=100, workers=2, progress=False)
    assert s["splits"]["train"] == {**s["splits"]["train"], "videos": 4, "extracted": 3, "kept": 0, "unreadable": 1}
    assert [(e["split"], e["line"].rsplit(":", 1)[1]) for e in s["unreadable"]] == [("train", "3")]
    lines = (out / "frames_train.txt").read_text().splitlines()
    assert lines == ["v/0 12 0", "v/1 13 1", "v/2 14 0"]  # the unreadable video is left out, counts are frames
    reference = decode_frames(open_video(str(videos / "v" / "1.mp4")), np.arange(13))
    ds = VideoDataset(out / "frames_train.txt", out / "frames", SnippetSampler(1, 13, 1, "val"), format="frames")
    frames = ds.load(1).permute(0, 2, 3, 4, 1)[0].numpy()  # (T, H, W, C)
    assert frames.shape == reference.shape and np.abs(frames.astype(int) - reference).mean() < 4  # JPEG, 4:2:0
    dist = np.abs(frames.reshape(13, 1, -1).astype(int) - reference.reshape(1, 13, -1)).mean(-1)
    assert dist.argmin(1).tolist() == list(range(13))  # frame i is frame i of the video
    assert json.loads((out / "extract.json").read_text())["complete"] is True
    small = extract_frames(_splits(videos), videos, tmp_path / "small", short_side=24, workers=1, progress=False)
    ds = VideoDataset(small["data"]["val"], small["data"]["root"], SnippetSampler(1, 2, 1, "val"), format="frames")
    assert ds.load(0).shape == (1, 3, 2, 24, 32)  # short side 24, aspect kept
    big = extract_frames(_splits(videos), videos, tmp_path / "big", short_side=256, workers=1, progress=False)
    ds = VideoDataset(big["data"]["val"], big["data"]["root"], SnippetSampler(1, 2, 1, "val"), format="frames")
    assert ds.load(0).shape == (1, 3, 2, 48, 64)  # never enlarged


def test_a_killed_extraction_continues_and_other_settings_are_refused(videos, tmp_path):
    out = tmp_path / "o"
    extract_frames(_splits(videos), videos, out, short_side=32, workers=1, progress=False)
    # as a killed run leaves it: one video never finished (a half-written .partial), one not started
    shutil.move(out / "frames" / "v" / "1", out / "frames" / "v" / "1.partial")
    (out / "frames" / "v" / "1.partial" / "img_00013.jpg").write_bytes(b"half")
    shutil.rmtree(out / "frames" / "v" / "3")
    kept = (out / "frames" / "v" / "0" / "img_00001.jpg").stat().st_mtime_ns
    s = extract_frames(_splits(videos), videos, out, short_side=32, workers=1, progress=False)
    assert (s["splits"]["train"]["extracted"], s["splits"]["train"]["kept"]) == (1, 2)
    assert (s["splits"]["val"]["extracted"], s["splits"]["val"]["kept"]) == (1, 1)
    assert not list((out / "frames").rglob("*.partial"))
    assert (out / "frames" / "v" / "0" / "img_00001.jpg").stat().st_mtime_ns == kept
    assert len(list((out / "frames" / "v" / "1").iterdir())) == 13
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    with pytest.raises(ConfigError, match=r"other settings \(short_side 32 there, 48 asked; quality 95 there, 80"):
        extract_frames(_splits(videos), videos, out, short_side=48, quality=80, workers=1, progress=False)
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == before  # nothing touched
    with pytest.raises(ConfigError, match="--quality 0: must be in 1..100"):
        extract_frames(_splits(videos), videos, tmp_path / "q", quality=0, progress=False)


@pytest.fixture
def tiny_disk(tmp_path):
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=400k", "tmpfs", str(mnt)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    yield mnt
    subprocess.run(["umount", str(mnt)], check=False)


def test_a_full_disk_stops_the_extraction_and_leaves_nothing_half_written(tmp_path, tiny_disk):
    root = tmp_path / "set"
    root.mkdir()
    write_mp4(root / "a.mp4", moving(2, 96, 128, seed=0), qp=0)  # the estimate sees this short one
    for i in range(3):
        write_mp4(root / f"b{i}.mp4", moving(60, 96, 128, seed=i), qp=0)
    (root / "list.txt").write_text("a.mp4 0\nb0.mp4 1\nb1.mp4 0\nb2.mp4 1\n")
    splits = {"train": read_annotations(root / "list.txt", "video", root)}
    with pytest.raises(
        DiskFullError,
        match=r"disk full while writing .*b\d\.mp4 into .*\(No space left on device\): free space, then re-run",
    ):
        extract_frames(splits, root, tiny_disk, short_side=None, quality=100, workers=1, progress=False)
    assert not list(tiny_disk.rglob("*.partial"))
    done = [p for p in (tiny_disk / "frames").iterdir() if p.is_dir()]
    assert all(len(list(p.iterdir())) == {"a": 2}.get(p.name, 60) for p in done)  # only complete folders
    # a disk too small for the estimate is refused before anything is written
    shutil.rmtree(tiny_disk / "frames")
    (tiny_disk / "extract.json").unlink()
    splits = {"train": read_annotations(root / "list.txt", "video", root)[1:]}
    with pytest.raises(DiskFullError, match=r"needs about .* GB \(from the first video\), .* GB free"):
        extract_frames(splits, root, tiny_disk, short_side=None, quality=100, workers=1, progress=False)
    assert not (tiny_disk / "frames").exists() or not any((tiny_disk / "frames").iterdir())


def test_data_prepare_lists_extract_frames_prints_how_to_train_on_them(videos, tmp_path, capsys):
    out = tmp_path / "p"
    argv = ["data", "prepare", "lists", "--train", str(videos / "train.txt"), "--val", str(videos / "val.txt")]
    argv += ["--out", str(out), "--extract-frames", "--short-side", "32", "--workers", "1", "--quiet"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "train: 3 extracted, 0 already there, 1 unreadable" in printed and "val: 2 extracted" in printed
    assert f"--set data.format=frames --set data.root={out / 'frames'}" in printed
    assert main(argv) == 0 and "train: 0 extracted, 3 already there" in capsys.readouterr().out
    assert main(["data", "prepare", "lists", "--train", str(videos / "train.txt"), "--out", str(out)]) == 2
    assert "layout lists needs the video lists: give --val" in capsys.readouterr().err


def test_transcode_re_encodes_at_a_short_side_with_constant_rate_and_gop_and_resumes(videos, tmp_path, capsys):
    import av

    from harness.data.extract import transcode_videos

    out = tmp_path / "t"
    s = transcode_videos(_splits(videos), videos, out, short_side=32, gop=4, fps=10, workers=2, progress=False)
    assert (s["splits"]["train"]["extracted"], s["splits"]["train"]["unreadable"]) == (3, 1)
    assert (out / "transcoded_train.txt").read_text().splitlines() == ["v/0.mp4 0", "v/1.mp4 1", "v/2.mp4 0"]
    for i, n in ((0, 12), (1, 13), (4, 16)):
        with av.open(str(out / "transcoded" / "v" / f"{i}.mp4")) as c:
            stream = c.streams.video[0]
            assert (stream.codec_context.height, stream.codec_context.width) == (32, 42)  # 48x64 -> short side 32
            packets = [p for p in c.demux(stream) if p.size]
            keys = [j for j, p in enumerate(sorted(packets, key=lambda p: p.pts)) if p.is_keyframe]
            assert len(packets) == n and keys == list(range(0, n, 4))  # every frame kept, a keyframe every 4
            assert float(stream.average_rate) == 10
        reference = decode_frames(open_video(str(videos / "v" / f"{i}.mp4")), np.arange(n))
        got = decode_frames(open_video(str(out / "transcoded" / "v" / f"{i}.mp4")), np.arange(n))
        # frame j is frame j of the source (nearest, on a coarse grid: H.264 at another size is not bit-exact)
        resized = np.stack([np.asarray(Image.fromarray(f).resize((42, 32))) for f in reference]).astype(int)
        coarse, ref = got.astype(int)[:, ::8, ::8].reshape(n, 1, -1), resized[:, ::8, ::8].reshape(1, n, -1)
        assert np.abs(coarse - ref).mean(-1).argmin(1).tolist() == list(range(n))
    # a killed run: a half-written .partial.mp4 is redone, the rest kept
    (out / "transcoded" / "v" / "1.mp4").rename(out / "transcoded" / "v" / "1.mp4.partial.mp4")
    again = transcode_videos(_splits(videos), videos, out, short_side=32, gop=4, fps=10, workers=1, progress=False)
    assert (again["splits"]["train"]["extracted"], again["splits"]["train"]["kept"]) == (1, 2)
    assert not list(out.rglob("*.partial.mp4"))
    with pytest.raises(ConfigError, match=r"other settings \(gop 4 there, 8 asked\)"):
        transcode_videos(_splits(videos), videos, out, short_side=32, gop=8, fps=10, progress=False)
    argv = ["data", "prepare", "lists", "--train", str(videos / "train.txt"), "--val", str(videos / "val.txt")]
    assert main([*argv, "--out", str(tmp_path / "c"), "--transcode", "--gop", "0", "--quiet"]) == 2
    assert "--gop 0: must be >= 1" in capsys.readouterr().err
    assert main([*argv, "--out", str(tmp_path / "c"), "--transcode", "--extract-frames", "--quiet"]) == 2
    assert "one at a time" in capsys.readouterr().err
