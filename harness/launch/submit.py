"""Submit grids through submitit (SLURM job arrays, local workers, in-process debug), idempotently.

    submit(grid_file, cluster="slurm")   -> returns at once; job ids recorded in each run's job.json
    run_grid(grid_file, cluster="local") -> submit, wait with a progress bar, return the run dirs

Executors: ``slurm`` submits each group of runs with equal resources as **one job array**
(``executor.batch()``), each array task running ``tasks.RunTask`` on one run directory, from a
frozen copy of the code (``snapshot.snapshot_code``). ``local`` starts at most ``max_parallel`` workers
(default: cores // (cpus_per_task x tasks), or visible GPUs // gpus per run), each running its share
of the runs in turn (``tasks.RunBatch``) as ``resources.tasks`` processes (submitit's
``tasks_per_node``: one per GPU, or N gloo processes for a CPU run with ``tasks: N``) — the same world
size, global batch and learning rate as on SLURM; they outlive the submitting process. A run asking
for more GPUs than this machine has is refused (``allow_fewer_gpus``: run it on the GPUs there are,
one process each). ``debug`` runs everything in this process, synchronously (one process).

A run is submitted when ``sweep status`` would call it pending, incomplete or cancelled (failed
ones only with ``retry_failed``): done, diverged, queued, running and requeued runs are never submitted twice.
A run another folder of the results root holds over or alive (the same run id asked by another grid, or
trained with ``dsa-harness train``) has that folder's state: it is not trained again here (skipped as
``done in another folder``, ...).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import socket
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import ConfigError, UsageError
from harness.launch.grid import Grid, Resources, RunSpec, load_and_expand
from harness.launch.scheduler import proc_start_ticks
from harness.launch.snapshot import snapshot_code
from harness.launch.status import collect_status
from harness.launch.tasks import RunBatch, RunTask, now_iso
from harness.results.rundir import RunDir, read_grid_manifest, write_grid_manifest
from harness.results.status import LIVE_STATES
from harness.version import code_commit

CLUSTERS = ("slurm", "local", "debug")
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
    allow_fewer_gpus: bool = False  # local: run a run asking for more GPUs than visible on those visible
    snapshot: bool | None = None  # freeze the code; default: on for slurm, off otherwise
    max_num_timeout: int = 3  # submitit: requeues after time-outs before giving up
    signal_delay_s: int = 90  # slurm: seconds between the USR2 signal and the kill

    def __post_init__(self) -> None:
        """Refuse options no run can take, naming their ``sweep submit`` flag (``UsageError``)."""
        if self.cluster not in CLUSTERS:
            raise UsageError(f"--cluster {self.cluster!r}: choose slurm, local or debug")
        for flag, value in (
            ("--max-parallel", self.max_parallel),
            ("--time-min", self.time_min),
            ("--array-parallelism", self.array_parallelism),
        ):
            if value is not None and value < 1:
                raise UsageError(f"{flag} {value}: must be >= 1")
        if self.mem_gb is not None and not self.mem_gb > 0:
            raise UsageError(f"--mem-gb {self.mem_gb}: must be > 0")


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


def plan_submission(runs: list[RunSpec], retry_failed: bool = False) -> tuple[list, dict, list]:
    """Split runs into (to submit, {status: skipped runs}, statuses)."""
    statuses = collect_status(runs)
    to_submit, skipped = [], {}
    for run, st in zip(runs, statuses):
        submit = st.status in ("pending", "incomplete", "cancelled") or (st.status == "failed" and retry_failed)
        if submit:
            to_submit.append(run)
        else:
            label = {
                "failed": "failed (use --retry-failed)",
                "diverged": "diverged (over: change the config, e.g. a lower train.base_lr, or remove its folder)",
            }
            label.update({k: f"{k} (see sweep status)" for k in ("damaged", "foreign")})
            text = f"{st.status} in another folder" if st.elsewhere else label.get(st.status, st.status)
            skipped.setdefault(text, []).append(run)
    return to_submit, skipped, statuses


def _check_grid_name_free(grid: Grid, results_root: Path) -> None:
    """Refuse a grid whose name another, still existing grid file already uses in this results root: both
    would share results/runs/<name>/ and the second submit would hide the first grid's runs."""
    old = read_grid_manifest(results_root / "runs" / grid.name)
    if not old or not old.get("grid_file"):
        return
    previous = Path(old["grid_file"])
    if previous.resolve() != Path(grid.path).resolve() and previous.is_file():
        raise ConfigError(
            f"{grid.path}: name {grid.name!r} is already used by {previous} in {results_root / 'runs' / grid.name}; "
            "give one of the two grid files another name"
        )


def submit(
    grid_path: str | os.PathLike,
    cluster: str = "local",
    results_root: str | os.PathLike = "results",
    options: LaunchOptions | None = None,
    retry_failed: bool = False,
    check_data: bool = True,
    dry_run: bool = False,
    wait_debug: bool = True,
    overrides: list | None = None,
) -> SubmitResult:
    """Validate every run of the grid (raising ``GridValidationError`` with all problems, nothing
    submitted), skip runs that are done, alive, or failed (unless ``retry_failed``), and submit the
    rest. Returns at once for slurm and local; debug runs everything before returning."""
    options = dataclasses.replace(options or LaunchOptions(cluster=cluster), cluster=cluster)
    results_root = Path(results_root).resolve()
    grid, runs = load_and_expand(grid_path, results_root, check_data=check_data, overrides=overrides)
    provisional = [r for r in runs if r.run_config is not None and r.run_config.provisional]
    if provisional:
        missing = sorted({v[5:] for r in provisional for v in r.run_config.inputs().values() if v.startswith("path:")})
        raise ConfigError(
            f"{grid.path}: run ids hash the contents of their input files, and {', '.join(missing[:3])} "
            f"cannot be read here: submit from a machine that sees the data"
        )
    _check_grid_name_free(grid, results_root)
    to_submit, skipped, _ = plan_submission(runs, retry_failed)
    if cluster == "slurm" and to_submit and not dry_run:
        _require_slurm()  # before anything is written
    if cluster == "local":
        for run in to_submit:
            local_layout(_effective_resources(run.resources, options), options)  # refuses missing GPUs
    result = SubmitResult(grid=grid, runs=runs, skipped=skipped)
    if not dry_run:  # what the grid is now: reports leave out runs of earlier versions of the grid file
        write_grid_manifest(
            results_root / "runs" / grid.name,
            grid=grid.name,
            grid_file=str(Path(grid.path).resolve()),
            run_ids=[r.run_id for r in runs],
            written_at=now_iso(),
        )
    if dry_run or not to_submit:
        result.submitted = [] if not dry_run else to_submit
        return result
    for run in to_submit:  # the job reads its configuration from disk, never from the pickle
        rd = RunDir(run.run_dir).create()
        # a cut or unreadable config.json (RunDir.config_problem) is written again: the folder's name is the
        # run id of this config, so it is the record the folder lost
        if rd.config_problem() is not None or rd.read_config() != run.config:
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
    changes = {
        k: getattr(options, k)
        for k in ("partition", "account", "qos", "constraint", "array_parallelism", "time_min", "mem_gb")
        if getattr(options, k) is not None
    }
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
        "run_id": run.run_id,
        "grid": run.config.get("grid"),
        "cluster": cluster,
        "job_id": job_id,
        "submitted_at": now_iso(),
        "submitter_host": socket.gethostname(),
        "host": socket.gethostname(),
        "submissions": int(old.get("submissions", 0)) + 1,
        "attempts": int(old.get("attempts", 0)),
        "requeues": int(old.get("requeues", 0)),
        "snapshot": str(snapshot) if snapshot else None,
        "commit": commit,
        "state": "submitted",
        "started_at": None,
        "stdout": str(job.paths.stdout),
        "stderr": str(job.paths.stderr),
        **extra,
    }
    fresh = rd.read_job() or {}
    if fresh.get("attempt_job_id") == job_id and fresh.get("state") in ("running", "finished", "failed"):
        # the job started before this marker was written: keep what the run recorded
        for k in ("attempts", "started_at", "state", "attempt_job_id", "worker_host", "worker_pid"):
            if k in fresh:
                marker[k] = fresh[k]
    return marker


def _require_slurm() -> None:
    if shutil.which("sbatch") is None or shutil.which("srun") is None:
        raise UsageError(
            "--cluster slurm: sbatch/srun not found (is SLURM installed and SLURM_CONF set?); or use --cluster local"
        )


def slurm_parameters(job_name: str, res: Resources, options: LaunchOptions) -> dict[str, Any]:
    """``submitit.SlurmExecutor`` parameters of a job with resources ``res``.

    A job of several tasks (DDP ranks) runs them as one ``srun`` step with ``--kill-on-bad-exit=1``: a
    rank that fails ends the step, instead of the other ranks waiting in their next collective until the
    process-group timeout (NCCL 10 min, gloo 30 min) with every GPU of the job held. Requeue is unchanged:
    submitit's rank 0 requeues and exits, and the job restarts from its last checkpoint."""
    params: dict[str, Any] = {
        "job_name": job_name,
        "time": res.time_min,
        "nodes": res.nodes,
        "ntasks_per_node": res.tasks_per_node,
        "cpus_per_task": res.cpus_per_task,
        "mem": f"{int(res.mem_gb * 1024)}MB",
        "signal_delay_s": options.signal_delay_s,
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
    if res.tasks > 1:
        params["srun_args"] = ["--kill-on-bad-exit=1"]
    return params


def _submit_slurm(group, res: Resources, options, folder, snap_dir, workdir):
    import submitit

    _require_slurm()
    ex = submitit.SlurmExecutor(folder=folder / "%j", max_num_timeout=options.max_num_timeout)
    ex.update_parameters(**slurm_parameters(f"dsa-{group[0].config.get('grid')}", res, options))
    commit = code_commit(snap_dir) if snap_dir else None
    # sbatch records the working directory: the job starts in (and imports) the frozen code
    with _working_directory(snap_dir), ex.batch():
        jobs = [ex.submit(RunTask(), str(run.run_dir), workdir) for run in group]
    out = []
    for run, job in zip(group, jobs):
        RunDir(run.run_dir).write_job(_marker(run, "slurm", job, snap_dir, commit))
        out.append((job, run))
    return out


def visible_gpus() -> int:
    """CUDA devices this process sees (0 without torch's CUDA)."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def local_layout(res: Resources, options: LaunchOptions, warn: bool = False) -> tuple[int, int]:
    """(GPUs, processes) of one run on this machine: ``resources.gpus`` GPUs and ``resources.tasks``
    processes (one per GPU), as on SLURM. A run asking for more GPUs than are visible is refused
    (``UsageError``) unless ``options.allow_fewer_gpus``: then one process per visible GPU (none
    visible: one CPU process), and the global batch and learning rate shrink with the world size."""
    if not res.gpus:
        return 0, res.tasks
    have = visible_gpus()
    if have >= res.gpus:
        return res.gpus, res.tasks
    if not options.allow_fewer_gpus:
        raise UsageError(
            f"--cluster local: the runs ask for resources.gpus={res.gpus} (one process each, world size "
            f"{res.gpus}) but this machine sees {have} CUDA device(s); submit to SLURM, or pass "
            f"--allow-fewer-gpus to run each run on the {have} there are (world size {max(have, 1)}: "
            "global batch and learning rate scale down with it)"
        )
    if warn:
        print(
            f"[dsa-harness] WARNING: --allow-fewer-gpus: resources.gpus={res.gpus}, running on {have} GPU(s) "
            f"with world size {max(have, 1)} (global batch and learning rate scale with it)",
            file=sys.stderr,
            flush=True,
        )
    return have, max(have, 1)


def default_max_parallel(res: Resources, options: LaunchOptions | None = None) -> int:
    """Local workers: visible GPUs // GPUs per run, or cores // (cpus_per_task x tasks) (at least 1)."""
    gpus, tasks = local_layout(res, options or LaunchOptions(allow_fewer_gpus=True))
    if gpus:
        return max(1, visible_gpus() // gpus)
    return max(1, (os.cpu_count() or 1) // (res.cpus_per_task * tasks))


@contextlib.contextmanager
def _detached_stdio() -> Iterator[None]:
    """Local workers outlive the submitting command: they must not inherit its stdin/stdout/stderr (submitit
    starts them with ours), or `sweep submit --cluster local | cat` would wait for every run to end. Their
    own output goes to their log files under _jobs/. Our descriptors 0-2 point at /dev/null while they start."""
    import sys

    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    saved = [os.dup(fd) for fd in (0, 1, 2)]
    null = os.open(os.devnull, os.O_RDWR)
    try:
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        yield
    finally:
        for fd, copy in zip((0, 1, 2), saved):
            os.dup2(copy, fd)
            os.close(copy)
        os.close(null)


def _submit_local(group, res: Resources, options, folder, snap_dir, workdir):
    import submitit

    gpus, tasks = local_layout(res, options, warn=True)
    workers = min(len(group), options.max_parallel or default_max_parallel(res, options))
    if gpus:  # each worker has GPUs of its own
        workers = min(workers, max(1, visible_gpus() // gpus))
    shares = [group[i::workers] for i in range(workers)]
    commit = code_commit(snap_dir) if snap_dir else None
    out = []
    threads = max(1, min(res.cpus_per_task, os.cpu_count() or 1))
    for w, share in enumerate(shares):
        ex = submitit.LocalExecutor(folder=folder / "%j", max_num_timeout=options.max_num_timeout)
        # no time limit locally (resources.time_min is for SLURM): 30 days at least
        params: dict[str, Any] = {
            "timeout_min": max(60 * 24 * 30, sum(r.resources.time_min for r in share)),
            "tasks_per_node": tasks,  # the DDP processes of a run: rendezvous in harness.engine.distributed
        }
        if gpus:
            params.update(gpus_per_node=gpus, visible_gpus=list(range(w * gpus, (w + 1) * gpus)))
        ex.update_parameters(**params)
        with _working_directory(snap_dir), _environ(OMP_NUM_THREADS=str(threads)), _detached_stdio():
            job = ex.submit(RunBatch(), [str(r.run_dir) for r in share], workdir if snap_dir else None)
        ticks = proc_start_ticks(int(job.job_id))
        for run in share:
            RunDir(run.run_dir).write_job(
                _marker(run, "local", job, snap_dir, commit, proc_start=ticks, worker=w, workers=workers)
            )
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


def run_grid(
    grid_path: str | os.PathLike,
    cluster: str = "local",
    results_root: str | os.PathLike = "results",
    options: LaunchOptions | None = None,
    retry_failed: bool = False,
    check_data: bool = True,
    progress: bool = True,
    poll_s: float = 2.0,
    timeout_s: float | None = None,
    overrides: list | None = None,
) -> list[Path]:
    """Submit a grid and wait until no run of it is alive; returns the folder of every run of the grid (its own,
    or the other folder of the results root that holds the same run: ``RunStatus.elsewhere``; done ones have
    final.json; failed ones error.json). Used by ``dsa-harness reproduce``."""
    result = submit(
        grid_path,
        cluster=cluster,
        results_root=results_root,
        options=options,
        retry_failed=retry_failed,
        check_data=check_data,
        overrides=overrides,
    )
    from tqdm import tqdm

    runs = result.runs
    t0 = time.time()
    tty = sys.stderr.isatty()  # off a terminal: plain lines
    bar = tqdm(total=len(runs), desc=result.grid.name, unit="run", disable=not (progress and tty), leave=False)
    last = None
    while True:
        for job in result.jobs:  # reap finished local workers (no zombies)
            if cluster == "local":
                with contextlib.suppress(Exception):
                    job.done()
        statuses = collect_status(runs)
        done = sum(s.status == "done" for s in statuses)
        failed = sum(s.status in ("failed", "diverged") for s in statuses)  # a diverged run: over, not a result
        bar.n = done + failed
        bar.set_postfix(done=done, failed=failed, refresh=False)
        bar.refresh()
        if progress and not tty and (done, failed) != last:
            last = (done, failed)
            print(
                f"{result.grid.name}: {done + failed}/{len(runs)} runs finished ({done} done, {failed} failed, "
                f"{time.time() - t0:.0f} s)",
                file=sys.stderr,
                flush=True,
            )
        if not any(s.status in LIVE_STATES for s in statuses):
            break
        if timeout_s is not None and time.time() - t0 > timeout_s:
            bar.close()
            raise TimeoutError(f"{result.grid.name}: runs still alive after {timeout_s:.0f} s")
        time.sleep(poll_s)
    bar.close()
    if failed and progress:
        names = ", ".join(
            f"{s.run_id}{' (diverged)' * (s.status == 'diverged')}"
            for s in statuses
            if s.status in ("failed", "diverged")
        )
        print(
            f"{result.grid.name}: {failed} run(s) failed: {names} (see `dsa-harness sweep logs RUN`)", file=sys.stderr
        )
    return [s.run_dir for s in statuses]
