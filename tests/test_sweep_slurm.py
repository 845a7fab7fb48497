"""Grids on a real SLURM cluster (the throwaway single-node cluster of scripts/local-slurm.sh, through
the session fixture ``slurm_cluster`` of tests/conftest.py): job arrays, idempotent re-submission,
invalid grids submitting nothing, and a training run preempted mid-way that resumes exactly."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from harness.engine.train import PAUSE_ENV, PAUSED_MARKER
from harness.launch.grid import GridValidationError
from harness.launch.scheduler import slurm_live_jobs
from harness.launch.status import collect_status
from harness.launch.submit import submit
from harness.results.rundir import RunDir
from harness.results.status import LIVE_STATES

pytestmark = pytest.mark.slurm

TINY_MODEL = {"width": 8, "num_snippets": 2, "num_frames": 2}
TINY_PROFILE = {"size": 32, "batch": 1, "views": 1, "device": "cpu", "latency": False}
SMALL_JOB = {"cpus_per_task": 1, "mem_gb": 0.5, "time_min": 10}


def write_grid(path: Path, **doc) -> Path:
    base = {
        "name": "slurm_profile",
        "task": "profile",
        "base": {"model": dict(TINY_MODEL), "profile": dict(TINY_PROFILE)},
        "axes": {"product": {"model.variant": ["tsn_r18", "tsm_r18", "tsm_r18_dsa", "i3d_r18_dsa"]}},
        "seeds": [0],
        "resources": dict(SMALL_JOB),
    }
    base.update(doc)
    path.write_text(yaml.safe_dump(base, sort_keys=False))
    return path


def known_job_ids(cluster) -> set[str]:
    """Every job id the cluster knows, live or ended (its sacct: squeue and the job completion log): an id,
    once given, stays in it, so the ids new since an earlier call are exactly the jobs submitted since."""
    out = cluster.run("sacct", "-n", "-P", "-X", "-o", "JobID").stdout
    return {line.strip() for line in out.splitlines() if line.strip()}


def wait_until_settled(runs, timeout_s: float = 300, poll_s: float = 1.0):
    deadline = time.time() + timeout_s
    while True:
        statuses = collect_status(runs)
        if not any(s.status in LIVE_STATES for s in statuses):
            return statuses
        if time.time() > deadline:
            raise AssertionError(f"runs still alive after {timeout_s} s: {[(s.run_id, s.status) for s in statuses]}")
        time.sleep(poll_s)


def test_profile_grid_submitted_as_one_array_and_collected(slurm_cluster, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    grid_file = write_grid(tmp_path / "grid.yaml")
    result = submit(grid_file, cluster="slurm", results_root="results")
    assert len(result.submitted) == 4
    arrays = {j.split("_")[0] for j in result.job_ids}
    assert len(arrays) == 1, f"one job array expected, got {result.job_ids}"
    assert sorted(int(j.split("_")[1]) for j in result.job_ids) == [0, 1, 2, 3]
    snapshot = Path(result.snapshot)
    assert (snapshot / "harness" / "launch" / "tasks.py").exists()

    # submitted runs are alive at once; submitting again adds nothing
    assert all(s.status in LIVE_STATES or s.status == "done" for s in collect_status(result.runs))
    again = submit(grid_file, cluster="slurm", results_root="results")
    assert again.submitted == [] and again.job_ids == []

    statuses = wait_until_settled(result.runs)
    assert [s.status for s in statuses] == ["done"] * 4, [(s.status, s.error) for s in statuses]
    for run in result.runs:
        rd = RunDir(run.run_dir)
        final, job = rd.read_final(), rd.read_job()
        assert final["profile"]["variant"] == run.config["model"]["variant"]
        assert job["cluster"] == "slurm" and job["attempt_job_id"] == job["job_id"] and job["attempts"] == 1
        assert job["snapshot"] == str(snapshot)
        assert final["git_commit"] == job["commit"]  # the job ran the frozen code and reports its commit
        assert Path(job["stdout"]).exists()

    third = submit(grid_file, cluster="slurm", results_root="results")
    assert third.submitted == [] and len(third.skipped["done"]) == 4


def test_invalid_grid_submits_nothing(slurm_cluster, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    grid_file = write_grid(
        tmp_path / "bad.yaml",
        name="slurm_bad",
        axes={"product": {"model.variant": ["tsn_r18", "tsm_r18_dsa", "no_such_model"]}},
    )
    before = known_job_ids(slurm_cluster)
    with pytest.raises(GridValidationError) as info:
        submit(grid_file, cluster="slurm", results_root="results")
    assert [p.run_index for p in info.value.problems] == [2]
    # no job id the cluster did not know before (earlier tests' jobs may end meanwhile: they stay known)
    assert known_job_ids(slurm_cluster) - before == set()
    assert not (tmp_path / "results").exists()


# ------------------------------------------------------------------------------------------------
# a tiny training run preempted mid-way


def _write_videos(folder: Path, n: int = 8, frames: int = 16, size: int = 32) -> Path:
    """Tiny real mp4 files (two classes: bright or dark) and a `video` annotation list."""
    import av
    import numpy as np

    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(n):
        label = i % 2
        name = f"v{i}.mp4"
        with av.open(str(folder / name), "w") as out:
            stream = out.add_stream("mpeg4", rate=8)
            stream.width = stream.height = size
            stream.pix_fmt = "yuv420p"
            rng = np.random.default_rng(i)
            for t in range(frames):
                level = 40 + 150 * label
                img = np.clip(rng.normal(level, 20, (size, size, 3)) + t, 0, 255).astype(np.uint8)
                for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                    out.mux(packet)
            for packet in stream.encode():
                out.mux(packet)
        lines.append(f"{name} {label}")
    ann = folder / "list.txt"
    ann.write_text("\n".join(lines) + "\n")
    return ann


def _train_grid(path: Path, name: str, ann: Path) -> Path:
    doc = {
        "name": name,
        "task": "train",
        "base": {
            "model": {"variant": "tsn_r18", "num_classes": 2, **TINY_MODEL},
            "data": {
                "train": str(ann),
                "val": str(ann),
                "test": str(ann),
                "root": str(ann.parent),
                "format": "video",
                "size": 32,
                "resize": 36,
                "frame_interval": 2,
                "num_workers": 0,
            },
            "train": {
                "epochs": 6,
                "batch_size": 2,
                "base_lr": 0.01,
                "base_batch": 2,
                "warmup_epochs": 0,
                "milestones": [4],
                "checkpoint_every_steps": 1,
                "device": "cpu",
                "threads": 1,
            },
            "eval": {"test_groups": 1, "crops": 1, "batch_size": 4},
        },
        "seeds": [0],
        "resources": dict(SMALL_JOB),
    }
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


@pytest.mark.slow
def test_training_run_preempted_midway_resumes_to_the_same_result(slurm_cluster, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ann = _write_videos(tmp_path / "videos")

    # reference: the same configuration, uninterrupted
    ref = submit(_train_grid(tmp_path / "ref.yaml", "train_ref", ann), cluster="slurm", results_root="ref")
    # the run under test: preempted (submitit's USR2 path: checkpoint + requeue) mid-way through epoch 1;
    # it pauses right after that checkpoint (the engine's fault-injection hook, passed to the job through
    # sbatch's exported environment), so the signal lands at a known point however fast the machine is
    monkeypatch.setenv(PAUSE_ENV, "1:1")
    res = submit(_train_grid(tmp_path / "pre.yaml", "train_pre", ann), cluster="slurm", results_root="pre")
    monkeypatch.delenv(PAUSE_ENV)
    assert ref.runs[0].run_id == res.runs[0].run_id  # same identity, different results roots
    rd = RunDir(res.runs[0].run_dir)
    deadline = time.time() + 300
    while not (rd.path / PAUSED_MARKER).exists():
        assert not rd.is_done(), "the run finished without pausing: was the environment exported to the job?"
        assert time.time() < deadline, "the run never reached epoch 1, step 1"
        time.sleep(0.2)
    job_id = rd.read_job()["job_id"]
    subprocess.run(["scancel", "--signal=USR2", job_id], check=True, env=slurm_cluster.env)
    # submitit checkpoints (RunTask.checkpoint) and requeues; slurmctld then holds a requeued job back
    # for a while (its begin time is pushed ~2 min ahead): let it start at once
    while (rd.read_job() or {}).get("requeues", 0) < 1 or (slurm_live_jobs() or {}).get(job_id) != "PENDING":
        assert not rd.is_done(), "the run finished although it was preempted"
        assert time.time() < deadline, "the job was not requeued"
        time.sleep(0.2)
    (held,) = collect_status(res.runs)  # SLURM holds the requeued job PENDING: not "running"
    assert (held.status, held.scheduler_state, held.requeues) == ("requeued", "PENDING", 1), held
    subprocess.run(["scontrol", "update", f"JobId={job_id}", "StartTime=now"], check=False, env=slurm_cluster.env)

    wait_until_settled(ref.runs + res.runs, timeout_s=600)
    job = rd.read_job()
    assert job["requeues"] == 1 and job["attempts"] == 2, job  # the handler's count, not counted again
    a, b = RunDir(ref.runs[0].run_dir), rd
    fa, fb = a.read_final(), b.read_final()
    assert fa and fb, (a.read_error(), b.read_error())
    assert fb["attempts"] == 2 and fb["wall_time_total_s"] > fb["wall_time_s"], fb  # both attempts' time
    assert fb["test"]["top1"] == fa["test"]["top1"] and fb["test"]["loss"] == pytest.approx(
        fa["test"]["loss"], rel=1e-6
    )
    ma, mb = a.read_metrics(), b.read_metrics()
    assert [m["epoch"] for m in mb] == list(range(6))  # no epoch recorded twice
    for x, y in zip(ma, mb):
        assert y["train_loss"] == pytest.approx(x["train_loss"], rel=1e-6)
        assert y.get("val_top1") == x.get("val_top1")
    assert "requeued" in b.log_path.read_text()
    print(json.dumps({"reference": fa["test"]["top1"], "preempted": fb["test"]["top1"], "job": job}))
