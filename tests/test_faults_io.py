"""Faults of files the harness reads and writes (issue 25, points 6-9): a YAML alias bomb, cut run-folder files,
reports of nothing, a full disk, a closed pipe; and a generated suite: every run-folder file cut at several points
gives a named state or a one-line problem, never a traceback, and a cut run is never counted as done."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.config import read_yaml
from harness.errors import ConfigError


def _bomb(path: Path, levels: int = 9, width: int = 9) -> Path:
    lines = ["name: bomb", "task: profile", "base:", "  model: {variant: tsm_r18_dsa}", "description:"]
    lines.append("  - &l0 [" + ",".join(['"x"'] * width) + "]")
    for level in range(1, levels):
        lines.append(f"  - &l{level} [" + ",".join([f"*l{level - 1}"] * width) + "]")
    lines.append("axes: {product: {model.width: [16]}}")
    path.write_text("\n".join(lines) + "\n")
    return path


# --- 6: YAML expansion is bounded ----------------------------------------------------------------
def test_a_yaml_alias_bomb_is_refused_in_one_line_naming_the_file(tmp_path, capsys):
    from harness.cli import main

    grid = _bomb(tmp_path / "bomb.yaml")
    with pytest.raises(ConfigError, match=r"bomb\.yaml: line \d+: its YAML aliases expand to more than"):
        read_yaml(grid, "grid file")
    assert main(["sweep", "show", str(grid), "--no-check-data"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bomb.yaml" in err[0] and "alias" in err[0]


def test_yaml_aliases_of_ordinary_size_and_recursive_ones(tmp_path):
    ok = tmp_path / "ok.yaml"
    ok.write_text("a: &a {x: 1, y: [1, 2]}\nb: *a\nc: [*a, *a]\n")
    assert read_yaml(ok, "grid file")["c"][1] == {"x": 1, "y": [1, 2]}
    rec = tmp_path / "rec.yaml"
    rec.write_text("a: &a [1, *a]\n")
    with pytest.raises(ConfigError, match=r"rec\.yaml: line 1: a YAML alias refers to itself"):
        read_yaml(rec, "grid file")
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    assert read_yaml(empty, "grid file") is None


# --- 9: grid messages ------------------------------------------------------------------------------
def test_grid_problems_judge_a_field_beside_the_recipe_and_count_the_lines_shown(tmp_path):
    from harness.launch.grid import GridValidationError, expand, load_grid

    (tmp_path / "train.txt").write_text("a.mp4 0\nb.mp4 1\n")
    (tmp_path / "r.yaml").write_text(
        f"data: {{size: 32, resize: 32, train: {tmp_path / 'train.txt'}}}\nmodel: {{variant: tsm_r18_dsa}}\n"
    )
    (tmp_path / "g.yaml").write_text(
        "name: g9\ntask: train\ninclude: r.yaml\nbase: {data: {resize: 32}, model: {width: 16}}\n"
        "axes: {product: {model.dropout: [3, 0.5]}}\nseeds: [0, 1]\n"
    )
    with pytest.raises(GridValidationError) as info:
        expand(load_grid(tmp_path / "g.yaml"))
    text = str(info.value)
    assert "data.resize" not in text and "must be >= data.size" not in text
    lines = text.splitlines()
    assert lines[0].startswith("1 problem(s)") or len(lines) == 1, text
    assert "runs 0-1: model.dropout" in text


def test_the_problem_count_is_the_lines_listed():
    from harness.launch.grid import Problem, format_problems

    problems = [Problem("g.yaml", run, fld, f"{fld} is bad") for run in (0, 1) for fld in ("model.a", "model.b")]
    head, *lines = format_problems(problems).splitlines()
    assert head.startswith(f"{len(lines)} problem(s)") and len(lines) == 2


# --- 7, 9: a cut config.json, a metrics line that is not a record -------------------------------------
def _profile_grid(tmp_path) -> Path:
    import yaml

    doc = {
        "name": "g",
        "task": "profile",
        "base": {
            "model": {"variant": "tsn_r18", "width": 8, "num_snippets": 1, "num_frames": 1},
            "profile": {"size": 16, "latency": False, "memory": False},
        },
        "seeds": [0, 1],
    }
    (tmp_path / "g.yaml").write_text(yaml.safe_dump(doc))
    return tmp_path / "g.yaml"


def _cut(path: Path, keep: int | None = None) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2 if keep is None else keep])


def test_a_cut_config_json_is_incomplete_named_and_resubmitted(tmp_path, monkeypatch, capsys):
    from harness.cli import main
    from harness.launch.submit import submit
    from harness.results.rundir import RunDir

    monkeypatch.chdir(tmp_path)
    grid = _profile_grid(tmp_path)
    first = submit(grid, cluster="debug", results_root="results")
    done_cut, unfinished_cut = (RunDir(r.run_dir) for r in first.runs)
    _cut(done_cut.config_path)
    unfinished_cut.final_path.unlink()
    _cut(unfinished_cut.config_path)
    capsys.readouterr()
    assert main(["sweep", "status", str(grid)]) == 0
    out = capsys.readouterr().out
    assert "2 runs: 2 incomplete" in out and "config.json unreadable" in out
    again = submit(grid, cluster="debug", results_root="results")
    assert sorted(r.run_id for r in again.submitted) == sorted([done_cut.run_id, unfinished_cut.run_id])
    for rd in (done_cut, unfinished_cut):
        assert rd.config_problem() is None and rd.read_final()["profile"]["gflops_per_view"] > 0
    capsys.readouterr()
    assert main(["sweep", "status", str(grid)]) == 0
    assert "2 runs: 2 done" in capsys.readouterr().out


def test_sweep_status_reads_past_a_metrics_line_that_is_a_json_array(tmp_path, monkeypatch, capsys):
    from harness.cli import main
    from harness.launch.submit import submit
    from harness.results.rundir import RunDir

    monkeypatch.chdir(tmp_path)
    grid = _profile_grid(tmp_path)
    rd = RunDir(submit(grid, cluster="debug", results_root="results").runs[0].run_dir)
    rd.final_path.unlink()
    rd.metrics_path.write_text('{"epoch": 0, "train_loss": 1.5, "val_top1": "x"}\n[1, 2]\n')
    capsys.readouterr()
    assert main(["sweep", "status", str(grid)]) == 0
    out = capsys.readouterr().out
    assert "incomplete" in out and "epoch 0 loss 1.5000" in out
