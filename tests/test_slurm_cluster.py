"""The throwaway single-node SLURM cluster (scripts/local-slurm.sh, fixture ``slurm_cluster``) really
schedules work: plain sbatch jobs, submitit jobs and job arrays, and the signals that submitit's
checkpoint-and-requeue path relies on (preemption and time limits)."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cloudpickle
import pytest
import submitit

pytestmark = pytest.mark.slurm

# job processes cannot import this test module: submitit (cloudpickle) ships its functions by value
cloudpickle.register_pickle_by_value(sys.modules[__name__])

SMALL = {"timeout_min": 30, "cpus_per_task": 1, "mem_gb": 0.5, "slurm_partition": "debug"}


# --- callables run inside SLURM jobs ------------------------------------------------------------------


def square_on_node(x: int) -> dict:
    """x*x and where it ran."""
    return {
        "value": x * x,
        "job_id": os.environ.get("SLURM_JOB_ID"),
        "array_task": os.environ.get("SLURM_ARRAY_TASK_ID"),
        "python": sys.executable,
        "host": socket.gethostname(),
    }


def fail_loudly(message: str) -> None:
    raise ValueError(message)


def rank_1_fails_rank_0_waits(wait_s: float) -> str:
    """Rank 1 raises at once; rank 0 stands for a rank left waiting in a collective for its peer."""
    if os.environ.get("SLURM_PROCID") == "1":
        raise RuntimeError("rank 1 failed before the collective")
    time.sleep(wait_s)
    return "rank 0 waited it out"


class GatedCounter(submitit.helpers.Checkpointable):
    """Counts ``total`` ticks of ``tick_s`` seconds, keeping its progress in ``workdir/state.json``
    (on disk, never in the pickle, so a requeued job resumes where it stopped). At tick ``hold_at``
    it waits (at most ``hold_max_s``) until ``workdir/release`` exists: the first attempt stays
    there until the scheduler signals it, the test releases the requeued one."""

    def __call__(self, workdir: str, total: int, hold_at: int, tick_s: float = 0.05, hold_max_s: float = 150.0) -> dict:
        work = Path(workdir)
        state = _load_state(work)
        state["attempts"] += 1
        state["restart_counts"].append(int(os.environ.get("SLURM_RESTART_COUNT", "0")))
        state["resumed_from"].append(state["ticks"])
        _save_state(work, state)
        held_since = time.time()
        while state["ticks"] < total:
            if state["ticks"] >= hold_at and not (work / "release").exists():
                if time.time() - held_since > hold_max_s:
                    raise TimeoutError(f"held at tick {state['ticks']} for {hold_max_s} s: no signal came")
                (work / "holding").touch()
                time.sleep(0.05)
                continue
            time.sleep(tick_s)
            state["ticks"] += 1
            _save_state(work, state)
        return state

    def checkpoint(self, workdir: str, *args, **kwargs):
        with open(Path(workdir) / "checkpoints.log", "a") as fh:
            fh.write(f"{time.time()} ticks={_load_state(Path(workdir))['ticks']}\n")
        return super().checkpoint(workdir, *args, **kwargs)


def _load_state(work: Path) -> dict:
    path = work / "state.json"
    if path.exists():
        return json.loads(path.read_text())
    return {"ticks": 0, "attempts": 0, "restart_counts": [], "resumed_from": []}


def _save_state(work: Path, state: dict) -> None:
    tmp = work / "state.json.tmp"
    tmp.write_text(json.dumps(state))
    os.replace(tmp, work / "state.json")


# --- helpers --------------------------------------------------------------------------------------


def _diagnostics(cluster, jobs=()) -> str:
    parts = [cluster.run("squeue", "-r", "-t", "all", check=False).stdout]
    for job in jobs:
        parts.append(f"--- job {job.job_id} stdout ---\n{job.stdout()}\n--- stderr ---\n{job.stderr()}")
    parts.append(cluster.log_tail())
    return "\n".join(str(p) for p in parts)


def wait_for(condition, what: str, cluster, timeout_s: float = 120.0, jobs=(), poll_s: float = 0.25, on_poll=None):
    """Poll ``condition()`` until it is truthy; fail with the cluster's state and logs otherwise."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if on_poll is not None:
            on_poll()
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s} s waiting for {what}\n{_diagnostics(cluster, jobs)}")
        time.sleep(poll_s)


def sacct_state(cluster, job_id: str) -> str:
    out = cluster.run("sacct", "-n", "-P", "-X", "-o", "JobID,State", "-j", job_id).stdout
    states = dict(line.split("|", 1) for line in out.splitlines() if "|" in line)
    return states.get(job_id, "")


def squeue_row(cluster, job_id: str) -> tuple[str, str]:
    """(state, reason) of a job slurmctld still lists, else ('', '')."""
    out = cluster.run("squeue", "-h", "-j", job_id, "-o", "%T|%r", check=False).stdout.strip()
    state, _, reason = out.partition("|")
    return state, reason


def start_if_held_back(cluster, job_id: str) -> None:
    """slurmctld holds a requeued job back ~2 min (BeginTime); let it start now."""
    state, reason = squeue_row(cluster, job_id)
    if state == "PENDING" and reason == "BeginTime":
        cluster.run("scontrol", "update", f"JobId={job_id}", "StartTime=now", check=False)


def slurm_executor(folder: Path, **params) -> submitit.AutoExecutor:
    executor = submitit.AutoExecutor(folder=folder)
    assert executor.cluster == "slurm", "submitit did not detect the SLURM cluster (sbatch on PATH?)"
    executor.update_parameters(**{**SMALL, **params})
    return executor


# --- tests ----------------------------------------------------------------------------------------


def test_cluster_is_up_with_an_idle_node(slurm_cluster):
    assert os.environ["SLURM_CONF"] == str(slurm_cluster.conf)
    nodes = slurm_cluster.run("sinfo", "-h", "-N", "-o", "%N|%T|%c|%P").stdout.split()
    assert {n.split("|")[0] for n in nodes} == {"localhost"}
    cpus = {int(n.split("|")[2]) for n in nodes}
    assert cpus == {len(os.sched_getaffinity(0))}  # all the CPUs we may use
    assert {n.split("|")[3].rstrip("*") for n in nodes} == {"debug", "urgent"}
    status = subprocess.run(
        ["bash", "scripts/local-slurm.sh", "status", str(slurm_cluster.dir)],
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        check=True,
    )
    for daemon in ("munged", "slurmctld", "slurmd"):
        assert f"{daemon}: running" in status.stdout


def _processes_using(conf: Path) -> list[int]:
    """PIDs whose environment points SLURM_CONF at ``conf`` (daemons, step daemons, job processes)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and entry.name != str(os.getpid()):
            try:
                env = (entry / "environ").read_bytes().split(b"\0")
            except OSError:
                continue
            if f"SLURM_CONF={conf}".encode() in env:
                pids.append(int(entry.name))
    return pids


def test_script_down_stops_a_busy_cluster_and_is_idempotent(slurm_cluster, tmp_path):
    """A second cluster beside the session's: up, a running job, down; nothing of it is left."""
    script = Path(__file__).resolve().parents[1] / "scripts" / "local-slurm.sh"
    base = Path(tempfile.mkdtemp(prefix="ls-busy-", dir="/tmp"))
    env = {k: v for k, v in os.environ.items() if k != "SLURM_CONF"}
    try:
        up = subprocess.run(
            ["bash", str(script), "up", str(base)], env=env, capture_output=True, text=True, timeout=120
        )
        assert up.returncode == 0, up.stdout + up.stderr
        conf = base / "slurm.conf"
        assert f"SLURM_CONF={conf}" in up.stdout.splitlines()
        assert conf.read_text() != slurm_cluster.conf.read_text()  # its own ports, munge socket, state
        daemons = {name: int((base / f"{name}.pid").read_text()) for name in ("munged", "slurmctld", "slurmd")}
        job_env = {**env, "SLURM_CONF": str(conf)}
        job = subprocess.run(
            ["sbatch", "--parsable", f"--output={tmp_path / 'busy.out'}", "--wrap", "sleep 600"],
            env=job_env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        wait_for(
            lambda: (
                subprocess.run(
                    ["squeue", "-h", "-j", job, "-o", "%T"], env=job_env, capture_output=True, text=True
                ).stdout.strip()
                == "RUNNING"
            ),
            "the job to run",
            slurm_cluster,
        )
        assert len(_processes_using(conf)) > len(daemons)  # slurmstepd and the job's processes too

        down = subprocess.run(["bash", str(script), "down", str(base)], capture_output=True, text=True, timeout=120)
        assert down.returncode == 0, down.stdout + down.stderr
        assert not base.exists()
        for name, pid in daemons.items():
            assert not _alive(pid), f"{name} (pid {pid}) still running"
        assert [p for p in _processes_using(conf) if _alive(p)] == []
        again = subprocess.run(["bash", str(script), "down", str(base)], capture_output=True, text=True, timeout=60)
        assert again.returncode == 0, again.stderr
    finally:
        if base.exists():
            subprocess.run(["bash", str(script), "down", str(base)], capture_output=True, timeout=120)


def _alive(pid: int) -> bool:
    """Running (zombies, waiting for their parent to reap them, are not)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


def test_sbatch_job_writes_its_output_file(slurm_cluster, tmp_path):
    out = tmp_path / "hello-%j.out"
    proc = slurm_cluster.run(
        "sbatch",
        "--parsable",
        "--wait",
        "--time=2",
        f"--output={out}",
        f"--chdir={tmp_path}",
        "--wrap",
        "echo hello from job $SLURM_JOB_ID on $(hostname)",
        timeout=120,
    )
    job_id = proc.stdout.strip().split(";")[0]
    assert job_id.isdigit(), proc.stdout
    text = (tmp_path / f"hello-{job_id}.out").read_text()
    assert text.strip() == f"hello from job {job_id} on {socket.gethostname()}"
    # the sacct of the cluster directory (no slurmdbd) reports the real final state
    assert wait_for(lambda: sacct_state(slurm_cluster, job_id) == "COMPLETED", "sacct COMPLETED", slurm_cluster)


def test_submitit_round_trip_returns_the_result(slurm_cluster, tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="submitit")
    executor = slurm_executor(tmp_path / "jobs")
    ok = executor.submit(square_on_node, 7)
    bad = executor.submit(fail_loudly, "boom from a slurm job")
    wait_for(lambda: ok.done() and bad.done(), "both submitit jobs", slurm_cluster, jobs=[ok, bad])

    result = ok.result()
    assert result["value"] == 49
    assert result["job_id"] == ok.job_id
    assert result["python"] == sys.executable  # the job ran this venv's interpreter
    error = bad.exception()
    assert error is not None and "boom from a slurm job" in str(error)
    # final states as submitit reads them (through the cluster's sacct), without 'Bypassing sacct error'
    assert wait_for(lambda: ok.watcher.get_state(ok.job_id, mode="force") == "COMPLETED", "COMPLETED", slurm_cluster)
    assert wait_for(lambda: bad.watcher.get_state(bad.job_id, mode="force") == "FAILED", "FAILED", slurm_cluster)
    assert not [r for r in caplog.records if "Bypassing sacct error" in r.getMessage()]


def test_job_array_through_executor_batch(slurm_cluster, tmp_path):
    executor = slurm_executor(tmp_path / "jobs", slurm_array_parallelism=4)
    with executor.batch():
        jobs = [executor.submit(square_on_node, k) for k in range(4)]
    array_ids = {job.job_id.split("_")[0] for job in jobs}
    assert len(array_ids) == 1, [job.job_id for job in jobs]  # one sbatch --array, not four jobs
    assert sorted(job.job_id.split("_")[1] for job in jobs) == ["0", "1", "2", "3"]
    wait_for(lambda: all(job.done() for job in jobs), "the array's 4 tasks", slurm_cluster, jobs=jobs)
    results = [job.result() for job in jobs]
    assert [r["value"] for r in results] == [0, 1, 4, 9]
    assert [r["array_task"] for r in results] == ["0", "1", "2", "3"]


def test_preempted_job_gets_the_user_signal_and_submitit_requeues_it(slurm_cluster, tmp_path):
    """A job in 'urgent' preempts a submitit job in 'debug': the preempted job receives submitit's user
    signal (SlurmctldParameters=preempt_send_user_signal), checkpoints, requeues itself, and the
    requeued job resumes from the progress it left on disk."""
    work = tmp_path / "work"
    work.mkdir()
    executor = slurm_executor(tmp_path / "jobs")  # timeout 30 min: submitit calls a signal 'preempted'
    job = executor.submit(GatedCounter(), str(work), 40, 10)
    wait_for(lambda: (work / "holding").exists(), "the job to reach its hold point", slurm_cluster, jobs=[job])

    urgent = slurm_cluster.run(
        "sbatch",
        "--parsable",
        "--partition=urgent",
        "--exclusive",
        "--time=2",
        f"--output={tmp_path / 'urgent-%j.out'}",
        "--wrap",
        "sleep 1",
    ).stdout.strip()
    wait_for(
        lambda: (work / "checkpoints.log").exists(),
        "submitit's checkpoint on the preemption signal",
        slurm_cluster,
        jobs=[job],
    )
    wait_for(
        lambda: sacct_state(slurm_cluster, urgent) == "COMPLETED", "the urgent job to run", slurm_cluster, jobs=[job]
    )
    (work / "release").touch()
    wait_for(
        job.done,
        "the requeued job to finish",
        slurm_cluster,
        jobs=[job],
        on_poll=lambda: start_if_held_back(slurm_cluster, job.job_id),
    )

    state = job.result()
    assert state["ticks"] == 40
    assert state["attempts"] == 2 and state["restart_counts"] == [0, 1]
    assert state["resumed_from"] == [0, 10]  # resumed at the checkpointed tick, not from scratch
    log = job.stderr() or ""
    assert "this job is preempted" in log, log


@pytest.mark.slow
def test_time_limit_sends_the_user_signal_before_the_kill(slurm_cluster, tmp_path):
    """Jobs with a 1-minute limit: a bash batch script (--signal=B:USR1@60) traps USR1, and a submitit
    job (its own --signal=USR2@90) checkpoints and requeues on USR2 and then resumes. slurmctld checks
    limits every ~30 s, so the signals arrive within about 30 s."""
    script = tmp_path / "trap.sh"
    script.write_text(
        "#!/bin/bash\n"
        f"trap 'echo \"USR1 job=$SLURM_JOB_ID\" > {tmp_path}/signalled; exit 0' USR1\n"
        "for i in $(seq 1 1200); do sleep 0.1; done\n"
        f"echo 'never signalled' > {tmp_path}/finished\n"
    )
    bash_job = slurm_cluster.run(
        "sbatch", "--parsable", "--time=1", "--signal=B:USR1@60", f"--output={tmp_path / 'trap-%j.out'}", str(script)
    ).stdout.strip()

    work = tmp_path / "work"
    work.mkdir()
    executor = slurm_executor(tmp_path / "jobs", timeout_min=1)  # submitit adds --signal=USR2@90
    job = executor.submit(GatedCounter(), str(work), 20, 5)
    sbatch_file = next((tmp_path / "jobs").glob("*submission.sh")).read_text()
    assert f"#SBATCH --signal={submitit.slurm.slurm.SlurmJobEnvironment.USR_SIG}@90" in sbatch_file

    wait_for(lambda: (tmp_path / "signalled").exists(), "USR1 in the batch script", slurm_cluster, timeout_s=150)
    assert (tmp_path / "signalled").read_text().strip() == f"USR1 job={bash_job}"
    assert not (tmp_path / "finished").exists()
    assert wait_for(
        lambda: sacct_state(slurm_cluster, bash_job) == "COMPLETED", "the trapped job to end", slurm_cluster
    )

    wait_for(
        lambda: (work / "checkpoints.log").exists(),
        "submitit's checkpoint on USR2",
        slurm_cluster,
        timeout_s=150,
        jobs=[job],
    )
    (work / "release").touch()
    wait_for(
        job.done,
        "the requeued submitit job to finish",
        slurm_cluster,
        timeout_s=150,
        jobs=[job],
        on_poll=lambda: start_if_held_back(slurm_cluster, job.job_id),
    )
    state = job.result()
    assert state["ticks"] == 20 and state["attempts"] >= 2 and state["resumed_from"][:2] == [0, 5]
    assert "this job is timed-out" in (job.stderr() or "")


def test_a_failing_rank_ends_a_multi_task_job_at_once(slurm_cluster, tmp_path):
    """With the harness's SLURM parameters (``slurm_parameters``), a job of two tasks (DDP ranks) whose
    rank 1 fails ends within seconds: ``srun --kill-on-bad-exit=1`` stops rank 0, which would otherwise
    wait in its next collective until the process-group timeout (here: a 300 s sleep) with the job's
    GPUs held. One-task jobs keep submitit's plain srun."""
    from harness.launch.grid import Resources
    from harness.launch.submit import LaunchOptions, slurm_parameters

    options = LaunchOptions(cluster="slurm")
    assert "srun_args" not in slurm_parameters("one", Resources(), options)
    params = slurm_parameters("two-ranks", Resources(tasks=2, mem_gb=1, time_min=10, partition="debug"), options)
    assert params["srun_args"] == ["--kill-on-bad-exit=1"] and params["ntasks_per_node"] == 2
    executor = submitit.SlurmExecutor(folder=tmp_path / "jobs" / "%j")
    executor.update_parameters(**params)
    started = time.monotonic()
    job = executor.submit(rank_1_fails_rank_0_waits, 300.0)
    assert "--kill-on-bad-exit=1" in next((tmp_path / "jobs").rglob("*submission.sh")).read_text()
    wait_for(job.done, "the job to end after rank 1 failed", slurm_cluster, timeout_s=90, jobs=[job])
    assert time.monotonic() - started < 90
    assert wait_for(lambda: sacct_state(slurm_cluster, job.job_id) == "FAILED", "FAILED", slurm_cluster)
    assert "rank 1 failed before the collective" in (job.task(1).stderr() or "")  # the cause, in rank 1's log
    assert "task 1: Exited with exit code 1" in (job.stderr() or "")  # srun's account, in rank 0's
