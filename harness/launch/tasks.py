"""What one run does, and the submitit callables that run it.

``run_task(config, run_dir)`` dispatches on ``config["task"]``:

* ``"profile"``: ``harness.measure.profile_model`` on the run's model (timed in the same process beside
  its baseline), then ``final.json`` with the profile record, hardware and versions;
* ``"train"``: ``harness.engine.train_and_evaluate`` (imported lazily), which resumes from the run
  directory's checkpoint and writes ``final.json`` itself.

Both are idempotent: a run whose ``final.json`` parses returns it at once.

The submitit callables (``RunTask`` for one run per job, used for SLURM arrays; ``RunBatch`` for a
local or debug worker that runs several runs in turn) are *stateless*: they carry only paths.
Everything about where a run stands lives on disk in its run directory (``config.json``,
``checkpoint.pt``, ``final.json``), so the pickle that submitit replays after a requeue cannot
restore stale state. On the preemption / time-out signal (submitit's ``SIGUSR2`` by default, set
with ``--signal=USR2@90`` in the sbatch file) submitit calls ``checkpoint(...)``, which returns a
fresh ``DelayedSubmission`` of a new instance with the same paths; submitit requeues the job and
the requeued job resumes from the last checkpoint the engine wrote atomically. A job killed at any
other point (``scontrol requeue``, node failure) resumes the same way.

Pitfalls of submitit designed against here:

* a timed-out *plain function* is not requeued: both callables define ``checkpoint``;
* PREEMPTED is not a final scheduler state, and duplicate array tasks can run: a run is done only
  when its own ``final.json`` parses; a run directory is held with ``flock`` while a process works
  in it (on a filesystem without flock, e.g. some Lustre / NFS mounts: an ``O_EXCL`` lock file
  ``run.lock`` with pid, host and a heartbeat, taken over when stale), so a duplicate waits and then
  returns the finished record instead of training twice. In a multi-process run only rank 0 takes
  the lock; every rank waits at one collective for its decision (run, or return the finished
  record), renewed every few seconds so that no rank times out while rank 0 waits;
* ``UncompletedJobError`` raised by submitit's signal handler (out of requeues) is recorded and
  re-raised, never swallowed as an ordinary run failure;
* jobs import the code when they start: the launcher starts them inside a frozen snapshot of the
  code (``harness.launch.snapshot.snapshot_code``) and passes the submission directory as ``workdir``;
  the callable switches to it after import, so relative data paths mean what they meant at
  submission while the code stays frozen.
"""

from __future__ import annotations

import datetime as _dt
import os
import socket
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from harness.results.lock import RunLock
from harness.results.rundir import RunDir


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


# ---------------------------------------------------------------------------------------------
# environment description (hardware, versions, commit)


def describe_environment(device: str = "cpu") -> dict:
    """Hardware, library versions and code commit, as in CONTRACTS.md's final.json:
    ``{"hardware": {...}, "versions": {...}, "git_commit": str | None}`` (delegates to
    ``harness.measure.describe_environment``, imported only when a run needs it). A run started from a
    launcher snapshot reports the snapshot's commit (``harness.version.code_commit``)."""
    from harness.measure import describe_environment as _describe

    return _describe(device)


# ---------------------------------------------------------------------------------------------
# one run


def run_task(config: dict, run_dir: str | os.PathLike) -> dict:
    """Do the work of one run and return its final record (idempotent; see the module docstring)."""
    rd = RunDir(run_dir).create()
    final = rd.read_final()
    if final is not None:
        return final
    task = config.get("task")
    if task == "profile":
        return _profile(config, rd)
    if task == "train":
        from harness.engine import train_and_evaluate  # lazy: profile grids work without the engine

        return train_and_evaluate(config, rd.path)
    raise ValueError(f"run {config.get('run_id')}: unknown task {task!r} (profile | train)")


def _profile(config: dict, rd: RunDir) -> dict:
    from harness.measure import profile_model

    rd.write_config(config)
    t0 = time.time()
    model = dict(config.get("model") or {})
    variant = model.pop("variant")
    prof = dict(config.get("profile") or {})
    num_classes = model.pop("num_classes", prof.pop("num_classes", 400))
    rd.log(f"[{now_iso()}] profile {variant} {model} {prof}")
    record = profile_model(
        variant, model, num_classes=num_classes, progress=lambda text: rd.log(f"[{now_iso()}] {text}"), **prof
    )
    final = {
        "run_id": config.get("run_id") or rd.run_id,
        "task": "profile",
        "status": "done",
        "finished_at": now_iso(),
        "wall_time_s": time.time() - t0,
        **describe_environment(prof.get("device", "cpu")),
        "profile": record,
    }
    rd.write_final(final)
    rd.log(f"[{now_iso()}] done in {final['wall_time_s']:.1f} s: {record.get('gflops_per_view')} GFLOPs/view")
    return final


# ---------------------------------------------------------------------------------------------
# job markers (job.json)


def update_job_marker(rd: RunDir, **fields: Any) -> dict:
    """Read-modify-write of job.json (atomic write; the last writer wins per field set)."""
    job = rd.read_job() or {}
    job.update(fields)
    rd.write_job(job)
    return job


def current_job_id() -> str | None:
    """The scheduler's id of the job this process runs in (SLURM array ids as ``<array>_<task>``,
    the local controller's pid, the debug id), or None outside a submitit job."""
    env = os.environ
    if env.get("SLURM_ARRAY_JOB_ID") and env.get("SLURM_ARRAY_TASK_ID"):
        return f"{env['SLURM_ARRAY_JOB_ID']}_{env['SLURM_ARRAY_TASK_ID']}"
    for name in ("SLURM_JOB_ID", "SUBMITIT_LOCAL_JOB_ID", "SUBMITIT_DEBUG_JOB_ID"):
        if env.get(name):
            return env[name]
    return None


def _global_rank() -> int:
    for name in ("SLURM_PROCID", "SUBMITIT_LOCAL_GLOBALID", "RANK"):
        if os.environ.get(name):
            return int(os.environ[name])
    return 0


LOCK_POLL_S = 2.0
"""Seconds between rank 0's tries for a held run lock (and the ranks' collective while it waits)."""


def _multi_process() -> bool:
    """True in a process of a multi-process run (torchrun, or a submitit job of several tasks)."""
    for name in ("WORLD_SIZE", "SLURM_NTASKS", "SUBMITIT_LOCAL_NTASKS"):
        if int(os.environ.get(name) or 1) > 1:
            return True
    return False


def _device_type(config: dict) -> str:
    """The device type the engine will train on (train.device=cuda without a GPU: the engine refuses it,
    recorded as the run's error)."""
    import torch

    setting = (config.get("train") or {}).get("device", "auto")
    return "cuda" if setting in ("cuda", "auto") and torch.cuda.is_available() else "cpu"


def _lock_decision(rd: RunDir, ctx, lead: bool) -> tuple[RunLock | None, dict | None]:
    """Rank 0 takes the run lock, waiting while another process holds it; every rank waits for its
    decision at one collective, renewed every LOCK_POLL_S (no rank times out however long the wait).
    ``ctx``: the run's ``DistributedContext``, None for one process. Returns (the lock on rank 0 when
    the run is to be done, else None; the finished record or None)."""
    if ctx is not None and ctx.enabled:
        from harness.engine.distributed import broadcast_object
    else:

        def broadcast_object(obj, ctx):
            return obj

    lock = RunLock(rd.path) if lead else None
    said = False
    while True:
        decision = None
        if lead:
            if lock.try_acquire():
                final = rd.read_final()
                decision = ("done", final) if final is not None else ("run", None)
            else:
                decision = ("wait", None)
                if not said:
                    print(f"[dsa-harness] {rd.path}: another process is running this run; waiting", flush=True)
                    said = True
        decision = broadcast_object(decision, ctx)
        if decision[0] != "wait":
            break
        if lead:
            time.sleep(LOCK_POLL_S)
    if decision[0] == "done":
        if lock is not None:
            lock.release()
        return None, decision[1]
    return lock, None


def _record_failure(rd: RunDir, e: BaseException, attempt: int) -> None:
    """error.json (type, message, traceback tail, attempt, rank), the marker's state and a log line.

    In a multi-process run the first rank to fail holds the cause; the others then fail in a collective
    (timed out, or the peer gone). So an ``error.json`` of this attempt written by another rank is kept,
    and this rank's own error only goes to the log."""
    rank = _global_rank()
    job_id = current_job_id()
    first = rd.read_error() or {}
    if first.get("rank", 0) != rank and first.get("attempt") == attempt and first.get("job_id") == job_id:
        rd.log(f"[{now_iso()}] rank {rank} failed after rank {first.get('rank')}: {type(e).__name__}: {e}")
        update_job_marker(rd, state="failed", finished_at=now_iso())
        return
    tb = traceback.format_exc().rstrip().splitlines()
    rd.write_error(
        {
            "type": type(e).__name__,
            "message": str(e),
            "traceback": tb[-40:],
            "attempt": attempt,
            "rank": rank,
            "job_id": job_id,
            "host": socket.gethostname(),
            "at": now_iso(),
        }
    )
    update_job_marker(rd, state="failed", finished_at=now_iso())
    rd.log(f"[{now_iso()}] failed{f' on rank {rank}' if rank else ''}: {type(e).__name__}: {e}")


def execute_run(run_dir: str | os.PathLike) -> dict:
    """Run one run directory end to end: job marker, lock, ``run_task``, error record.

    Reads the configuration from ``config.json`` (written by the launcher before submission).
    On an exception writes ``error.json`` (type, message, traceback tail, attempt) and re-raises.
    Signals that end the process (``SystemExit`` from submitit's requeue, ``KeyboardInterrupt``
    from a cancel) pass through unrecorded: the run is then *incomplete* and resumes later.
    """
    rd = RunDir(run_dir)
    lead = _global_rank() == 0
    final = rd.read_final()
    if final is not None and not _multi_process():  # (ranks of a group decide together, below)
        return final
    config = rd.read_config()
    ctx = None
    if config.get("task") == "train":  # every rank of a multi-process run joins its group here
        from harness.engine.distributed import init_distributed

        timeout_min = (config.get("resources") or {}).get("collective_timeout_min")
        try:
            ctx = init_distributed(_device_type(config), timeout_s=60 * timeout_min if timeout_min else None)
        except Exception as e:
            if lead:  # e.g. its rendezvous port is taken: recorded like a failure of the run
                _record_failure(rd, e, int((rd.read_job() or {}).get("attempts", 0)) + 1)
            raise
    elif not lead:  # profile runs are one process's work
        return {}
    lock, final = _lock_decision(rd, ctx, lead)
    if final is not None:
        return final
    if not lead:  # DDP ranks > 0: the engine synchronises; markers are rank 0's job, but for a failure
        try:  # a rank that fails first holds the cause (rank 0 then fails in a collective, or is stopped)
            return run_task(config, rd.path)
        except Exception as e:
            if type(e).__name__ != "TrainingInterrupted":
                _record_failure(rd, e, int((rd.read_job() or {}).get("attempts") or 1))
            raise
    try:
        job = rd.read_job() or {}
        attempt = int(job.get("attempts", 0)) + 1
        requeues = int(job.get("requeues") or 0)
        if _restarted_unnoted(job):  # e.g. `scontrol requeue`: our requeue handler did not run
            requeues += 1
            rd.log(f"[{now_iso()}] job {current_job_id()} restarted by the scheduler: counted as a requeue")
        update_job_marker(
            rd,
            attempts=attempt,
            requeues=requeues,
            started_at=now_iso(),
            state="running",
            attempt_job_id=current_job_id(),
            worker_host=socket.gethostname(),
            worker_pid=os.getpid(),
        )
        rd.log(f"[{now_iso()}] attempt {attempt} on {socket.gethostname()} (job {current_job_id()})")
        try:
            final = run_task(config, rd.path)
        except Exception as e:
            if type(e).__name__ == "TrainingInterrupted":  # the engine stopped on request, checkpoint on disk
                # unless the requeued attempt has started meanwhile (its count would be overwritten with ours)
                if int((rd.read_job() or {}).get("attempts") or 0) == attempt:
                    update_job_marker(rd, state="interrupted")
                rd.log(f"[{now_iso()}] interrupted: {e}")
                raise
            _record_failure(rd, e, attempt)
            raise
        update_job_marker(rd, state="finished", finished_at=now_iso())
        return final
    finally:
        lock.release()


def _restarted_unnoted(job: dict) -> bool:
    """A new attempt of the *same* job whose previous attempt never ended in our hands (marker still
    ``running`` / ``interrupted``): the scheduler restarted the job without our requeue handler
    (``scontrol requeue``, a node failure with ``--requeue``). A submission rewrites the marker to
    ``submitted``, and the handler (:func:`_note_requeue`) to ``requeued`` (already counted), so neither
    is counted here."""
    jid = current_job_id()
    return bool(jid) and job.get("state") in ("running", "interrupted") and job.get("attempt_job_id") == jid


def _note_requeue(run_dirs: list) -> None:
    """Called from submitit's signal handler: mark the unfinished runs as requeued."""
    for d in run_dirs:
        rd = RunDir(d)
        if rd.path.exists() and not rd.is_done():
            job = rd.read_job() or {}
            try:
                update_job_marker(
                    rd, requeues=int(job.get("requeues", 0)) + 1, last_requeue_at=now_iso(), state="requeued"
                )
                rd.log(f"[{now_iso()}] preempted / timed out: checkpoint on disk, job requeued")
            except OSError:
                pass


def _leave_group() -> None:
    """Destroy the process group of a multi-process run at the end of its job, if one was set up."""
    module = sys.modules.get("harness.engine.distributed")
    if module is not None:
        module.shutdown_distributed()


class RunTask:
    """submitit callable for one run (one SLURM array task): ``RunTask()(run_dir, workdir)``.

    Stateless: the requeued job gets a *new* instance with the same two paths.
    """

    def __call__(self, run_dir: str, workdir: str | None = None) -> dict:
        if workdir:
            os.chdir(workdir)
        final = execute_run(run_dir)
        _leave_group()
        return final

    def checkpoint(self, run_dir: str, workdir: str | None = None):
        import submitit

        if _global_rank() == 0:
            _note_requeue([run_dir])
        return submitit.helpers.DelayedSubmission(type(self)(), run_dir, workdir)


class RunBatch:
    """submitit callable for a local or debug worker: runs ``run_dirs`` one after the other. Every
    process of a multi-process worker (``resources.tasks``) runs the same list: they train each run
    together, as one process group (set up by the first run, destroyed at the end).

    A failing run is recorded (``error.json``) and the worker goes on with the next; finished runs
    are skipped, so a requeued worker resumes where it was. Returns ``{run_id: "done" | "failed"}``.
    """

    def __call__(self, run_dirs: list, workdir: str | None = None) -> dict:
        from submitit.core.utils import UncompletedJobError

        if workdir:
            os.chdir(workdir)
        out: dict[str, str] = {}
        for d in run_dirs:
            try:
                execute_run(d)
                out[Path(d).name] = "done"
            except UncompletedJobError:
                raise
            except Exception as e:  # noqa: BLE001 (recorded in error.json by execute_run)
                print(f"[dsa-harness] run {d} failed: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
                out[Path(d).name] = "failed"
        _leave_group()
        return out

    def checkpoint(self, run_dirs: list, workdir: str | None = None):
        import submitit

        _note_requeue(run_dirs)
        return submitit.helpers.DelayedSubmission(type(self)(), list(run_dirs), workdir)
