"""One run-state rule (harness.results.status.run_state) for the results store (files only) and
`sweep status` (files + scheduler): they agree wherever the files alone decide."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from harness.launch.grid import RunSpec
from harness.launch.scheduler import proc_start_ticks
from harness.launch.status import collect_status, status_table
from harness.results.rundir import RunDir
from harness.results.status import FILE_STATES, LIVE_STATES, STATES, run_state
from harness.results.store import load_runs


def _config(rd: RunDir) -> None:
    rd.write_config(
        {
            "task": "train",
            "grid": "g",
            "seed": 0,
            "run_id": rd.run_id,
            "model": {"variant": "tsm_r18"},
            "train": {"epochs": 3},
        }
    )


def _submitted(rd: RunDir, cluster: str = "debug", **marker) -> None:
    """The marker the launcher writes at submission (debug: its job never outlives the submitter)."""
    old = rd.read_job() or {}
    rd.write_job(
        {
            "run_id": rd.run_id,
            "cluster": cluster,
            "job_id": f"{cluster}-{old.get('submissions', 0)}",
            "host": socket.gethostname(),
            "submissions": old.get("submissions", 0) + 1,
            "attempts": old.get("attempts", 0),
            "requeues": 0,
            "state": "submitted",
            **marker,
        }
    )


def _attempt(rd: RunDir, epochs: int, end: str | None) -> int:
    """What tasks.execute_run records: attempt started, epochs, then finished / failed / interrupted."""
    job = rd.read_job()
    attempt = job["attempts"] + 1
    rd.write_job({**job, "attempts": attempt, "state": "running"})
    done = len(rd.read_metrics())
    for e in range(done, done + epochs):
        rd.append_metrics({"epoch": e, "train_loss": 1.0})
    if epochs:
        rd.checkpoint_path.write_bytes(b"ckpt")
    if end == "failed":
        rd.write_error({"type": "RuntimeError", "message": f"boom {attempt}", "attempt": attempt})
    if end == "finished":
        rd.write_final({"run_id": rd.run_id, "task": "train", "status": "done", "test": {"top1": 50.0}})
    if end is not None:
        rd.write_job({**rd.read_job(), "state": end})
    return attempt


def _never_started(rd):
    pass


def _submitted_then_vanished(rd):  # its debug job is gone and it never started
    _submitted(rd)


def _done(rd):
    _submitted(rd)
    _attempt(rd, 3, "finished")  # noqa: E702


def _failed(rd):
    _submitted(rd)
    _attempt(rd, 1, "failed")  # noqa: E702


def _failed_resubmitted_then_interrupted(rd):
    _failed(rd)
    _submitted(rd)
    _attempt(rd, 1, "interrupted")  # noqa: E702


def _failed_resubmitted_then_failed_again(rd):
    _failed(rd)
    _submitted(rd)
    _attempt(rd, 0, "failed")  # noqa: E702


def _failed_resubmitted_then_done(rd):
    _failed(rd)
    _submitted(rd)
    _attempt(rd, 2, "finished")  # noqa: E702


def _failed_resubmitted_waiting(rd):  # its job (a live local worker: this process) waits in the queue
    _failed(rd)
    _submitted(rd, cluster="local", job_id=str(os.getpid()), proc_start=proc_start_ticks(os.getpid()))


def _half_written_final(rd):
    _submitted(rd)
    _attempt(rd, 3, "finished")  # noqa: E702
    rd.final_path.write_text('{"run_id": "x", "test": {"top')


def _half_written_final_by_hand(rd):  # no marker: a run started by `dsa-harness train --out`
    rd.append_metrics({"epoch": 0})
    rd.final_path.write_text('{"run_id": "x", "te')


def _interrupted(rd):
    _submitted(rd)
    _attempt(rd, 2, "interrupted")  # noqa: E702


def _killed_by_hand(rd):  # no marker: killed mid-way, checkpoint and metrics on disk
    rd.append_metrics({"epoch": 0})
    rd.checkpoint_path.write_bytes(b"ckpt")


def _cancelled_while_running(rd):  # what `sweep cancel` leaves once the worker is stopped
    _submitted(rd)
    _attempt(rd, 1, None)  # noqa: E702
    rd.write_job({**rd.read_job(), "state": "cancelled"})


def _cancelled_before_start(rd):
    _submitted(rd)
    rd.write_job({**rd.read_job(), "state": "cancelled"})


SITUATIONS = {
    _never_started: "pending",
    _submitted_then_vanished: None,
    _done: "done",
    _failed: "failed",
    _failed_resubmitted_then_interrupted: "incomplete",
    _failed_resubmitted_then_failed_again: "failed",
    _failed_resubmitted_then_done: "done",
    _failed_resubmitted_waiting: "queued",
    _half_written_final: "incomplete",
    _half_written_final_by_hand: "incomplete",
    _interrupted: "incomplete",
    _killed_by_hand: "incomplete",
    _cancelled_while_running: "cancelled",
    _cancelled_before_start: "cancelled",
}
"""Run-folder situations and their state; None: files alone cannot tell (the scheduler decides)."""


def _make(root: Path, make) -> RunSpec:
    name = make.__name__.strip("_")
    rd = RunDir(root / "g" / name).create()
    _config(rd)
    make(rd)
    return RunSpec(index=0, run_id=name, config={}, axes={}, run_dir=rd.path)


def test_store_and_sweep_status_agree_where_files_decide(tmp_path):
    specs = [_make(tmp_path, make) for make, state in SITUATIONS.items() if state is not None]
    runs = load_runs(tmp_path)
    store = dict(zip(runs["run_id"], runs["status"]))
    sweep = {s.run_id: s.status for s in collect_status(specs)}
    expected = {make.__name__.strip("_"): state for make, state in SITUATIONS.items() if state is not None}
    assert sweep == expected
    assert store == expected


def test_where_only_the_scheduler_can_tell_the_store_takes_the_marker_at_its_word(tmp_path):
    """A job that vanished (a killed worker, a node failure) leaves a marker that still says submitted /
    running: the store reads the marker, `sweep status` asks the scheduler."""
    vanished = _make(tmp_path, _submitted_then_vanished)
    killed = RunDir(tmp_path / "g" / "killed_worker").create()
    _config(killed)
    _submitted(killed, cluster="local", job_id="999999999")  # no such process
    _attempt(killed, 1, None)  # marker left at "running"
    specs = [vanished, RunSpec(index=1, run_id="killed_worker", config={}, axes={}, run_dir=killed.path)]
    store = dict(zip(*(load_runs(tmp_path)[c] for c in ("run_id", "status"))))
    assert store == {"submitted_then_vanished": "queued", "killed_worker": "running"}
    assert [s.status for s in collect_status(specs)] == ["pending", "incomplete"]


class _Fake:
    """A scheduler that answers one thing for every job."""

    def __init__(self, alive: bool, state: str | None):
        self.answer = (alive, state)

    def job_alive(self, job: dict) -> tuple[bool, str | None]:
        return self.answer


@pytest.mark.parametrize(
    "cluster, mark, answer, expected",
    [
        ("slurm", "submitted", (True, "PENDING"), "queued"),
        ("slurm", "submitted", (True, "RUNNING"), "running"),  # started, its marker not yet rewritten
        ("slurm", "running", (True, "RUNNING"), "running"),
        ("slurm", "requeued", (True, "PENDING"), "requeued"),
        ("slurm", "requeued", (True, "RUNNING"), "running"),
        # requeued without our handler (`scontrol requeue`): the marker still says running, SLURM holds it waiting
        ("slurm", "running", (True, "PENDING"), "requeued"),
        ("slurm", "running", (True, "REQUEUED"), "requeued"),
        ("slurm", "running", (True, "REQUEUE_HOLD"), "requeued"),
        ("slurm", "submitted", (True, "REQUEUE_HOLD"), "queued"),
        ("slurm", "running", (True, "COMPLETING"), "running"),
        ("slurm", "running", (True, None), "unknown"),  # squeue unusable: alive, state unreadable
        ("local", "submitted", (True, "RUNNING"), "queued"),  # a live worker busy with another run
        ("local", "running", (True, "RUNNING"), "running"),
        ("slurm", "submitted", (False, None), "pending"),  # vanished before starting
        ("slurm", "running", (False, None), "incomplete"),  # vanished after starting
        ("slurm", "requeued", (False, None), "incomplete"),
    ],
)
def test_states_with_a_scheduler(tmp_path, cluster, mark, answer, expected):
    rd = RunDir(tmp_path / "r").create()
    attempts = 1 if mark in ("running", "requeued") else 0
    rd.write_job({"cluster": cluster, "job_id": "7_0", "state": mark, "attempts": attempts})
    state = run_state(rd, scheduler=_Fake(*answer))
    assert state.state == expected
    assert state.scheduler_state == (answer[1] if expected in ("queued", "running", "requeued") else None)
    files_only = run_state(rd).state
    assert files_only == {"submitted": "queued", "running": "running", "requeued": "requeued"}[mark]


def test_done_and_ended_attempts_never_ask_the_scheduler(tmp_path):
    class Refuse:
        def job_alive(self, job):
            raise AssertionError("asked the scheduler")

    for make in (
        _done,
        _failed,
        _failed_resubmitted_then_interrupted,
        _cancelled_while_running,
        _never_started,
        _killed_by_hand,
    ):
        spec = _make(tmp_path, make)
        assert run_state(RunDir(spec.run_dir), scheduler=Refuse()).state == SITUATIONS[make]


def test_vocabulary():
    assert set(FILE_STATES) == set(STATES) - {"unknown"}
    assert set(LIVE_STATES) < set(STATES) and len(set(STATES)) == len(STATES)


def test_unreadable_files_are_problems_not_errors(tmp_path):
    rd = RunDir(tmp_path / "r").create()
    rd.job_path.write_text('{"state": "fai')
    rd.error_path.write_text("[1, 2")
    state = run_state(rd)
    assert state.state == "failed" and state.job == {} and state.error == {}  # an error of no known attempt
    assert state.problems == ("job.json unparsable (half-written?)", "error.json unparsable (half-written?)")
    rd.final_path.write_text("[]")
    assert run_state(rd).problems[0] == "final.json present but not a record (half-written, or not a JSON object)"


def test_sweep_status_of_a_job_slurm_requeued_behind_our_back(tmp_path, monkeypatch):
    """`scontrol requeue` of a running job: our handler never ran (marker: running, requeues 0), squeue says
    PENDING. `sweep status` says requeued (PENDING), not running; the new attempt of the same job counts it."""
    import harness.launch.scheduler as scheduler
    import harness.launch.tasks as tasks

    spec = _make(tmp_path, _never_started)
    rd = RunDir(spec.run_dir)
    rd.write_job(
        {"cluster": "slurm", "job_id": "7_0", "state": "running", "attempts": 1, "attempt_job_id": "7_0", "requeues": 0}
    )
    monkeypatch.setattr(scheduler, "slurm_live_jobs", lambda: {"7_0": "PENDING"})
    (st,) = collect_status([spec])
    assert (st.status, st.scheduler_state, st.requeues) == ("requeued", "PENDING", 0)
    assert "7_0 (PENDING)" in status_table([st])
    # the job starts again under the same id: execute_run counts the requeue it was not told about
    monkeypatch.setenv("SLURM_ARRAY_JOB_ID", "7")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "0")
    monkeypatch.setattr(tasks, "run_task", lambda config, run_dir: {"status": "done"})
    tasks.execute_run(rd.path)
    job = rd.read_job()
    assert (job["attempts"], job["requeues"], job["state"]) == (2, 1, "finished")
    assert "restarted by the scheduler: counted as a requeue" in rd.log_path.read_text()
    assert "2 (1 requeued)" in status_table(collect_status([spec]))


@pytest.mark.parametrize(
    "before, job_env, counted",
    [
        ({"state": "requeued", "requeues": 1}, "7_0", 1),  # our handler ran and counted it: not twice
        ({"state": "interrupted", "requeues": 0}, "7_0", 1),  # stopped, then restarted under the same id
        ({"state": "submitted", "requeues": 0}, "8_0", 0),  # a new submission (another job) is no requeue
        ({"state": "running", "requeues": 0}, "8_0", 0),  # (another job id: not a restart of this job)
        ({"state": "failed", "requeues": 0}, "7_0", 0),  # a failed attempt ends the job: not restarted
    ],
)
def test_requeues_are_counted_once_per_restart_of_the_same_job(tmp_path, monkeypatch, before, job_env, counted):
    import harness.launch.tasks as tasks

    rd = RunDir(tmp_path / "r").create()
    _config(rd)
    rd.write_job({"cluster": "slurm", "job_id": job_env, "attempts": 1, "attempt_job_id": "7_0", **before})
    array, task = job_env.split("_")
    monkeypatch.setenv("SLURM_ARRAY_JOB_ID", array)
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", task)
    monkeypatch.setattr(tasks, "run_task", lambda config, run_dir: {"status": "done"})
    tasks.execute_run(rd.path)
    assert rd.read_job()["requeues"] == counted and rd.read_job()["attempts"] == 2


def test_requeue_handler_then_restart_counts_one(tmp_path, monkeypatch):
    """submitit's path: the handler (RunTask.checkpoint -> _note_requeue) counts the requeue; the restarted
    job's attempt does not count it again."""
    import harness.launch.tasks as tasks

    rd = RunDir(tmp_path / "r").create()
    _config(rd)
    rd.write_job({"cluster": "slurm", "job_id": "7_0", "state": "running", "attempts": 1, "attempt_job_id": "7_0"})
    monkeypatch.setenv("SLURM_ARRAY_JOB_ID", "7")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "0")
    tasks.RunTask().checkpoint(str(rd.path))
    assert rd.read_job()["requeues"] == 1
    monkeypatch.setattr(tasks, "run_task", lambda config, run_dir: {"status": "done"})
    tasks.execute_run(rd.path)
    assert (rd.read_job()["requeues"], rd.read_job()["attempts"]) == (1, 2)


def test_a_zombie_process_holds_no_run_lock():
    """A process that has exited but is not reaped yet (a zombie) is not alive: `sweep status` must not call
    its run `running` while its parent has not waited for it."""
    import subprocess
    import sys
    import time

    from harness.results.lock import pid_alive

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.time() + 10
    while time.time() < deadline:  # exited, not reaped: a zombie
        with open(f"/proc/{child.pid}/stat", "rb") as f:
            if f.read().rsplit(b")", 1)[1].split()[0] == b"Z":
                break
        time.sleep(0.02)
    assert not pid_alive(child.pid)
    child.wait()
    assert not pid_alive(child.pid) and pid_alive(os.getpid())
