"""The second embedded task family (harness/data/synthetic_cued.py): labels follow the stated rule from the
decoded frames, the parts that decide a label are independent of it one by one, the snippet-averaging
argument holds exactly, determinism, and bad input (out-of-range options, another set in the folder)."""

import json
import re
from collections import Counter

import decord
import numpy as np
import pytest

from harness.cli import main
from harness.data.synthetic_cued import SEGMENTS, CuedConfig, _plan, generate_cued, layouts
from harness.errors import ConfigError

SMALL = {"num_videos": 16, "size": 32, "frames": 32, "val_fraction": 0.25, "test_fraction": 0.25}


@pytest.fixture(scope="module", params=["same", "cued_order"])
def made(request, tmp_path_factory):
    out = tmp_path_factory.mktemp(request.param)
    summary = generate_cued(out, rule=request.param, distance=3, seed=5, workers=2, progress=False, **SMALL)
    return request.param, out, summary, json.loads((out / "meta.json").read_text())


def _label_from_objects(rule: str, video: dict) -> int:
    """The label the module docstring's rule gives from where the objects are (meta.json)."""
    seg, kinds = video["segments"], video["kinds"]
    if rule == "same":
        return int(kinds["first"] != kinds["second"])
    repeated = kinds["cue"]
    first = "A" if seg["A"] < seg["B"] else "B"
    return int(first != repeated)


def test_lists_follow_the_rule_and_the_decoded_frames(made):
    rule, out, summary, meta = made
    assert (summary["num_train"], summary["num_val"], summary["num_test"]) == (8, 4, 4)
    listed = {}
    for split in ("train", "val", "test"):
        rows = [line.split() for line in (out / f"{split}.txt").read_text().splitlines() if not line.startswith("#")]
        assert Counter(int(label) for _, label in rows) == {0: len(rows) // 2, 1: len(rows) // 2}  # balanced
        listed.update({path: int(label) for path, label in rows})
    seg_len = SMALL["frames"] // SEGMENTS
    for video in meta["videos"]:
        assert listed[video["file"]] == video["label"] == _label_from_objects(rule, video)
        frames = decord.VideoReader(str(out / video["file"]), num_threads=1)
        clip = frames.get_batch(list(range(len(frames)))).asnumpy().astype(np.float32)
        background = np.median(clip, axis=0)  # 5 or 6 of the 8 segments show only the background
        busy = [int(np.abs(clip[s * seg_len : (s + 1) * seg_len] - background).mean() > 8) for s in range(SEGMENTS)]
        assert [s for s in range(SEGMENTS) if busy[s]] == sorted(video["segments"].values())
        for name, obj in video["objects"].items():  # red square (A) or blue disc (B), where meta says
            x, y = (int(v) for v in obj["centre_px"])
            r, _, b = clip[obj["segment"] * seg_len + seg_len // 2, y, x]
            assert (r > b) == (video["kinds"][name] == "A"), (video["file"], name)


def test_each_part_alone_says_nothing_and_averaging_is_at_chance():
    """Over a whole plan: P(label | any one part) = 1/2 exactly (the label is an XOR of far-apart parts); for
    cued_order the multiset of what the 8 segments show (all that a snippet-averaging model sees) has the
    same distribution under both labels: such a model is exactly at chance."""
    for rule, distance in (("same", 5), ("cued_order", 5), ("cued_order", 2)):
        plan = _plan(CuedConfig(num_videos=1200, rule=rule, distance=distance, val_fraction=0.1, test_fraction=0.1))
        parts = {"cue": lambda v: v["cue"], "order": lambda v: v["order"]}
        if rule == "same":
            parts = {"first": lambda v: v["kinds"]["first"], "second": lambda v: v["kinds"]["second"]}
        for key, part in parts.items():
            by_value = Counter((part(v), v["label"]) for v in plan)
            for value in {k for k, _ in by_value}:
                assert by_value[(value, 0)] == by_value[(value, 1)], (rule, key, value)
        spots = Counter((tuple(sorted(v["segments"].values())), v["label"]) for v in plan)
        assert all(spots[(s, 0)] == spots[(s, 1)] for s, _ in spots), rule
        seen = Counter((tuple(sorted(v["kinds"].values())), v["label"]) for v in plan)
        if rule == "cued_order":  # {A, A, B} or {A, B, B}, as often under both labels
            assert all(seen[(m, 0)] == seen[(m, 1)] for m, _ in seen), seen
        else:  # same: the count of A's is 0 or 2 (same) or 1 (different): a sum model gets 75 % at most
            assert set(seen) == {(("A", "A"), 0), (("B", "B"), 0), (("A", "B"), 1)}
        for v in plan:  # the far-apart parts are at least `distance` segments apart
            seg = v["segments"]
            gap = (
                seg["second"] - seg["first"]
                if rule == "same"
                else min(abs(seg["cue"] - seg["A"]), abs(seg["cue"] - seg["B"]))
            )
            assert gap >= distance and (rule == "same" or abs(seg["A"] - seg["B"]) == 1)


def test_cue_bias_makes_the_pairs_order_alone_right_that_often_and_the_cue_alone_still_says_nothing():
    base = {"num_videos": 1200, "distance": 5, "val_fraction": 0.1, "test_fraction": 0.1}
    assert _plan(CuedConfig(**base)) == _plan(CuedConfig(**base, cue_bias=0.0))  # the default: the plan of before
    for bias in (0.25, 0.5):
        plan = _plan(CuedConfig(**base, cue_bias=bias))
        for c in (0, 1):
            members = [v for v in plan if v["label"] == c]
            assert len(members) == 600 and sum(v["cue"] == "A_first" for v in members) == round(600 * (1 + bias) / 2)
        cue = Counter((v["cue"], v["label"]) for v in plan)
        assert cue[("A_first", 0)] == cue[("A_first", 1)] and cue[("B_first", 0)] == cue[("B_first", 1)]
        order_alone = sum((v["order"] == "A_before_B") == (v["label"] == 0) for v in plan) / len(plan)
        assert order_alone == pytest.approx((1 + bias) / 2)
        spots = Counter((tuple(sorted(v["segments"].values())), v["label"]) for v in plan)
        assert all(spots[(s, 0)] == spots[(s, 1)] for s, _ in spots)
    with pytest.raises(
        ConfigError, match=re.escape("cue_bias = 0.5 is out of range: must be in [0, 1), cued_order only")
    ):
        CuedConfig(rule="same", cue_bias=0.5)
    with pytest.raises(ConfigError, match="cue_bias = 1.0 is out of range"):
        CuedConfig(cue_bias=1.0)


def test_layouts_count():
    assert len(layouts("same", 5)) == 6 and len(layouts("same", 1)) == 28
    assert sorted(layouts("cued_order", 5)) == [(0, 5), (0, 6), (1, 6), (6, 0), (7, 0), (7, 1)]


def test_same_seed_same_bytes_and_reuse(tmp_path):
    a = generate_cued(tmp_path / "a", rule="same", seed=2, workers=1, progress=False, **SMALL)
    b = generate_cued(tmp_path / "b", rule="same", seed=2, workers=2, progress=False, **SMALL)
    names = sorted(p.name for p in (tmp_path / "a" / "videos").iterdir())
    assert names and all(
        (tmp_path / "a" / "videos" / n).read_bytes() == (tmp_path / "b" / "videos" / n).read_bytes() for n in names
    )
    assert not a["reused"] and not b["reused"]
    assert generate_cued(tmp_path / "a", rule="same", seed=2, progress=False, **SMALL)["reused"]


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("distance", 8, "distance = 8 is out of range: must be an integer 1..7 for rule 'same'"),
        ("distance", 0, "distance = 0 is out of range"),
        ("look_alike", 1.0, "look_alike = 1.0 is out of range: must be in [0, 1)"),
        ("frames", 20, "frames = 20 is out of range: must be a multiple of 8"),
        ("size", 30, "size = 30 is out of range: must be even, 32..256"),
        ("num_videos", 7, "num_videos = 7 is out of range"),
        ("rule", "xor", "rule = 'xor' is out of range: must be one of same, cued_order"),
        ("noise", -1.0, "noise = -1.0 is out of range: must be in 0..64"),
    ],
)
def test_out_of_range_is_refused_by_name(field, value, says):
    with pytest.raises(ConfigError, match=re.escape(says)):
        CuedConfig(**{"rule": "same", field: value} if field == "distance" else {field: value})


def test_a_folder_of_another_set_is_refused_and_kept(tmp_path, capsys):
    out = tmp_path / "s"
    generate_cued(out, rule="same", seed=1, progress=False, **SMALL)
    before = {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    with pytest.raises(ConfigError, match=r"other parameters \(distance 5 -> 3, rule 'same' -> 'cued_order'\)"):
        generate_cued(out, rule="cued_order", distance=3, seed=1, progress=False, **SMALL)
    assert main(["data", "synth", "--out", str(out), "--quiet", "--videos", "16", "--size", "32"]) == 2
    assert "holds a synthetic set of another task family (harness.data.synthetic_cued)" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before  # nothing written over


def test_cli_writes_the_benchmark_set_options(tmp_path, capsys):
    out = tmp_path / "cli"
    args = ["data", "synth", "--out", str(out), "--task", "cued_order", "--videos", "16", "--size", "32"]
    assert main([*args, "--frames", "16", "--distance", "4", "--look-alike", "0.5", "--quiet"]) == 0
    params = json.loads((out / "meta.json").read_text())["params"]
    assert params["rule"] == "cued_order" and params["distance"] == 4 and params["look_alike"] == 0.5
    assert "cue_bias" not in params  # the default: the parameters of sets made before the option
    assert json.loads((out / "classes.json").read_text())["classes"] == ["as_cued", "against_cue"]
    assert "16 videos" in capsys.readouterr().out
    assert main(["data", "synth", "--out", str(tmp_path / "x"), "--distance", "3"]) == 2
    assert "--distance: options of --task same / cued_order" in capsys.readouterr().err
    assert main([*args[:3], str(tmp_path / "b"), *args[4:], "--frames", "16", "--cue-bias", "0.5", "--quiet"]) == 0
    assert json.loads((tmp_path / "b" / "meta.json").read_text())["params"]["cue_bias"] == 0.5
    assert main(["data", "synth", "--out", str(tmp_path / "y"), "--cue-bias", "0.5"]) == 2
    assert "--cue-bias: options of --task same / cued_order" in capsys.readouterr().err
