"""Video backends (data.video_backend: auto | decord | pyav) on real H.264 files written with PyAV (torchcodec:
tests/test_data_torchcodec.py).

decord 0.6 cannot decode H.264 at some widths (16, 24, 48, 72 px: its internal size check fails);
``auto`` reads such a file with PyAV, which gives the same frames as decord wherever both can read.
"""

from fractions import Fraction

import numpy as np
import pytest
import torch

from harness.cli import main
from harness.config import NOT_IDENTITY, RunConfig
from harness.data import SnippetSampler, VideoDataset, eval_transform, train_transform, write_mp4
from harness.data.backends import auto_decoder
from harness.data.video import CorruptVideoError, decode_frames, open_video


def moving(n: int, h: int, w: int, seed: int = 0) -> np.ndarray:
    """A coloured gradient moving right, with noise: every frame differs, chroma matters."""
    rng = np.random.default_rng(seed)
    x = np.arange(w)[None, None, :] * np.ones((n, h, 1))
    shift = 3 * np.arange(n)[:, None, None]
    frames = np.stack([(x + shift) * 255 / w % 256, (x * 2 + shift) % 256, 255 - (x + shift) * 255 / w % 256], -1)
    return (frames + rng.normal(0, 12, frames.shape)).clip(0, 255).astype(np.uint8)


def write_with_bframes(path, frames: np.ndarray, container: str = "mp4") -> None:
    """libx264 defaults (B-frames, so decode order != presentation order)."""
    import av

    with av.open(str(path), "w", format=container) as out:
        stream = out.add_stream("libx264", rate=Fraction(25))
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        stream.codec_context.thread_count = 1
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def decord_fails_at(path) -> bool:
    import decord

    from harness.data.video import DECODER_ERRORS

    try:
        decord.VideoReader(str(path), num_threads=1).get_batch([0, 1]).asnumpy()
    except DECODER_ERRORS:
        return True
    return False


@pytest.fixture(scope="module")
def narrow(tmp_path_factory):
    """A 48-pixel-wide H.264 file (decord fails on it) and the frames it was made from."""
    root = tmp_path_factory.mktemp("narrow")
    frames = moving(40, 64, 48, seed=1)
    write_mp4(root / "w48.mp4", frames, qp=4)
    if not decord_fails_at(root / "w48.mp4"):
        pytest.skip("this decord build reads 48-pixel-wide H.264")
    write_mp4(root / "w64.mp4", moving(30, 48, 64, seed=2), qp=4)
    (root / "list.txt").write_text("w48.mp4 0\nw64.mp4 1\n")
    return root, frames


@pytest.mark.parametrize(
    "name, shape, writer",
    [
        ("gop.mp4", (37, 36, 64), "write_mp4"),
        ("odd.mp4", (25, 50, 66), "write_mp4"),
        ("wide.mp4", (20, 72, 128), "write_mp4"),
        ("bframes.mp4", (45, 40, 80), "bframes"),
        ("bframes.mkv", (33, 48, 96), "bframes"),
    ],
)
def test_pyav_decodes_the_same_frames_as_decord(tmp_path, name, shape, writer):
    frames = moving(*shape)
    path = tmp_path / name
    if writer == "write_mp4":
        write_mp4(path, frames, gop=8)
    else:
        write_with_bframes(path, frames, "matroska" if name.endswith(".mkv") else "mp4")
    readers = {b: open_video(str(path), backend=b) for b in ("decord", "pyav", "auto")}
    auto = {"decord": "DecordReader", "torchcodec": "TorchCodecReader"}[auto_decoder()]  # the fastest installed
    assert [type(r).__name__ for r in readers.values()] == ["DecordReader", "PyAVReader", auto]
    assert {len(r) for r in readers.values()} == {shape[0]}
    n = shape[0]
    for indices in (np.arange(n), np.array([[n - 1, 3, 3, 0], [7, 8, 9, n // 2]])):
        got = {b: decode_frames(r, indices, str(path)) for b, r in readers.items()}
        assert got["decord"].dtype == np.uint8 and got["decord"].shape == (*indices.shape, *shape[1:], 3)
        assert np.array_equal(got["decord"], got["pyav"]) and np.array_equal(got["decord"], got["auto"])
    assert readers["auto"].fallback is None


def write_gops(path, frames: np.ndarray, gop: int, bframes: int, container: str = "mp4") -> None:
    """libx264, an IDR keyframe every ``gop`` frames (no scene cuts), ``bframes`` B-frames between references."""
    import av

    with av.open(str(path), "w", format=container) as out:
        stream = out.add_stream("libx264", rate=Fraction(25))
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        stream.codec_context.thread_count = 1
        stream.options = {"x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0:bframes={bframes}:open-gop=0"}
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def decoded_from_the_start(path) -> np.ndarray:
    """Every frame, decoded in one pass from the first packet (no seeking): the reference."""
    import av

    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(container.streams.video[0])])


@pytest.mark.parametrize("name, bframes", [("gop12.mp4", 0), ("gop12_b.mp4", 3), ("gop12_b.mkv", 3)])
def test_pyav_seeks_to_the_keyframe_before_the_wanted_frames_and_gives_the_frames_of_decoding_from_the_start(
    tmp_path, name, bframes
):
    import av

    n, gop = 62, 12
    path = tmp_path / name
    write_gops(path, moving(n, 40, 64, seed=5), gop, bframes, "matroska" if name.endswith(".mkv") else "mp4")
    with av.open(str(path)) as container:
        keys = [p.is_keyframe for p in container.demux(container.streams.video[0]) if p.size > 0]
    assert len(keys) == n and sum(keys) == 6  # several GOPs: keyframes at 0, 12, ..., 60
    reference = decoded_from_the_start(path)
    assert reference.shape == (n, 40, 64, 3)
    reader = open_video(str(path), backend="pyav")
    assert type(reader).__name__ == "PyAVReader" and len(reader) == n
    for indices in (
        [0],  # the first frame
        [n - 1],  # the last (alone in the last, short GOP with frame 60)
        [n - 2, n - 1],
        [29, 30, 31],  # the middle of a GOP
        [11, 12, 13],  # across a keyframe
        [24],  # a keyframe itself
        [0, 5, 29, 40, 41, 59, n - 1],  # several GOPs apart: one seek per GOP
        list(range(n)),
    ):
        got = reader.frames(indices)
        assert got.dtype == np.uint8 and np.array_equal(got, reference[indices]), indices
        assert np.array_equal(decode_frames(reader, np.array(indices), str(path)), reference[indices])
    # it seeks: a frame costs its GOP up to it, not the whole file before it
    for indices, most in (([n - 1], 2), ([29, 30, 31], 8), ([59], gop), ([0, 5, 29, 40, 41, 59, n - 1], 32)):
        reader.frames(indices)
        assert reader.decoded_frames <= most, (indices, reader.decoded_frames)
    reader.frames(list(range(n)))
    assert reader.decoded_frames == n
    # a wanted frame past the end: the frames there are (decoding from the start, as before)
    assert np.array_equal(reader.frames([n - 1, n + 3]), reference[[n - 1]])
    # decord reads the same frames
    assert np.array_equal(decode_frames(open_video(str(path), backend="decord"), np.arange(n), str(path)), reference)


@pytest.fixture
def auto_is_decord(monkeypatch):
    """``auto`` as where torchcodec cannot load (decord first, PyAV for what decord cannot read), on every machine."""
    from harness.data import backends

    monkeypatch.setattr(backends, "auto_decoder", lambda: "decord")


def test_a_48_pixel_wide_file_decord_fails_on_decodes_via_pyav(narrow, auto_is_decord):
    root, frames = narrow
    path = str(root / "w48.mp4")
    with pytest.raises(CorruptVideoError, match=r"decord cannot decode this width \(48 px\); read with PyAV"):
        decode_frames(open_video(path, backend="decord"), np.arange(3), path)
    indices = np.array([[0, 5, 5], [39, 20, 1]])
    auto = decode_frames(open_video(path, backend="auto"), indices, path)
    pyav = decode_frames(open_video(path, backend="pyav"), indices, path)
    assert auto.shape == (2, 3, 64, 48, 3) and np.array_equal(auto, pyav)
    # the frames written (lossy H.264, so: each is nearest to the frame it should be), not garbage
    dist = np.abs(auto.reshape(6, 1, -1).astype(int) - frames.reshape(1, 40, -1)).mean(-1)
    assert np.array_equal(dist.argmin(1), indices.reshape(-1)) and dist.min(1).max() < 12
    # remembered in this process: the next open goes to PyAV directly and says why
    again = open_video(path, backend="auto")
    assert type(again).__name__ == "PyAVReader" and "48 px" in again.fallback


@pytest.mark.parametrize("mode", ["train", "test"])
def test_video_dataset_gives_the_same_tensors_whichever_backend(narrow, tmp_path, mode):
    root, _ = narrow
    write_mp4(tmp_path / "a.mp4", moving(50, 56, 80, seed=3), gop=10)
    write_with_bframes(tmp_path / "b.mp4", moving(41, 48, 64, seed=4))
    (tmp_path / "list.txt").write_text("a.mp4 0\nb.mp4 1\n")
    sampler = SnippetSampler(3, 2, 4, mode, **({"test_groups": 2} if mode == "test" else {}))
    transform = train_transform(32) if mode == "train" else eval_transform(32, resize=40, crops=3)
    samples = {}
    for backend in ("decord", "pyav", "auto"):
        ds = VideoDataset(tmp_path / "list.txt", tmp_path, sampler, transform, seed=7, video_backend=backend)
        ds.set_epoch(2)
        samples[backend] = [ds[i] for i in range(len(ds))]
    for backend in ("pyav", "auto"):
        for (x, label), (y, other) in zip(samples["decord"], samples[backend]):
            assert label == other and x.dtype == y.dtype == torch.uint8 and torch.equal(x, y)
    # the narrow file: decord refuses it, auto reads it as pyav does
    for cache in (False, True):
        kw = {"seed": 1, "cache_decoded": cache}
        with pytest.raises(CorruptVideoError, match="decord cannot decode this width"):
            VideoDataset(root / "list.txt", root, sampler, video_backend="decord", **kw)[0]
        auto = VideoDataset(root / "list.txt", root, sampler, **kw)
        pyav = VideoDataset(root / "list.txt", root, sampler, video_backend="pyav", **kw)
        for i in range(2):
            assert torch.equal(auto[i][0], pyav[i][0]) and auto[i][1] == pyav[i][1] == i


def test_a_damaged_file_stays_unreadable_under_auto(tmp_path):
    write_mp4(tmp_path / "ok.mp4", moving(24, 32, 64), gop=8)
    data = (tmp_path / "ok.mp4").read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) // 3])
    (tmp_path / "junk.mp4").write_bytes(b"not a video" * 50)
    for name in ("cut.mp4", "junk.mp4"):
        for backend in ("auto", "pyav", "decord"):
            with pytest.raises(CorruptVideoError, match="undecodable|no frames"):
                path = str(tmp_path / name)
                decode_frames(open_video(path, backend=backend), np.arange(24), path)


def test_data_check_names_the_cause(narrow, capsys, auto_is_decord):
    root, _ = narrow
    argv = ["data", "check", str(root / "list.txt"), "--workers", "1", "--quiet"]
    assert main([*argv, "--report", str(root / "auto.json")]) == 0
    out = capsys.readouterr().out
    assert "2 videos: 2 readable, 0 unreadable" in out and "1 read with PyAV (decord cannot read them)" in out
    assert "w48.mp4 (line 1): decord cannot decode this width (48 px); read with PyAV" in out
    assert "read with PyAV (decord cannot): 1" in (root / "auto.md").read_text()
    assert main([*argv, "--backend", "decord", "--report", str(root / "decord.json")]) == 1
    out = capsys.readouterr().out
    assert "1 unreadable" in out and "decord cannot decode this width (48 px); read with PyAV" in out
    assert main([*argv, "--backend", "pyav", "--deep", "--report", str(root / "pyav.json")]) == 0
    assert "read with PyAV" not in capsys.readouterr().out


def test_backend_option_is_validated_and_not_part_of_the_run_id(tmp_path):
    from harness.data.backends import VIDEO_BACKENDS
    from harness.data.commands import VIDEO_BACKENDS as CLI_BACKENDS

    assert CLI_BACKENDS == VIDEO_BACKENDS == ("auto", "decord", "pyav", "torchcodec", "torchcodec-cuda")
    (tmp_path / "t.txt").write_text("a.mp4 0\n")
    base = {"task": "train", "model": {"variant": "tsn_r18"}, "data": {"train": str(tmp_path / "t.txt")}}
    ids = set()
    for backend in ("auto", "decord", "pyav", "torchcodec", "torchcodec-cuda"):
        d = {**base, "data": {**base["data"], "video_backend": backend}}
        ids.add(RunConfig.from_dict(d).run_id)
    assert len(ids) == 1 and "data.video_backend" in NOT_IDENTITY
    assert RunConfig.from_dict(base).to_dict()["data"]["video_backend"] == "auto"
    allowed = "allowed: auto, decord, pyav, torchcodec, torchcodec-cuda"
    with pytest.raises(ValueError, match=rf"data.video_backend='ffmpeg' is invalid: {allowed}"):
        RunConfig.from_dict({**base, "data": {**base["data"], "video_backend": "ffmpeg"}})
    with pytest.raises(ValueError, match="video_backend='ffmpeg'"):
        VideoDataset(tmp_path / "t.txt", tmp_path, SnippetSampler(1, 1, 1, "val"), video_backend="ffmpeg")


def test_data_check_decoders_compares_the_frames_of_every_installed_decoder(narrow, capsys):
    from harness.data.backends import installed_backends

    root, _ = narrow
    (root / "w64.txt").write_text("w64.mp4 1\n")
    assert main(["data", "check", str(root / "w64.txt"), "--decoders", "3"]) == 0
    out = capsys.readouterr().out
    others = [b for b in installed_backends() if b != "decord"]
    assert "frames of 1 random videos" in out and "w64.mp4 (" in out and "30 frames, against decord" in out
    assert all(f"{b}: 0 (30 frames)" in out for b in others) and out.strip().endswith(": identical")
    # the 48-px file: decord fails on it, the others read it alike; so the decoders are not interchangeable here
    assert main(["data", "check", str(root / "list.txt"), "--decoders", "2"]) == 1
    out = capsys.readouterr().out
    assert "w48.mp4 (" in out and "decord: failed (decord cannot decode this width (48 px)" in out
    assert "against pyav" in out and "NOT identical" in out
    assert main(["data", "check", str(root / "list.txt"), "--decoders", "0"]) == 2
    assert "--decoders must be >= 1, not 0" in capsys.readouterr().err
