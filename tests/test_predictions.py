"""Per-video predictions files (harness.results.predictions): round trip, dtypes and nulls, truncated and
corrupt files refused in one line naming the file, row counts checked, derived metrics; a run folder without
its predictions file still read by the store."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from harness.errors import PredictionsError, RunDirError
from harness.results.predictions import (
    META_KEY,
    build_columns,
    confusion_matrix,
    eval_predictions_path,
    per_class_accuracy,
    read_meta,
    read_predictions,
    write_predictions,
)
from harness.results.rundir import RunDir

META = {"run_id": "abc123def456", "list": "/data/test.txt", "list_sha256": "0" * 64, "num_classes": 7, "views": 6}


def _columns(n: int = 120, classes: int = 7, skipped=(3, 50), save_scores: bool = False) -> dict:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, classes, n)
    scored = np.array([i for i in range(n) if i not in skipped])
    scores = rng.dirichlet(np.ones(classes), len(scored)).astype(np.float32)
    return build_columns(
        lines=[i + 2 for i in range(n)],  # a comment line first
        paths=[f"v/{i:04d}.mp4" for i in range(n)],
        labels=labels,
        scored_index=scored,
        scores=scores,
        skipped={i: "missing" for i in skipped},
        save_scores=save_scores,
    ), scores


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    path = tmp_path_factory.mktemp("pred") / "predictions.parquet"
    columns, scores = _columns(save_scores=True)
    write_predictions(path, columns, META)
    return path, columns, scores


def test_round_trip_keeps_dtypes_nulls_and_float16_scores(written):
    path, columns, scores = written
    table, meta = read_predictions(path)
    assert meta == {**META, "version": 1, "rows": 120}
    assert json.loads(table.schema.metadata[META_KEY.encode()]) == meta
    types = {f.name: str(f.type) for f in table.schema}
    assert types == {
        "index": "int32",
        "line": "int32",
        "path": "string",
        "label": "int32",
        "pred": "int32",
        "top5": "list<element: int32>",
        "true_score": "float",
        "skipped": "bool",
        "reason": "string",
        "scores": "list<element: halffloat>",
    }
    assert table.num_rows == 120 and table.column("index").to_pylist() == list(range(120))
    for name in ("top5", "true_score", "scores"):
        assert table.column(name).null_count == 2, name
    assert table.column("reason").to_pylist()[3] == "missing" and table.column("reason").null_count == 118
    row = table.slice(3, 1).to_pylist()[0]
    assert (row["pred"], row["top5"], row["true_score"], row["skipped"], row["scores"]) == (-1, None, None, True, None)
    cols, _ = read_predictions(path, as_numpy=True)
    scored = ~cols["skipped"]
    assert cols["top5"].shape == (120, 5) and cols["top5"].dtype == np.int32
    np.testing.assert_array_equal(cols["top5"][scored], np.argsort(-scores, axis=1, kind="stable")[:, :5])
    assert (cols["pred"][scored] == scores.argmax(axis=1)).all()
    assert cols["scores"].dtype == np.float16 and np.isnan(cols["scores"][3]).all()
    np.testing.assert_array_equal(cols["scores"][scored], scores.astype(np.float16))
    labels = cols["label"][scored]
    np.testing.assert_array_equal(cols["true_score"][scored], scores[np.arange(len(labels)), labels])
    assert np.isnan(cols["true_score"][[3, 50]]).all()
    assert cols["path"][0] == "v/0000.mp4" and cols["line"][0] == 2
    # a subset of columns
    some, _ = read_predictions(path, ["pred", "label"], as_numpy=True)
    assert set(some) == {"pred", "label"}
    assert read_meta(path) == meta
    assert eval_predictions_path(path.parent / "eval-2x3-256px.json").name == "eval-2x3-256px.predictions.parquet"


def test_without_scores_the_column_is_absent_and_k_follows_the_classes(tmp_path):
    columns, _ = _columns(n=4, classes=3, skipped=())
    write_predictions(tmp_path / "p.parquet", columns, {**META, "num_classes": 3})
    table, _ = read_predictions(tmp_path / "p.parquet")
    assert "scores" not in table.column_names and {len(v) for v in table.column("top5").to_pylist()} == {3}
    with pytest.raises(PredictionsError, match=r"p\.parquet: no column scores"):
        read_predictions(tmp_path / "p.parquet", ["pred", "scores"])


def test_a_truncated_or_corrupt_file_raises_one_line_naming_it(written, tmp_path):
    path = written[0]
    data = path.read_bytes()
    for cut in (0, 1, 4, 100, len(data) // 2, len(data) - 9, len(data) - 4, len(data) - 1):
        bad = tmp_path / f"cut{cut}.parquet"
        bad.write_bytes(data[:cut])
        with pytest.raises(PredictionsError) as e:
            read_predictions(bad)
        message = str(e.value)
        assert str(bad) in message and "\n" not in message, message
        assert e.value.__cause__ is None and e.value.__suppress_context__  # no chained pyarrow traceback
        assert isinstance(e.value, RunDirError)
    flipped = bytearray(data)
    for i in range(8, len(data) // 2, 97):  # bytes of the column pages: page checksums catch them
        flipped[i] ^= 0xFF
    (tmp_path / "flipped.parquet").write_bytes(bytes(flipped))
    with pytest.raises(PredictionsError, match="flipped.parquet"):
        read_predictions(tmp_path / "flipped.parquet")
    with pytest.raises(PredictionsError, match="nowhere.parquet: no such predictions file"):
        read_predictions(tmp_path / "nowhere.parquet")


def test_a_row_count_other_than_the_manifests_is_refused_by_name(written, tmp_path):
    path = written[0]
    with pytest.raises(PredictionsError, match=r"predictions.parquet has 120 rows, its manifest lists 118: "):
        read_predictions(path, expected_rows=118)
    # a file whose metadata says otherwise than its rows; a parquet file of someone else's; a missing column
    table = pq.read_table(path)
    doc = json.loads(table.schema.metadata[META_KEY.encode()])
    short = table.slice(0, 118).replace_schema_metadata({META_KEY: json.dumps(doc)})
    pq.write_table(short, tmp_path / "short.parquet")
    with pytest.raises(PredictionsError, match=r"short.parquet has 118 rows, its metadata says 120"):
        read_predictions(tmp_path / "short.parquet")
    pq.write_table(table.replace_schema_metadata({}), tmp_path / "foreign.parquet")
    with pytest.raises(PredictionsError, match="foreign.parquet: not a predictions file"):
        read_predictions(tmp_path / "foreign.parquet")
    pq.write_table(table.drop_columns(["pred"]), tmp_path / "nopred.parquet")
    with pytest.raises(PredictionsError, match="nopred.parquet: no column pred"):
        read_predictions(tmp_path / "nopred.parquet", ["label", "pred"])


def test_build_columns_refuses_a_video_scored_twice_or_not_at_all():
    args = {"lines": [1, 2, 3], "paths": ["a", "b", "c"], "labels": [0, 1, 0], "scores": np.eye(3)[:2]}
    with pytest.raises(ValueError, match="exactly once"):
        build_columns(scored_index=[0, 0], **args)
    with pytest.raises(ValueError, match="exactly once"):
        build_columns(scored_index=[0, 1], skipped={1: "empty"}, **args)
    cols = build_columns(scored_index=[0, 2], skipped={1: "empty"}, **args)
    assert cols["pred"].tolist() == [0, -1, 1] and cols["reason"] == [None, "empty", None]


def test_write_is_atomic_and_leaves_no_temp_file(tmp_path):
    columns, _ = _columns(n=5, skipped=())
    target = tmp_path / "run" / "predictions.parquet"
    write_predictions(target, columns, META)
    write_predictions(target, columns, {**META, "views": 3})  # replaced whole
    assert read_meta(target)["views"] == 3
    assert [p.name for p in target.parent.iterdir()] == ["predictions.parquet"]


def test_per_class_accuracy_and_confusion_from_the_file(written):
    cols, meta = read_predictions(written[0], ["label", "pred", "skipped"], as_numpy=True)
    cm = confusion_matrix(cols["label"], cols["pred"], meta["num_classes"])
    assert cm.shape == (7, 7) and cm.sum() == 118  # the two skipped rows are not scored
    acc = per_class_accuracy(cols["label"], cols["pred"], meta["num_classes"])
    scored = ~cols["skipped"]
    for c in range(7):
        mine = cols["label"][scored] == c
        assert acc[c] == pytest.approx((cols["pred"][scored][mine] == c).mean() * 100)


def test_a_run_without_its_predictions_file_is_read_by_the_store_and_a_bad_one_only_when_read(tmp_path):
    from harness.results.store import load_runs

    rd = RunDir(tmp_path / "runs" / "g" / "abc123def456").create()
    rd.write_config({"task": "train", "seed": 0, "run_id": rd.run_id, "model": {"variant": "tsm_r18_dsa"}})
    rd.write_final(
        {
            "run_id": rd.run_id,
            "task": "train",
            "status": "done",
            "test": {"top1": 50.0, "predictions": "predictions.parquet"},
        }
    )
    runs = load_runs(tmp_path / "runs")
    assert runs.loc[0, "test.top1"] == 50.0 and runs.loc[0, "status"] == "done"
    with pytest.raises(PredictionsError, match="no such predictions file"):
        read_predictions(rd.predictions_path)
    rd.predictions_path.write_bytes(b"PAR1 not really")
    runs = load_runs(tmp_path / "runs")  # the store never parses it, but sees from its ends that it is cut
    assert runs.loc[0, "test.top1"] == 50.0 and runs.loc[0, "status"] == "damaged"  # never averaged as done
    assert [m for _, m in runs.attrs["problems"] if "predictions" in m] == [
        "predictions.parquet cut or not a Parquet file (15 bytes)"
    ]
    with pytest.raises(PredictionsError, match="truncated or corrupt"):
        read_predictions(rd.predictions_path)


def test_predictions_module_imports_no_torch_and_no_pandas():
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    code = "import sys, harness.results.predictions as p; print('torch' in sys.modules, 'pandas' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout
    assert out.split() == ["False", "False"]
