"""The synthetic long-range set: determinism, balance, labels consistent with the decoded content,
snippet/quarter alignment; `dsa-harness data synth` and `data check` through the CLI."""

import json
from collections import Counter
from pathlib import Path

import decord
import numpy as np
import pytest

from harness.cli import main
from harness.data import (
    SYNTHETIC_RECOMMENDED,
    SnippetSampler,
    VideoDataset,
    chance_levels,
    class_factors,
    factor_accuracy,
    generate_synthetic,
    read_annotations,
)
from harness.errors import ConfigError

SMALL = {"num_videos": 24, "num_classes": 4, "size": 64, "frames": 32, "workers": 2, "progress": False}


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    summary = generate_synthetic(out, seed=3, **SMALL)
    return out, summary


def decode_all(path):
    vr = decord.VideoReader(str(path))
    return vr.get_batch(list(range(len(vr)))).asnumpy()


def test_summary_lists_and_class_file(synth):
    out, s = synth
    assert s["num_videos"] == 24 and s["num_train"] + s["num_val"] == 24 and not s["reused"]
    classes = json.loads((out / "classes.json").read_text())
    assert [c["name"] for c in classes["classes"]] == [
        "A_before_B__left_to_right",
        "A_before_B__right_to_left",
        "B_before_A__left_to_right",
        "B_before_A__right_to_left",
    ]
    assert classes["classes"][2]["factors"] == {"order": "B_before_A", "motion": "left_to_right"}
    meta = json.loads((out / "meta.json").read_text())
    assert meta["chance_levels"]["snippet_averaging_ceiling_pct"]["order"] == 50.0
    assert meta["params"]["size"] == 64 and len(meta["videos"]) == 24
    for split in ("train", "val"):
        recs = read_annotations(out / f"{split}.txt", "video", root=out)
        assert all(r.path.endswith(".mp4") for r in recs)
        counts = Counter(r.label for r in recs)
        assert sorted(counts) == [0, 1, 2, 3] and len(set(counts.values())) == 1  # exactly balanced


def test_same_seed_same_files_other_seed_differs(synth, tmp_path):
    out, _ = synth
    again = generate_synthetic(tmp_path / "a", seed=3, **{**SMALL, "workers": 1})
    assert not again["reused"]
    for name in ("train.txt", "val.txt", "classes.json", "meta.json"):
        assert (out / name).read_bytes() == (tmp_path / "a" / name).read_bytes()
    for k in (0, 5, 23):
        f = f"videos/vid_{k:05d}.mp4"
        assert (out / f).read_bytes() == (tmp_path / "a" / f).read_bytes()
        assert np.array_equal(decode_all(out / f), decode_all(tmp_path / "a" / f))
    generate_synthetic(tmp_path / "b", seed=4, **SMALL)
    assert (tmp_path / "b" / "train.txt").read_text() != (out / "train.txt").read_text() or (
        tmp_path / "b" / "videos/vid_00000.mp4"
    ).read_bytes() != (out / "videos/vid_00000.mp4").read_bytes()
    assert generate_synthetic(tmp_path / "a", seed=3, **SMALL)["reused"]  # same parameters: reused


def object_track(frames, background):
    """Per frame: None or (centroid x, centroid y, fill ratio of the bounding box)."""
    diff = np.abs(frames.astype(int) - background.astype(int)).sum(-1) > 150
    out = []
    for m in diff:
        if m.sum() < 10:
            out.append(None)
            continue
        ys, xs = np.nonzero(m)
        box = (ys.max() - ys.min() + 1) * (xs.max() - xs.min() + 1)
        out.append((xs.mean(), ys.mean(), m.sum() / box))
    return out


def test_decoded_content_matches_labels(synth):
    out, _ = synth
    meta = json.loads((out / "meta.json").read_text())
    q = meta["params"]["frames"] // 4
    for v in meta["videos"]:
        frames = decode_all(out / v["file"])
        empty = [k for k in range(4) if k not in v["quarters"].values()]
        background = frames[empty[0] * q + q // 2]
        track = object_track(frames, background)
        for k in range(4):
            seen = [track[f] for f in range(k * q, (k + 1) * q)]
            if k in empty:
                assert all(s is None for s in seen), (v["file"], k)
                continue
            assert all(s is not None for s in seen), (v["file"], k)
            shape = "square" if k == v["quarters"]["A"] else "disc"
            fill = np.median([s[2] for s in seen])
            assert (fill > 0.9) if shape == "square" else (0.65 < fill < 0.88), (v["file"], k, fill)
            xs = [s[0] for s in seen]
            direction = "left_to_right" if xs[-1] > xs[0] else "right_to_left"
            assert direction == v["motion"] and np.all(np.sign(np.diff(xs)) == np.sign(xs[-1] - xs[0]))
        qa, qb = v["quarters"]["A"], v["quarters"]["B"]
        assert v["order"] == ("A_before_B" if qa < qb else "B_before_A")
        assert class_factors(4)[v["label"]]["factors"] == {"order": v["order"], "motion": v["motion"]}


def test_each_order_class_uses_all_six_quarter_pairs(tmp_path):
    s = generate_synthetic(
        tmp_path,
        num_videos=48,
        num_classes=2,
        size=32,
        frames=8,
        workers=2,
        progress=False,
        val_fraction=0.25,
        test_fraction=0.25,
    )
    assert (s["num_train"], s["num_val"], s["num_test"]) == (24, 12, 12)
    for split in ("train", "val", "test"):
        counts = Counter(r.label for r in read_annotations(tmp_path / f"{split}.txt", "video", root=tmp_path))
        assert counts[0] == counts[1] == {"train": 12, "val": 6, "test": 6}[split]
    meta = json.loads((tmp_path / "meta.json").read_text())
    for order in ("A_before_B", "B_before_A"):
        pairs = Counter((v["quarters"]["A"], v["quarters"]["B"]) for v in meta["videos"] if v["order"] == order)
        assert len(pairs) == 6 and set(pairs.values()) == {4}  # 24 videos per class, 6 pairs x 4
    assert s["num_classes"] == 2


def test_recommended_sampling_keeps_every_snippet_inside_one_quarter(synth):
    out, _ = synth
    frames = 64  # the default set the recommendation is written for
    r = SYNTHETIC_RECOMMENDED
    for mode in ("train", "val", "test"):
        sampler = SnippetSampler(
            r["num_snippets"], r["frames_per_snippet"], r["frame_interval"], mode, test_groups=r["test_groups"]
        )
        rng = np.random.default_rng(0)
        for _ in range(50):
            idx = sampler(frames, rng)
            quarters = idx // (frames // 4)
            assert np.all(quarters == quarters[:, :1])  # each snippet inside one quarter
            assert quarters[:, 0].tolist() == [0, 1, 2, 3] * sampler.groups  # every group: one per quarter
    # and the set reads back through the dataset with the sampling scaled to its 32 frames
    ds = VideoDataset(out / "val.txt", out, SnippetSampler(4, 4, 2, "val"))
    x, label = ds[0]
    assert x.shape == (4, 3, 4, 64, 64) and 0 <= label < 4


def test_chance_levels_and_factor_accuracy():
    assert chance_levels(4)["chance_pct"] == {"class": 25.0, "order": 50.0, "motion": 50.0}
    assert chance_levels(8)["snippet_averaging_ceiling_pct"]["class"] == 50.0
    acc = factor_accuracy([0, 1, 2, 3], [0, 2, 0, 3], 4)  # motion = label % 2, order = label // 2
    assert acc == {"order": 50.0, "motion": 75.0, "class": 50.0}


def test_bad_parameters():
    with pytest.raises(ValueError, match="multiple of num_classes"):
        generate_synthetic("/nonexistent", num_videos=10, num_classes=4)
    with pytest.raises(ValueError, match="multiple of 4"):
        generate_synthetic("/nonexistent", num_videos=8, frames=30)
    with pytest.raises(ValueError, match="num_classes"):
        generate_synthetic("/nonexistent", num_videos=9, num_classes=3)


def test_size_decord_cannot_read_is_refused(tmp_path):
    from harness.data import write_mp4

    write_mp4(tmp_path / "w48.mp4", np.zeros((2, 48, 48, 3), np.uint8))
    from harness.data.video import DECODER_ERRORS

    try:
        decord.VideoReader(str(tmp_path / "w48.mp4")).get_batch([0, 1])
    except DECODER_ERRORS:
        readable = False
    else:
        readable = True
    if readable:
        pytest.skip("this decord build reads 48-pixel-wide frames")
    (tmp_path / "w48.mp4").unlink()
    with pytest.raises(ValueError, match="decord cannot decode 48x48"):
        generate_synthetic(tmp_path, num_videos=8, size=48, frames=8, progress=False)
    assert not list(tmp_path.glob("*.mp4")) and not (tmp_path / "videos").exists()


def test_cli_synth_and_check(tmp_path, capsys):
    out = tmp_path / "s"
    rc = main(
        [
            "data",
            "synth",
            "--out",
            str(out),
            "--videos",
            "8",
            "--size",
            "32",
            "--frames",
            "16",
            "--workers",
            "2",
            "--quiet",
        ]
    )
    assert rc == 0 and "8 videos (4 train, 4 val, 0 test)" in capsys.readouterr().out
    assert len(list((out / "videos").glob("*.mp4"))) == 8
    assert main(["data", "check", str(out / "train.txt"), "--min-frames", "16", "--quiet"]) == 0
    report = json.loads((out / "train.txt.check.json").read_text())
    assert report["num_ok"] == 4 and report["num_unreadable"] == 0 and report["frames"]["min"] == 16
    assert (out / "train.txt.check.md").read_text().startswith("# Data check")
    # break two videos: the check names them with their annotation lines and exits 1
    recs = read_annotations(out / "train.txt", "video", root=out)
    broken = Path(recs[1].path)
    broken.write_bytes(broken.read_bytes()[: broken.stat().st_size // 3])
    Path(recs[3].path).write_bytes(b"")
    rep = tmp_path / "r" / "check.json"
    rc = main(
        [
            "data",
            "check",
            str(out / "train.txt"),
            "--root",
            str(out),
            "--report",
            str(rep),
            "--min-frames",
            "20",
            "--workers",
            "2",
            "--quiet",
        ]
    )
    assert rc == 1
    report = json.loads(rep.read_text())
    assert [(u["line"], u["reason"]) for u in report["unreadable"]] == [
        (recs[1].line, "undecodable"),
        (recs[3].line, "empty"),
    ]
    assert report["num_too_short"] == 2  # the two readable 16-frame videos are < 20 frames
    assert "Unreadable (2)" in (tmp_path / "r" / "check.md").read_text()


def test_cli_bad_input_exit_2(tmp_path, capsys):
    assert main(["data", "synth", "--out", str(tmp_path), "--num-classes", "3", "--videos", "9"]) == 2
    assert "num_classes must be 2, 4, 6 or 8" in capsys.readouterr().err
    bad = tmp_path / "bad.txt"
    bad.write_text("a.mp4 zero\n")
    assert main(["data", "check", str(bad), "--quiet"]) == 2
    assert f"{bad}:1: LABEL must be an integer" in capsys.readouterr().err


def _synth(out, *extra) -> list[str]:
    return ["data", "synth", "--out", str(out), "--size", "32", "--frames", "16", "--workers", "1", "--quiet", *extra]


def test_synth_over_another_set_or_a_users_lists_is_refused_unless_forced(tmp_path, capsys):
    """Issue 25.4 / 25.8: another set's folder (other parameters, named) and a user's own lists are never
    overwritten silently; --force replaces them, removing the old set first (no old video left)."""
    out = tmp_path / "s"
    assert main(_synth(out, "--videos", "16")) == 0
    capsys.readouterr()
    before = {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert main(_synth(out, "--videos", "8", "--seed", "1")) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "holds a synthetic set of other parameters (num_videos 16 -> 8, seed 0 -> 1)" in err
    assert "--force" in err
    assert {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before  # nothing touched
    assert main(_synth(out, "--videos", "16")) == 0 and "reused existing" in capsys.readouterr().out
    assert main(_synth(out, "--videos", "8", "--force")) == 0
    capsys.readouterr()
    assert sorted(p.name for p in (out / "videos").iterdir()) == [f"vid_{i:05d}.mp4" for i in range(8)]
    assert json.loads((out / "meta.json").read_text())["params"]["num_videos"] == 8
    # a user's folder with its own lists: refused, the lists kept; --force replaces them
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "train.txt").write_text("clips/a.mp4 0\n")
    (mine / "notes.md").write_text("mine\n")
    assert main(_synth(mine, "--videos", "8")) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and f"{mine} holds train.txt that this command did not make" in err
    assert (mine / "train.txt").read_text() == "clips/a.mp4 0\n" and not (mine / "videos").exists()
    assert main(_synth(mine, "--videos", "8", "--force")) == 0
    assert (mine / "notes.md").read_text() == "mine\n" and "vid_00000.mp4" in (mine / "train.txt").read_text()


def test_an_interrupted_synth_is_recognised_as_its_own(tmp_path, monkeypatch):
    """The set's record is written first (complete: false): a rerun after an interruption replaces the
    partial set; another command's parameters over it are still refused by name."""
    from harness.data import synthetic

    out = tmp_path / "s"
    small = {"num_videos": 8, "size": 32, "frames": 16, "workers": 1, "progress": False}

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(synthetic, "_list_text", boom)
    with pytest.raises(KeyboardInterrupt):
        generate_synthetic(out, **small)
    monkeypatch.undo()
    assert json.loads((out / "meta.json").read_text())["complete"] is False
    with pytest.raises(ConfigError, match="other parameters \\(seed 0 -> 2\\)"):
        generate_synthetic(out, seed=2, **small)
    s = generate_synthetic(out, **small)
    assert not s["reused"] and s["num_videos"] == 8 and "complete" not in json.loads((out / "meta.json").read_text())
