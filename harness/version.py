"""Which code is running: the one reader of its commit.

``code_commit()`` is what a run records as ``git_commit`` (final.json) and what the launcher records
for the frozen code it submits (job.json). This module imports nothing from the harness: every floor
of the package may use it.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

SNAPSHOT_FILE = "SNAPSHOT.json"
"""Written by the launcher at the root of a code snapshot (a plain copy of a checkout, not a checkout):
``{"commit": str | null, "dirty": bool, "created_at": ..., "source": ..., "files": int}``."""

COMMIT_ENV = "DSA_HARNESS_COMMIT"
"""Names the commit of code that is neither a snapshot nor a git checkout (e.g. an unpacked archive)."""


def code_root() -> Path:
    """The folder holding the ``harness`` package that is running (a checkout, or a launcher snapshot)."""
    return Path(__file__).resolve().parents[1]


def code_commit(root: str | os.PathLike | None = None) -> str | None:
    """The commit of the code in ``root`` (default: the running code, :func:`code_root`), with
    ``-dirty`` appended when the code differs from it; None when nothing tells.

    1. ``root/SNAPSHOT.json`` (a launcher snapshot): the commit it was copied from;
    2. for the running code only, ``$DSA_HARNESS_COMMIT`` when set;
    3. ``root`` is a git checkout (it holds ``.git``): ``git rev-parse HEAD``, dirty when tracked files
       changed (untracked files are ignored).
    """
    where = Path(root) if root is not None else code_root()
    try:
        with open(where / SNAPSHOT_FILE, encoding="utf-8") as f:
            snap = json.load(f)
    except (OSError, ValueError):
        snap = None
    if isinstance(snap, dict):
        commit = snap.get("commit")
        return f"{commit}-dirty" if commit and snap.get("dirty") else commit
    if root is None and os.environ.get(COMMIT_ENV):
        return os.environ[COMMIT_ENV]
    if not (where / ".git").exists():
        return None
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=5)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=where,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head.stdout.strip() + ("-dirty" if dirty else "")


__all__ = ["COMMIT_ENV", "SNAPSHOT_FILE", "code_commit", "code_root"]
