"""Session fixtures shared by the test areas.

``slurm_cluster``: a throwaway single-node SLURM cluster (scripts/local-slurm.sh), started once per
session by the first test that asks for it and stopped at the end. ``local_workers``: for a test that
starts submitit local workers (``--cluster local``), ends those still alive on teardown, by process id.
Other fixtures live in the test files that use them.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LOCAL_SLURM = REPO / "scripts" / "local-slurm.sh"
SLURM_CLIENTS = ("sbatch", "srun", "squeue", "sinfo", "scontrol", "scancel")
SLURM_DAEMONS = ("slurmctld", "slurmd", "munged", "munge", "unmunge")
SBIN = ("/usr/sbin", "/sbin")


@dataclass(frozen=True)
class SlurmCluster:
    """A running local cluster.

    conf: path of its slurm.conf (what SLURM_CONF must point at); dir: the directory holding config,
    state, logs and PID files; env: environment for subprocesses that talk to it (a full copy of
    os.environ with SLURM_CONF set and ``dir/bin`` first on PATH, where its ``sacct`` lives).
    """

    conf: Path
    dir: Path
    env: dict[str, str] = field(repr=False)

    def run(self, *cmd: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess:
        """Run a SLURM client command against this cluster; text output captured."""
        return subprocess.run(list(cmd), env=self.env, capture_output=True, text=True, check=check, timeout=timeout)

    def log_tail(self, lines: int = 25) -> str:
        """Last lines of the daemons' logs, for assertion messages."""
        parts = []
        for name in ("slurmctld.log", "slurmd.log", "munged.log"):
            path = self.dir / "log" / name
            if path.exists():
                tail = path.read_text(errors="replace").splitlines()[-lines:]
                parts.append(f"----- {path} -----\n" + "\n".join(tail))
        return "\n".join(parts)


def _missing(commands) -> list[str]:
    path = os.pathsep.join([os.environ.get("PATH", ""), *SBIN])
    return [c for c in commands if shutil.which(c, path=path) is None]


def _unavailable(reason: str):
    """Skip, or fail when CI=true: CI must run the SLURM tests."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true but the SLURM cluster cannot run: {reason}", pytrace=False)
    pytest.skip(reason)


def _script(*args: str, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(LOCAL_SLURM), *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def _output(proc: subprocess.CompletedProcess) -> str:
    return (proc.stdout + proc.stderr).strip()


@pytest.fixture(scope="session")
def slurm_cluster():
    """Start the local single-node SLURM cluster for this session (installing slurm-wlm and munge
    with apt first when they are missing and we are root); yields a :class:`SlurmCluster`.

    While it runs, ``os.environ`` has SLURM_CONF set and the cluster's ``bin`` first on PATH, so
    submitit and the harness (and their subprocesses) talk to it. Skipped when the SLURM binaries are
    missing and we are not root to install them; under CI=true that is a failure instead.
    """
    missing = _missing(SLURM_CLIENTS + SLURM_DAEMONS)
    if missing:
        if os.geteuid() != 0:
            _unavailable(
                f"SLURM binaries missing ({' '.join(missing)}) and not root to install them "
                f"(apt-get install slurm-wlm munge, or run as root)"
            )
        proc = _script("install", timeout=900)
        if proc.returncode != 0:
            pytest.fail(
                f"scripts/local-slurm.sh install failed (exit {proc.returncode}):\n{_output(proc)}", pytrace=False
            )

    base = Path(tempfile.mkdtemp(prefix="local-slurm-", dir="/tmp" if Path("/tmp").is_dir() else None))
    proc = _script("up", str(base), timeout=120)
    if proc.returncode != 0:
        _script("down", str(base), timeout=120)
        pytest.fail(
            f"scripts/local-slurm.sh up failed (exit {proc.returncode}); output and log tails:\n{_output(proc)}",
            pytrace=False,
        )
    values = dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)
    conf = Path(values["SLURM_CONF"])
    cluster_dir = conf.parent

    saved = {k: os.environ.get(k) for k in ("SLURM_CONF", "PATH")}
    os.environ["SLURM_CONF"] = str(conf)
    os.environ["PATH"] = os.pathsep.join([str(cluster_dir / "bin"), saved["PATH"] or os.defpath])
    cluster = SlurmCluster(conf=conf, dir=cluster_dir, env=dict(os.environ))
    try:
        yield cluster
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        down = _script("down", str(cluster_dir), timeout=120)
        if down.returncode != 0:
            print(f"warning: scripts/local-slurm.sh down {cluster_dir} failed:\n{_output(down)}")


# --- submitit local workers a test started ----------------------------------------------------------

LOCAL_CONTROLLER = "submitit.local._local"  # the module a local worker (submitit's job controller) runs


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def local_workers_under(root: Path) -> list[int]:
    """PIDs of the live local workers started for folders under ``root``: the job ids recorded there (``job.json``
    of ``--cluster local`` runs, submitit's job folders ``_jobs/<job id>``; a local job's id is its worker's pid),
    kept only where that process is alive and runs submitit's controller on a folder under ``root`` (a pid the
    system gave to another process since is never one of them)."""
    from harness.launch.scheduler import proc_start_ticks

    root = Path(root)
    ids: set[int] = set()
    for marker in root.rglob("job.json"):
        try:
            job = json.loads(marker.read_text())
            if isinstance(job, dict) and job.get("cluster") == "local":
                ids.add(int(job["job_id"]))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    for jobs in root.rglob("_jobs"):
        with contextlib.suppress(OSError):
            ids.update(int(d.name.split("_")[0]) for d in jobs.iterdir() if d.name.split("_")[0].isdigit())
    places = {str(root), str(root.resolve())}
    return sorted(
        pid
        for pid in ids
        if pid != os.getpid()
        and proc_start_ticks(pid) is not None  # alive (not a zombie)
        and LOCAL_CONTROLLER in (cmd := _cmdline(pid))
        and any(place + os.sep in cmd for place in places)
    )


def end_local_workers(root: Path, grace_s: float = 10.0) -> list[int]:
    """End every live local worker started for ``root`` (:func:`local_workers_under`), by pid: SIGINT, then
    SIGKILL of its task processes and itself after ``grace_s`` (``harness.launch.scheduler.stop_local_worker``);
    the ones this process started are reaped. Returns their pids."""
    from harness.launch.scheduler import stop_local_worker

    pids = local_workers_under(root)
    for pid in pids:
        stop_local_worker(pid, grace_s=grace_s)
        with contextlib.suppress(ChildProcessError):  # our child (started in this process): no zombie left
            os.waitpid(pid, 0)
    return pids


@pytest.fixture
def local_workers(tmp_path):
    """For a test that starts submitit local workers under ``tmp_path`` (``submit`` / ``run_grid`` with
    ``cluster="local"``, or a ``dsa-harness sweep submit --cluster local`` child process): on teardown, whatever
    the test's outcome, the workers still alive are ended by pid (:func:`end_local_workers`), so none outlives
    its test."""
    yield tmp_path
    left = end_local_workers(tmp_path)
    if left:
        print(f"ended local worker(s) {left} left by the test")
