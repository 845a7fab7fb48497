"""Where every run of a grid stands: ``sweep status``.

    collect_status(runs) -> one RunStatus per run (its state, job, attempts, last metric, last error, log)
    status_table(statuses, grid) -> the table ``sweep status`` prints

``RunStatus.status`` is ``harness.results.status.run_state`` of the run asked with the scheduler
(squeue, local worker processes): the states are documented there, once; ``sacct`` then explains
runs left incomplete by a SLURM job. A run that another folder of the results root holds over or alive (another
grid's, or ``dsa-harness train``'s ``manual/``: the same run id) has that folder's state, and ``run_dir``
is that folder (``elsewhere``: True; ``harness.results.status.state_elsewhere``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.launch.grid import Grid, RunSpec
from harness.launch.scheduler import SchedulerView, slurm_final_states
from harness.results.rundir import RunDir, run_folders_by_id
from harness.results.status import YIELDING_STATES, diverged_problem, run_state, state_elsewhere


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
    elsewhere: bool = False  # run_dir is another folder of the same run id (another grid's, manual/)


def collect_status(runs: list[RunSpec]) -> list[RunStatus]:
    """The state of every run, from its run directory and at most one squeue (and one sacct) call. A run whose
    own folder would have it trained (pending, incomplete, cancelled, failed) and that another folder of the
    results root holds over or alive reads as that folder (``RunStatus.elsewhere``)."""
    view = SchedulerView()
    statuses = []
    gone_slurm = []
    folders: dict[Path, dict[str, list[Path]]] = {}  # runs root -> run id -> its folders (listed once)
    for run in runs:
        rd = RunDir(run.run_dir)
        state = run_state(rd, scheduler=view)
        elsewhere = False
        if state.state in YIELDING_STATES:
            root = rd.path.parent.parent  # <results>/runs
            if root not in folders:
                folders[root] = run_folders_by_id(root)
            found = state_elsewhere(rd, folders[root].get(run.run_id, ()), scheduler=view)
            if found is not None:
                (rd, state), elsewhere = found, True
        job = state.job
        st = RunStatus(
            index=run.index,
            run_id=run.run_id,
            run_dir=rd.path,
            status=state.state,
            axes=run.axes,
            scheduler_state=state.scheduler_state,
            log=str(rd.log_path) if rd.log_path.exists() else "",
            elsewhere=elsewhere,
        )
        if job:
            st.job_id, st.cluster = job.get("job_id"), job.get("cluster")
            st.attempts, st.requeues = int(job.get("attempts") or 0), int(job.get("requeues") or 0)
            if not st.log:
                st.log = job.get("stdout") or ""
        if state.final is not None:
            st.metric = _final_metric(state.final)
        else:
            st.metric = _last_metrics(rd)
        if st.status == "failed":
            error = state.error or {}
            st.error = f"{error.get('type', 'Error')}: {_first_line(error.get('message', ''))}"
        elif st.status == "diverged":
            st.error = diverged_problem(state.final)
        elif state.problems:  # a cut or unreadable file: the named problem, where the error would be
            st.error = "; ".join(state.problems)
        elif st.status == "incomplete" and st.cluster == "slurm" and st.job_id:
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
        if not isinstance(rec, dict):  # a line that is not a record (the store names it)
            continue
        parts = [f"epoch {rec.get('epoch')}"]
        for key, label, fmt in (("val_top1", "val top1", ".2f"), ("train_loss", "loss", ".4f")):
            value = rec.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                parts.append(f"{label} {value:{fmt}}")
                break
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
        if s.scheduler_state and (s.status not in ("done", "running") or s.scheduler_state.startswith("in use")):
            job = f"{job} ({s.scheduler_state})"
        if s.elsewhere:  # the same run, in another grid's folder or manual/
            job = f"{job} in {s.run_dir.parent.name}/".strip()
        row += [
            s.status,
            job,
            f"{s.attempts} ({s.requeues} requeued)" if s.requeues else (s.attempts or ""),
            s.metric,
            s.error if wide else s.error[:60],
            s.log if wide else _shorten_path(s.log),
        ]
        rows.append(row)
    headers = (
        ["#", "run_id"]
        + [k.split(".", 1)[-1] for k in keys]
        + ["seed", "status", "job", "attempts", "last metric", "last error", "log"]
    )
    counts: dict[str, int] = {}
    for s in statuses:
        counts[s.status] = counts.get(s.status, 0) + 1
    order = ["done", "diverged", "running", "requeued", "queued", "pending", "incomplete", "damaged", "foreign"]
    order += ["failed", "cancelled", "unknown"]
    total = ", ".join(f"{counts[k]} {k}" for k in order if k in counts)
    shared = [s for s in statuses if s.elsewhere]
    note = ""
    if shared:
        where = ", ".join(sorted({f"{s.run_dir.parent.name}/" for s in shared}))
        note = (
            f"\n{len(shared)} of them held by another folder of the results root ({where}: the same run id, "
            "asked by another grid or trained by hand); never trained twice"
        )
    return tabulate(rows, headers=headers, tablefmt="simple") + f"\n\n{len(statuses)} runs: {total}" + note


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
