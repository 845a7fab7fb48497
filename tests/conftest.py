"""Session fixtures shared by the test areas.

``slurm_cluster``: a throwaway single-node SLURM cluster (scripts/local-slurm.sh), started once per
session by the first test that asks for it and stopped at the end. Other fixtures live in the test
files that use them.
"""

from __future__ import annotations

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
