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


# --- 7: reports of user-made states ----------------------------------------------------------------
def _train_run(root: Path, grid: str, name: str, seed: int, top1: float, *, val: bool = True):
    from harness.results.rundir import RunDir

    rd = RunDir(root / "runs" / grid / name).create()
    rd.write_config(
        {"task": "train", "grid": grid, "seed": seed, "model": {"variant": "tsn_r18"}, "data": {"name": "t"}}
    )
    for e in range(2):
        rd.append_metrics({"epoch": e, "train_loss": 2.0 - e, **({"val_top1": top1 - 5 + e} if val else {})})
    rd.write_final(
        {
            "run_id": rd.run_id,
            "task": "train",
            "status": "done",
            "finished_at": "2026-11-20T10:00:00+00:00",
            "hardware": {"device": "cpu", "device_name": "Test CPU", "threads": 2},
            "train": {"epochs": 2},
            "test": {"top1": top1, "top5": top1 + 10, "views": 1, "num_videos": 10},
            "profile": {"gflops_per_view": 1.5, "params_m": 11.0},
        }
    )
    return rd


def test_report_with_a_grid_whose_paper_reference_is_a_mapping(tmp_path, monkeypatch, capsys):
    from harness.cli import main

    monkeypatch.chdir(tmp_path)
    _train_run(tmp_path / "results", "g", "r0", 0, 50.0)
    (tmp_path / "experiments").mkdir()
    (tmp_path / "experiments" / "other.yaml").write_text("name: other\ntask: profile\npaper_reference: {a: 1}\n")
    assert main(["report", "--formats", "md"]) == 0  # a grid without runs does not stop the report
    assert "g.md" in (tmp_path / "reports" / "README.md").read_text()
    (tmp_path / "experiments" / "g.yaml").write_text("name: g\ntask: train\npaper_reference: [x.csv]\n")
    capsys.readouterr()
    assert main(["report", "--formats", "md"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "g.yaml: paper_reference: ['x.csv'] is not a CSV path" in err[0]
    assert main(["sweep", "show", "experiments/other.yaml", "--no-check-data"]) == 2
    assert "paper_reference" in capsys.readouterr().err


def test_report_over_runs_trained_without_a_validation_list(tmp_path, monkeypatch):
    from harness.cli import main

    monkeypatch.chdir(tmp_path)
    for seed in (0, 1):
        _train_run(tmp_path / "results", "g", f"r{seed}", seed, 50.0 + seed, val=False)
    assert main(["report", "--formats", "md,svg"]) == 0
    index = (tmp_path / "reports" / "README.md").read_text()
    assert "2 done" in index and "Problems found" not in index
    assert list((tmp_path / "reports" / "figures").glob("g_training*.svg"))


def test_report_on_a_non_ascii_results_folder_without_utf8_mode(tmp_path):
    import os
    import subprocess
    import sys

    root = tmp_path / "résultats"
    _train_run(root, "g", "r0", 0, 50.0)
    env = {**os.environ, "PYTHONUTF8": "0", "LANG": "C", "LC_ALL": "C", "PYTHONPATH": os.getcwd()}
    env.pop("_DSA_HARNESS_REEXEC", None)
    args = [sys.executable, "-m", "harness", "report", "--results", str(root), "--out", str(tmp_path / "rép")]
    done = subprocess.run([*args, "--formats", "md"], env=env, capture_output=True, cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    index = (tmp_path / "rép" / "README.md").read_text(encoding="utf-8")
    assert "résultats" in index and "1 done" in index


# --- 8: a report of nothing, a full disk, a closed pipe ---------------------------------------------------
@pytest.mark.parametrize("given", ["", "nope", "empty", "file"])
def test_a_report_of_nothing_never_replaces_a_report_of_something(tmp_path, monkeypatch, capsys, given):
    from harness.cli import main

    monkeypatch.chdir(tmp_path)
    _train_run(tmp_path / "results", "g", "r0", 0, 50.0)
    assert main(["report", "--formats", "md"]) == 0
    before = {p.name: p.read_bytes() for p in (tmp_path / "reports").iterdir() if p.is_file()}
    (tmp_path / "empty" / "runs").mkdir(parents=True)
    (tmp_path / "file").write_text("x")
    capsys.readouterr()
    assert main(["report", "--results", given, "--formats", "md"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"--results {given or repr('')}" in err[0], err
    assert "not overwritten" in err[0] or "is a file" in err[0]
    assert {p.name: p.read_bytes() for p in (tmp_path / "reports").iterdir() if p.is_file()} == before


def test_a_full_disk_during_report_is_one_line_naming_the_file_and_leaves_no_cut_figure(tmp_path, monkeypatch, capsys):
    import builtins
    import errno
    import os

    import harness.results.rundir as rundir
    from harness.cli import main

    monkeypatch.chdir(tmp_path)
    for seed in (0, 1):
        _train_run(tmp_path / "results", "g", f"r{seed}", seed, 50.0 + seed)
    assert main(["report", "--formats", "md,svg"]) == 0
    figures = sorted((tmp_path / "reports" / "figures").glob("*.svg"))
    assert figures
    for p in figures:  # so that they are drawn again
        p.write_bytes(b"<svg>old</svg>")
    before = {p: p.read_bytes() for p in figures}

    class Full:  # a file on a full disk: half of a write goes through, then ENOSPC
        def __init__(self, f):
            self.f = f

        def __getattr__(self, name):
            return getattr(self.f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, data):
            self.f.write(data[: len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")

    real_open, real_fdopen = builtins.open, os.fdopen

    def full_open(file, mode="r", *args, **kwargs):
        f = real_open(file, mode, *args, **kwargs)
        return Full(f) if "w" in mode and str(file).endswith(".svg") else f

    def full_fdopen(fd, mode="r", *args, **kwargs):
        f = real_fdopen(fd, mode, *args, **kwargs)
        return Full(f) if ".svg." in os.readlink(f"/proc/self/fd/{fd}") else f

    monkeypatch.setattr(builtins, "open", full_open)
    monkeypatch.setattr(rundir.os, "fdopen", full_fdopen)
    capsys.readouterr()
    assert main(["report", "--formats", "md,svg"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "No space left on device" in err[0] and "free some space" in err[0], err
    assert "reports/figures/g_" in err[0] and ".svg" in err[0]
    assert {p: p.read_bytes() for p in figures} == before  # no cut figure, the old ones intact
    assert not [p for p in (tmp_path / "reports").rglob("*.tmp")]


def test_a_closed_pipe_ends_the_command_quietly(monkeypatch, capsys):
    import io

    from harness.cli import main

    class Closed(io.StringIO):
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self):
            raise BrokenPipeError(32, "Broken pipe")

        def fileno(self):
            raise io.UnsupportedOperation("no fileno")

    monkeypatch.setattr("sys.stdout", Closed())
    assert main(["list", "--json"]) == 141


# --- generated: every run-folder file cut at several points ------------------------------------------------
RUN_FILES = ("config.json", "final.json", "metrics.jsonl", "job.json", "error.json", "predictions.parquet")
RUN_FILES += ("checkpoint.pt",)
CUTS = {"0 bytes": lambda n: 0, "1 byte": lambda n: 1, "half": lambda n: n // 2}
CUTS["all but the last byte"] = lambda n: n - 1
RESULT_FILES = ("config.json", "final.json", "metrics.jsonl", "predictions.parquet")
"""A finished run cut in one of these is never done; one cut in another file (the launcher's marker, an earlier
attempt's error, the checkpoint ``eval`` reads) keeps its results, and is done with the file named as a problem."""


def _age(root: Path, seconds: float = 60.0) -> None:
    import os
    import time

    t = time.time() - seconds
    for p in root.rglob("*"):
        if p.is_file() and ".cache" not in p.parts:
            os.utime(p, (t, t))


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A grid of one finished run holding every run-folder file (a debug submit of a profile run, then a
    training run's files: metrics, test predictions, a checkpoint, an earlier attempt's error)."""
    import io
    import json
    import os

    import pyarrow as pa
    import pyarrow.parquet as pq
    import torch

    from harness.launch.submit import submit
    from harness.results.rundir import RunDir

    base = tmp_path_factory.mktemp("finished")
    cwd = os.getcwd()
    os.chdir(base)
    try:
        grid = _profile_grid(base)
        doc = grid.read_text().replace("- 1\n", "")  # seeds [0]
        grid.write_text(doc)
        rd = RunDir(submit(grid, cluster="debug", results_root="results").runs[0].run_dir)
    finally:
        os.chdir(cwd)
    final = rd.read_final()
    n = 6
    final.update(
        task="train",
        train={"epochs": 2, "final_train_loss": 1.0},
        test={"top1": 50.0, "top5": 100.0, "num_videos": n, "views": 1, "predictions": "predictions.parquet"},
    )
    rd.write_final(final)
    rd.append_metrics({"epoch": 0, "train_loss": 2.0, "val_top1": 40.0})
    rd.append_metrics({"epoch": 1, "train_loss": 1.0, "val_top1": 50.0})
    rd.write_error({"type": "RuntimeError", "message": "an earlier attempt", "attempt": 0})
    table = pa.table(
        {
            "index": pa.array(range(n), pa.int32()),
            "line": pa.array(range(1, n + 1), pa.int32()),
            "path": [f"v{i}.mp4" for i in range(n)],
            "label": pa.array([i % 2 for i in range(n)], pa.int32()),
            "pred": pa.array([0] * n, pa.int32()),
            "top5": pa.array([None] * n, pa.list_(pa.int32())),
            "true_score": pa.array([None] * n, pa.float32()),
            "skipped": pa.array([False] * n),
            "reason": pa.array([None] * n, pa.string()),
        }
    ).replace_schema_metadata({"harness.predictions": json.dumps({"version": 1, "rows": n})})
    pq.write_table(table, rd.predictions_path)
    buffer = io.BytesIO()
    torch.save({"model": {"w": torch.zeros(4)}, "epoch": 1}, buffer)
    rd.checkpoint_path.write_bytes(buffer.getvalue())
    return base, grid, rd.path


def test_the_finished_run_fixture_is_done_without_a_problem(finished_run, tmp_path):
    import shutil

    from harness.results.rundir import RunDir
    from harness.results.status import run_state

    base, _, run = finished_run
    shutil.copytree(base, tmp_path / "w")
    rd = RunDir(tmp_path / "w" / run.relative_to(base))
    assert sorted(p.name for p in rd.path.iterdir() if p.name in RUN_FILES) == sorted(RUN_FILES)
    state = run_state(rd)
    assert state.state == "done" and state.problems == (), state.problems


@pytest.mark.parametrize("cut", list(CUTS))
@pytest.mark.parametrize("name", RUN_FILES)
def test_a_cut_run_file_is_a_named_state_or_problem_never_a_traceback_nor_done(
    finished_run, tmp_path, monkeypatch, capsys, name, cut
):
    import shutil

    from harness.cli import main
    from harness.results.rundir import RunDir
    from harness.results.store import load_runs

    base, grid, run = finished_run
    work = tmp_path / "w"
    shutil.copytree(base, work)
    monkeypatch.chdir(work)
    rd = RunDir(work / run.relative_to(base))
    _age(work)
    assert load_runs(work / "results" / "runs")["status"].tolist() == ["done"]  # cached as done
    path = rd.path / name
    data = path.read_bytes()
    kept = data[: CUTS[cut](len(data))]
    path.write_bytes(kept)
    _age(work, 30.0)  # the cut is old too: only its size tells the cache
    lossless = name.endswith(".json") and kept.strip() == data.strip()  # only the JSON file's final newline went

    runs = load_runs(work / "results" / "runs")
    assert len(runs) == 1
    status = runs["status"].iloc[0]
    assert all(len(msg.splitlines()) == 1 for _, msg in runs.attrs["problems"])
    if lossless:  # nothing was lost: read as before
        assert status == "done" and not runs.attrs["problems"]
        return
    named = [msg for p, msg in runs.attrs["problems"] if name in msg]
    assert named, runs.attrs["problems"]
    if name in RESULT_FILES:
        assert status in ("incomplete", "damaged"), status
    else:
        assert status == "done"
    assert load_runs(work / "results" / "runs", cache=False)["status"].iloc[0] == status  # the cache agrees

    capsys.readouterr()
    assert main(["sweep", "status", str(grid.relative_to(base))]) == 0
    out = capsys.readouterr().out
    assert f"1 runs: 1 {status}" in out and name in out, out

    assert main(["report", "--formats", "md"]) == 0
    index = (work / "reports" / "README.md").read_text()
    assert f"1 {status}" in index and "Problems found while reading results" in index and name in index
    if status != "done":
        assert "50.00" not in (work / "reports" / "g.md").read_text()  # never averaged


def test_a_run_folder_copied_over_another_is_foreign_never_averaged_nor_written_over(tmp_path, monkeypatch, capsys):
    import shutil

    from harness.cli import main
    from harness.launch.submit import submit
    from harness.results.rundir import RunDir
    from harness.results.store import load_runs

    monkeypatch.chdir(tmp_path)
    grid = _profile_grid(tmp_path)
    a, b = (RunDir(r.run_dir) for r in submit(grid, cluster="debug", results_root="results").runs)
    shutil.rmtree(b.path)
    shutil.copytree(a.path, b.path)  # b's folder now holds a's run
    before = b.config_path.read_bytes()
    capsys.readouterr()
    assert main(["sweep", "status", str(grid)]) == 0
    out = capsys.readouterr().out
    assert "2 runs: 1 done, 1 foreign" in out and f"is run {a.run_id}'s" in out
    again = submit(grid, cluster="debug", results_root="results")
    assert again.submitted == [] and "foreign (see sweep status)" in again.skipped
    assert b.config_path.read_bytes() == before  # never written over
    runs = load_runs(tmp_path / "results" / "runs")
    assert sorted(runs["status"]) == ["done", "foreign"]
    assert any(f"is run {a.run_id}'s" in msg for _, msg in runs.attrs["problems"])


def test_a_run_in_use_by_a_process_of_its_own_is_running_and_never_submitted_beside_it(tmp_path, monkeypatch, capsys):
    import json
    import socket
    import subprocess
    import sys

    from harness.cli import main
    from harness.launch.submit import submit
    from harness.results.lock import HOLDER_FILE
    from harness.results.rundir import RunDir
    from harness.results.status import run_state

    monkeypatch.chdir(tmp_path)
    grid = _profile_grid(tmp_path)
    rd = RunDir(submit(grid, cluster="debug", results_root="results").runs[0].run_dir)
    rd.final_path.unlink()  # unfinished: `dsa-harness train --out` on it holds its lock
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (rd.path / HOLDER_FILE).write_text(
            json.dumps(
                {"pid": holder.pid, "host": socket.gethostname(), "since": "now", "command": "dsa-harness train"}
            )
        )
        state = run_state(rd)
        assert state.state == "running" and state.scheduler_state.startswith(f"in use by pid {holder.pid}")
        capsys.readouterr()
        assert main(["sweep", "status", str(grid)]) == 0
        assert f"in use by pid {holder.pid}" in capsys.readouterr().out
        assert [r.run_id for r in submit(grid, cluster="debug", results_root="results").submitted] == []
    finally:
        holder.kill()
        holder.wait()
    assert run_state(rd).state == "incomplete"  # its holder gone: the lock file left behind says nothing
