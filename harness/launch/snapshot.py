"""Freeze the code that jobs will import: ``snapshot_code(dest_root)`` copies this checkout's files
into a content-addressed folder that SLURM jobs start in, so editing the checkout after submitting
changes no queued or requeued job."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

from harness.launch.tasks import now_iso
from harness.results.rundir import atomic_write_json
from harness.version import SNAPSHOT_FILE, code_root


def _git(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=30, check=False)


def snapshot_code(dest_root: str | os.PathLike) -> tuple[Path, str | None, bool]:
    """Freeze the code that jobs will import: copy the files git knows in this checkout (tracked
    and untracked-but-not-ignored, as they are on disk) into ``<dest_root>/<commit12>-<hash8>/``,
    where ``hash8`` is a hash of their contents, so an unchanged tree is copied only once.
    Outside a git checkout the ``harness`` package alone is copied. Returns (path, commit, dirty).

    A ``SNAPSHOT.json`` at the snapshot's root records the commit; runs started from the snapshot
    report it as ``git_commit`` in final.json (``harness.version.code_commit`` reads it).
    """
    root = code_root()
    commit, dirty = None, False
    files: list[str] = []
    try:
        commit = _git(root, "rev-parse", "HEAD").stdout.strip() or None
        listed = _git(root, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
        if listed.returncode == 0:
            files = sorted({f for f in listed.stdout.split("\0") if f and (root / f).is_file()})
        dirty = bool(_git(root, "status", "--porcelain").stdout.strip())
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
        atomic_write_json(
            tmp / SNAPSHOT_FILE,
            {"commit": commit, "dirty": dirty, "created_at": now_iso(), "source": str(root), "files": len(files)},
        )
        try:
            os.rename(tmp, dest)
        except OSError:  # a concurrent submitter made the same snapshot
            shutil.rmtree(tmp, ignore_errors=True)
    return dest, commit, dirty
