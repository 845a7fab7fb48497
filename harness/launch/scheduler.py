"""What the schedulers know about jobs, and how to stop them: SLURM through ``squeue`` / ``sacct`` /
``scancel``, local workers (submitit controller processes) through ``/proc`` and signals.

    slurm_live_jobs()        -> {job id: state} of this user's jobs in the queue (None: squeue unusable)
    slurm_final_states(ids)  -> last state sacct knows for finished jobs
    local_worker_alive(job)  -> the local worker a job marker names is still this very process
    SchedulerView().job_alive(job) -> (alive, scheduler state) of the job a run's job.json names
    scancel(ids), stop_local_worker(pid)
"""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any


def _run(cmd: list[str], timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)


def slurm_live_jobs() -> dict[str, str] | None:
    """{job id: state} of this user's jobs known to squeue (array tasks one per line, as
    ``<array>_<task>``), or None when squeue is missing or fails. Every state squeue lists
    (PENDING, RUNNING, REQUEUED, PREEMPTED, COMPLETING, ...) counts as alive."""
    if shutil.which("squeue") is None:
        return None
    try:
        out = _run(["squeue", "-h", "-r", "-u", getpass.getuser(), "-o", "%i|%T"])
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    jobs = {}
    for line in out.stdout.splitlines():
        jid, _, state = line.strip().partition("|")
        if jid:
            jobs[jid] = state
    return jobs


def slurm_final_states(job_ids: Iterable[str]) -> dict[str, str]:
    """Last state sacct knows for finished jobs (FAILED, TIMEOUT, OUT_OF_MEMORY, CANCELLED ...);
    empty when accounting is not available. Used only to explain *incomplete* runs."""
    ids = sorted(set(job_ids))
    if not ids or shutil.which("sacct") is None:
        return {}
    try:
        out = _run(["sacct", "-n", "-P", "-X", "-o", "JobID,State", "-j", ",".join(ids)])
    except (OSError, subprocess.SubprocessError):
        return {}
    if out.returncode != 0:
        return {}
    states = {}
    for line in out.stdout.splitlines():
        jid, _, state = line.partition("|")
        states[jid.strip()] = state.strip().split(" ")[0]
    return states


def proc_start_ticks(pid: int) -> int | None:
    """Start time of a process (clock ticks since boot), None if it is gone or a zombie."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def local_worker_alive(job: dict) -> bool:
    """A local worker (submitit controller process) is alive: same host, the pid exists, is not a
    zombie and started when recorded (pid reuse is not mistaken for the worker)."""
    if job.get("host") not in (None, socket.gethostname()):
        return True  # another machine: cannot tell, assume alive (never double-submit)
    try:
        pid = int(job["job_id"])
    except (KeyError, TypeError, ValueError):
        return False
    ticks = proc_start_ticks(pid)
    if ticks is None:
        return False
    recorded = job.get("proc_start")
    return recorded is None or recorded == ticks


class SchedulerView:
    """What the schedulers say of the jobs that run markers name (``harness.results.status.Scheduler``),
    asked lazily: ``squeue`` at most once per view, and only when a SLURM job may be alive."""

    _UNASKED = object()

    def __init__(self) -> None:
        self._slurm: Any = self._UNASKED

    def slurm_jobs(self) -> dict[str, str] | None:
        if self._slurm is self._UNASKED:
            self._slurm = slurm_live_jobs()
        return self._slurm

    def job_alive(self, job: dict) -> tuple[bool, str | None]:
        """(alive, scheduler state) of the job a run's job.json names. A SLURM job is alive while squeue
        lists it (assumed alive when squeue is unusable: state None), a local worker while its process
        is (state ``RUNNING``); a debug job never is afterwards (it ran in the submitting process)."""
        if not job.get("job_id"):
            return False, None
        cluster = job.get("cluster")
        if cluster == "slurm":
            live = self.slurm_jobs()
            if live is None:
                return True, None
            sched = live.get(str(job["job_id"]))
            return sched is not None, sched
        if cluster == "local":
            alive = local_worker_alive(job)
            return alive, ("RUNNING" if alive else None)
        return False, None


def scancel(job_ids: Iterable[str]) -> None:
    """Cancel SLURM jobs (array tasks as ``<array>_<task>``); RuntimeError when scancel fails."""
    out = _run(["scancel", *job_ids], timeout=60)
    if out.returncode != 0:
        raise RuntimeError(f"scancel failed: {out.stderr.strip()}")


def _children(pid: int) -> list[int]:
    """Direct children of ``pid`` (from /proc; empty where /proc is absent)."""
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except (OSError, ValueError):
        return []


def stop_local_worker(pid: int, grace_s: float = 10.0) -> None:
    """SIGINT the submitit controller (it stops its task and exits); if it or one of its task processes is still
    there after ``grace_s`` (a busy machine, a task ignoring the signal), SIGKILL them. Returns once the
    controller and the task processes it had are gone: a task that outlived its controller for a moment still
    held its run's lock, and the cancelled run read as running (seen under load)."""
    import signal

    tasks = {t: ticks for t in _children(pid) if (ticks := proc_start_ticks(t)) is not None}

    def gone() -> bool:  # gone, a zombie, or its pid taken by another process (other start ticks)
        return proc_start_ticks(pid) is None and all(proc_start_ticks(t) != k for t, k in tasks.items())

    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGINT)
    deadline = time.time() + grace_s
    while time.time() < deadline:
        if gone():
            return
        time.sleep(0.1)
    for victim in [*tasks, *_children(pid), pid]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(victim, signal.SIGKILL)
    deadline = time.time() + 5.0  # SIGKILL is not refused; the kernel takes a moment to reap
    while not gone() and time.time() < deadline:
        time.sleep(0.05)
