"""Where every run of a grid stands: ``sweep status``.

    collect_status(runs) -> one RunStatus per run (its state, job, attempts, last metric, last error, log)
    status_table(statuses, grid) -> the table ``sweep status`` prints

Run states (``RunStatus.status``):

==========  ===============================================================================
pending     never submitted, or its job vanished before the run started (stale marker)
queued      submitted; the job is in the scheduler (or the local worker is alive) but the run
            has not started
running     started and its job is alive
requeued    preempted or timed out, checkpointed, back in the queue
done        ``final.json`` exists and parses (whatever the scheduler says)
failed      the last attempt raised (``error.json``); resubmitted only with ``retry_failed``
incomplete  started earlier, no live job, no error recorded (killed, cancelled by the
            scheduler, node failure): resubmitted by default, resumes from its checkpoint
cancelled   cancelled with ``sweep cancel``; resubmitted by default
unknown     a SLURM job whose state cannot be read (no ``squeue``): treated as alive
==========  ===============================================================================
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.launch.grid import Grid, RunSpec
from harness.launch.scheduler import job_alive, slurm_final_states, slurm_live_jobs
from harness.results.rundir import RunDir

LIVE = ("queued", "running", "requeued", "unknown")


@dataclass
class RunStatus:
    index: int
    run_id: str
    run_dir: Path
    status: str
    axes: dict
    job_id: str | None = None
    cluster: str | None = None
    attempts: int = 0
    requeues: int = 0
    scheduler_state: str | None = None
    metric: str = ""
    error: str = ""
    log: str = ""


def collect_status(runs: list[RunSpec]) -> list[RunStatus]:
    """The state of every run, from its run directory and one scheduler query (see module doc)."""
    records = []
    need_squeue = False
    for run in runs:
        rd = RunDir(run.run_dir)
        final = rd.read_final()
        job = rd.read_job() if final is None else (rd.read_job() or {})
        records.append((run, rd, final, job))
        if final is None and job and job.get("cluster") == "slurm" and job.get("job_id"):
            need_squeue = True
    live_slurm = slurm_live_jobs() if need_squeue else {}
    statuses = []
    gone_slurm = []
    for run, rd, final, job in records:
        st = RunStatus(index=run.index, run_id=run.run_id, run_dir=rd.path, status="pending", axes=run.axes,
                       log=str(rd.log_path) if rd.log_path.exists() else "")
        if job:
            st.job_id, st.cluster = job.get("job_id"), job.get("cluster")
            st.attempts, st.requeues = int(job.get("attempts", 0)), int(job.get("requeues", 0))
            if not st.log:
                st.log = job.get("stdout") or ""
        if final is not None:
            st.status = "done"
            st.metric = _final_metric(final)
            statuses.append(st)
            continue
        alive, sched = job_alive(job, live_slurm)
        if job and job.get("state") in ("failed", "finished"):
            alive = False  # this run's attempt ended (its local worker may go on with others)
        st.scheduler_state = sched
        error = rd.read_error()
        last = _last_metrics(rd)
        if last:
            st.metric = last
        if alive:
            if sched is None and st.cluster == "slurm":
                st.status = "unknown"
            elif job.get("state") == "requeued" and sched != "RUNNING":
                st.status = "requeued"
            elif job.get("state") == "running" or (sched == "RUNNING" and st.cluster == "slurm"):
                st.status = "running"
            else:
                st.status = "queued"
        elif error is not None and int(error.get("attempt", 0)) >= st.attempts:
            st.status = "failed"
            st.error = f"{error.get('type', 'Error')}: {_first_line(error.get('message', ''))}"
        elif job and job.get("state") == "cancelled":
            st.status = "cancelled"
        elif st.attempts > 0 or rd.has_checkpoint():
            st.status = "incomplete"
            if st.cluster == "slurm" and st.job_id:
                gone_slurm.append(st)
        statuses.append(st)
    if gone_slurm:
        states = slurm_final_states(s.job_id for s in gone_slurm)
        for st in gone_slurm:
            st.scheduler_state = states.get(st.job_id)
    return statuses


def _first_line(text: Any) -> str:
    lines = [ln for ln in str(text).splitlines() if ln.strip()]
    return lines[-1][:200] if lines else ""


def _final_metric(final: dict) -> str:
    test = final.get("test") or {}
    if test.get("top1") is not None:
        return f"test top1 {test['top1']:.2f}"
    prof = final.get("profile") or {}
    parts = []
    if prof.get("gflops_per_view") is not None:
        parts.append(f"{prof['gflops_per_view']:.3g} GFLOPs/view")
    if prof.get("latency_ms") is not None:
        parts.append(f"{prof['latency_ms']:.3g} ms")
    return ", ".join(parts)


def _last_metrics(rd: RunDir) -> str:
    """The last epoch line of metrics.jsonl, read from the end of the file (cheap)."""
    try:
        with open(rd.metrics_path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 4096))
            tail = f.read().decode("utf-8", "replace").strip().splitlines()
    except OSError:
        return ""
    for line in reversed(tail):
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        parts = [f"epoch {rec.get('epoch')}"]
        if rec.get("val_top1") is not None:
            parts.append(f"val top1 {rec['val_top1']:.2f}")
        elif rec.get("train_loss") is not None:
            parts.append(f"loss {rec['train_loss']:.4f}")
        return " ".join(parts)
    return ""


def status_table(statuses: list[RunStatus], grid: Grid | None = None, wide: bool = False) -> str:
    """The status table printed by ``sweep status`` plus a one-line count per state."""
    from tabulate import tabulate

    keys = [k for k in (grid.axis_keys if grid else []) if k != "seed"]
    rows = []
    for s in statuses:
        row = [s.index, s.run_id] + [format_value(s.axes.get(k)) for k in keys] + [s.axes.get("seed")]
        job = s.job_id or ""
        if s.scheduler_state and s.status not in ("done", "running"):
            job = f"{job} ({s.scheduler_state})"
        row += [s.status, job, s.attempts or "", s.metric, s.error if wide else s.error[:60],
                s.log if wide else _shorten_path(s.log)]
        rows.append(row)
    headers = ["#", "run_id"] + [k.split(".", 1)[-1] for k in keys] + ["seed", "status", "job",
                                                                       "attempts", "last metric",
                                                                       "last error", "log"]
    counts: dict[str, int] = {}
    for s in statuses:
        counts[s.status] = counts.get(s.status, 0) + 1
    order = ["done", "running", "requeued", "queued", "pending", "incomplete", "failed", "cancelled", "unknown"]
    total = ", ".join(f"{counts[k]} {k}" for k in order if k in counts)
    return tabulate(rows, headers=headers, tablefmt="simple") + f"\n\n{len(statuses)} runs: {total}"


def format_value(v: Any) -> str:
    """An axis value in a table cell: floats short, lists and dicts as compact JSON (40 characters)."""
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, (list, dict)):
        return json.dumps(v, separators=(",", ":"))[:40]
    return str(v)


def _shorten_path(p: str) -> str:
    if not p:
        return ""
    try:
        return os.path.relpath(p)
    except ValueError:
        return p
