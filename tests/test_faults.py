"""Faults a careless teammate or a bad disk produces, each pinned to the named error or the intact result it
must give (the probes of the "nothing silently wrong" issue that this suite covers so far)."""

from __future__ import annotations

import json
import os
import pickle
import stat
from pathlib import Path

import pytest
import yaml

from harness.cli import main
from harness.config import RunConfig, read_yaml
from harness.data.annotations import AnnotationError, read_annotations
from harness.engine.train import open_run_dir
from harness.errors import ConfigError, RunDirError
from harness.launch.grid import GridError, grid_from_dict
from harness.launch.submit import submit
from harness.results.rundir import RunDir, atomic_write_json
from harness.results.store import load_runs


@pytest.fixture()
def toy(tmp_path):
    d = tmp_path / "toy"
    d.mkdir()
    (d / "train.txt").write_text("a.mp4 0\nb.mp4 1\nc.mp4 2\nd.mp4 3\n")
    return d


def _cfg(toy) -> dict:
    return {"task": "train", "model": {"variant": "tsn_r18", "width": 8}, "data": {"train": str(toy / "train.txt")}}


def _tree(folder: Path) -> dict:
    return {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in folder.rglob("*") if p.is_file()}


# --- no code from data --------------------------------------------------------------------------
def test_a_planted_pickle_in_results_is_never_loaded(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runs = tmp_path / "results" / "runs"
    rd = RunDir(runs / "g" / "abc").create()
    rd.write_config({"task": "profile", "seed": 0, "grid": "g", "model": {"variant": "tsn_r18"}})
    evil = type("E", (), {"__reduce__": lambda s: (os.system, (f"touch {tmp_path / 'PWNED'}",))})
    (runs / ".store_cache.pkl").write_bytes(pickle.dumps(evil()))
    load_runs(runs)
    assert main(["report", "--results", "results", "--out", "reports", "--formats", "md"]) == 0
    assert not (tmp_path / "PWNED").exists()


# --- a run folder takes only its own run --------------------------------------------------------
def test_a_folder_of_foreign_files_is_refused_and_left_intact(toy, tmp_path):
    out = tmp_path / "someone_elses"
    out.mkdir()
    (out / "metrics.jsonl").write_text('{"epoch": 0, "loss": 1}\nnot json\n')
    (out / "notes.txt").write_text("mine")
    before = _tree(out)
    with pytest.raises(RunDirError, match="holds files the harness did not make.*metrics.jsonl.*overwritten"):
        open_run_dir(_cfg(toy), out, force=True)  # a file the run writes: refused even with --force
    (out / "metrics.jsonl").unlink()
    before = _tree(out)
    with pytest.raises(RunDirError, match=r"notes.txt\) and no config.json; give an empty or new --out, or --force"):
        open_run_dir(_cfg(toy), out)
    assert _tree(out) == before
    rd, rc, final = open_run_dir(_cfg(toy), out, force=True)  # other names: allowed with --force, untouched
    assert final is None and _tree(out) == before


def test_an_unrelated_final_json_is_not_taken_for_a_finished_run(toy, tmp_path, capsys):
    out = tmp_path / "other"
    out.mkdir()
    (out / "final.json").write_text('{"accuracy": 99}')
    argv = ["train", "tsn_r18", "--data", str(toy / "train.txt"), "-o", "width=8", "--out", str(out)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "holds files the harness did not make (final.json)" in err and err.count("\n") == 1
    assert [p.name for p in out.iterdir()] == ["final.json"]


def test_out_under_a_file_is_one_line(toy, tmp_path, capsys):
    (tmp_path / "plain").write_text("x")
    argv = ["train", "tsn_r18", "--data", str(toy / "train.txt"), "--out", str(tmp_path / "plain" / "run")]
    assert main(argv) in (1, 2)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(tmp_path / "plain") in err and "Traceback" not in err


# --- validated input ------------------------------------------------------------------------------
def test_a_label_beyond_the_class_list_names_file_and_line(toy):
    (toy / "classes.json").write_text(json.dumps(["a", "b", "c", "d"]))
    (toy / "train.txt").write_text("a.mp4 0\nb.mp4 99\n")
    with pytest.raises(ConfigError, match=r"train.txt:2: label 99, but .*classes.json lists 4 classes"):
        RunConfig.from_dict(_cfg(toy))


@pytest.mark.parametrize(
    "flag,value,field",
    [
        ("--clip-grad", "-1", "train.clip_grad_norm"),
        ("--lr-batch", "0", "train.base_batch"),
        ("--threads", "-1", "train.threads"),
        ("--weight-decay", "-5", "train.weight_decay"),
    ],
)
def test_bad_numbers_are_refused_before_anything_is_written(toy, tmp_path, capsys, flag, value, field):
    out = tmp_path / "run"
    assert main(["train", "tsn_r18", "--data", str(toy / "train.txt"), "--out", str(out), flag, value]) == 2
    err = capsys.readouterr().err
    assert field in err and err.count("\n") == 1
    assert not out.exists()


def test_yaml_with_a_repeated_key_is_refused_and_a_bom_accepted(tmp_path):
    path = tmp_path / "g.yaml"
    path.write_text("name: g\ntask: profile\nbase:\n  model: {variant: tsn_r18}\n  model: {variant: i3d_r18}\n")
    with pytest.raises(ConfigError, match=r"line 5, column 3: not valid YAML: key 'model' given twice"):
        read_yaml(path, "grid file")
    path.write_bytes("\ufeffname: g\n".encode())
    assert read_yaml(path, "grid file") == {"name": "g"}


def test_an_annotation_line_with_three_columns_names_file_and_line(tmp_path):
    path = tmp_path / "list.txt"
    path.write_text("a.mp4 0\nb.mp4 300 1\n")
    with pytest.raises(AnnotationError, match=r"list.txt:2: 3 columns; a video list line is 'PATH LABEL'"):
        read_annotations(path)


def test_grid_names_are_folder_safe_and_unique_per_results_root(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(GridError, match="name"):
        grid_from_dict({"name": "x" * 300, "task": "profile"})
    doc = {
        "name": "same",
        "task": "profile",
        "base": {
            "model": {"variant": "tsn_r18", "width": 8, "num_snippets": 1, "num_frames": 1},
            "profile": {"size": 16, "latency": False},
        },
    }
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(doc))
    (tmp_path / "b.yaml").write_text(yaml.safe_dump({**doc, "seeds": [1]}))
    first = submit(tmp_path / "a.yaml", cluster="debug", results_root="results")
    with pytest.raises(ConfigError, match=r"name 'same' is already used by .*a.yaml"):
        submit(tmp_path / "b.yaml", cluster="debug", results_root="results")
    manifest = json.loads((tmp_path / "results" / "runs" / "same" / "_grid.json").read_text())
    assert manifest["run_ids"] == [r.run_id for r in first.runs]  # the first grid's runs stay shown


# --- outputs that say what they are ---------------------------------------------------------------
@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o027, 0o640), (0o002, 0o664)])
def test_atomic_writes_follow_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        atomic_write_json(tmp_path / "final.json", {"a": 1})
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "final.json").stat().st_mode) == mode


# --- tolerant, named reading ----------------------------------------------------------------------
def _profile_grid(tmp_path) -> Path:
    doc = {
        "name": "g",
        "task": "profile",
        "base": {
            "model": {"variant": "tsn_r18", "width": 8, "num_snippets": 1, "num_frames": 1},
            "profile": {"size": 16, "latency": False},
        },
        "seeds": [0, 1],
    }
    (tmp_path / "g.yaml").write_text(yaml.safe_dump(doc))
    return tmp_path / "g.yaml"


def test_a_final_json_that_is_not_an_object_is_not_done_and_is_redone(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    grid = _profile_grid(tmp_path)
    first = submit(grid, cluster="debug", results_root="results")
    bad = RunDir(first.runs[0].run_dir)
    bad.final_path.write_text("[1, 2]")
    assert main(["sweep", "status", str(grid)]) == 0
    assert "1 done, 1 incomplete" in capsys.readouterr().out
    again = submit(grid, cluster="debug", results_root="results")
    assert [r.run_id for r in again.submitted] == [bad.run_id]
    assert isinstance(bad.read_final(), dict) and bad.read_final()["profile"]["gflops_per_view"] > 0


def test_undecodable_metrics_lines_are_named_and_never_silently_dropped_on_resume(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    grid = _profile_grid(tmp_path)
    result = submit(grid, cluster="debug", results_root="results")
    rd = RunDir(result.runs[1].run_dir)
    rd.metrics_path.write_bytes(b'{"epoch": 0, "train_loss": 1.0}\n\xff\xfe garbage\n{"epoch": 1, "train_loss": 0.5}\n')
    assert main(["report", "--results", "results", "--out", "reports", "--formats", "md"]) == 0
    index = (tmp_path / "reports" / "README.md").read_text()
    assert "metrics.jsonl:2: not UTF-8" in index
    with pytest.raises(RunDirError, match=r"metrics.jsonl:2: not UTF-8: resuming would drop lines it cannot read"):
        rd.truncate_metrics(keep_epochs_below=1)
    assert rd.metrics_path.read_bytes().count(b"\n") == 3  # untouched
    rd.metrics_path.write_bytes(b'{"epoch": 0}\n{"epoch": 1}\n{"epo')  # a killed writer's torn line: dropped
    rd.truncate_metrics(keep_epochs_below=1)
    assert rd.read_metrics() == [{"epoch": 0}]


# --- data check -------------------------------------------------------------------------------------
def _damaged_videos(tmp_path) -> list[Path]:
    """The same H.264 file with 2 kB zeroed at several offsets (some damage is only visible mid-file)."""
    import numpy as np

    from harness.data.synthetic import write_mp4

    frames = (np.random.default_rng(0).random((64, 64, 64, 3)) * 255).astype(np.uint8)
    good = tmp_path / "good.mp4"
    write_mp4(good, frames, gop=8)
    data = good.read_bytes()
    out = []
    for i, frac in enumerate((0.3, 0.4, 0.45, 0.5, 0.55, 0.6)):
        d = bytearray(data)
        at = int(len(d) * frac)
        d[at : at + 2000] = bytes(2000)
        out.append(tmp_path / f"damaged{i}.mp4")
        out[-1].write_bytes(bytes(d))
    return out


def test_data_check_deep_finds_damage_the_quick_check_misses(tmp_path, capsys):
    from harness.data.check import check_dataset

    videos = _damaged_videos(tmp_path)
    (tmp_path / "list.txt").write_text("".join(f"{v.name} 0\n" for v in videos))
    quick = check_dataset(tmp_path / "list.txt", tmp_path, workers=1, progress=False)
    deep = check_dataset(tmp_path / "list.txt", tmp_path, workers=1, progress=False, deep=True)
    missed = {u["path"] for u in deep["unreadable"]} - {u["path"] for u in quick["unreadable"]}
    assert missed, "no damaged file decoded its first/middle/last frame but failed in between"
    assert deep["deep"] and not quick["deep"] and deep["num_unreadable"] > quick["num_unreadable"]
    # the command: a report that cannot be written is printed, not lost
    (tmp_path / "afile").write_text("")
    argv = ["data", "check", str(tmp_path / "list.txt"), "--deep", "--workers", "1", "--quiet"]
    assert main([*argv, "--report", str(tmp_path / "afile" / "check.json")]) == 1
    out = capsys.readouterr().out
    assert "# Data check:" in out and "report not written" in out and Path(next(iter(missed))).name in out


def test_grid_validation_reports_every_problem_at_once():
    from harness.launch.grid import GridValidationError, expand

    with pytest.raises(GridValidationError) as info:
        grid_from_dict(
            {
                "name": "g/h",
                "task": "fly",
                "colour": 1,
                "axes": {"product": {"modle.alpha": [1]}},
                "seeds": [0, 0],
                "resources": {"gpu": 1},
            }
        )
    fields = {p.field for p in info.value.problems}
    assert {"colour", "name", "task", "axes.product.modle.alpha", "seeds", "resources"} <= fields
    grid = grid_from_dict(
        {
            "name": "g",
            "task": "profile",
            "base": {"model": {"variant": "tsn_r18", "split_ratio": 2, "dropout": 3, "depthh": 1}},
            "axes": {"product": {"profile.size": [32, 8]}},
        }
    )
    with pytest.raises(GridValidationError) as info:
        expand(grid)
    where = {(p.run_index, p.field) for p in info.value.problems}
    for run in (0, 1):
        assert {(run, "model.split_ratio"), (run, "model.dropout"), (run, "model.depthh")} <= where
    assert (1, "profile.size") in where and (0, "profile.size") not in where


@pytest.mark.usefixtures("local_workers")
def test_submit_local_through_a_pipe_returns_before_its_workers_end(tmp_path):
    """`sweep submit --cluster local | cat`: the workers must not hold the command's stdout open."""
    import subprocess
    import sys
    import time

    doc = {
        "name": "slow",
        "task": "profile",
        "base": {
            "model": {"variant": "tsn_r18", "width": 8, "num_snippets": 1, "num_frames": 1},
            "profile": {"size": 16, "latency": True, "rounds": 400, "memory": False, "threads": 1},
        },
        "resources": {"cpus_per_task": 1, "mem_gb": 1, "time_min": 10},
    }
    (tmp_path / "slow.yaml").write_text(yaml.safe_dump(doc))
    cmd = [sys.executable, "-m", "harness.cli", "sweep", "submit", "slow.yaml", "--cluster", "local"]
    out = subprocess.run(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120)
    assert out.returncode == 0, out.stdout
    finals = list((tmp_path / "results" / "runs" / "slow").glob("*/final.json"))
    assert not finals, "submit returned only once its worker had finished (the pipe was inherited)"
    assert "1 submitted" in out.stdout
    deadline = time.time() + 180  # the worker itself goes on and finishes
    while not list((tmp_path / "results" / "runs" / "slow").glob("*/final.json")):
        assert time.time() < deadline, "the local worker never finished"
        time.sleep(0.5)


# --- every numeric config field, generated: non-finite and out-of-range values ----------------------
def _numeric_fields() -> list[tuple[str, str, object]]:
    """(dotted field, "int" | "float", default) of every int / float field of every RunConfig section (tuple
    fields: their elements), read from the dataclasses: a new field is covered without a new case here."""
    from dataclasses import MISSING, fields

    from harness.config import SECTION_TYPES
    from harness.models.config import ModelConfig

    out = [("seed", "int", 0)]
    for section, cls in [("model", ModelConfig), *SECTION_TYPES.items()]:
        for f in fields(cls):
            words = {w.strip(" []") for w in str(f.type).replace("tuple[", "|").replace(",", "|").split("|")}
            kinds = words & {"int", "float"}
            if f.name == "name" or not kinds:
                continue
            default = f.default if f.default is not MISSING else f.default_factory()
            out.append((f"{section}.{f.name}", "float" if "float" in kinds else "int", default))
    return out


def _bad_values(key: str, kind: str) -> list:
    from harness.config import FIELD_RANGES, INT_LIMIT

    values = [float("nan"), float("inf"), float("-inf")]
    lo, hi, lo_open, hi_open = FIELD_RANGES[key]
    step = 1 if kind == "int" else 1e-3
    values.append(lo if lo_open else lo - step)
    values.append(INT_LIMIT if hi is None and kind == "int" else None if hi is None else hi if hi_open else hi + step)
    return [v for v in values if v is not None]


def _config_with(key: str, value) -> dict:
    section, _, name = key.partition(".")
    task = "profile" if section == "profile" else "train"
    cfg = {"task": task, "model": {"variant": "tsn_r18"}}
    if task == "train":
        cfg["model"]["num_classes"] = 4  # no data needed to resolve the config
    if not name:
        return {**cfg, key: value}
    default = dict(_numeric_fields_by_key())[key]
    if isinstance(default, tuple):  # a tuple field: its first element replaced
        value = [value, *default[1:]]
    cfg.setdefault(section, {})[name] = value
    return cfg


def _numeric_fields_by_key() -> list[tuple[str, object]]:
    return [(k, d) for k, _, d in _numeric_fields()]


def test_every_numeric_config_field_declares_its_valid_range():
    from harness.config import FIELD_RANGES

    missing = [k for k, _, _ in _numeric_fields() if k not in FIELD_RANGES]
    assert not missing, f"declare the valid range of {missing} in harness.config.FIELD_RANGES"
    assert len(_numeric_fields()) > 40


@pytest.mark.parametrize(
    "key,value",
    [(k, v) for k, kind, _ in _numeric_fields() for v in _bad_values(k, kind)],
    ids=lambda x: str(x),
)
def test_every_numeric_config_field_refuses_non_finite_and_out_of_range_values(key, value):
    """Never a traceback, never acceptance: one line naming the field (with nan, inf, -inf and a value just
    beyond each end of its declared range)."""
    with pytest.raises(ConfigError) as info:
        RunConfig.from_dict(_config_with(key, value))
    message = str(info.value)
    assert key in message and "\n" not in message, message


def test_the_declared_ranges_accept_their_own_ends():
    """The other side of the generated test: the range's closed ends are valid values (the table is not
    stricter than the sections' own checks), for the fields whose ends a config can take alone."""
    from harness.config import FIELD_RANGES

    for key, kind, _ in _numeric_fields():
        lo, hi, lo_open, hi_open = FIELD_RANGES[key]
        ends = ([] if lo_open else [lo]) + ([] if hi is None or hi_open else [hi])
        for end in ends:
            if key in ("data.resize", "eval.resize", "eval.crops", "model.depth") or key == "data.size":
                continue  # coupled to another field (resize >= size), or a set of values (crops 1|3, depths)
            RunConfig.from_dict(_config_with(key, float(end) if kind == "float" else end))


@pytest.mark.parametrize(
    "flags,field",
    [
        (["--lr", "inf"], "train.base_lr"),
        (["--weight-decay", "inf"], "train.weight_decay"),
        (["--set", "seed=-1"], "seed"),
        (["--set", "seed=1e30"], "seed"),
        (["--set", "train.base_lr=NaN"], "train.base_lr"),
    ],
)
def test_non_finite_or_out_of_range_flags_are_one_line_before_anything_is_written(toy, tmp_path, capsys, flags, field):
    out = tmp_path / "run"
    assert main(["train", "tsn_r18", "--data", str(toy / "train.txt"), "--out", str(out), *flags]) == 2
    err = capsys.readouterr().err
    assert f"{field}=" in err and "is invalid: must be" in err and err.count("\n") == 1, err
    assert not out.exists()


def test_a_grid_with_an_infinite_lr_is_refused_naming_the_field(tmp_path):
    from harness.launch.grid import GridValidationError, expand, load_grid

    (tmp_path / "g.yaml").write_text(
        "name: g\ntask: train\nbase:\n  model: {variant: tsn_r18, num_classes: 4}\n  train: {base_lr: .inf}\n"
    )
    with pytest.raises(GridValidationError) as info:
        expand(load_grid(tmp_path / "g.yaml"))
    assert [p.field for p in info.value.problems] == ["train.base_lr"]


def test_a_diverged_run_is_its_own_state_never_averaged_nor_resubmitted(tmp_path, monkeypatch, capsys):
    """Issue 25.3: final.json with status diverged (what the engine writes when the loss turns NaN / inf) is
    `diverged` in sweep status and the results store, listed under the report's problems, left out of its
    tables, and skipped by sweep submit (with or without --retry-failed)."""
    monkeypatch.chdir(tmp_path)
    grid = _profile_grid(tmp_path)
    first = submit(grid, cluster="debug", results_root="results")
    bad = RunDir(first.runs[0].run_dir)
    final = bad.read_final()
    bad.write_final(
        {
            **final,
            "status": "diverged",
            "diverged": {"epoch": 0, "step": 2, "global_step": 2, "loss": "nan", "stopped": True},
        }
    )
    assert main(["sweep", "status", str(grid)]) == 0
    out = capsys.readouterr().out
    assert "1 done, 1 diverged" in out and "diverged: training loss nan at epoch 1, step 2" in out
    runs = load_runs(Path("results") / "runs", cache=False)
    assert sorted(runs["status"]) == ["diverged", "done"]
    assert any(bad.run_id in str(path) and "diverged" in msg for path, msg in runs.attrs["problems"])
    for retry in (False, True):
        again = submit(grid, cluster="debug", results_root="results", retry_failed=retry)
        assert not again.submitted and "diverged" in again.summary()
    assert bad.read_final()["status"] == "diverged"
    assert main(["report", "--results", "results", "--out", "reports", "--formats", "md"]) == 0
    index = (tmp_path / "reports" / "README.md").read_text()
    assert "diverged: training loss nan at epoch 1, step 2" in index
