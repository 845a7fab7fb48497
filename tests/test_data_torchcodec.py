"""The torchcodec backend (data.video_backend: torchcodec) on real H.264 files: the same frames as decord and
PyAV, the same samples, the same training run; and the refusal of a backend that cannot decode here.

These tests need torchcodec *and* FFmpeg's shared libraries (``make setup`` installs torchcodec; the libraries
come from the system: apt-get install libavdevice59). Where torchcodec cannot load they are skipped with the
reason; the refusal tests run everywhere.
"""

import json

import numpy as np
import pytest
import torch
from test_data_backend import moving, write_with_bframes

from harness.cli import main
from harness.data import SnippetSampler, VideoDataset, eval_transform, train_transform, write_mp4
from harness.data.backends import DECODERS, installed_backends, unavailable_reason
from harness.data.video import CorruptVideoError, decode_frames, open_video

needs_torchcodec = pytest.mark.skipif(
    unavailable_reason("torchcodec") is not None, reason=f"torchcodec {unavailable_reason('torchcodec')}"
)


@needs_torchcodec
@pytest.mark.parametrize(
    "name, shape, writer",
    [
        ("gop.mp4", (37, 36, 64), "mp4"),
        ("odd.mp4", (25, 50, 66), "mp4"),
        ("small.mp4", (20, 32, 32), "mp4"),  # the embedded sets' size
        ("w48.mp4", (21, 64, 48), "mp4"),  # a width decord 0.6 cannot decode
        ("bframes.mp4", (45, 40, 80), "bframes"),
        ("bframes.mkv", (33, 48, 96), "bframes"),
    ],
)
def test_torchcodec_decodes_the_frames_of_pyav_and_decord(tmp_path, name, shape, writer):
    frames, path = moving(*shape), tmp_path / name
    if writer == "mp4":
        write_mp4(path, frames, gop=8)
    else:
        write_with_bframes(path, frames, "matroska" if name.endswith(".mkv") else "mp4")
    reader = open_video(str(path), backend="torchcodec")
    assert type(reader).__name__ == "TorchCodecReader" and reader.backend == "torchcodec" and len(reader) == shape[0]
    pyav = open_video(str(path), backend="pyav")
    n = shape[0]
    for indices in (np.arange(n), np.array([[n - 1, 3, 3, 0], [7, 8, 9, n // 2]])):
        got = decode_frames(reader, indices, str(path))
        assert got.dtype == np.uint8 and got.shape == (*indices.shape, *shape[1:], 3)
        assert np.array_equal(got, decode_frames(pyav, indices, str(path)))
        if shape[2] != 48:
            assert np.array_equal(got, decode_frames(open_video(str(path), backend="decord"), indices, str(path)))
    assert reader.fps == pytest.approx(pyav.fps)


@needs_torchcodec
@pytest.mark.parametrize("mode", ["train", "test"])
def test_video_dataset_samples_are_the_same_with_torchcodec(tmp_path, mode):
    write_mp4(tmp_path / "a.mp4", moving(50, 56, 80, seed=3), gop=10)
    write_with_bframes(tmp_path / "b.mp4", moving(41, 48, 64, seed=4))
    (tmp_path / "list.txt").write_text("a.mp4 0\nb.mp4 1\n")
    sampler = SnippetSampler(3, 2, 4, mode, **({"test_groups": 2} if mode == "test" else {}))
    transform = train_transform(32) if mode == "train" else eval_transform(32, resize=40, crops=3)
    samples = {}
    for backend in ("auto", "torchcodec"):
        ds = VideoDataset(tmp_path / "list.txt", tmp_path, sampler, transform, seed=7, video_backend=backend)
        ds.set_epoch(2)
        samples[backend] = [ds[i] for i in range(len(ds))]
    for (x, label), (y, other) in zip(samples["auto"], samples["torchcodec"]):
        assert label == other and torch.equal(x, y)


@needs_torchcodec
def test_a_damaged_file_is_named_by_torchcodec(tmp_path):
    good = tmp_path / "good.mp4"
    write_mp4(good, moving(30, 32, 32), gop=30)
    (tmp_path / "bad.mp4").write_bytes(good.read_bytes()[: len(good.read_bytes()) // 8])
    (tmp_path / "text.mp4").write_text("not a video\n")
    with pytest.raises(CorruptVideoError, match=r"undecodable video .*text\.mp4 \(annotation l\.3\): torchcodec"):
        open_video(str(tmp_path / "text.mp4"), where="l.3", backend="torchcodec")
    with pytest.raises(CorruptVideoError, match=r"bad\.mp4"):
        reader = open_video(str(tmp_path / "bad.mp4"), backend="torchcodec")
        decode_frames(reader, np.arange(len(reader)), str(tmp_path / "bad.mp4"))


@needs_torchcodec
def test_a_training_run_with_torchcodec_equals_the_run_with_decord(tmp_path):
    """The bar check of the data-path issue: `dsa-harness train ... --set data.video_backend=torchcodec` on real
    mp4 files; the samples are the same tensors, so the run ends with the weights and test metrics of the same
    run read by decord (auto)."""
    rng = np.random.default_rng(0)
    lines = []
    for i in range(9):
        frames = np.full((16, 32, 32, 3), 40, np.uint8)
        frames[..., i % 3] = 200
        write_mp4(tmp_path / f"{i}.mp4", frames + rng.integers(0, 30, frames.shape, dtype=np.uint8), gop=8)
        lines.append(f"{i}.mp4 {i % 3}")
    (tmp_path / "train.txt").write_text("\n".join(lines[:6]) + "\n")
    (tmp_path / "test.txt").write_text("\n".join(lines[6:]) + "\n")
    finals = {}
    for backend in ("auto", "torchcodec"):
        out = tmp_path / backend
        argv = ["train", "tsn_r18", "--data", str(tmp_path / "train.txt"), "--test", str(tmp_path / "test.txt")]
        argv += ["--out", str(out), "--epochs", "1", "--batch-size", "3", "--lr-batch", "3", "--size", "32"]
        argv += ["--resize", "32", "--frame-interval", "2", "--workers", "0", "--threads", "1", "--test-groups", "1"]
        argv += ["--crops", "1", "--warmup-epochs", "0", "--set", "model.width=8", "--set", "model.num_frames=2"]
        argv += ["--set", f"data.video_backend={backend}", "--quiet"]
        assert main(argv) == 0
        finals[backend] = json.loads((out / "final.json").read_text())
        assert json.loads((out / "config.json").read_text())["data"]["video_backend"] == backend
    assert finals["torchcodec"]["run_id"] == finals["auto"]["run_id"]  # the backend is not part of the run's identity
    for key in ("top1", "top5", "mean_class_acc"):
        assert finals["torchcodec"]["test"][key] == finals["auto"]["test"][key]
    weights = [torch.load(tmp_path / b / "checkpoint.pt", weights_only=True)["model"] for b in ("auto", "torchcodec")]
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_a_backend_that_cannot_decode_here_is_refused_in_one_line(tmp_path, capsys):
    missing = [b for b in DECODERS if b not in installed_backends()]
    if not missing:
        pytest.skip("every decoder is installed here")
    backend = missing[0]
    (tmp_path / "list.txt").write_text("a.mp4 0\n")
    with pytest.raises(ValueError, match=rf"data.video_backend='{backend}': .*; installed: .*; to install it: "):
        VideoDataset(tmp_path / "list.txt", tmp_path, SnippetSampler(1, 1, 1, "val"), video_backend=backend)
    argv = ["data", "bench", str(tmp_path / "list.txt"), "--backend", backend, "--out", str(tmp_path / "x.json")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"--backend={backend!r}" in err and "installed: " in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x.json").exists()


@needs_torchcodec
def test_auto_decodes_with_torchcodec_here_and_falls_back_to_pyav(tmp_path, monkeypatch):
    """Where torchcodec loads, ``auto`` is torchcodec (the fastest exact decoder installed, see
    harness/data/backends.py), the 48-px file decord cannot read included; a file it fails on is read by PyAV
    (a failure forced here: no real file torchcodec fails on and PyAV reads is known), and remembered."""
    from harness.data.backends import auto_decoder
    from harness.data.torchcodec_video import TorchCodecReader
    from harness.data.video import fallback_cause

    assert auto_decoder() == "torchcodec"
    write_mp4(tmp_path / "w48.mp4", moving(21, 64, 48), gop=8)
    reader = open_video(str(tmp_path / "w48.mp4"))
    assert type(reader).__name__ == "TorchCodecReader" and reader.fallback is None
    pyav = open_video(str(tmp_path / "w48.mp4"), backend="pyav")
    assert np.array_equal(decode_frames(reader, np.arange(21)), decode_frames(pyav, np.arange(21)))
    write_mp4(tmp_path / "x.mp4", moving(10, 32, 32), gop=8)

    def fails(self, indices):
        raise RuntimeError("Requested next frame while there are no more frames left to decode.")

    monkeypatch.setattr(TorchCodecReader, "frames", fails)
    got = decode_frames(open_video(str(tmp_path / "x.mp4")), np.arange(10), str(tmp_path / "x.mp4"))
    assert np.array_equal(got, decode_frames(open_video(str(tmp_path / "x.mp4"), backend="pyav"), np.arange(10)))
    assert "torchcodec failed (Requested next frame" in fallback_cause(str(tmp_path / "x.mp4"))
    assert type(open_video(str(tmp_path / "x.mp4"))).__name__ == "PyAVReader"  # remembered in this process
    with pytest.raises(
        CorruptVideoError, match="decoding frames failed: Requested next frame"
    ):  # explicit: no fallback
        decode_frames(open_video(str(tmp_path / "w48.mp4"), backend="torchcodec"), np.arange(3))
