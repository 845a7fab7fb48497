"""The results store: run directories written through RunDir -> one DataFrame row per run."""

from __future__ import annotations

import os

import pandas as pd
import pytest

from harness.results import store
from harness.results.rundir import RunDir
from harness.results.store import BASE_COLUMNS, load_metrics, load_runs, to_csv


def _config(rd: RunDir, seed: int = 0, **model) -> None:
    rd.write_config(
        {
            "task": "train",
            "grid": "g",
            "seed": seed,
            "run_id": rd.run_id,
            "model": {"variant": "i3d_r50_dsa", **model},
            "train": {"epochs": 3},
            "resources": {"gpus": 8},
            "model_resolved": {"depth": 50},
        }
    )


def _final(rd: RunDir, top1: float, **extra) -> None:
    rd.write_final(
        {
            "run_id": rd.run_id,
            "task": "train",
            "status": "done",
            "finished_at": "2026-11-24T10:00:00+00:00",
            "hardware": {"device": "cpu", "device_name": "Test CPU", "threads": 2},
            "test": {"top1": top1, "long_list": [50.0] * 20, "groups": {"order": {"top1": 60.0}}},
            "profile": {"gflops_per_view": 10.5, "unsupported_ops": {}},
            **extra,
        }
    )


def _epochs(rd: RunDir, n: int) -> None:
    for e in range(n):
        rd.append_metrics({"epoch": e, "train_loss": 2.0 - 0.5 * e, "val_top1": 40.0 + e})


@pytest.fixture
def runs_root(tmp_path):
    """One run per status case; names say what each one is."""
    root = tmp_path / "runs"
    mk = lambda name: RunDir(root / "g" / name).create()  # noqa: E731
    rd = mk("done")
    _config(rd)
    _epochs(rd, 3)
    _final(rd, 71.5, new_field={"x": 1})  # noqa: E702
    rd = mk("failed")
    _config(rd, seed=1)
    rd.write_job({"state": "failed", "attempts": 1})  # noqa: E702
    rd.write_error({"type": "RuntimeError", "message": "CUDA out of memory", "attempt": 1})
    rd = mk("running")
    _config(rd, seed=2)
    _epochs(rd, 1)
    rd.write_job({"state": "running"})  # noqa: E702
    rd = mk("pending")
    _config(rd, seed=3)  # noqa: E702
    rd = mk("queued")
    _config(rd, seed=4)
    rd.write_job({"state": "submitted"})  # noqa: E702
    rd = mk("retry")
    _config(rd, seed=5)
    rd.write_job({"state": "submitted", "attempts": 1})  # noqa: E702
    rd.write_error({"type": "RuntimeError", "message": "node failure", "attempt": 1})
    rd = mk("killed")
    _config(rd, seed=6)
    _epochs(rd, 2)  # noqa: E702
    rd = mk("interrupted")
    _config(rd, seed=7)
    rd.write_job({"state": "interrupted"})  # noqa: E702
    rd = mk("cancelled")
    _config(rd, seed=12)
    rd.write_job({"state": "cancelled", "attempts": 1})  # noqa: E702
    rd = mk("requeued")
    _config(rd, seed=13)
    rd.write_job({"state": "requeued", "attempts": 1})  # noqa: E702
    rd = mk("torn_final")
    _config(rd, seed=8)
    _epochs(rd, 3)  # noqa: E702
    rd.final_path.write_text('{"run_id": "torn_final", "test": {"top')
    rd = mk("torn_metrics")
    _config(rd, seed=9)
    _epochs(rd, 2)  # noqa: E702
    with open(rd.metrics_path, "a") as f:
        f.write('{"epoch": 2, "train_lo')
    bad = root / "g" / "bad_config"
    bad.mkdir(parents=True)
    (bad / "config.json").write_text('{"task": "tra')
    return root


def test_status_of_every_case_and_problems_reported_not_fatal(runs_root):
    runs = load_runs(runs_root)
    status = dict(zip(runs["run_id"], runs["status"]))
    # the job marker taken at its word (no scheduler); the rule: harness.results.status.run_state
    assert status == {
        "done": "done",
        "failed": "failed",
        "running": "running",
        "pending": "pending",
        "queued": "queued",
        "retry": "queued",
        "killed": "incomplete",
        "interrupted": "incomplete",
        "cancelled": "cancelled",
        "requeued": "requeued",
        "torn_final": "incomplete",
        "torn_metrics": "incomplete",
        "bad_config": "pending",
    }
    assert set(runs["status"]) <= set(store.STATUSES) and "unknown" not in store.STATUSES
    problems = {os.path.basename(p): m for p, m in runs.attrs["problems"]}
    assert set(problems) == {"torn_final", "torn_metrics", "bad_config"}
    assert "final.json" in problems["torn_final"] and "half-written" in problems["torn_final"]
    assert "metrics.jsonl" in problems["torn_metrics"] and "config.json" in problems["bad_config"]
    row = runs.set_index("run_id")
    assert row.loc["torn_metrics", "epochs_done"] == 2  # the torn line is skipped
    assert row.loc["failed", "error"] == "RuntimeError: CUDA out of memory"
    assert row.loc["bad_config", "grid"] == "g"


def test_columns_flattened_in_contract_order(runs_root):
    runs = load_runs(runs_root)
    assert list(runs.columns[: len(BASE_COLUMNS)]) == BASE_COLUMNS
    done = runs.set_index("run_id").loc["done"]
    assert done["model.variant"] == "i3d_r50_dsa" and done["train.epochs"] == 3
    assert done["test.top1"] == 71.5 and done["test.groups.order.top1"] == 60.0
    assert done["hardware.device_name"] == "Test CPU" and done["new_field.x"] == 1  # new fields: new columns
    assert done["last.val_top1"] == 42.0 and done["epochs_done"] == 3
    assert "test.long_list" not in runs.columns  # long lists stay in final.json
    assert not any(c.startswith(("resources.", "model_resolved.")) for c in runs.columns)
    cfg = runs.attrs["config_columns"]
    assert "model.variant" in cfg and "test.top1" not in cfg
    cols = list(runs.columns)
    assert max(cols.index(c) for c in cfg) < cols.index("test.top1")  # config columns, then final's


def _files(root) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_mtime_ns, p.stat().st_size) for p in root.rglob("*") if p.is_file()}


def test_reloading_sees_changed_new_and_removed_runs_and_writes_nothing(runs_root):
    first = load_runs(runs_root)
    before = _files(runs_root)
    pd.testing.assert_frame_equal(first, load_runs(runs_root))
    assert _files(runs_root) == before  # reading leaves the results folder as it was (no cache file)
    rd = RunDir(runs_root / "g" / "done")
    final = rd.read_final()
    final["test"]["top1"] = 12.25
    rd.write_final(final)
    _config(RunDir(runs_root / "g" / "new").create(), seed=11)
    import shutil

    shutil.rmtree(runs_root / "g" / "pending")
    third = load_runs(runs_root).set_index("run_id")
    assert third.loc["done", "test.top1"] == 12.25 and "pending" not in third.index and len(third) == len(first)
    assert third.loc["new", "status"] == "pending"


def test_load_metrics_long_form_and_fresh(runs_root):
    runs = load_runs(runs_root)
    curves = load_metrics(runs)
    per_run = curves.groupby("run_id").size().to_dict()
    assert per_run == {"done": 3, "running": 1, "killed": 2, "torn_final": 3, "torn_metrics": 2}
    assert {"epoch", "train_loss", "val_top1", "seed", "model.variant"} <= set(curves.columns)
    RunDir(runs_root / "g" / "running").append_metrics({"epoch": 1, "train_loss": 1.0, "val_top1": 45.0})
    assert len(load_metrics(runs[runs["run_id"] == "running"])) == 2  # appended after load_runs: seen


def test_to_csv_round_trip(runs_root, tmp_path):
    runs = load_runs(runs_root)
    path = to_csv(runs, tmp_path / "out" / "runs.csv")
    back = pd.read_csv(path)
    assert list(back.columns) == list(runs.columns) and len(back) == len(runs)
    assert back.set_index("run_id").loc["done", "test.top1"] == 71.5


def test_empty_or_missing_root(tmp_path):
    runs = load_runs(tmp_path / "nothing")
    assert runs.empty and list(runs.columns) == BASE_COLUMNS and runs.attrs["problems"] == []


@pytest.mark.parametrize(
    "text, expected, problems",
    [
        ('{"epoch": 0}\n{"epoch": 1}\n', [{"epoch": 0}, {"epoch": 1}], []),
        ('{"epoch": 0}\n\n{"epoch": 1}\n{"epo', [{"epoch": 0}, {"epoch": 1}], ["metrics.jsonl:4: torn last line"]),
        (
            '{"epoch": 0}\n{"a": 1},{"b": 2}\n{"epoch": 1}\n',
            [{"epoch": 0}, {"epoch": 1}],
            ["metrics.jsonl:2: not JSON"],
        ),
        ('{"epoch": 0}\n3\n', [{"epoch": 0}], ["metrics.jsonl:2: not a JSON object"]),
        ('{"epoch": 0}\n\udcff{"epoch": 1}\n', [{"epoch": 0}], ["metrics.jsonl:2: not UTF-8"]),
        ("", [], []),
    ],
)
def test_metrics_lines_are_read_or_named(tmp_path, text, expected, problems):
    rd = RunDir(tmp_path / "run").create()
    rd.metrics_path.write_bytes(text.encode("utf-8", "surrogateescape"))
    assert rd.scan_metrics() == (expected, problems)
    assert rd.read_metrics() == expected
