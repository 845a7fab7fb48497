"""The code base passes its own lint rules (pyproject's [tool.ruff.lint])."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_clean():
    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    if not Path(ruff).exists():
        pytest.fail("ruff is not installed (it is a dev dependency: pip install -e '.[dev]')")
    out = subprocess.run(
        [ruff, "check", "--no-cache", "harness", "tests", "benchmarks"], cwd=ROOT, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_ruff_format_clean():
    """The code is laid out by `ruff format` (pinned in pyproject's dev extra): run it before committing."""
    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    out = subprocess.run(
        [ruff, "format", "--check", "--no-cache", "harness", "tests", "benchmarks"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, "run `ruff format harness tests benchmarks`:\n" + out.stdout + out.stderr
