"""The results store: run directories written through RunDir -> one DataFrame row per run."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pandas as pd
import pytest

from harness.results import store
from harness.results.cache import load_correct
from harness.results.rundir import RunDir, iter_run_dirs
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


def test_reloading_sees_changed_new_and_removed_runs_and_writes_only_its_cache(runs_root):
    first = load_runs(runs_root)
    before = _files(runs_root)
    pd.testing.assert_frame_equal(first, load_runs(runs_root))
    after = _files(runs_root)
    assert set(after) - set(before) == set() and {".cache/store.parquet"} <= set(after)
    # reading leaves the run folders as they were: it writes its cache only
    assert {k: v for k, v in after.items() if not k.startswith(".cache/")} == {
        k: v for k, v in before.items() if not k.startswith(".cache/")
    }
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
    assert runs.empty and list(runs.columns) == BASE_COLUMNS and runs.attrs["problems"] == ()


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


# ------------------------------------------------------------------------------------------------
# the summary cache (<root>/.cache/store.parquet) and load_correct


def _age(root, seconds: float = 60.0) -> None:
    """Date every file back, as if written a while ago (a file changed within RACY_NS is never cached)."""
    t = time.time() - seconds
    for p in root.rglob("*"):
        if p.is_file() and ".cache" not in p.parts:
            os.utime(p, (t, t))


def _add_odd_columns(root) -> None:
    """Columns of mixed types across runs: str in one run, float in another; None; ints past int64; bools."""
    for i, (alpha, extra) in enumerate(
        [("wide", {"flag": True, "big": 2**70, "maybe": None}), (0.5, {"flag": False, "maybe": "x"}), (3, {})]
    ):
        rd = RunDir(root / "odd" / f"odd{i}").create()
        _config(rd, seed=i, alpha=alpha)
        _final(rd, 60.0 + i, extra=extra)


def _count_reads(monkeypatch) -> list:
    reads = []
    real = store._read_run
    monkeypatch.setattr(store, "_read_run", lambda rd: reads.append(rd.run_id) or real(rd))
    return reads


def _same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    """The same frame; their store signatures equal too unless one was read while a folder was just changed
    (then it has none: it is never taken for an unchanged one)."""
    pd.testing.assert_frame_equal(a, b)
    drop = lambda attrs: {k: v for k, v in attrs.items() if k != "signature"}  # noqa: E731
    assert list(a.columns) == list(b.columns) and drop(a.attrs) == drop(b.attrs)
    sa, sb = a.attrs.get("signature"), b.attrs.get("signature")
    assert sa == sb or sa is None or sb is None


def test_warm_load_is_exactly_the_cold_one(runs_root, monkeypatch):
    _add_odd_columns(runs_root)
    _age(runs_root)
    cold = load_runs(runs_root, cache=False)
    assert not (runs_root / ".cache").exists()  # cache=False writes nothing
    assert cold.set_index("run_id").loc["odd0", "model.alpha"] == "wide" and cold["model.alpha"].dtype == object
    _same(load_runs(runs_root), cold)  # builds the cache
    reads = _count_reads(monkeypatch)
    warm = load_runs(runs_root)
    assert reads == []  # nothing changed: every row from the cache
    _same(warm, cold)
    assert load_metrics(warm).equals(load_metrics(cold))
    assert list(iter_run_dirs(runs_root)) and all(".cache" not in rd.path.parts for rd in iter_run_dirs(runs_root))


def test_cache_refreshes_changed_new_and_removed_runs(runs_root, monkeypatch):
    _add_odd_columns(runs_root)
    _age(runs_root)
    load_runs(runs_root)
    rd = RunDir(runs_root / "g" / "running")  # the run finishes between two loads
    _epochs(rd, 1)
    _final(rd, 55.0)
    rd.write_job({"state": "finished", "attempts": 1})
    _config(RunDir(runs_root / "g" / "new").create(), seed=11)
    shutil.rmtree(runs_root / "g" / "pending")
    shutil.rmtree(runs_root / "odd" / "odd0")  # the only run with a str alpha and a big int: columns change
    reads = _count_reads(monkeypatch)
    warm = load_runs(runs_root)
    assert sorted(reads) == ["new", "running"]  # only what changed is read again
    _same(warm, load_runs(runs_root, cache=False))
    row = warm.set_index("run_id")
    assert row.loc["running", "status"] == "done" and row.loc["running", "test.top1"] == 55.0
    assert "pending" not in row.index and row.loc["new", "status"] == "pending" and "extra.big" not in row.columns
    assert warm["model.alpha"].dtype == float
    _age(runs_root)
    load_runs(runs_root)
    reads.clear()
    _same(load_runs(runs_root), warm)
    assert reads == []


def test_a_file_changed_just_now_is_read_again(runs_root, monkeypatch):
    load_runs(runs_root)  # every file is younger than RACY_NS: nothing is trusted from the cache
    reads = _count_reads(monkeypatch)
    load_runs(runs_root)
    assert len(reads) == 13


@pytest.mark.parametrize(
    "damage",
    ["truncate", "garbage", "version", "schema", "root"],
)
def test_a_bad_cache_is_rebuilt_with_a_note(runs_root, capsys, damage):
    import pyarrow as pa
    import pyarrow.parquet as pq

    _age(runs_root)
    cold = load_runs(runs_root, cache=False)
    load_runs(runs_root)
    path = runs_root / ".cache" / "store.parquet"
    data = path.read_bytes()
    table = pq.read_table(path)
    if damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        path.write_bytes(b"not parquet at all")
    elif damage in ("version", "root"):
        doc = json.loads(table.schema.metadata[b"harness.store"])
        doc["version" if damage == "version" else "root"] = 99 if damage == "version" else "/elsewhere"
        pq.write_table(table.replace_schema_metadata({b"harness.store": json.dumps(doc)}), path)
    else:
        pq.write_table(pa.table({"x": [1, 2]}), path)
    capsys.readouterr()
    _same(load_runs(runs_root), cold)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "store.parquet" in err and "rebuilding" in err
    _same(load_runs(runs_root), cold)  # rebuilt: read quietly
    assert capsys.readouterr().err == ""


def test_a_results_folder_that_cannot_be_written_still_loads(runs_root, monkeypatch, capsys):
    from harness.results import cache

    _age(runs_root)
    cold = load_runs(runs_root, cache=False)

    def refuse(path, data):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(cache, "atomic_write_bytes", refuse)
    _same(load_runs(runs_root), cold)
    assert not (runs_root / ".cache" / "store.parquet").exists() and capsys.readouterr().err == ""
    monkeypatch.undo()
    if os.geteuid() != 0:  # root writes anywhere: the mode test means something only for others
        for p in [runs_root, *runs_root.rglob("*")]:
            if p.is_dir():
                p.chmod(0o555)
        try:
            _same(load_runs(runs_root), cold)
            assert not (runs_root / ".cache").exists()
        finally:
            for p in [runs_root, *runs_root.rglob("*")]:
                if p.is_dir():
                    p.chmod(0o755)


def _predictions(rd: RunDir, label, pred, skipped) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    n = len(label)
    order = list(range(n))[::-1]  # rows need not come in index order
    table = pa.table(
        {
            "index": pa.array([order[i] for i in range(n)], pa.int32()),
            "line": pa.array([order[i] + 1 for i in range(n)], pa.int32()),
            "path": [f"v{order[i]}.mp4" for i in range(n)],
            "label": pa.array([label[order[i]] for i in range(n)], pa.int32()),
            "pred": pa.array([pred[order[i]] for i in range(n)], pa.int32()),
            "top5": pa.array([None] * n, pa.list_(pa.int32())),
            "true_score": pa.array([None] * n, pa.float32()),
            "skipped": pa.array([skipped[order[i]] for i in range(n)]),
            "reason": pa.array([None] * n, pa.string()),
        }
    ).replace_schema_metadata({"harness.predictions": json.dumps({"version": 1, "rows": n})})
    pq.write_table(table, rd.path / "predictions.parquet")


def test_load_correct_reads_predictions_once_and_names_bad_files(runs_root, monkeypatch):
    from harness.results import cache

    done = RunDir(runs_root / "g" / "done")
    label, pred, skipped = [0, 1, 2, 3, 4], [0, 2, 2, -1, 4], [False, False, False, True, False]
    _predictions(done, label, pred, skipped)
    torn = RunDir(runs_root / "g" / "killed")
    _predictions(torn, label, pred, skipped)
    data = torn.predictions_path.read_bytes()
    torn.predictions_path.write_bytes(data[: len(data) // 2])
    _age(runs_root)
    runs = load_runs(runs_root)
    correct, problems = load_correct(runs)
    assert set(correct) == {str(done.path)}  # no predictions file: absent, not a problem
    c, scored = correct[str(done.path)]
    assert c.tolist() == [True, False, True, False, True] and scored.tolist() == [True, True, True, False, True]
    assert len(problems) == 1 and problems[0][0] == str(torn.path)
    assert "predictions.parquet" in problems[0][1] and "\n" not in problems[0][1]
    assert (runs_root / ".cache" / "correct.parquet").exists()

    def no_reading(*args, **kwargs):
        raise AssertionError("read a predictions file")

    import harness.results.predictions as predictions

    monkeypatch.setattr(predictions, "read_predictions", no_reading)
    again, problems2 = load_correct(runs)  # warm: no Parquet file of a run is read
    assert again[str(done.path)][0].tolist() == c.tolist() and again[str(done.path)][1].tolist() == scored.tolist()
    assert problems2 == problems  # the torn file's message is cached with its signature too
    monkeypatch.undo()
    _predictions(done, label, [0, 1, 2, -1, 4], skipped)  # changed: read again
    os.utime(done.predictions_path, (time.time() - 60, time.time() - 60))
    assert load_correct(runs)[0][str(done.path)][0].tolist() == [True, True, True, False, True]
    assert cache.RACY_NS > 0


def test_a_report_from_the_warm_cache_is_byte_identical_to_a_cold_one(tmp_path, monkeypatch):
    import datetime as dt

    from harness.report import index, write_report

    class Frozen(dt.datetime):
        @classmethod
        def now(cls, tz=None):
            return dt.datetime(2026, 12, 1, 12, 0, tzinfo=tz)

    monkeypatch.setattr(index, "datetime", Frozen)
    root = tmp_path / "results"
    for variant, top1 in (("i3d_r50", [70.0, 71.5]), ("i3d_r50_dsa", [75.25, 76.0])):
        for seed, v in enumerate(top1):
            rd = RunDir(root / "runs" / "main" / f"{variant}-{seed}").create()
            _config(rd, seed=seed)
            rd.write_config({**rd.read_config(), "grid": "main", "model": {"variant": variant}})
            _epochs(rd, 3)
            _final(rd, v, profile={"gflops_per_view": 10.5 + seed, "params_m": 24.0, "latency_ms": 3.0 + seed})
    _add_odd_columns(root / "runs")
    exp = tmp_path / "experiments"
    exp.mkdir()
    (exp / "main.yaml").write_text(
        "name: main\npaper_table: T1\nreport:\n  rows: [model.variant]\n"
        "  metrics: [test.top1, profile.gflops_per_view]\n"
    )
    _age(root)

    def report(out):
        write_report(root, out, experiments_dir=exp)
        files = sorted(p for p in out.rglob("*") if p.is_file() and ".cache" not in p.relative_to(out).parts)
        return {str(p.relative_to(out)): p.read_bytes() for p in files}

    cold = report(tmp_path / "cold")  # no cache: every run read, the cache written
    assert (root / "runs" / ".cache" / "store.parquet").exists()
    reads = _count_reads(monkeypatch)
    warm = report(tmp_path / "warm")
    assert reads == [] and any(k.endswith(".png") for k in warm) and any(k.endswith(".svg") for k in warm)
    assert "figures/main_training.png" in warm, list(warm)
    assert list(warm) == list(cold) and all(warm[k] == cold[k] for k in cold), [k for k in cold if warm[k] != cold[k]]
    # again into the same folder: unchanged figures are not drawn again (their inputs' digests are recorded in
    # reports/.cache/figures.json), and the report is the same, byte for byte
    drawn = []
    real_draw = index._draw
    monkeypatch.setattr(index, "_draw", lambda fn, *a: drawn.append(fn) or real_draw(fn, *a))
    assert report(tmp_path / "warm") == cold and drawn == []
    (tmp_path / "warm" / "figures" / "main_training.svg").unlink()  # a figure gone: drawn again
    rd = RunDir(root / "runs" / "main" / "i3d_r50-0")
    final = rd.read_final()
    final["test"]["top1"] = 10.0  # a table figure's input changed: drawn again
    rd.write_final(final)
    again = report(tmp_path / "warm")
    assert sorted(drawn) == ["scatter_tradeoff", "training_curves"] and again["figures/main_training.svg"]
    assert again["figures/main_training.png"] == cold["figures/main_training.png"]


@pytest.mark.slow
def test_store_scale_benchmark_runs_at_a_small_size(tmp_path, monkeypatch):
    """benchmarks/store_scale.py end to end at 200 runs (about 7 s): every timing taken, the report checked."""
    import sys

    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).resolve().parents[1]))
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from benchmarks import store_scale

    record = store_scale.main(["--runs", "200", "--status-runs", "50", "--out", str(tmp_path / "s.json")])
    assert record["runs"] == 200 and len(record["timings"]) == 10
    assert json.loads((tmp_path / "s.json").read_text())["cache_files_bytes"]["store.parquet"] > 0


def test_load_correct_refuses_predictions_whose_rows_differ_from_the_manifest(runs_root):
    from harness.results.cache import load_correct

    done = RunDir(runs_root / "g" / "done")
    _predictions(done, [0, 1, 2, 3, 4], [0, 1, 2, 3, 4], [False] * 5)
    final = done.read_final()
    final["manifest"] = {"test": {"rows": 6}}  # the run's test list has 6 videos, the file 5 rows
    done.write_final(final)
    runs = load_runs(runs_root)
    correct, problems = load_correct(runs)
    assert str(done.path) not in correct
    assert problems == [(str(done.path), problems[0][1])] and "has 5 rows, its manifest lists 6" in problems[0][1]
    final["manifest"] = {"test": {"rows": 5}}
    done.write_final(final)
    correct, problems = load_correct(load_runs(runs_root))
    assert str(done.path) in correct and problems == []


def test_the_store_signature_tells_an_unchanged_frame_from_a_changed_one(runs_root):
    _age(runs_root)
    first = load_runs(runs_root).attrs["signature"]
    assert first and load_runs(runs_root).attrs["signature"] == first
    assert load_runs(runs_root, cache=False).attrs["signature"] == first
    rd = RunDir(runs_root / "g" / "done")
    _final(rd, 12.5)  # changed just now: a folder changed as it is read gives no signature
    assert load_runs(runs_root).attrs["signature"] is None
    _age(runs_root)
    again = load_runs(runs_root).attrs["signature"]
    assert again and again != first


def _read_noting_pid(path: str):  # module level: the workers get it by name
    (Path(os.environ["PID_NOTES"]) / f"pid.{os.getpid()}").touch()
    return store._read_run(RunDir(path))


def test_many_folders_are_read_by_forked_workers_into_the_same_frame(runs_root, monkeypatch, tmp_path):
    """A cold read of many run folders (here: from 2) goes to worker processes where 2 CPUs are free, and
    gives exactly the frame of reading them here; beside another Python thread it reads here (no fork)."""
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("one CPU: the folders are read in this process")
    import threading

    _add_odd_columns(runs_root)
    _age(runs_root)
    here = load_runs(runs_root, cache=False)
    monkeypatch.setenv("PID_NOTES", str(tmp_path))
    monkeypatch.setattr(store, "_read_run_at", _read_noting_pid)
    monkeypatch.setattr(store, "PARALLEL_READ_MIN", 2)
    _same(load_runs(runs_root, cache=False), here)
    pids = {int(p.name.split(".")[1]) for p in tmp_path.glob("pid.*")}
    assert pids and os.getpid() not in pids  # read by the workers
    for p in tmp_path.glob("pid.*"):
        p.unlink()
    release = threading.Event()
    other = threading.Thread(target=release.wait)
    other.start()
    try:
        _same(load_runs(runs_root, cache=False), here)
    finally:
        release.set()
        other.join()
    assert not list(tmp_path.glob("pid.*"))  # read here
