"""The one run config (harness/config/): resolution, run identity, --set, recipes, CLI reachability."""

from __future__ import annotations

import argparse
import json
import shutil
from dataclasses import fields

import pytest

from harness.config import (
    IDENTITY_VERSION,
    NOT_IDENTITY,
    SECTION_TYPES,
    RunConfig,
    TrainConfig,
    all_keys,
    apply_overrides,
    load_recipe,
    section_fields,
)
from harness.errors import ConfigError


@pytest.fixture()
def dataset(tmp_path):
    d = tmp_path / "data" / "toy"
    d.mkdir(parents=True)
    (d / "train.txt").write_text("a.mp4 0\nb.mp4 1\nc.mp4 2\n")
    (d / "val.txt").write_text("d.mp4 0\ne.mp4 2\n")
    return d


def _implicit(d) -> dict:
    return {
        "task": "train",
        "model": {"variant": "i3d_r50_dsa", "num_classes": 200},
        "data": {"train": str(d / "train.txt"), "val": str(d / "val.txt")},
        "train": {"epochs": 100},
    }


def test_one_run_spelled_four_ways_has_one_id(dataset):
    implicit = _implicit(dataset)
    spelled = apply_overrides(implicit, {"train.batch_size": 12, "train.base_lr": 0.015, "train.base_batch": 12})
    paper_masks = apply_overrides(implicit, {"model.stage_masks": "paper", "data.resize": 256})
    explicit = apply_overrides(
        implicit,
        {
            "model.split_ratio": 0.125,
            "model.stage_masks": [[0, 0, 0], [0, 1, 0, 1], [0, 1, 0, 1, 0, 1], [0, 0, 0]],
            "train.warmup_epochs": 10,
            "eval.crops": 3,
            "seed": 0,
        },
    )
    ids = {RunConfig.from_dict(c).run_id for c in (implicit, spelled, paper_masks, explicit)}
    assert len(ids) == 1
    assert RunConfig.from_dict(apply_overrides(implicit, {"model.split_ratio": 0.25})).run_id not in ids
    assert RunConfig.from_dict(apply_overrides(implicit, {"seed": 1})).run_id not in ids


def test_changing_a_default_changes_the_id(dataset, monkeypatch):
    before = RunConfig.from_dict(_implicit(dataset))
    names = [f.name for f in fields(TrainConfig)]
    defaults = list(TrainConfig.__init__.__defaults__)
    defaults[names.index("base_lr")] = 0.02
    monkeypatch.setattr(TrainConfig.__init__, "__defaults__", tuple(defaults))
    after = RunConfig.from_dict(_implicit(dataset))
    assert after.train.base_lr == 0.02
    assert after.run_id != before.run_id


def test_resolved_form_is_complete_and_round_trips(dataset):
    rc = RunConfig.from_dict(_implicit(dataset))
    d = rc.to_dict()
    for section, cls in SECTION_TYPES.items():
        if section in d:
            assert set(d[section]) == {f.name for f in fields(cls)}
    assert "profile" not in d  # a train run has no profile section
    assert d["data"]["resize"] == 256 and d["model"]["stage_masks"] == "res3:0101,res4:010101"
    assert RunConfig.from_dict(d) == rc and RunConfig.from_dict(json.loads(json.dumps(d))).run_id == rc.run_id


def test_test_crop_defaults_to_the_training_crop_and_enters_the_id_only_when_it_differs(dataset):
    implicit = _implicit(dataset)
    rc = RunConfig.from_dict(implicit)
    assert rc.to_dict()["eval"]["size"] is None and rc.eval.test_crop(rc.data) == (224, 256)
    # a run testing at its training crop: no test-crop key in its identity (its id predates the fields)
    assert {"size", "resize"}.isdisjoint(rc.identity()["eval"])
    spelled = apply_overrides(implicit, {"eval.size": 224, "eval.resize": 256})
    assert RunConfig.from_dict(spelled).run_id == rc.run_id
    # the paper's test (three crops of 256 after resizing to 256): another run, its crop in the identity
    paper = RunConfig.from_dict(apply_overrides(implicit, {"eval.size": 256, "eval.resize": 256}))
    assert paper.eval.test_crop(paper.data) == (256, 256) and paper.identity()["eval"]["size"] == 256
    assert paper.run_id != rc.run_id
    # eval.resize unset: data.resize, raised to the test size when smaller
    bigger = RunConfig.from_dict(apply_overrides(implicit, {"eval.size": 288}))
    assert bigger.eval.test_crop(bigger.data) == (288, 288)
    # the test crop follows data.size while eval.size is unset
    small = RunConfig.from_dict(apply_overrides(implicit, {"data.size": 112}))
    assert small.eval.test_crop(small.data) == (112, 128)
    # the validation crop stays the training one
    assert paper.data.size == 224 and paper.data.resize == 256


def test_paper_recipes_test_on_three_crops_of_256():
    from pathlib import Path

    from harness.launch.grid import expand, load_grid

    root = Path(__file__).resolve().parents[1] / "experiments"
    for name in ("backbones_minikinetics200", "backbones_kinetics400", "backbones_sthv1", "backbones_activitynet"):
        for run in expand(load_grid(root / f"{name}.yaml"), "/nonexistent"):
            rc = run.run_config
            assert (rc.eval.crops, rc.eval.test_crop(rc.data), rc.data.size) == (3, (256, 256), 224), name


def test_dataset_identity_is_its_contents_not_its_path(dataset, tmp_path):
    rc = RunConfig.from_dict(_implicit(dataset))
    moved = tmp_path / "elsewhere" / "toy_copy"
    shutil.copytree(dataset, moved)
    other = RunConfig.from_dict({**_implicit(moved), "data": {**_implicit(moved)["data"], "root": str(moved)}})
    assert other.run_id == rc.run_id and not rc.provisional
    # more workers, a decode cache, other CPU threads: the same run
    fast = apply_overrides(
        _implicit(dataset),
        {"data.num_workers": 8, "data.cache_decoded": True, "train.threads": 3, "train.checkpoint_every_steps": 50},
    )
    assert RunConfig.from_dict(fast).run_id == rc.run_id
    assert {"data.num_workers", "train.threads"} <= set(NOT_IDENTITY)
    # an edited split is another run; so is a declared other dataset with equal lists
    (moved / "train.txt").write_text("a.mp4 0\nb.mp4 1\nc.mp4 1\n")
    assert RunConfig.from_dict(_implicit(moved)).run_id != rc.run_id
    named = apply_overrides(_implicit(dataset), {"data.name": "toy_v2"})
    assert RunConfig.from_dict(named).run_id != rc.run_id


def test_equal_lists_over_other_videos_are_other_runs(dataset, tmp_path):
    """Issue 25.2: the identity sees the videos a list names (size + first 4 KiB), not only its text; the same
    videos at another path (copied, another machine) keep the id; data.root locates them, outside the hash."""
    for name in "abcde":
        (dataset / f"{name}.mp4").write_bytes(bytes([ord(name)]) * 5000)
    rc = RunConfig.from_dict(_implicit(dataset))
    assert rc.inputs()["data.train.videos"].startswith("videos:") and not rc.provisional
    clean = tmp_path / "copy" / "toy"
    shutil.copytree(dataset, clean)
    assert RunConfig.from_dict(_implicit(clean)).run_id == rc.run_id  # same videos elsewhere: one run
    elsewhere = tmp_path / "videos_elsewhere"
    shutil.copytree(dataset, elsewhere)
    rooted = apply_overrides(_implicit(dataset), {"data.root": str(elsewhere)})
    assert RunConfig.from_dict(rooted).run_id == rc.run_id
    damaged = tmp_path / "damaged" / "toy"
    shutil.copytree(dataset, damaged)
    (damaged / "b.mp4").write_bytes(b"\0" * 5000)  # same size, other bytes
    assert RunConfig.from_dict(_implicit(damaged)).run_id != rc.run_id
    (damaged / "b.mp4").write_bytes(bytes([ord("b")]) * 4999)  # truncated by one byte past the sample
    assert RunConfig.from_dict(_implicit(damaged)).run_id != rc.run_id
    (damaged / "b.mp4").unlink()  # a missing video is another dataset too (not a provisional id)
    gone = RunConfig.from_dict(_implicit(damaged))
    assert gone.run_id != rc.run_id and not gone.provisional
    assert gone.record()["inputs"]["data.val.videos"] == rc.record()["inputs"]["data.val.videos"]
    assert gone.record()["identity_version"] == IDENTITY_VERSION == 3
    # within a fingerprint scope (a grid's expansion, one command) each list is looked at once
    from harness.config import fingerprint_scope

    with fingerprint_scope():
        first = RunConfig.from_dict(_implicit(clean)).run_id
        (clean / "a.mp4").write_bytes(b"x")
        assert RunConfig.from_dict(_implicit(clean)).run_id == first
    assert RunConfig.from_dict(_implicit(clean)).run_id != first


def test_unreadable_inputs_make_a_provisional_id(tmp_path):
    cfg = {
        "task": "train",
        "model": {"variant": "tsn_r18", "num_classes": 4},
        "data": {"train": str(tmp_path / "nowhere.txt")},
    }
    rc = RunConfig.from_dict(cfg)
    assert rc.provisional and rc.inputs() == {"data.train": f"path:{tmp_path / 'nowhere.txt'}"}
    with pytest.raises(ConfigError, match="model.num_classes: not given and cannot be counted"):
        RunConfig.from_dict({**cfg, "model": {"variant": "tsn_r18"}})


def test_num_classes_comes_from_the_data_when_not_given(dataset):
    cfg = _implicit(dataset)
    cfg["model"] = {"variant": "tsn_r18"}
    assert RunConfig.from_dict(cfg).model.num_classes == 3
    (dataset / "classes.json").write_text(json.dumps(["a", "b", "c", "d", "e"]))
    assert RunConfig.from_dict(cfg).model.num_classes == 5


@pytest.mark.parametrize(
    "cfg,message",
    [
        ({"model": {"variant": "tsn_r18"}, "train": {"epoch": 3}}, "unknown option train.epoch; did you mean 'epochs'"),
        ({"model": {"variant": "tsn_r18", "split_ratoi": 0.5}}, "model.split_ratoi; did you mean 'split_ratio'"),
        ({"model": {"variant": "tsn_r18"}, "trian": {}}, "unknown key 'trian'; did you mean 'train'"),
        ({"model": {"variant": "tsn_r18"}, "train": {"clip_grad_norm": -1}}, "train.clip_grad_norm=-1.0 is invalid"),
        ({"model": {"variant": "tsn_r18"}, "train": {"base_batch": 0}}, "train.base_batch=0 is invalid"),
        ({"model": {"variant": "tsn_r18"}, "train": {"weight_decay": -5}}, "train.weight_decay=-5.0 is invalid"),
        ({"model": {"variant": "tsn_r18"}, "train": {"threads": -1}}, "train.threads=-1 is invalid"),
        ({"model": {"variant": "tsn_r18"}, "train": {"epochs": "ten"}}, "train.epochs='ten' is invalid: expected int"),
        ({"model": {"variant": "tsn_r18", "split_ratio": 1.5}}, "model.split_ratio=1.5 is invalid"),
        ({"model": {"variant": "tsn_r18x"}}, "model.variant: "),
        ({"model": {"variant": "tsn_r18"}, "profile": {"size": 32}}, "profile: not used by task train"),
        ({"model": {"variant": "tsn_r18"}, "eval": {"size": 256, "resize": 240}}, "eval.resize=240 is invalid"),
        ({"model": {"variant": "tsn_r18"}, "eval": {"resize": 200}}, "eval.resize=200 is invalid: must be >= the"),
    ],
)
def test_bad_config_names_the_key(cfg, message, dataset):
    cfg = {"task": "train", **cfg, "data": {"train": str(dataset / "train.txt")}}
    with pytest.raises(ConfigError) as info:
        RunConfig.from_dict(cfg)
    assert message in str(info.value)


def test_set_keys_are_checked():
    with pytest.raises(ConfigError, match="did you mean 'train.epochs'"):
        apply_overrides({}, {"train.epoch": 1})
    with pytest.raises(ConfigError, match="keys are section.field"):
        apply_overrides({}, {"epochs": 1})
    assert "seed" in all_keys() and "data.cache_decoded" in all_keys() and "model.split_ratio" in all_keys()


def test_shipped_recipes_load(tmp_path):
    from pathlib import Path

    recipes = sorted((Path(__file__).resolve().parents[1] / "experiments" / "recipes").glob("*.yaml"))
    assert recipes
    for path in recipes:
        assert load_recipe(path)["train"]
    (tmp_path / "r.yaml").write_text("trian: {epochs: 1}\n")
    with pytest.raises(ConfigError, match="did you mean 'train'"):
        load_recipe(tmp_path / "r.yaml")


# --------------------------------------------------------------------------------------------
# the CLI reaches every field


def _parser() -> argparse.ArgumentParser:
    from harness.cli import build_parser

    return build_parser()


def test_every_train_flag_names_a_field_and_every_field_is_settable():
    from harness.config import check_dotted_key
    from harness.engine.commands import EVAL_FLAGS, SWITCHES, TRAIN_FLAGS

    for _flag, key, _opts in (*TRAIN_FLAGS, *EVAL_FLAGS):
        check_dotted_key(key)
    for _flag, key, _value, _text in SWITCHES:
        check_dotted_key(key)
    parser = _parser()
    for key in all_keys():  # --set reaches every field of every section
        if key == "model.variant":
            continue
        section = key.split(".")[0]
        if section == "profile":
            continue  # profile fields: `sweep --set` (train runs have no profile section)
        args = parser.parse_args(["train", "tsn_r18", "--set", f"{key}=1"])
        assert args.sets == [(key, 1)]


def test_train_help_shows_every_default():
    from harness.engine.commands import TRAIN_FLAGS

    help_text = _parser()._subparsers._group_actions[0].choices["train"].format_help()
    flat = " ".join(help_text.split())  # argparse wraps lines
    for _flag, key, _opts in TRAIN_FLAGS:
        assert f"[{key}; default " in flat
    for section in ("data", "train", "eval"):
        for name, (default, _type, _text) in section_fields(section).items():
            shown = json.dumps(list(default) if isinstance(default, tuple) else default)
            assert f"{section}.{name} = {shown}" in help_text


def test_train_flags_and_set_resolve_like_a_grid(dataset, capsys):
    from harness.cli import main

    argv = [
        "train",
        "i3d_r50_dsa",
        "--data",
        str(dataset / "train.txt"),
        "--val",
        str(dataset / "val.txt"),
        "--epochs",
        "100",
        "-o",
        "num_classes=200",
        "--set",
        "train.momentum=0.9",
        "--print-config",
    ]
    assert main(argv) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["run_id"] == RunConfig.from_dict(_implicit(dataset)).run_id
    assert main([*argv, "--set", "train.momentum=0.95"]) == 0
    assert json.loads(capsys.readouterr().out)["train"]["momentum"] == 0.95
    assert main([*argv, "--set", "train.momentun=0.95"]) == 2
    assert "did you mean 'train.momentum'" in capsys.readouterr().err


def test_runtime_options_resolve_one_way(dataset):
    """train.amp / train.deterministic default to auto (a config value: what it resolves to on a machine
    is a result, in final.json); activation checkpointing spelled any way is one value; data.num_workers
    auto is null and stays out of the id."""
    base = RunConfig.from_dict(_implicit(dataset))
    assert (base.train.amp, base.train.deterministic, base.train.activation_checkpointing) == ("auto", "auto", ())
    assert base.data.num_workers is None and not base.train.channels_last and not base.train.compile
    assert RunConfig.from_dict(apply_overrides(_implicit(dataset), {"train.amp": "bf16"})).run_id != base.run_id
    spellings = ["all", ["res5", "res4", "res3", "res2"], "res2, res3,res4,res5"]
    every = {
        RunConfig.from_dict(apply_overrides(_implicit(dataset), {"train.activation_checkpointing": v})).run_id
        for v in spellings
    }
    assert len(every) == 1 and base.run_id not in every
    none = apply_overrides(_implicit(dataset), {"train.activation_checkpointing": "none"})
    assert RunConfig.from_dict(none).run_id == base.run_id
    some = RunConfig.from_dict(
        apply_overrides(_implicit(dataset), {"train.activation_checkpointing": ["res4", "res3"]})
    )
    assert some.train.activation_checkpointing == ("res3", "res4")
    assert some.to_dict()["train"]["activation_checkpointing"] == ["res3", "res4"]
    assert RunConfig.from_dict(some.to_dict()) == some
    for workers in ("auto", None, 0, 8):
        assert RunConfig.from_dict(apply_overrides(_implicit(dataset), {"data.num_workers": workers})).run_id == (
            base.run_id
        )


@pytest.mark.parametrize(
    "key,value,message",
    [
        ("train.amp", "fp8", "train.amp='fp8' is invalid: allowed: auto, none, bf16, fp16"),
        ("train.deterministic", "yes", "train.deterministic='yes' is invalid: allowed: auto, true, false"),
        ("train.deterministic", 1, "train.deterministic=1 is invalid"),
        ("train.activation_checkpointing", ["res3", "res6"], "unknown stage 'res6'; stages: res2, res3, res4, res5"),
        ("train.activation_checkpointing", 3, "none, all, or a list of res2, res3, res4, res5"),
        ("train.channels_last", "yes", "train.channels_last='yes' is invalid: expected bool"),
        ("data.num_workers", -1, "data.num_workers=-1 is invalid: must be an integer >= 0, or auto / null"),
        ("data.num_workers", "many", "data.num_workers='many' is invalid"),
    ],
)
def test_runtime_options_refuse_bad_values(dataset, key, value, message):
    with pytest.raises(ConfigError) as info:
        RunConfig.from_dict(apply_overrides(_implicit(dataset), {key: value}))
    assert message in str(info.value)
