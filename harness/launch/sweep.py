"""Submit grids through submitit (SLURM job arrays, local workers, in-process debug), idempotently.

    submit(grid_file, cluster="slurm")   -> returns at once; job ids recorded in each run's job.json
    collect_status(runs)                 -> one RunStatus per run (done only if final.json parses)
    run_grid(grid_file, cluster="local") -> submit, wait with a progress bar, return the run dirs

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

Executors: ``slurm`` submits each group of runs with equal resources as **one job array**
(``executor.batch()``), each array task running ``tasks.RunTask`` on one run directory, from a
frozen copy of the code (``snapshot_code``). ``local`` starts at most ``max_parallel`` worker
processes (default: cores // cpus_per_task, or visible GPUs // gpus per run), each running its
share of the runs in turn (``tasks.RunBatch``); they outlive the submitting process. ``debug``
runs everything in this process, synchronously.
"""

from __future__ import annotations

import contextlib
import dataclasses
import getpass
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.config import get_dotted
from harness.errors import ConfigError
from harness.launch.grid import (
    Grid,
    GridValidationError,
    Resources,
    RunSpec,
    expand,
    load_and_expand,
    load_grid,
)
from harness.launch.tasks import SNAPSHOT_FILE, RunBatch, RunTask, now_iso, update_job_marker
from harness.results.rundir import RunDir, atomic_write_json, read_json, write_grid_manifest

CLUSTERS = ("slurm", "local", "debug")
LIVE = ("queued", "running", "requeued", "unknown")
JOBS_DIR = "_jobs"  # submitit's pickles and logs: results/runs/<grid>/_jobs/<job id>_*
SLURM_DEFAULT_SETUP = ("export OMP_NUM_THREADS=${SLURM_CPUS_PER_TASK:-1}",)


@dataclass
class LaunchOptions:
    """How to launch, beyond the grid's own ``resources`` (CLI flags override the grid)."""

    cluster: str = "local"
    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    array_parallelism: int | None = None
    sbatch: dict = field(default_factory=dict)  # extra sbatch options (--key=value)
    setup: list = field(default_factory=list)  # shell lines before the job (module load ...)
    time_min: int | None = None
    mem_gb: float | None = None
    max_parallel: int | None = None  # local: number of worker processes
    snapshot: bool | None = None  # freeze the code; default: on for slurm, off otherwise
    max_num_timeout: int = 3  # submitit: requeues after time-outs before giving up
    signal_delay_s: int = 90  # slurm: seconds between the USR2 signal and the kill

    def __post_init__(self) -> None:
        if self.cluster not in CLUSTERS:
            raise ValueError(f"unknown cluster {self.cluster!r}: choose slurm, local or debug")
        if self.max_parallel is not None and self.max_parallel < 1:
            raise ValueError(f"max_parallel must be >= 1, got {self.max_parallel}")


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


@dataclass
class SubmitResult:
    grid: Grid
    runs: list
    submitted: list = field(default_factory=list)  # RunSpec
    skipped: dict = field(default_factory=dict)  # status -> [RunSpec]
    job_ids: list = field(default_factory=list)
    jobs: list = field(default_factory=list)  # submitit Job objects (local: to reap the workers)
    snapshot: str | None = None
    commit: str | None = None

    def summary(self) -> str:
        parts = [f"{len(self.submitted)} submitted"]
        parts += [f"{len(v)} {k}" for k, v in sorted(self.skipped.items())]
        jobs = f" as job(s) {', '.join(_compress_job_ids(self.job_ids))}" if self.job_ids else ""
        return f"{self.grid.name}: {len(self.runs)} runs: " + ", ".join(parts) + jobs


# ---------------------------------------------------------------------------------------------
# scheduler state

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


def _proc_start_ticks(pid: int) -> int | None:
    """Start time of a process (clock ticks since boot), None if it is gone or a zombie."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()
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
    ticks = _proc_start_ticks(pid)
    if ticks is None:
        return False
    recorded = job.get("proc_start")
    return recorded is None or recorded == ticks


# ---------------------------------------------------------------------------------------------
# status

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
        alive, sched = _job_alive(job, live_slurm)
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


def _job_alive(job: dict | None, live_slurm: dict | None) -> tuple[bool, str | None]:
    if not job or not job.get("job_id") or job.get("state") in ("cancelled",):
        return False, None
    cluster = job.get("cluster")
    if cluster == "slurm":
        if live_slurm is None:
            return True, None
        sched = live_slurm.get(str(job["job_id"]))
        return sched is not None, sched
    if cluster == "local":
        alive = local_worker_alive(job)
        return alive, ("RUNNING" if alive else None)
    return False, None  # debug: synchronous, never alive afterwards


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
        row = [s.index, s.run_id] + [_short(s.axes.get(k)) for k in keys] + [s.axes.get("seed")]
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


def _short(v: Any) -> str:
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


def _compress_job_ids(ids: list[str]) -> list[str]:
    arrays: dict[str, list[str]] = {}
    out = []
    for j in ids:
        head, sep, tail = str(j).partition("_")
        if sep and tail.isdigit():
            arrays.setdefault(head, []).append(tail)
        else:
            out.append(str(j))
    for head, tails in arrays.items():
        span = f"[{min(map(int, tails))}-{max(map(int, tails))}]" if len(tails) > 1 else tails[0]
        out.append(f"{head}_{span}")
    return out


# ---------------------------------------------------------------------------------------------
# code snapshot

def repo_root() -> Path:
    return Path(__file__).resolve().parents[2]


def snapshot_code(dest_root: str | os.PathLike) -> tuple[Path, str | None, bool]:
    """Freeze the code that jobs will import: copy the files git knows in this checkout (tracked
    and untracked-but-not-ignored, as they are on disk) into ``<dest_root>/<commit12>-<hash8>/``,
    where ``hash8`` is a hash of their contents, so an unchanged tree is copied only once.
    Outside a git checkout the ``harness`` package alone is copied. Returns (path, commit, dirty).

    A ``SNAPSHOT.json`` at the snapshot's root records the commit; runs started from the snapshot
    report it as ``git_commit`` in final.json.
    """
    root = repo_root()
    commit, dirty = None, False
    files: list[str] = []
    try:
        commit = _run(["git", "-C", str(root), "rev-parse", "HEAD"]).stdout.strip() or None
        listed = _run(["git", "-C", str(root), "ls-files", "-z", "--cached", "--others", "--exclude-standard"])
        if listed.returncode == 0:
            files = sorted({f for f in listed.stdout.split("\0") if f and (root / f).is_file()})
        dirty = bool(_run(["git", "-C", str(root), "status", "--porcelain"]).stdout.strip())
    except (OSError, subprocess.SubprocessError):
        files = []
    if not files:
        pkg = root / "harness"
        files = sorted(str(p.relative_to(root)) for p in pkg.rglob("*.py"))
    digest = hashlib.sha256()
    for f in files:
        digest.update(f.encode() + b"\0")
        digest.update((root / f).read_bytes())
    name = f"{(commit or 'nogit')[:12]}-{digest.hexdigest()[:8]}"
    dest = Path(dest_root).resolve() / name
    if not dest.exists():
        tmp = dest.with_name(f".{name}.tmp{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        for f in files:
            target = tmp / f
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(root / f, target)
        atomic_write_json(tmp / SNAPSHOT_FILE, {"commit": commit, "dirty": dirty, "created_at": now_iso(),
                                                "source": str(root), "files": len(files)})
        try:
            os.rename(tmp, dest)
        except OSError:  # a concurrent submitter made the same snapshot
            shutil.rmtree(tmp, ignore_errors=True)
    return dest, commit, dirty


@contextlib.contextmanager
def _working_directory(path: Path | None) -> Iterator[None]:
    if path is None:
        yield
        return
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


@contextlib.contextmanager
def _environ(**values: str) -> Iterator[None]:
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


# ---------------------------------------------------------------------------------------------
# submission

def plan_submission(runs: list[RunSpec], retry_failed: bool = False) -> tuple[list, dict, list]:
    """Split runs into (to submit, {status: skipped runs}, statuses)."""
    statuses = collect_status(runs)
    to_submit, skipped = [], {}
    for run, st in zip(runs, statuses):
        submit = st.status in ("pending", "incomplete", "cancelled") or (st.status == "failed" and retry_failed)
        if submit:
            to_submit.append(run)
        else:
            skipped.setdefault("failed (use --retry-failed)" if st.status == "failed" else st.status, []).append(run)
    return to_submit, skipped, statuses


def submit(grid_path: str | os.PathLike, cluster: str = "local", results_root: str | os.PathLike = "results",
           options: LaunchOptions | None = None, retry_failed: bool = False, check_data: bool = True,
           dry_run: bool = False, wait_debug: bool = True, overrides: list | None = None) -> SubmitResult:
    """Validate every run of the grid (raising ``GridValidationError`` with all problems, nothing
    submitted), skip runs that are done, alive, or failed (unless ``retry_failed``), and submit the
    rest. Returns at once for slurm and local; debug runs everything before returning."""
    options = dataclasses.replace(options or LaunchOptions(cluster=cluster), cluster=cluster)
    results_root = Path(results_root).resolve()
    grid, runs = load_and_expand(grid_path, results_root, check_data=check_data, overrides=overrides)
    provisional = [r for r in runs if r.run_config is not None and r.run_config.provisional]
    if provisional:
        missing = sorted({v[5:] for r in provisional for v in r.run_config.inputs().values() if v.startswith("path:")})
        raise ConfigError(f"{grid.path}: run ids hash the contents of their input files, and {', '.join(missing[:3])} "
                          f"cannot be read here: submit from a machine that sees the data")
    to_submit, skipped, _ = plan_submission(runs, retry_failed)
    result = SubmitResult(grid=grid, runs=runs, skipped=skipped)
    if not dry_run:  # what the grid is now: reports leave out runs of earlier versions of the grid file
        write_grid_manifest(results_root / "runs" / grid.name, grid=grid.name, grid_file=str(grid.path),
                            run_ids=[r.run_id for r in runs], written_at=now_iso())
    if dry_run or not to_submit:
        result.submitted = [] if not dry_run else to_submit
        return result
    for run in to_submit:  # the job reads its configuration from disk, never from the pickle
        rd = RunDir(run.run_dir).create()
        if not rd.config_path.exists() or rd.read_config() != run.config:
            rd.write_config(run.config)
    folder = results_root / "runs" / grid.name / JOBS_DIR
    snapshot = options.snapshot if options.snapshot is not None else cluster == "slurm"
    workdir = os.getcwd()
    snap_dir = commit = None
    if snapshot:
        snap_dir, commit, dirty = snapshot_code(results_root / "snapshots")
        result.snapshot, result.commit = str(snap_dir), (f"{commit}-dirty" if commit and dirty else commit)
    groups: dict[str, list[RunSpec]] = {}
    for run in to_submit:
        groups.setdefault(json.dumps(run.config.get("resources") or {}, sort_keys=True), []).append(run)
    for group in groups.values():
        res = _effective_resources(group[0].resources, options)
        if cluster == "slurm":
            jobs = _submit_slurm(group, res, options, folder, snap_dir, workdir)
        elif cluster == "local":
            jobs = _submit_local(group, res, options, folder, snap_dir, workdir)
        else:
            jobs = _submit_debug(group, folder, options, result, wait_debug)
        result.jobs += [j for j, _ in jobs]
        result.job_ids += [str(j.job_id) for j, _ in jobs]
    result.submitted = to_submit
    return result


def _effective_resources(res: Resources, options: LaunchOptions) -> Resources:
    changes = {k: getattr(options, k) for k in ("partition", "account", "qos", "constraint", "array_parallelism",
                                                "time_min", "mem_gb") if getattr(options, k) is not None}
    if options.sbatch:
        changes["sbatch"] = {**res.sbatch, **options.sbatch}
    if options.setup:
        changes["setup"] = tuple(res.setup) + tuple(options.setup)
    return dataclasses.replace(res, **changes) if changes else res


def _marker(run: RunSpec, cluster: str, job, snapshot: Path | None, commit: str | None, **extra: Any) -> dict:
    rd = RunDir(run.run_dir)
    old = rd.read_job() or {}
    job_id = str(job.job_id)
    marker = {
        "run_id": run.run_id, "grid": run.config.get("grid"), "cluster": cluster, "job_id": job_id,
        "submitted_at": now_iso(), "submitter_host": socket.gethostname(), "host": socket.gethostname(),
        "submissions": int(old.get("submissions", 0)) + 1, "attempts": int(old.get("attempts", 0)),
        "requeues": int(old.get("requeues", 0)), "snapshot": str(snapshot) if snapshot else None,
        "commit": commit, "state": "submitted", "started_at": None,
        "stdout": str(job.paths.stdout), "stderr": str(job.paths.stderr), **extra,
    }
    fresh = rd.read_job() or {}
    if fresh.get("attempt_job_id") == job_id and fresh.get("state") in ("running", "finished", "failed"):
        # the job started before this marker was written: keep what the run recorded
        for k in ("attempts", "started_at", "state", "attempt_job_id", "worker_host", "worker_pid"):
            if k in fresh:
                marker[k] = fresh[k]
    return marker


def _submit_slurm(group, res: Resources, options, folder, snap_dir, workdir):
    import submitit

    if shutil.which("sbatch") is None or shutil.which("srun") is None:
        raise RuntimeError("--cluster slurm: sbatch/srun not found (is SLURM installed and SLURM_CONF set?)")
    ex = submitit.SlurmExecutor(folder=folder / "%j", max_num_timeout=options.max_num_timeout)
    params: dict[str, Any] = {
        "job_name": f"dsa-{group[0].config.get('grid')}", "time": res.time_min, "nodes": res.nodes,
        "ntasks_per_node": res.tasks_per_node, "cpus_per_task": res.cpus_per_task,
        "mem": f"{int(res.mem_gb * 1024)}MB", "signal_delay_s": options.signal_delay_s,
        "setup": list(SLURM_DEFAULT_SETUP) + list(res.setup),
    }
    if res.gpus_per_node:
        params["gpus_per_node"] = res.gpus_per_node
    for k in ("partition", "account", "qos", "constraint"):
        if getattr(res, k):
            params[k] = getattr(res, k)
    if res.array_parallelism:
        params["array_parallelism"] = res.array_parallelism
    if res.sbatch:
        params["additional_parameters"] = {str(k).replace("_", "-"): v for k, v in res.sbatch.items()}
    ex.update_parameters(**params)
    commit = _snapshot_commit(snap_dir)
    # sbatch records the working directory: the job starts in (and imports) the frozen code
    with _working_directory(snap_dir), ex.batch():
        jobs = [ex.submit(RunTask(), str(run.run_dir), workdir) for run in group]
    out = []
    for run, job in zip(group, jobs):
        RunDir(run.run_dir).write_job(_marker(run, "slurm", job, snap_dir, commit))
        out.append((job, run))
    return out


def _snapshot_commit(snap_dir: Path | None) -> str | None:
    if not snap_dir:
        return None
    try:
        snap = read_json(snap_dir / SNAPSHOT_FILE)
    except (OSError, ValueError):
        return None
    c = snap.get("commit")
    return f"{c}-dirty" if c and snap.get("dirty") else c


def default_max_parallel(res: Resources) -> int:
    """Local workers: visible GPUs // GPUs per run, or cores // cpus_per_task (at least 1)."""
    if res.gpus:
        import torch

        return max(1, torch.cuda.device_count() // res.gpus)
    return max(1, (os.cpu_count() or 1) // res.cpus_per_task)


def _submit_local(group, res: Resources, options, folder, snap_dir, workdir):
    import submitit

    workers = min(len(group), options.max_parallel or default_max_parallel(res))
    shares = [group[i::workers] for i in range(workers)]
    commit = _snapshot_commit(snap_dir)
    out = []
    threads = max(1, min(res.cpus_per_task, os.cpu_count() or 1))
    for w, share in enumerate(shares):
        ex = submitit.LocalExecutor(folder=folder / "%j", max_num_timeout=options.max_num_timeout)
        # no time limit locally (resources.time_min is for SLURM): 30 days at least
        params: dict[str, Any] = {"timeout_min": max(60 * 24 * 30, sum(r.resources.time_min for r in share)),
                                  "tasks_per_node": 1}
        if res.gpus:
            params.update(gpus_per_node=res.gpus, visible_gpus=list(range(w * res.gpus, (w + 1) * res.gpus)))
        ex.update_parameters(**params)
        with _working_directory(snap_dir), _environ(OMP_NUM_THREADS=str(threads)):
            job = ex.submit(RunBatch(), [str(r.run_dir) for r in share], workdir if snap_dir else None)
        ticks = _proc_start_ticks(int(job.job_id))
        for run in share:
            RunDir(run.run_dir).write_job(_marker(run, "local", job, snap_dir, commit, proc_start=ticks,
                                                  worker=w, workers=workers))
            out.append((job, run))
    return out


def _submit_debug(group, folder, options, result, wait):
    import submitit

    ex = submitit.DebugExecutor(folder=folder / "debug")
    job = ex.submit(RunBatch(), [str(r.run_dir) for r in group], None)
    for run in group:
        RunDir(run.run_dir).write_job(_marker(run, "debug", job, None, None))
    if wait:
        job.result()  # runs in this process; RunBatch records failures instead of raising
    return [(job, run) for run in group]


# ---------------------------------------------------------------------------------------------
# cancel / logs

def cancel(grid_path: str | os.PathLike, results_root: str | os.PathLike = "results",
           run_ids: Iterable[str] | None = None, overrides: list | None = None) -> list[RunStatus]:
    """Cancel the live jobs of a grid (or of some of its runs) and mark them cancelled.
    A local worker runs several runs: cancelling one of them stops the whole worker."""
    grid = load_grid(grid_path)
    runs = expand(grid, Path(results_root).resolve(), overrides)
    wanted = set(run_ids or [])
    if wanted:
        runs = [r for r in runs if r.run_id in wanted or any(r.run_id.startswith(w) for w in wanted)]
    statuses = [s for s in collect_status(runs) if s.status in LIVE]
    slurm_ids = sorted({s.job_id for s in statuses if s.cluster == "slurm" and s.job_id})
    if slurm_ids:
        out = _run(["scancel", *slurm_ids], timeout=60)
        if out.returncode != 0:
            raise RuntimeError(f"scancel failed: {out.stderr.strip()}")
    for pid in sorted({int(s.job_id) for s in statuses if s.cluster == "local" and s.job_id}):
        _stop_local_worker(pid)
    for s in statuses:
        update_job_marker(RunDir(s.run_dir), state="cancelled", cancelled_at=now_iso())
    return statuses


def _children(pid: int) -> list[int]:
    """Direct children of ``pid`` (from /proc; empty where /proc is absent)."""
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except (OSError, ValueError):
        return []


def _stop_local_worker(pid: int, grace_s: float = 10.0) -> None:
    """SIGINT the submitit controller (it stops its task and exits); if it is still there after
    ``grace_s`` (a busy machine, a task ignoring the signal), SIGKILL its task processes and itself."""
    import signal

    tasks = _children(pid)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGINT)
    deadline = time.time() + grace_s
    while time.time() < deadline:
        if _proc_start_ticks(pid) is None:  # gone, or a zombie waiting for its parent
            return
        time.sleep(0.1)
    for victim in [*tasks, *_children(pid), pid]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(victim, signal.SIGKILL)


def find_run(run: str, results_root: str | os.PathLike = "results") -> RunDir:
    """A run directory from a path or a run id (prefix accepted) under ``<results_root>/runs``."""
    p = Path(run)
    if (p / "config.json").exists() or (p / "job.json").exists():
        return RunDir(p)
    base = Path(results_root) / "runs"
    matches = sorted(d for d in base.glob(f"*/{run}*") if d.is_dir()) if base.exists() else []
    if not matches:
        raise FileNotFoundError(f"no run {run!r} under {base} (give a run id, a prefix of one, or a run dir)")
    if len(matches) > 1:
        raise ValueError(f"run id prefix {run!r} is ambiguous: {', '.join(str(m) for m in matches[:10])}")
    return RunDir(matches[0])


def _tail(path: str | os.PathLike | None, lines: int) -> str | None:
    if not path:
        return None
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 200 * lines))
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return None
    return "\n".join(text.splitlines()[-lines:])


def run_logs(rd: RunDir, lines: int = 40) -> str:
    """The run's marker, its log.txt, its last error and the job's stdout/stderr (tails)."""
    job = rd.read_job() or {}
    parts = [f"run {rd.run_id}: {rd.path}"]
    if job:
        parts.append("job: " + ", ".join(f"{k}={job.get(k)}" for k in
                                         ("cluster", "job_id", "state", "attempts", "requeues", "submitted_at",
                                          "commit") if job.get(k) is not None))
    for title, path in (("log.txt", rd.log_path), ("stdout", job.get("stdout")), ("stderr", job.get("stderr"))):
        text = _tail(path, lines)
        if text is not None:
            parts.append(f"--- {title} ({path}) ---\n{text}")
    err = rd.read_error()
    if err:
        parts.append("--- error.json ---\n" + "\n".join(err.get("traceback") or [err.get("message", "")]))
    if len(parts) <= 2:
        parts.append("(no logs yet)")
    return "\n".join(parts)


# ---------------------------------------------------------------------------------------------
# cost estimate

def _count_lines(path: Any) -> int | None:
    if not path or not Path(path).is_file():
        return None
    with open(path, "rb") as f:
        return sum(1 for line in f if line.strip())


def estimate_cost(grid: Grid, runs: list[RunSpec], throughput: dict | None = None,
                  flops_cache: str | os.PathLike | None = None, progress: bool = True) -> list[dict | None]:
    """Estimated device-hours per run of a train grid (None per run for profile grids).

    With F = fvcore GFLOPs per view of the run's model (one multiply-add = one FLOP; one view =
    U snippets x T frames at ``data.size``), E = ``train.epochs``, N = training clips per epoch
    (``cost.train_clips``, else the lines of ``data.train``), M = test clips (``cost.test_clips``,
    else the lines of ``data.test``/``data.val``) and V = ``eval.test_groups`` x ``eval.crops``:

    * with a declared or measured training throughput ``clips_per_s`` (per device):
      hours = (E*N + M*V/3) / clips_per_s / 3600 (a test view costs ~1/3 of a training step);
    * else with a sustained rate ``tflops`` (fvcore TFLOP/s per device):
      hours = (3*E*N*F + M*V*F) / (tflops * 1000) / 3600 (backward ~ 2x forward).

    Hours are GPU-hours when ``resources.gpus`` > 0 (wall time ~ hours / gpus), else CPU-node hours.
    F comes from ``harness.measure.profile_model(..., latency=False)``, cached in ``flops_cache``.
    """
    if grid.task != "train":
        return [None] * len(runs)
    cost = grid.cost or {}
    tp = dict(cost.get("throughput") or {})
    tp.update(throughput or {})
    cache_path = Path(flops_cache) if flops_cache else None
    cache: dict = {}
    if cache_path and cache_path.exists():
        with contextlib.suppress(OSError, ValueError):
            cache = read_json(cache_path)
    out: list[dict | None] = []
    need_flops = not tp.get("clips_per_s")
    keys = []
    for run in runs:
        model = dict(run.config.get("model") or {})
        size = get_dotted(run.config, "data.size") or get_dotted(run.config, "profile.size") or 224
        keys.append((json.dumps({"model": model, "size": size}, sort_keys=True), model, size))
    if need_flops:
        missing = {k: (m, s) for k, m, s in keys if k not in cache}
        if missing:
            from harness.measure import profile_model

            bar = _progress(len(missing), "FLOPs for the estimate", progress)
            for k, (model, size) in missing.items():
                m = dict(model)
                variant = m.pop("variant")
                ncls = m.pop("num_classes", 400)
                m.pop("pretrained", None)
                rec = profile_model(variant, m, size=size, latency=False, num_classes=ncls)
                cache[k] = rec["gflops_per_view"]
                bar.update(1)
            bar.close()
            if cache_path:
                atomic_write_json(cache_path, cache)
    line_counts: dict = {}
    for run, (k, _, _) in zip(runs, keys):
        c = run.config
        epochs = get_dotted(c, "train.epochs") or 0
        n = cost.get("train_clips")
        if n is None:
            p = get_dotted(c, "data.train")
            n = line_counts.setdefault(p, _count_lines(p))
        m = cost.get("test_clips")
        if m is None:
            p = get_dotted(c, "data.test") or get_dotted(c, "data.val")
            m = line_counts.setdefault(p, _count_lines(p))
        views = (get_dotted(c, "eval.test_groups") or 1) * (get_dotted(c, "eval.crops") or 1)
        f = cache.get(k)
        hours = None
        if n is not None:
            m = m or 0
            if tp.get("clips_per_s"):
                hours = (epochs * n + m * views / 3) / float(tp["clips_per_s"]) / 3600
            elif tp.get("tflops") and f is not None:
                hours = (3 * epochs * n * f + m * views * f) / (float(tp["tflops"]) * 1000) / 3600
        gpus = int((c.get("resources") or {}).get("gpus", 0))
        out.append({"gflops_per_view": f, "epochs": epochs, "train_clips": n, "test_clips": m, "views": views,
                    "hours": hours, "unit": "GPU-h" if gpus else "CPU-h",
                    "wall_h": (hours / gpus if gpus and hours is not None else hours)})
    return out


def _progress(total: int, desc: str, enabled: bool = True):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="run", disable=not enabled, leave=False)


def show_table(grid: Grid, runs: list[RunSpec], costs: list[dict | None] | None = None) -> str:
    """The expanded runs of ``sweep show``, with the cost estimate when given."""
    from tabulate import tabulate

    keys = [k for k in grid.axis_keys]
    headers = ["#", "run_id"] + keys + ["seed"]
    with_cost = costs is not None and any(c for c in costs)
    if with_cost:
        headers += ["GFLOPs/view", "epochs", "clips", "est. hours"]
    rows = []
    for i, run in enumerate(runs):
        row = [run.index, run.run_id] + [_short(run.axes.get(k)) for k in keys] + [run.axes.get("seed")]
        if with_cost:
            c = costs[i] or {}
            f = c.get("gflops_per_view")
            h = c.get("hours")
            row += [f"{f:.1f}" if f is not None else "", c.get("epochs"), c.get("train_clips"),
                    f"{h:,.1f} {c.get('unit')}" if h is not None else "n/a"]
        rows.append(row)
    res = Resources.from_dict(runs[0].config.get("resources")) if runs else None
    lines = [f"grid {grid.name} ({grid.path}): {grid.task}, {len(runs)} runs",
             f"  {grid.description}".rstrip()]
    if grid.paper_table:
        lines.append(f"  reproduces: {grid.paper_table}")
    if grid.paper_reference:
        lines.append(f"  paper reference: {grid.paper_reference}")
    if res:
        lines.append(f"  resources per run: {res.gpus} GPU(s) on {res.nodes} node(s), {res.cpus_per_task} CPUs/task, "
                     f"{res.mem_gb:g} GB, {res.time_min} min")
    text = "\n".join(lines) + "\n\n" + tabulate(rows, headers=headers, tablefmt="simple")
    if with_cost:
        hours = [c["hours"] for c in costs if c and c.get("hours") is not None]
        unit = next((c["unit"] for c in costs if c), "GPU-h")
        if hours:
            text += f"\n\nestimated total: {sum(hours):,.1f} {unit} ({len(hours)} of {len(runs)} runs estimated; " \
                    "formula: harness.launch.sweep.estimate_cost)"
        else:
            text += "\n\nno estimate: declare cost.train_clips and cost.throughput in the grid"
    return text


# ---------------------------------------------------------------------------------------------
# the main job's entry point

def run_grid(grid_path: str | os.PathLike, cluster: str = "local", results_root: str | os.PathLike = "results",
             options: LaunchOptions | None = None, retry_failed: bool = False, check_data: bool = True,
             progress: bool = True, poll_s: float = 2.0, timeout_s: float | None = None,
             overrides: list | None = None) -> list[Path]:
    """Submit a grid and wait until no run of it is alive; returns every run directory of the grid
    (done ones have final.json; failed ones error.json). Used by ``dsa-harness reproduce``."""
    result = submit(grid_path, cluster=cluster, results_root=results_root, options=options,
                    retry_failed=retry_failed, check_data=check_data, overrides=overrides)
    runs = result.runs
    t0 = time.time()
    tty = sys.stderr.isatty()
    bar = _progress(len(runs), f"{result.grid.name}", progress and tty)  # off a terminal: plain lines
    bar.unit = "run"
    last = None
    while True:
        for job in result.jobs:  # reap finished local workers (no zombies)
            if cluster == "local":
                with contextlib.suppress(Exception):
                    job.done()
        statuses = collect_status(runs)
        done = sum(s.status == "done" for s in statuses)
        failed = sum(s.status == "failed" for s in statuses)
        bar.n = done + failed
        bar.set_postfix(done=done, failed=failed, refresh=False)
        bar.refresh()
        if progress and not tty and (done, failed) != last:
            last = (done, failed)
            print(f"{result.grid.name}: {done + failed}/{len(runs)} runs finished ({done} done, {failed} failed, "
                  f"{time.time() - t0:.0f} s)", file=sys.stderr, flush=True)
        if not any(s.status in LIVE for s in statuses):
            break
        if timeout_s is not None and time.time() - t0 > timeout_s:
            bar.close()
            raise TimeoutError(f"{result.grid.name}: runs still alive after {timeout_s:.0f} s")
        time.sleep(poll_s)
    bar.close()
    if failed and progress:
        names = ", ".join(s.run_id for s in statuses if s.status == "failed")
        print(f"{result.grid.name}: {failed} run(s) failed: {names} (see `dsa-harness sweep logs RUN`)",
              file=sys.stderr)
    return [r.run_dir for r in runs]


__all__ = [
    "CLUSTERS", "GridValidationError", "LaunchOptions", "RunStatus", "SubmitResult", "cancel", "collect_status",
    "estimate_cost", "find_run", "plan_submission", "run_grid", "run_logs", "show_table", "snapshot_code",
    "status_table", "submit",
]
