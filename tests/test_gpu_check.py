"""benchmarks/gpu_check.py without a GPU: it says "no GPU" and exits 0; its report and exit code; every check
run with tiny models on the CPU (--cpu-dry-run, slow). The GPU itself is checked by `make gpu-check`."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"


@pytest.fixture()
def gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_without_cuda_it_says_no_gpu_and_exits_0(gpu_check, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gpu_check.main(["--out", str(tmp_path / "report.md"), "--results", str(tmp_path)]) == 0
    assert "no GPU" in capsys.readouterr().out
    assert list(tmp_path.iterdir()) == []  # nothing checked, nothing written


def test_the_script_in_a_process_that_sees_no_gpu(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(tmp_path / "r.md"), "--results", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "CUDA_VISIBLE_DEVICES": ""},  # no GPU visible, even on a machine with one
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "gpu_check: no GPU" in proc.stdout and not (tmp_path / "r.md").exists()


def test_a_failed_check_is_reported_and_exits_1(gpu_check, tmp_path, monkeypatch):
    def broken(s, args):
        raise RuntimeError("CUDA error: an illegal memory access was encountered")

    def failing(s, args):
        return False, "FAILED: i3d_r50_dsa", {"rows": {}}

    checks = [c for c in gpu_check.CHECKS if c[0] == "env"] + [("fwd_bwd", 1, broken), ("amp", 1, failing)]
    monkeypatch.setattr(gpu_check, "CHECKS", tuple(checks) + (("latency", 10**6, broken),))
    out = tmp_path / "report.md"
    assert gpu_check.main(["--cpu-dry-run", "--out", str(out), "--budget-s", "60"]) == 1
    report = out.read_text()
    assert "**Verdict: FAILED: fwd_bwd, amp; skipped (time): latency**" in report
    assert "| fwd_bwd | FAILED |" in report and "illegal memory access" in report and "Traceback" in report
    data = json.loads(out.with_suffix(".json").read_text())
    assert [c["status"] for c in data["checks"]] == ["ok", "FAILED", "FAILED", "skipped"]


@pytest.mark.slow
def test_every_check_runs_in_the_cpu_dry_run(gpu_check, tmp_path):
    out = tmp_path / "dry.md"
    assert gpu_check.main(["--cpu-dry-run", "--out", str(out), "--results", str(tmp_path / "results")]) == 0
    data = json.loads(out.with_suffix(".json").read_text())
    assert [c["name"] for c in data["checks"]] == [c[0] for c in gpu_check.CHECKS]
    assert all(c["status"] == "ok" for c in data["checks"]), [(c["name"], c["text"]) for c in data["checks"]]
    report = out.read_text()
    assert (
        "CPU dry run" in report
        and "## Peak training memory per GPU" in report
        and "## Paired latency (latency)" in report
        and "## Paired latency (cuda_graphs)" in report
    )
    assert not (tmp_path / "results").exists()  # no measured peak recorded without a GPU
