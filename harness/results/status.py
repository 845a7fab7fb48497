"""Where a run stands: one vocabulary of states and one rule, read from its run directory and, when
given, from the scheduler.

    run_state(RunDir(path))                      # files only: the results store and the reports
    run_state(RunDir(path), scheduler=view)      # + the scheduler: ``dsa-harness sweep status``

==========  ========================================================================================
pending     not started: never submitted, or its job vanished before the run started
queued      submitted, not started, its job alive
running     started, its job alive; or, whatever the marker says of an ended attempt, a live process holds the
            run lock (``dsa-harness train --out`` or ``eval`` on it: "in use by pid N ..." as its scheduler
            state), so it is never submitted beside it
requeued    preempted, timed out or requeued (``scontrol requeue``), back in the queue: the marker says
            requeued and the job is not running, or an attempt started (marker running) and the
            scheduler holds its SLURM job waiting again (PENDING, REQUEUED, ...)
done        ``final.json`` parses and so does ``config.json``, no file of the finished run's results is cut,
            and its status is not diverged (whatever else the folder or the scheduler says)
diverged    ``final.json`` parses and says ``"status": "diverged"``: the training loss turned NaN / inf
            (its ``diverged`` names the epoch and step); over, like done, but never averaged by a report
            (listed under its problems); ``sweep submit`` skips it (rerunning the same config diverges
            again: change it, e.g. a lower ``train.base_lr``, or remove the run folder to retry)
done        ``final.json`` parses and so does ``config.json``, and no file of the finished run's results is
            cut (whatever else the folder or the scheduler says)
damaged     ``final.json`` parses but a result it stands on is cut (``predictions.parquet`` not a whole
            Parquet file, ``metrics.jsonl`` cut mid-line or empty; ``RunDir.cut_files``): never averaged,
            listed under the report's problems, skipped by ``sweep submit`` (a finished run is not redone
            over its files: restore them, or move the run folder aside to train it again)
foreign     the folder is named by a run id (12 hex digits) and its ``config.json`` records another one: a
            run folder copied or renamed, holding another run's files (whatever else they say): never
            averaged, listed under the report's problems, skipped by ``sweep submit`` (never written over)
failed      the last attempt raised: ``error.json`` of the latest attempt, or the marker says failed;
            ``sweep submit`` resubmits it only with ``--retry-failed``
incomplete  started (an attempt recorded, metrics, a checkpoint or a half-written ``final.json``), no
            live job, no error of its last attempt: killed, interrupted, node failure; or ``config.json``
            cut or unreadable (whatever else the folder holds: the run's record of what it is cannot be
            trusted; ``sweep submit`` writes it again from the grid, which the folder's run id names);
            resubmitted by default, resumes from its checkpoint
cancelled   cancelled with ``sweep cancel``, no live job; resubmitted by default
unknown     with a scheduler only: a SLURM job whose state cannot be read (no ``squeue``), taken as alive
==========  ========================================================================================

The job marker (``job.json``) says what the launcher and the run last wrote: ``submitted``,
``running``, ``requeued`` (its job may still be alive) or ``finished``, ``failed``, ``interrupted``,
``cancelled`` (the attempt is over). Whether a job that may be alive still is, only the scheduler can
tell: with ``scheduler`` the function asks it; without, it takes the marker at its word (``queued``,
``running``, ``requeued`` as the marker says), so files alone give every state but ``unknown``, and a
marker whose job died without a word (a killed worker, a node failure) reads as still alive.
The scheduler's word on a live SLURM job wins over the marker's: a job it holds waiting
(:data:`SLURM_WAITING`) is never running — requeued once an attempt of it had started, else queued.

**One run id, one run.** A run is its config, not its folder: two grids may expand to the same run, and
``dsa-harness train`` keeps its runs in ``results/runs/manual/<run_id>``. A run folder whose state would
have it trained (:data:`YIELDING_STATES`: pending, incomplete, cancelled, failed) gives way to a folder of the
same run id elsewhere in the results root that is over or alive (:data:`ELSEWHERE_STATES`, best first: done,
diverged, damaged, running, requeued, queued, unknown; among equals the first in path order):
:func:`state_elsewhere`. ``sweep status`` then shows that folder's state (``done`` everywhere the run is
asked) and ``sweep submit`` trains it nowhere else.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from harness.results.rundir import RESULT_FILES, RunDir

STATES = (
    "pending",
    "queued",
    "running",
    "requeued",
    "done",
    "diverged",
    "damaged",
    "foreign",
    "failed",
    "incomplete",
    "cancelled",
    "unknown",
)
FILE_STATES = tuple(s for s in STATES if s != "unknown")
"""The states :func:`run_state` returns without a scheduler."""
LIVE_STATES = ("queued", "running", "requeued", "unknown")
"""States of a run whose job is (or may be) alive: never submitted twice."""

OPEN_MARKS = ("submitted", "running", "requeued")
"""Marker states whose job may still be alive (any other state, or none, ends the attempt)."""
STARTED_MARKS = ("running", "interrupted", "finished", "failed")
"""Marker states written only once an attempt has started."""
SLURM_WAITING = ("PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "PREEMPTED")
"""squeue states of a SLURM job waiting in the queue, not running (a requeued job is PENDING again)."""


class Scheduler(Protocol):
    def job_alive(self, job: dict) -> tuple[bool, str | None]:
        """(alive, the scheduler's state of the job or None) of the job a marker names."""


@dataclass(frozen=True)
class RunState:
    """A run's state and what it was read from (so callers need not read the files again)."""

    state: str
    final: dict | None = None  # final.json, when it parses to an object
    job: dict = field(default_factory=dict)  # job.json ({} when absent or unparsable)
    error: dict | None = None  # error.json ({} when present but unparsable)
    scheduler_state: str | None = None  # what the scheduler said of a job that may be alive
    problems: tuple[str, ...] = ()  # run files present but unreadable


def diverged_problem(final: dict) -> str:
    """The one-line account of a diverged run (the report's problems, ``sweep status``)."""
    d = final.get("diverged") if isinstance(final.get("diverged"), dict) else {}
    try:
        where = f"training loss {d['loss']} at epoch {int(d['epoch']) + 1}, step {d['step']}"
    except (KeyError, TypeError, ValueError):
        where = "training loss not finite"
    how = "stopped there, not tested" if d.get("stopped", True) else "trained on (train.stop_on_nonfinite=false)"
    return f"diverged: {where}; {how}; not averaged (lower train.base_lr, or clip gradients)"


def run_state(rd: RunDir, *, scheduler: Scheduler | None = None) -> RunState:
    """The state of the run in ``rd`` (see the module doc for the vocabulary and the rule)."""
    problems = []
    final = rd.read_final()
    final_torn = False
    if final is None and rd.final_path.exists():  # read_final returns records (JSON objects) only
        problems.append("final.json present but not a record (half-written, or not a JSON object)")
        final_torn = True
    job = rd.read_job()
    if job is None and rd.job_path.exists():
        problems.append("job.json unparsable (half-written?)")
    job = job if isinstance(job, dict) else {}
    error = rd.read_error()
    if error is None and rd.error_path.exists():
        problems.append("error.json unparsable (half-written?)")
        error = {}  # an error all the same, of no known attempt
    elif error is not None and not isinstance(error, dict):
        error = {}

    config, config_problem = rd.checked_config()
    if config_problem is not None and final is None and not rd.config_path.exists():
        config_problem = None  # not written yet (a run never started): no problem
    if config_problem is not None:
        problems.append(f"{config_problem}; `sweep submit` writes it again (the run resumes or re-reads its result)")
    foreign = rd.foreign_problem(config)
    if foreign is not None:
        problems.append(f"{foreign}; move it back to {config['run_id']}/ or aside: it is never averaged nor redone")
        return RunState("foreign", final, job if isinstance(job, dict) else {}, error, None, tuple(problems))
    cut = rd.cut_files(final)
    problems += [message for _, message in cut]

    def result(state: str, sched: str | None = None) -> RunState:
        return RunState(state, final, job, error, sched, tuple(problems))

    if final is not None and config_problem is None:
        results_cut = [name for name, _ in cut if name in RESULT_FILES]  # not the checkpoint: eval's, not results
        if results_cut:
            return result("damaged")
        return result("diverged" if final.get("status") == "diverged" else "done")
    mark = job.get("state")
    cluster = job.get("cluster")
    if mark not in OPEN_MARKS:  # no job says it runs: a process of its own may (`train --out`, `eval`)
        holder = rd.in_use()
        if holder is not None:
            return result("running", holder)
    if mark in OPEN_MARKS:
        alive, sched = scheduler.job_alive(job) if scheduler is not None else (True, None)
        if alive:
            if scheduler is not None and sched is None and cluster == "slurm":
                return result("unknown")
            if cluster == "slurm" and sched in SLURM_WAITING:  # the scheduler holds it waiting
                return result("requeued" if mark in ("running", "requeued") else "queued", sched)
            if mark == "requeued" and sched != "RUNNING":
                return result("requeued", sched)
            if mark == "running" or (sched == "RUNNING" and cluster == "slurm"):
                return result("running", sched)
            return result("queued", sched)
    attempts = int(job.get("attempts") or 0)
    if mark == "failed" or (error is not None and int(error.get("attempt") or 0) >= attempts):
        return result("failed")
    if mark == "cancelled":
        return result("cancelled")
    if (
        attempts > 0
        or mark in STARTED_MARKS
        or final_torn
        or final is not None
        or rd.has_metrics()
        or rd.has_checkpoint()
    ):
        return result("incomplete")
    return result("pending")


YIELDING_STATES = ("pending", "incomplete", "cancelled", "failed")
"""States of a run folder that give way to the same run over or alive in another folder (:func:`state_elsewhere`)."""
ELSEWHERE_STATES = ("done", "diverged", "damaged", "running", "requeued", "queued", "unknown")
"""States of another folder of the same run id that stand for the run, best first (over, then alive)."""


def state_elsewhere(
    rd: RunDir, folders: Iterable[str | os.PathLike], *, scheduler: Scheduler | None = None
) -> tuple[RunDir, RunState] | None:
    """The folder among ``folders`` (other folders of ``rd``'s run id, from ``rundir.run_folders_by_id``; ``rd``
    itself is passed over) that stands for the run, and its state: the best of :data:`ELSEWHERE_STATES`, the
    first in the order given among equals; None when none is over or alive. A folder holding another run
    (``foreign``) or a cut config (``incomplete``) never stands for it."""
    own = rd.path.resolve()
    best: tuple[int, RunDir, RunState] | None = None
    for folder in folders:
        other = RunDir(folder)
        if other.path.resolve() == own:
            continue
        state = run_state(other, scheduler=scheduler)
        if state.state in ELSEWHERE_STATES:
            rank = ELSEWHERE_STATES.index(state.state)
            if best is None or rank < best[0]:
                best = (rank, other, state)
    return None if best is None else (best[1], best[2])


__all__ = [
    "ELSEWHERE_STATES",
    "FILE_STATES",
    "LIVE_STATES",
    "YIELDING_STATES",
    "SLURM_WAITING",
    "STATES",
    "RunState",
    "Scheduler",
    "diverged_problem",
    "run_state",
    "state_elsewhere",
]
