"""Grids -> runs -> submitit executors (debug in-process, local worker processes): expansion, run ids,
validation, idempotent submission, failures and retries, status, cancel, logs, snapshots."""

from __future__ import annotations

import argparse
import json
import os
import pickle
import time
from pathlib import Path

import pytest
import yaml

from harness.config import IDENTITY_VERSION
from harness.launch.control import cancel, find_run, run_logs
from harness.launch.grid import (
    GridError,
    GridValidationError,
    expand,
    grid_from_dict,
    load_grid,
    validate_runs,
)
from harness.launch.snapshot import snapshot_code
from harness.launch.status import collect_status, status_table
from harness.launch.submit import LaunchOptions, run_grid, submit
from harness.launch.tasks import RunBatch, RunTask
from harness.results.rundir import RunDir

REPO = Path(__file__).resolve().parents[1]

TINY_MODEL = {"width": 8, "num_snippets": 2, "num_frames": 2}
TINY_PROFILE = {"size": 32, "batch": 1, "views": 1, "device": "cpu", "latency": False}


def write_grid(path: Path, **doc) -> Path:
    base = {
        "name": "tiny_profile",
        "task": "profile",
        "base": {"model": dict(TINY_MODEL), "profile": dict(TINY_PROFILE)},
        "axes": {"product": {"model.variant": ["tsn_r18", "tsm_r18_dsa"]}},
        "seeds": [0],
        "resources": {"cpus_per_task": 1, "mem_gb": 1, "time_min": 10},
    }
    base.update(doc)
    path.write_text(yaml.safe_dump(base, sort_keys=False))
    return path


def sweep_cli(argv: list[str]) -> int:
    """The `sweep` sub-commands through argparse, as `dsa-harness sweep ...` runs them."""
    from harness.launch.commands import register_commands

    parser = argparse.ArgumentParser(prog="dsa-harness")
    register_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["sweep", *argv])
    return args.func(args)


# ------------------------------------------------------------------------------------------------
# expansion and identity


def test_expand_product_zip_and_seeds():
    grid = grid_from_dict(
        {
            "name": "g",
            "task": "profile",
            "base": {"model": {"width": 8}, "profile": {"size": 32}},
            "axes": {
                "product": {"model.alpha": [1, 2]},
                "zip": {"model.variant": ["tsm_r18_dsa", "i3d_r18_dsa", "tsn_r18"], "model.num_snippets": [2, 4, 8]},
            },
            "seeds": [0, 1],
        }
    )
    runs = expand(grid, "res")
    assert grid.num_runs == len(runs) == 2 * 3 * 2
    combos = [
        (r.config["model"]["alpha"], r.config["model"]["variant"], r.config["model"]["num_snippets"], r.config["seed"])
        for r in runs
    ]
    # product slowest, zip rows walked together, seeds fastest
    assert combos[:4] == [
        (1, "tsm_r18_dsa", 2, 0),
        (1, "tsm_r18_dsa", 2, 1),
        (1, "i3d_r18_dsa", 4, 0),
        (1, "i3d_r18_dsa", 4, 1),
    ]
    assert combos[6] == (2, "tsm_r18_dsa", 2, 0)
    assert all(r.config["model"]["width"] == 8 and r.config["profile"]["size"] == 32 for r in runs)
    assert [r.index for r in runs] == list(range(12))
    assert runs[5].axes == {"model.alpha": 1, "model.variant": "tsn_r18", "model.num_snippets": 8, "seed": 1}
    assert runs[0].run_dir == Path("res") / "runs" / "g" / runs[0].run_id
    assert len({r.run_id for r in runs}) == 12


def test_section_axis_values_merge_into_base():
    grid = grid_from_dict(
        {
            "name": "g",
            "task": "profile",
            "base": {"model": {"width": 8, "alpha": 2}},
            "axes": {"product": {"model": [{"variant": "tsn_r18"}, {"variant": "i3d_r18_dsa", "alpha": 4}]}},
        }
    )
    a, b = expand(grid)

    def pick(m):
        return m["variant"], m["width"], m["alpha"]

    assert pick(a.config["model"]) == ("tsn_r18", 8, 2) and pick(b.config["model"]) == ("i3d_r18_dsa", 8, 4)


def test_run_id_is_stable_hash_of_identity():
    from harness.config import RunConfig

    cfg = {"task": "profile", "seed": 0, "model": {"variant": "tsn_r18", "width": 8}, "profile": {"size": 32}}
    rid = RunConfig.from_dict(cfg).run_id
    assert len(rid) == 12 and int(rid, 16) >= 0
    # same config, other key order, other grid, other resources, run_id present: same id
    same = {
        "profile": {"size": 32},
        "model": {"width": 8, "variant": "tsn_r18"},
        "seed": 0,
        "task": "profile",
        "grid": "elsewhere",
        "resources": {"gpus": 8, "time_min": 5},
        "run_id": "whatever",
    }
    assert RunConfig.from_dict(same).run_id == rid
    assert RunConfig.from_dict({**cfg, "seed": 1}).run_id != rid
    assert RunConfig.from_dict({**cfg, "model": {"variant": "tsn_r18", "width": 16}}).run_id != rid
    # ids from a grid are reproducible across loads and independent of the grid's resources
    g1 = grid_from_dict(
        {
            "name": "a",
            "task": "profile",
            "base": {"model": {"variant": "tsn_r18"}},
            "seeds": [0, 1],
            "resources": {"gpus": 0, "time_min": 5},
        }
    )
    g2 = grid_from_dict(
        {
            "name": "b",
            "task": "profile",
            "base": {"model": {"variant": "tsn_r18"}},
            "seeds": [0, 1],
            "resources": {"gpus": 8, "nodes": 2, "time_min": 999},
        }
    )
    assert [r.run_id for r in expand(g1)] == [r.run_id for r in expand(g2)]
    assert expand(g1)[0].run_id != expand(g1)[1].run_id


@pytest.mark.parametrize(
    "doc,fragment",
    [
        ({"task": "profile"}, "name"),
        ({"name": "g", "task": "fly"}, "task"),
        (
            {"name": "g", "task": "profile", "axes": {"zip": {"model.alpha": [1, 2], "model.kernel_size": [3]}}},
            "equal lengths",
        ),
        ({"name": "g", "task": "profile", "axes": {"product": {"modle.alpha": [1]}}}, "axes.product.modle.alpha"),
        ({"name": "g", "task": "profile", "axes": {"product": {"model.alpha": []}}}, "non-empty list"),
        ({"name": "g", "task": "profile", "seeds": [0, 0]}, "repeated seed"),
        ({"name": "g", "task": "profile", "resources": {"gpu": 1}}, "unknown resources key"),
        ({"name": "g", "task": "profile", "resources": {"gpus": 3, "nodes": 2}}, "multiple"),
        ({"name": "g", "task": "profile", "colour": "red"}, "colour"),
    ],
)
def test_grid_format_errors_name_the_key(doc, fragment):
    with pytest.raises(GridError, match=fragment.replace(".", r"\.")):
        grid_from_dict(doc, "x.yaml")


def test_yaml_syntax_error_names_file_and_line(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("name: g\ntask: profile\naxes:\n  product: {model.alpha: [1, 2}\n")
    with pytest.raises(GridError, match=r"bad\.yaml: line 4"):
        load_grid(p)


def test_duplicate_runs_are_rejected():
    grid = grid_from_dict(
        {
            "name": "g",
            "task": "profile",
            "base": {"model": {"variant": "tsn_r18"}},
            "axes": {"product": {"model.alpha": [2, 2]}},
        }
    )
    with pytest.raises(GridValidationError, match="same resolved configuration as run 0"):
        expand(grid)


# ------------------------------------------------------------------------------------------------
# validation


def test_validation_reports_every_problem_and_submits_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    grid_file = write_grid(
        tmp_path / "bad.yaml",
        name="bad",
        axes={
            "zip": {
                "model.variant": ["tsn_r18", "tsm_r18_dsaa", "i3d_r18_dsa", "tsm_r18_dsa"],
                "model.split_ratio": [0.125, 0.125, 1.5, 0.25],
                "profile.size": [32, 32, 32, 0],
            }
        },
    )
    with pytest.raises(GridValidationError) as info:
        submit(grid_file, cluster="debug", results_root="results")
    problems = info.value.problems
    where = {(p.run_index, p.field) for p in problems}
    assert (1, "model.variant") in where  # unknown variant, with close names
    assert (2, "model.split_ratio") in where  # split ratio out of range
    assert (3, "profile.size") in where
    assert 0 not in {p.run_index for p in problems}
    text = str(info.value)
    assert "tsm_r18_dsa" in text and "split_ratio" in text and "bad.yaml" in text
    assert not (tmp_path / "results").exists()  # nothing submitted, no run directory


def test_train_validation_checks_data_paths_unless_disabled(tmp_path):
    doc = {
        "name": "t",
        "task": "train",
        "base": {
            "model": {"variant": "tsn_r18", "num_classes": 4},
            "data": {"train": str(tmp_path / "missing.txt")},
            "train": {"epochs": 1, "batch_size": 2},
        },
        "axes": {"product": {"train.batch_size": [2, 4]}},
    }
    grid = grid_from_dict(doc, "t.yaml")
    runs = expand(grid)
    fields = [(p.run_index, p.field) for p in validate_runs(grid, runs, check_data=True)]
    assert (0, "data.train") in fields and (1, "data.train") in fields
    assert validate_runs(grid, runs, check_data=False) == []
    assert all(r.run_config.provisional for r in runs)  # the list cannot be read: ids hash its path
    # a bad value is reported by expansion, naming the run and the field
    bad = grid_from_dict({**doc, "axes": {"product": {"train.batch_size": [2, 0]}}}, "t.yaml")
    with pytest.raises(GridValidationError) as info:
        expand(bad)
    assert [(p.run_index, p.field) for p in info.value.problems] == [(1, "train.batch_size")]


@pytest.mark.parametrize("path", sorted((REPO / "experiments").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_grids_are_valid(path):
    grid = load_grid(path)
    runs = expand(grid)
    assert runs and grid.paper_table
    assert validate_runs(grid, runs, check_data=False) == []
    if grid.paper_reference:
        assert grid.paper_reference.startswith("experiments/paper/") and grid.paper_reference.endswith(".csv")
    for run in runs:  # the paper's 100-epoch GPU grids validate every 5th epoch, not every epoch
        train = run.config.get("train") or {}
        if run.config["task"] == "train" and train["epochs"] >= 100 and run.resources.gpus:
            assert train.get("eval_every") == 5, f"{path.name}: train.eval_every {train.get('eval_every')}"


# ------------------------------------------------------------------------------------------------
# executors


def _final_mtimes(runs):
    return {r.run_id: RunDir(r.run_dir).final_path.stat().st_mtime_ns for r in runs}


def test_debug_executor_runs_profile_grid_and_resubmission_skips(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    grid_file = write_grid(tmp_path / "tiny.yaml")
    result = submit(grid_file, cluster="debug", results_root="results")
    assert len(result.submitted) == 2 and not result.skipped
    for run in result.runs:
        rd = RunDir(run.run_dir)
        final = rd.read_final()
        assert final["status"] == "done" and final["task"] == "profile" and final["run_id"] == run.run_id
        assert final["profile"]["variant"] == run.config["model"]["variant"]
        assert final["profile"]["gflops_per_view"] > 0 and final["profile"]["size"] == 32
        assert final["hardware"]["device"] == "cpu" and final["versions"]["torch"]
        assert rd.read_config()["run_id"] == run.run_id
        job = rd.read_job()
        assert job["cluster"] == "debug" and job["attempts"] == 1 and job["state"] == "finished"
    assert [s.status for s in collect_status(result.runs)] == ["done", "done"]
    before = _final_mtimes(result.runs)
    again = submit(grid_file, cluster="debug", results_root="results")
    assert again.submitted == [] and len(again.skipped["done"]) == 2
    assert _final_mtimes(result.runs) == before
    # the DSA model has more FLOPs than plain averaging at the same size
    f = {
        r.config["model"]["variant"]: RunDir(r.run_dir).read_final()["profile"]["gflops_per_view"] for r in result.runs
    }
    assert f["tsm_r18_dsa"] > f["tsn_r18"]


def test_report_leaves_out_runs_of_an_earlier_version_of_the_grid(tmp_path, monkeypatch):
    """Changing a grid's recipe gives new run ids; the old runs stay on disk but are not averaged in."""
    from harness.numfmt import format_sig
    from harness.report import write_report
    from harness.results.rundir import read_grid_manifest

    monkeypatch.chdir(tmp_path)
    grid_file = write_grid(tmp_path / "tiny.yaml")
    old = submit(grid_file, cluster="debug", results_root="results")
    grid_dir = tmp_path / "results" / "runs" / "tiny_profile"
    assert read_grid_manifest(grid_dir)["run_ids"] == [r.run_id for r in old.runs]
    write_grid(tmp_path / "tiny.yaml", base={"model": dict(TINY_MODEL), "profile": {**TINY_PROFILE, "size": 48}})
    assert submit(grid_file, cluster="local", results_root="results", dry_run=True).submitted  # a dry run ...
    assert read_grid_manifest(grid_dir)["run_ids"] == [r.run_id for r in old.runs]  # ... changes nothing
    new = submit(grid_file, cluster="debug", results_root="results")
    assert {r.run_id for r in new.runs}.isdisjoint(r.run_id for r in old.runs)
    assert read_grid_manifest(grid_dir)["run_ids"] == [r.run_id for r in new.runs]
    (tmp_path / "experiments").mkdir()
    index = write_report("results", "reports", formats=("md",), experiments_dir=tmp_path / "experiments").read_text()
    assert "- runs: 2 (2 done)" in index and "not shown: 2 run(s) of an earlier version" in index
    assert "runs: 4 (4 done) in 1 grid(s); 2 of them made by earlier versions of their grid files, not shown" in index
    table = (tmp_path / "reports" / "tiny_profile.md").read_text()
    gflops = {RunDir(r.run_dir).read_final()["profile"]["gflops_per_view"] for r in new.runs}
    assert all(f"| {format_sig(g)} x " in table for g in gflops)  # the compact cost cell, significant figures
    old_gflops = {RunDir(r.run_dir).read_final()["profile"]["gflops_per_view"] for r in old.runs}
    assert all(f"| {format_sig(g)} x " not in table for g in old_gflops)


def test_failed_runs_are_listed_and_retried_only_on_request(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    # a weights file that exists passes the grid's checks but cannot be loaded: a runtime failure
    (tmp_path / "bad.pth").write_bytes(b"not a state dict")
    grid_file = write_grid(
        tmp_path / "fail.yaml",
        name="fail",
        axes={"product": {"model.variant": ["tsn_r18"], "model.pretrained": [None, "bad.pth"]}},
    )
    result = submit(grid_file, cluster="debug", results_root="results")
    ok, bad = result.runs
    statuses = collect_status(result.runs)
    assert [s.status for s in statuses] == ["done", "failed"]
    assert "WeightLoadError" in statuses[1].error
    err = RunDir(bad.run_dir).read_error()
    assert err["attempt"] == 1 and err["traceback"]
    table = status_table(statuses, result.grid)
    assert "failed" in table and "1 done, 1 failed" in table

    again = submit(grid_file, cluster="debug", results_root="results")
    assert again.submitted == [] and list(again.skipped) == ["done", "failed (use --retry-failed)"]
    assert RunDir(bad.run_dir).read_job()["attempts"] == 1

    retried = submit(grid_file, cluster="debug", results_root="results", retry_failed=True)
    assert [r.run_id for r in retried.submitted] == [bad.run_id]
    assert RunDir(bad.run_dir).read_job()["attempts"] == 2
    assert RunDir(bad.run_dir).read_error()["attempt"] == 2
    assert RunDir(ok.run_dir).read_job()["attempts"] == 1


@pytest.mark.usefixtures("local_workers")
def test_local_executor_workers_run_grid_in_background(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    grid_file = write_grid(
        tmp_path / "tiny.yaml",
        name="tiny_local",
        axes={"product": {"model.variant": ["tsn_r18", "tsm_r18", "i3d_r18"]}},
    )
    run_dirs = run_grid(
        grid_file,
        cluster="local",
        results_root="results",
        options=LaunchOptions(cluster="local", max_parallel=2),
        progress=False,
        poll_s=0.5,
        timeout_s=300,
    )
    assert len(run_dirs) == 3
    finals = [RunDir(d).read_final() for d in run_dirs]
    assert all(f and f["status"] == "done" for f in finals)
    jobs = [RunDir(d).read_job() for d in run_dirs]
    assert {j["cluster"] for j in jobs} == {"local"}
    assert len({j["job_id"] for j in jobs}) == 2  # two workers, bounded by max_parallel
    assert all(j["attempt_job_id"] == j["job_id"] for j in jobs)  # each run ran inside its worker
    assert all(Path(j["stdout"]).exists() for j in jobs)
    again = submit(grid_file, cluster="local", results_root="results")
    assert again.submitted == [] and len(again.skipped["done"]) == 3


def test_status_cli_table_and_json(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    grid_file = write_grid(
        tmp_path / "tiny.yaml", axes={"product": {"model.variant": ["tsn_r18", "tsm_r18_dsa", "i3d_r18"]}}
    )
    runs = expand(load_grid(grid_file), "results")
    assert sweep_cli(["submit", str(grid_file), "--cluster", "debug"]) == 0
    capsys.readouterr()
    # forge a pending run: remove one run's outputs
    for name in ("final.json", "job.json"):
        (runs[2].run_dir / name).unlink()
    assert sweep_cli(["status", str(grid_file)]) == 0
    out = capsys.readouterr().out
    lines = {ln.split()[1]: ln for ln in out.splitlines() if ln.strip()[:1].isdigit()}
    assert "done" in lines[runs[0].run_id] and "GFLOPs/view" in lines[runs[0].run_id]
    assert "pending" in lines[runs[2].run_id]
    assert "3 runs: 2 done, 1 incomplete" not in out and "2 done, 1 pending" in out
    assert sweep_cli(["status", str(grid_file), "--json"]) == 0
    recs = [json.loads(ln) for ln in capsys.readouterr().out.splitlines()]
    assert [r["status"] for r in recs] == ["done", "done", "pending"]
    assert sweep_cli(["logs", runs[0].run_id[:8]]) == 0
    assert "attempt 1" in capsys.readouterr().out


def test_stale_and_live_markers(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    grid_file = write_grid(tmp_path / "tiny.yaml")
    runs = expand(load_grid(grid_file), "results")
    # run 0: marker of a local worker that is gone (pid of a finished child)
    import subprocess

    dead = subprocess.Popen(["true"])
    dead.wait()
    rd0 = RunDir(runs[0].run_dir).create()
    rd0.write_job(
        {"cluster": "local", "job_id": str(dead.pid), "host": os.uname().nodename, "state": "submitted", "attempts": 0}
    )
    # run 1: marker of a live "worker" (this very process), already started
    rd1 = RunDir(runs[1].run_dir).create()
    from harness.launch.scheduler import proc_start_ticks

    rd1.write_job(
        {
            "cluster": "local",
            "job_id": str(os.getpid()),
            "host": os.uname().nodename,
            "proc_start": proc_start_ticks(os.getpid()),
            "state": "running",
            "attempts": 1,
        }
    )
    assert [s.status for s in collect_status(runs)] == ["pending", "running"]
    result = submit(grid_file, cluster="debug", results_root="results")
    assert [r.run_id for r in result.submitted] == [runs[0].run_id]
    assert {k: [r.run_id for r in v] for k, v in result.skipped.items()} == {"running": [runs[1].run_id]}
    # a stale marker that had started (no error recorded) is incomplete, and resubmitted
    rd1.write_job({**rd1.read_job(), "proc_start": -1})  # pid reuse: not the recorded process
    assert collect_status(runs)[1].status == "incomplete"


@pytest.mark.usefixtures("local_workers")
def test_cancel_stops_local_worker_and_marks_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    slow = {**TINY_PROFILE, "latency": True, "rounds": 1_000_000}
    grid_file = write_grid(
        tmp_path / "slow.yaml",
        name="slow",
        base={"model": dict(TINY_MODEL), "profile": slow},
        axes={"product": {"model.variant": ["tsn_r18", "tsm_r18"]}},
    )
    result = submit(
        grid_file, cluster="local", results_root="results", options=LaunchOptions(cluster="local", max_parallel=1)
    )
    assert len(result.job_ids) == 2 and len(set(result.job_ids)) == 1
    deadline = time.time() + 120
    while collect_status(result.runs)[0].status != "running":
        assert time.time() < deadline, "worker did not start"
        time.sleep(0.3)
    assert [s.status for s in collect_status(result.runs)] == ["running", "queued"]
    cancelled = cancel(grid_file, "results")
    assert {s.run_id for s in cancelled} == {r.run_id for r in result.runs}
    deadline = time.time() + 120  # generous: a loaded 2-core machine
    while any(j._process.poll() is None for j in result.jobs):
        assert time.time() < deadline, "worker still alive after cancel"
        time.sleep(0.2)
    assert [s.status for s in collect_status(result.runs)] == ["cancelled", "cancelled"]
    plan = submit(grid_file, cluster="local", results_root="results", dry_run=True)
    assert len(plan.submitted) == 2  # cancelled runs are submitted again by default


# ------------------------------------------------------------------------------------------------
# one run id, one run: two grids, or a grid and `dsa-harness train`


def test_a_run_two_grids_ask_for_is_trained_once_done_in_both_and_counted_once(tmp_path, monkeypatch, capsys):
    import shutil

    from harness.report import write_report
    from harness.results.store import load_runs

    monkeypatch.chdir(tmp_path)
    first = write_grid(tmp_path / "a.yaml", name="grid_a")  # tsn_r18, tsm_r18_dsa
    second = write_grid(
        tmp_path / "b.yaml", name="grid_b", axes={"product": {"model.variant": ["tsm_r18_dsa", "i3d_r18"]}}
    )
    done = submit(first, cluster="debug", results_root="results")
    shared = done.runs[1]
    runs_b = expand(load_grid(second), "results")
    assert runs_b[0].run_id == shared.run_id and runs_b[0].run_dir != shared.run_dir  # one run, asked twice
    before = RunDir(shared.run_dir).final_path.stat().st_mtime_ns

    statuses = collect_status(runs_b)
    assert [(s.status, s.elsewhere) for s in statuses] == [("done", True), ("pending", False)]
    assert statuses[0].run_dir.resolve() == shared.run_dir.resolve() and "GFLOPs/view" in statuses[0].metric
    table = status_table(statuses, load_grid(second))
    assert "in grid_a/" in table and "1 of them held by another folder of the results root (grid_a/" in table
    result = submit(second, cluster="debug", results_root="results")
    assert [r.run_id for r in result.submitted] == [runs_b[1].run_id]
    assert {k: [r.run_id for r in v] for k, v in result.skipped.items()} == {"done in another folder": [shared.run_id]}
    assert "1 done in another folder" in result.summary()
    assert not runs_b[0].run_dir.exists()  # nothing of it written in grid_b's folder
    assert RunDir(shared.run_dir).final_path.stat().st_mtime_ns == before  # nor trained again in grid_a's
    assert [s.status for s in collect_status(runs_b)] == ["done", "done"]
    assert [s.status for s in collect_status(done.runs)] == ["done", "done"]
    assert sweep_cli(["status", str(second), "--json"]) == 0
    recs = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert recs[0]["status"] == "done" and Path(recs[0]["run_dir"]).resolve() == shared.run_dir.resolve()
    again = submit(first, cluster="debug", results_root="results")
    assert again.submitted == [] and len(again.skipped["done"]) == 2

    runs = load_runs(tmp_path / "results" / "runs")
    assert sorted(runs["run_id"]) == sorted({r.run_id for r in done.runs + runs_b}) and len(runs) == 3
    (tmp_path / "experiments").mkdir()
    index = write_report("results", "reports", formats=("md",), experiments_dir=tmp_path / "experiments")
    assert "- runs: 3 (3 done) in 2 grid(s)" in index.read_text()
    for grid in ("grid_a", "grid_b"):  # the shared run in both grids' tables, though kept in grid_a's folder
        table = (tmp_path / "reports" / f"{grid}.md").read_text()
        assert "- runs: 2 (2 done)" in table and "| tsm_r18_dsa |" in table, table

    # a results root from before (the run trained in both folders): one row, from the folder that finished first
    shutil.copytree(shared.run_dir, runs_b[0].run_dir)
    copy = RunDir(runs_b[0].run_dir)
    copy.write_final({**copy.read_final(), "finished_at": "2000-01-01T00:00:00+00:00"})  # grid_b's finished first
    for cache in (False, True, True):
        runs = load_runs(tmp_path / "results" / "runs", cache=cache)
        assert len(runs) == 3 and runs["run_id"].is_unique
        (kept,) = runs.loc[runs["run_id"] == shared.run_id, "path"]
        assert Path(kept).resolve() == copy.path.resolve()
        noted = [(Path(p).resolve(), m) for p, m in runs.attrs["problems"] if "counted once" in m]
        assert noted == [(shared.run_dir.resolve(), f"run {shared.run_id} is also in {kept}: counted once, from there")]
    assert [(s.status, s.elsewhere) for s in collect_status(runs_b)] == [("done", False), ("done", False)]


def _tiny_recipe(tmp_path: Path) -> Path:
    """A recipe of a tiny training run on 6 real mp4 files (2 classes), as `train --recipe` and a grid read it."""
    import numpy as np

    from harness.data import write_mp4

    videos = tmp_path / "videos"
    lines = []
    for i in range(6):
        level = 60 + 120 * (i % 2)
        frames = np.clip(np.random.default_rng(i).normal(level, 20, (8, 32, 32, 3)), 0, 255).astype(np.uint8)
        write_mp4(videos / f"v{i}.mp4", frames, fps=8)
        lines.append(f"v{i}.mp4 {i % 2}")
    (videos / "list.txt").write_text("\n".join(lines) + "\n")
    recipe = {
        "model": {"num_classes": 2, "width": 8, "num_snippets": 1, "num_frames": 2},
        "data": {
            "train": str(videos / "list.txt"),
            "test": str(videos / "list.txt"),
            "root": str(videos),
            "size": 32,
            "resize": 32,
            "num_workers": 0,
        },
        "train": {"epochs": 1, "batch_size": 3, "base_batch": 3, "warmup_epochs": 0, "milestones": [5], "threads": 1},
        "eval": {"test_groups": 1, "crops": 1, "batch_size": 6},
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path


def test_a_run_trained_by_hand_is_done_in_the_grid_and_a_grid_s_run_is_not_trained_by_hand_again(
    tmp_path, monkeypatch, capsys
):
    from harness.cli import main
    from harness.results.store import load_runs

    monkeypatch.chdir(tmp_path)
    recipe = _tiny_recipe(tmp_path)
    grid_file = tmp_path / "study.yaml"
    grid_file.write_text(
        yaml.safe_dump(
            {
                "name": "study",
                "task": "train",
                "include": "recipe.yaml",
                "axes": {"product": {"model.variant": ["tsn_r18", "tsm_r18"]}},
                "resources": {"cpus_per_task": 1, "mem_gb": 1, "time_min": 10},
            }
        )
    )
    by_hand, from_grid = expand(load_grid(grid_file), "results")
    assert main(["train", "tsn_r18", "--recipe", str(recipe), "--quiet"]) == 0
    manual = RunDir(tmp_path / "results" / "runs" / "manual" / by_hand.run_id)
    assert manual.read_final()["run_id"] == by_hand.run_id  # `sweep show --resolved 0`'s run id
    capsys.readouterr()

    assert sweep_cli(["status", str(grid_file)]) == 0
    out = capsys.readouterr().out
    assert "2 runs: 1 done, 1 pending" in out and "in manual/" in out
    result = submit(grid_file, cluster="debug", results_root="results")
    assert [r.run_id for r in result.submitted] == [from_grid.run_id]
    assert list(result.skipped) == ["done in another folder"] and not by_hand.run_dir.exists()
    assert [s.status for s in collect_status([by_hand, from_grid])] == ["done", "done"]

    # the other way round: `train` of a run the grid has done says so, and trains nothing
    final = RunDir(from_grid.run_dir).final_path
    before = final.stat().st_mtime_ns
    assert main(["train", "tsm_r18", "--recipe", str(recipe), "--quiet"]) == 0
    assert f"run {from_grid.run_id} is already done ({final})" in capsys.readouterr().out
    assert final.stat().st_mtime_ns == before
    assert not (tmp_path / "results" / "runs" / "manual" / from_grid.run_id).exists()
    runs = load_runs(tmp_path / "results" / "runs")
    assert sorted(runs["run_id"]) == sorted([by_hand.run_id, from_grid.run_id])


def test_local_workers_a_test_left_are_ended_by_pid_and_no_other_process(tmp_path):
    """The ``local_workers`` fixture's teardown (tests/conftest.py): it ends the live local workers recorded
    under the test's folder, with their task processes, and leaves alone a process a marker names that is no
    worker of that folder (its pid given to another process)."""
    import subprocess
    import sys

    import submitit
    from conftest import LOCAL_CONTROLLER, end_local_workers, local_workers_under

    from harness.launch.scheduler import _children, proc_start_ticks

    ex = submitit.LocalExecutor(folder=tmp_path / "results" / "runs" / "g" / "_jobs" / "%j")
    ex.update_parameters(timeout_min=10)
    job = ex.submit(time.sleep, 600)
    worker = int(job.job_id)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", LOCAL_CONTROLLER, "/elsewhere/x"])
    try:
        RunDir(tmp_path / "results" / "runs" / "g" / "abcdef123456").create().write_job(
            {"cluster": "local", "job_id": str(other.pid), "state": "running"}
        )
        deadline = time.time() + 120
        while not _children(worker):  # its task process has started
            assert time.time() < deadline, "the local worker started no task"
            time.sleep(0.1)
        tasks = _children(worker)
        assert local_workers_under(tmp_path) == [worker]
        assert end_local_workers(tmp_path) == [worker]
        assert proc_start_ticks(worker) is None and all(proc_start_ticks(t) is None for t in tasks)
        assert other.poll() is None  # not a worker of this folder: left alone
        assert local_workers_under(tmp_path) == [] and end_local_workers(tmp_path) == []
    finally:
        other.kill()
        other.wait()
        if proc_start_ticks(worker) is not None:
            job._process.kill()


# ------------------------------------------------------------------------------------------------
# callables and snapshot


def test_checkpoint_requeues_a_fresh_stateless_callable(tmp_path):
    rd = RunDir(tmp_path / "r").create()
    rd.write_job({"cluster": "slurm", "job_id": "1_0", "state": "running", "attempts": 1})
    task = RunTask()
    task.stale = "state that must not survive a requeue"
    delayed = task.checkpoint(str(rd.path), "/work")
    assert type(delayed.function) is RunTask and delayed.function is not task
    assert not vars(delayed.function)
    assert delayed.args == (str(rd.path), "/work") and not delayed.kwargs
    assert len(pickle.dumps(delayed)) < 2000
    job = rd.read_job()
    assert job["requeues"] == 1 and job["state"] == "requeued"
    batch = RunBatch().checkpoint([str(rd.path)], None)
    assert type(batch.function) is RunBatch and batch.args == ([str(rd.path)], None)


def test_snapshot_copies_code_once_and_records_commit(tmp_path):
    snap, commit, dirty = snapshot_code(tmp_path / "snaps")
    assert (snap / "harness" / "launch" / "tasks.py").read_bytes() == (REPO / "harness/launch/tasks.py").read_bytes()
    assert not (snap / ".venv").exists() and not (snap / "results" / "runs").exists()
    meta = json.loads((snap / "SNAPSHOT.json").read_text())
    assert meta["commit"] == commit and meta["dirty"] == dirty
    again, _, _ = snapshot_code(tmp_path / "snaps")
    assert again == snap and len(list((tmp_path / "snaps").iterdir())) == 1


def test_one_commit_reader_for_checkout_snapshot_and_archive(tmp_path, monkeypatch):
    import subprocess
    import sys

    from harness.version import COMMIT_ENV, code_commit

    monkeypatch.delenv(COMMIT_ENV, raising=False)
    snap, commit, dirty = snapshot_code(tmp_path / "snaps")
    recorded = f"{commit}-dirty" if commit and dirty else commit
    assert code_commit(snap) == recorded  # what the launcher writes in job.json
    # what a run started from the snapshot writes in final.json: the snapshot's commit, not the checkout's
    out = subprocess.run(
        [sys.executable, "-c", "from harness.version import code_commit; print(code_commit())"],
        cwd=snap,
        env={**os.environ, "PYTHONPATH": str(snap)},
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0 and out.stdout.strip() == str(recorded), out.stderr
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    if head:  # a checkout: its HEAD (with -dirty when tracked files changed)
        assert code_commit().split("-")[0] == head
    (tmp_path / "archive").mkdir()
    assert code_commit(tmp_path / "archive") is None  # neither snapshot nor checkout, nothing tells
    monkeypatch.setenv(COMMIT_ENV, "abc123")
    assert code_commit(tmp_path / "archive") is None  # the variable names the running code only
    assert code_commit(snap) == recorded
    from harness.measure import describe_environment

    assert describe_environment()["git_commit"] == (
        "abc123" if not (REPO / "SNAPSHOT.json").exists() else code_commit()
    )


def test_find_run_by_prefix_and_logs(tmp_path):
    rd = RunDir(tmp_path / "runs" / "g" / "abcdef123456").create()
    rd.write_config({"run_id": "abcdef123456"})
    rd.log("hello from the run")
    assert find_run("abcdef", tmp_path).path == rd.path
    assert "hello from the run" in run_logs(rd)
    with pytest.raises(FileNotFoundError):
        find_run("zzz", tmp_path)


# ------------------------------------------------------------------------------------------------
# --set, --resolved, runs of the earlier identity


def test_set_changes_every_run_and_its_id_and_is_refused_on_an_axis(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    grid_file = write_grid(tmp_path / "g.yaml", name="g")
    plain = [r.run_id for r in expand(load_grid(grid_file))]
    assert sweep_cli(["show", str(grid_file), "--no-cost", "--set", "profile.size=48", "--resolved", "0"]) == 0
    out = capsys.readouterr().out
    resolved = json.loads(out.split("\n", 1)[1])
    assert resolved["profile"]["size"] == 48 and resolved["model"]["variant"] == "tsn_r18"
    assert resolved["run_id"] not in plain and resolved["identity_version"] == IDENTITY_VERSION
    with pytest.raises(GridError, match="model.variant: is an axis of this grid"):
        sweep_cli(["show", str(grid_file), "--no-cost", "--set", "model.variant=i3d_r18"])
    result = submit(grid_file, cluster="debug", results_root="results", overrides=[("profile.size", 48)])
    assert [r.run_id for r in result.runs][0] == resolved["run_id"]
    assert all(RunDir(r.run_dir).read_final()["profile"]["size"] == 48 for r in result.runs)


def test_status_says_plainly_that_old_identity_runs_are_not_reused(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    grid_file = write_grid(tmp_path / "g.yaml", name="g")
    old = RunDir(tmp_path / "results" / "runs" / "g" / "0123456789ab").create()
    old.write_config(
        {
            "task": "profile",
            "seed": 0,
            "grid": "g",
            "run_id": "0123456789ab",
            "model": {"variant": "tsn_r18", **TINY_MODEL},
            "profile": TINY_PROFILE,
        }
    )
    old.write_final({"run_id": "0123456789ab", "status": "done", "task": "profile"})
    v2 = RunDir(tmp_path / "results" / "runs" / "g" / "0123456789ac").create()  # identity 2: lists without videos
    v2.write_config({**old.read_config(), "run_id": "0123456789ac", "identity_version": 2, "inputs": {}})
    assert sweep_cli(["status", str(grid_file), "--results", "results"]) == 0
    out = capsys.readouterr().out
    assert "2 runs: 2 pending" in out
    assert "2 run folder(s) in results/runs/g were made under the earlier run identity (version 1" in out


def test_resolved_by_index_prints_one_run_even_when_an_id_starts_with_that_digit(capsys):
    grid_file = REPO / "experiments" / "profile.yaml"
    sets = ["--set", "profile.size=32", "--set", "profile.latency=false"]
    runs = expand(load_grid(grid_file), overrides=[("profile.size", 32), ("profile.latency", False)])
    for r in runs:
        assert sweep_cli(["show", str(grid_file), "--no-cost", *sets, "--resolved", str(r.index)]) == 0
        out = capsys.readouterr().out
        assert out.count("# run ") == 1 and f"# run {r.index}: {r.run_id}" in out
    assert sweep_cli(["show", str(grid_file), "--no-cost", *sets, "--resolved", runs[3].run_id[:6]]) == 0
    assert f"# run 3: {runs[3].run_id}" in capsys.readouterr().out


def test_embedded_benchmark_grids_cover_every_paper_ablation_axis():
    """`make reproduce` runs one embedded grid per paper ablation table, with the same row keys, >= 3 seeds, no
    paper numbers to compare with, and a title that names the embedded benchmark, never the paper's dataset."""
    from harness.reproduce import EMBEDDED_GRIDS

    shipped = sorted(p.name for p in (REPO / "experiments").glob("embedded_*.yaml"))
    assert sorted(EMBEDDED_GRIDS) == shipped and len(shipped) == 7
    for path in sorted((REPO / "experiments").glob("ablation_*.yaml")):
        paper = load_grid(path)
        embedded = load_grid(REPO / "experiments" / path.name.replace("ablation_", "embedded_"))
        assert embedded.report["rows"] == [k.replace("i3d_r50", "i3d_r18") for k in paper.report["rows"]], path.name
        assert len(embedded.seeds) >= 3 and not embedded.paper_reference
        assert embedded.paper_table.startswith("embedded benchmark") and "Kinetics" not in embedded.paper_table
        assert {r.config["data"]["train"] for r in expand(embedded)} == {"data/cued/train.txt"}


def test_a_baseline_no_run_holds_is_refused_by_name(tmp_path):
    """`report.baseline: {model.stage_masks: paper}` never matches: runs store the resolved blocks. The report
    would pair nothing and say nothing; validation names the values the runs hold instead."""
    doc = yaml.safe_load((REPO / "experiments" / "embedded_stages.yaml").read_text())
    doc["include"] = str(REPO / "experiments" / "recipes" / "embedded_benchmark.yaml")
    doc["report"]["baseline"] = {"model.stage_masks": "paper"}
    (tmp_path / "g.yaml").write_text(yaml.safe_dump(doc))
    grid = load_grid(tmp_path / "g.yaml")
    problems = [str(p) for p in validate_runs(grid, expand(grid), check_data=False)]
    assert problems == [
        f"{tmp_path / 'g.yaml'}: grid: report.baseline: {{'model.stage_masks': 'paper'}}: no run of the grid has it "
        "(runs have model.stage_masks in 'res2:all,res3:all,res4:all,res5:all', 'res3:01,res4:01', "
        "'res3:all,res4:all')"
    ]
    doc["report"]["baseline"] = {"model.stage_masks": "res3:01,res4:01"}
    (tmp_path / "g.yaml").write_text(yaml.safe_dump(doc))
    assert validate_runs(load_grid(tmp_path / "g.yaml"), expand(load_grid(tmp_path / "g.yaml")), check_data=False) == []
