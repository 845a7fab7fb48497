"""Act on submitted runs: ``cancel`` their jobs, find a run (``find_run``) and show its logs (``run_logs``)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from harness.errors import MissingFileError, UsageError
from harness.launch.grid import expand, load_grid
from harness.launch.scheduler import scancel, stop_local_worker
from harness.launch.status import RunStatus, collect_status
from harness.launch.tasks import now_iso, update_job_marker
from harness.results.rundir import RunDir
from harness.results.status import LIVE_STATES


def cancel(
    grid_path: str | os.PathLike,
    results_root: str | os.PathLike = "results",
    run_ids: Iterable[str] | None = None,
    overrides: list | None = None,
) -> list[RunStatus]:
    """Cancel the live jobs of a grid (or of some of its runs) and mark them cancelled.
    A local worker runs several runs: cancelling one of them stops the whole worker. A run alive in another
    folder (the same run id submitted by another grid: ``RunStatus.elsewhere``) is that grid's job: left alone."""
    grid = load_grid(grid_path)
    runs = expand(grid, Path(results_root).resolve(), overrides)
    wanted = set(run_ids or [])
    if wanted:
        runs = [r for r in runs if r.run_id in wanted or any(r.run_id.startswith(w) for w in wanted)]
    statuses = [s for s in collect_status(runs) if s.status in LIVE_STATES and not s.elsewhere]
    slurm_ids = sorted({s.job_id for s in statuses if s.cluster == "slurm" and s.job_id})
    if slurm_ids:
        scancel(slurm_ids)
    for pid in sorted({int(s.job_id) for s in statuses if s.cluster == "local" and s.job_id}):
        stop_local_worker(pid)
    for s in statuses:
        update_job_marker(RunDir(s.run_dir), state="cancelled", cancelled_at=now_iso())
    return statuses


def find_run(run: str, results_root: str | os.PathLike = "results") -> RunDir:
    """A run directory from a path or a run id (prefix accepted) under ``<results_root>/runs``."""
    p = Path(run)
    if (p / "config.json").exists() or (p / "job.json").exists():
        return RunDir(p)
    base = Path(results_root) / "runs"
    matches = sorted(d for d in base.glob(f"*/{run}*") if d.is_dir()) if base.exists() else []
    if not matches:
        raise MissingFileError(f"no run {run!r} under {base} (give a run id, a prefix of one, or a run dir)")
    if len(matches) > 1:
        raise UsageError(
            f"run id prefix {run!r} is ambiguous: {', '.join(str(m) for m in matches[:10])}; give more of the id"
        )
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
        parts.append(
            "job: "
            + ", ".join(
                f"{k}={job.get(k)}"
                for k in ("cluster", "job_id", "state", "attempts", "requeues", "submitted_at", "commit")
                if job.get(k) is not None
            )
        )
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
