"""Per-video predictions of a test: the one reader and writer of ``predictions.parquet`` files.

A training run's test writes ``predictions.parquet`` in its run folder (``RunDir.predictions_path``);
``dsa-harness eval`` writes ``eval-<...>.predictions.parquet`` beside its ``eval-<...>.json`` (same stem,
:func:`eval_predictions_path`). One row per *listed* test video, in list order (CONTRACTS.md, "Per-video
predictions"):

    index       int32          0-based position in the list
    line        int32          1-based line number in the list file
    path        string         the video as listed (relative to data.root when the list gives it so)
    label       int32
    pred        int32          top-1 class; -1 where skipped
    top5        list<int32>    the k = min(5, classes) best classes, best first; null where skipped
    true_score  float32        view-averaged softmax score of the true class; null where skipped
    skipped     bool           an unreadable video (data.on_error=skip): a row, never dropped
    reason      string         why it was skipped (missing | empty | undecodable | no frames); null otherwise
    scores      list<float16>  optional (eval.save_scores): the full view-averaged score vector

Schema metadata ``harness.predictions``: JSON ``{"version": 1, "run_id", "list", "list_sha256" (full hex),
"rows", "num_classes", "views"}``. A reader refuses (:class:`PredictionsError`, one line naming the file) a
missing, truncated or corrupt file, a missing column and a row count other than the metadata's or the
caller's. Per-class accuracy and the confusion matrix are derived from the columns on demand (the engine's
mean class accuracy uses the same functions).

This module imports numpy and pyarrow (on first use), and of the harness only ``harness.errors`` and
``harness.results.rundir``.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import PredictionsError
from harness.results.rundir import atomic_write_bytes

META_KEY = "harness.predictions"
VERSION = 1
REQUIRED = ("index", "line", "path", "label", "pred", "top5", "true_score", "skipped", "reason")
OPTIONAL = ("scores",)
COLUMNS = REQUIRED + OPTIONAL
META_FIELDS = ("version", "run_id", "list", "list_sha256", "rows", "num_classes", "views")
EVAL_SUFFIX = ".predictions.parquet"


def eval_predictions_path(json_path: str | os.PathLike) -> Path:
    """``eval-2x3.json`` -> ``eval-2x3.predictions.parquet`` (same folder, same stem)."""
    p = Path(json_path)
    return p.with_name(p.stem + EVAL_SUFFIX)


def file_sha256(path: str | os.PathLike) -> str:
    """Full hex SHA-256 of a file's bytes (a list file: cheap)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# ---------------------------------------------------------------------------------------------
# columns
def build_columns(
    *,
    lines,
    paths,
    labels,
    scored_index,
    scores,
    skipped: dict[int, str] | None = None,
    save_scores: bool = False,
) -> dict[str, Any]:
    """The columns of a predictions file from a test's arrays: ``lines``, ``paths``, ``labels`` of every
    listed video (list order); ``scored_index`` (M,) the list positions scored and ``scores`` (M, C) their
    view-averaged softmax scores; ``skipped`` {list position: reason} of the videos left out as unreadable.
    Every listed video must be scored or skipped, exactly once (ValueError otherwise: a bug)."""
    labels = np.asarray(labels, dtype=np.int32)
    n = len(labels)
    if not (len(lines) == len(paths) == n):
        raise ValueError(f"lines ({len(lines)}), paths ({len(paths)}) and labels ({n}) differ in length")
    scored_index = np.asarray(scored_index, dtype=np.int64)
    scores = np.asarray(scores, dtype=np.float32)
    skipped = dict(skipped or {})
    if scores.ndim != 2 or len(scores) != len(scored_index):
        raise ValueError(f"scores {scores.shape} do not match {len(scored_index)} scored videos")
    covered = np.zeros(n, dtype=np.int64)
    np.add.at(covered, scored_index, 1)
    for i in skipped:
        covered[i] += 1
    if (covered != 1).any():
        bad = np.flatnonzero(covered != 1)
        raise ValueError(f"{len(bad)} of {n} listed videos are not scored or skipped exactly once (first: {bad[0]})")
    k = min(5, scores.shape[1]) if scores.size else 0
    pred = np.full(n, -1, dtype=np.int32)
    top5 = np.full((n, k), -1, dtype=np.int32)
    true_score = np.full(n, np.nan, dtype=np.float32)
    if len(scored_index):
        order = np.argsort(-scores, axis=1, kind="stable")  # ties broken by class index, as topk_accuracy
        pred[scored_index] = order[:, 0]
        top5[scored_index] = order[:, :k]
        true_score[scored_index] = scores[np.arange(len(scored_index)), labels[scored_index]]
    is_skipped = np.zeros(n, dtype=bool)
    is_skipped[list(skipped)] = True
    cols: dict[str, Any] = {
        "index": np.arange(n, dtype=np.int32),
        "line": np.asarray(lines, dtype=np.int32),
        "path": [str(p) for p in paths],
        "label": labels,
        "pred": pred,
        "top5": [None if is_skipped[i] else top5[i].tolist() for i in range(n)],
        "true_score": [None if is_skipped[i] else float(true_score[i]) for i in range(n)],
        "skipped": is_skipped,
        "reason": [skipped.get(i) for i in range(n)],
    }
    if save_scores:
        full = np.zeros((n, scores.shape[1]), dtype=np.float16)
        full[scored_index] = scores.astype(np.float16)
        cols["scores"] = [None if is_skipped[i] else full[i] for i in range(n)]
    return cols


def _schema(with_scores: bool):
    import pyarrow as pa

    fields = [
        pa.field("index", pa.int32(), nullable=False),
        pa.field("line", pa.int32(), nullable=False),
        pa.field("path", pa.string(), nullable=False),
        pa.field("label", pa.int32(), nullable=False),
        pa.field("pred", pa.int32(), nullable=False),
        pa.field("top5", pa.list_(pa.int32())),
        pa.field("true_score", pa.float32()),
        pa.field("skipped", pa.bool_(), nullable=False),
        pa.field("reason", pa.string()),
    ]
    if with_scores:
        fields.append(pa.field("scores", pa.list_(pa.float16())))
    return pa.schema(fields)


def write_predictions(path: str | os.PathLike, columns: dict, meta: dict) -> Path:
    """Write ``columns`` (:func:`build_columns`; the required ones, ``scores`` optional) with ``meta`` (the
    metadata fields but ``version`` and ``rows``, which are filled in) to ``path`` atomically (temp file in
    the same folder, fsync, rename: a reader sees the old file or the whole new one). Returns the path."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        raise ValueError(f"predictions for {path}: missing column(s) {', '.join(missing)}")
    with_scores = columns.get("scores") is not None
    schema = _schema(with_scores)
    arrays = []
    for field in schema:
        values = columns[field.name]
        if field.name == "scores":
            values = [None if v is None else np.asarray(v, dtype=np.float16) for v in values]
            arrays.append(pa.array(values, type=field.type))
        else:
            arrays.append(pa.array(values.tolist() if isinstance(values, np.ndarray) else list(values), field.type))
    rows = len(arrays[0])
    if any(len(a) != rows for a in arrays):
        raise ValueError(f"predictions for {path}: columns of unequal length")
    doc = {"version": VERSION, **{k: v for k, v in meta.items() if k != "version"}, "rows": rows}
    table = pa.Table.from_arrays(arrays, schema=schema.with_metadata({META_KEY: json.dumps(doc, sort_keys=True)}))
    buf = io.BytesIO()
    pq.write_table(table, buf, write_page_checksum=True)
    atomic_write_bytes(path, buf.getvalue())
    return path


# ---------------------------------------------------------------------------------------------
# reading
def read_meta(path: str | os.PathLike) -> dict:
    """The metadata of a predictions file (footer only; PredictionsError where unreadable)."""
    pf, meta = _open(Path(path))
    pf.close()
    return meta


def _open(path: Path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not path.is_file():
        raise PredictionsError(f"{path}: no such predictions file")
    try:
        pf = pq.ParquetFile(path, page_checksum_verification=True)
        raw = (pf.schema_arrow.metadata or {}).get(META_KEY.encode())
    except (pa.ArrowException, OSError, ValueError) as e:
        raise PredictionsError(f"{path}: not a readable predictions file (truncated or corrupt: {_first(e)})") from None
    try:
        return pf, _meta(path, raw)
    except PredictionsError:
        pf.close()
        raise


def _meta(path: Path, raw: bytes | None) -> dict:
    if raw is None:
        raise PredictionsError(f"{path}: not a predictions file of this harness (no {META_KEY} metadata)")
    try:
        meta = json.loads(raw.decode("utf-8"))
        if not isinstance(meta, dict) or not isinstance(meta.get("rows"), int):
            raise ValueError("not an object with an integer 'rows'")
    except (ValueError, UnicodeDecodeError) as e:
        raise PredictionsError(f"{path}: unreadable {META_KEY} metadata ({_first(e)})") from None
    if meta.get("version") != VERSION:
        raise PredictionsError(f"{path}: predictions version {meta.get('version')!r}, this harness reads {VERSION}")
    return meta


def _first(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


def read_predictions(
    path: str | os.PathLike,
    columns: list[str] | tuple[str, ...] | None = None,
    *,
    expected_rows: int | None = None,
    as_numpy: bool = False,
):
    """``(table, meta)`` of a predictions file: a ``pyarrow.Table`` of ``columns`` (None: every column in the
    file), or with ``as_numpy`` a dict of numpy arrays (``top5``: int32 (N, k), -1 where skipped;
    ``true_score``: float32, NaN where skipped; ``scores``: float16 (N, C), NaN where skipped; ``path`` and
    ``reason``: object arrays, ``reason`` None where not skipped). ``meta``: the ``harness.predictions``
    metadata. Raises PredictionsError (one line naming the file) for a missing, truncated or corrupt file,
    a missing column, or a row count other than the metadata's or ``expected_rows``."""

    path = Path(path)
    pf, meta = _open(path)
    with pf:
        table = _read(pf, path, meta, columns, expected_rows)
    if not as_numpy:
        return table, meta
    return {name: _to_numpy(table.column(name), name, meta) for name in table.column_names}, meta


def _read(pf, path: Path, meta: dict, columns, expected_rows: int | None):
    import pyarrow as pa

    names = pf.schema_arrow.names
    wanted = list(columns) if columns is not None else list(names)
    missing = [c for c in wanted if c not in names]
    if missing:
        raise PredictionsError(f"{path}: no column {', '.join(missing)} (it has {', '.join(names)})")
    rows = pf.metadata.num_rows
    for what, n in (("its metadata says", meta["rows"]), ("expected", expected_rows)):
        if n is not None and rows != n:
            listed = f"its manifest lists {n}" if what == "expected" else f"{what} {n}"
            raise PredictionsError(f"{path} has {rows} rows, {listed}: rewrite it (evaluate the run again)")
    try:
        table = pf.read(columns=wanted)
    except (pa.ArrowException, OSError, ValueError) as e:
        raise PredictionsError(f"{path}: not a readable predictions file (truncated or corrupt: {_first(e)})") from None
    if table.num_rows != rows:
        raise PredictionsError(f"{path} has {table.num_rows} readable rows, its footer says {rows}: corrupt")
    return table


def _to_numpy(col, name: str, meta: dict) -> np.ndarray:
    if name in ("top5", "scores"):
        values = col.to_pylist()
        width = max((len(v) for v in values if v is not None), default=0)
        dtype, fill = (np.int32, -1) if name == "top5" else (np.float16, np.nan)
        out = np.full((len(values), width), fill, dtype=dtype)
        for i, v in enumerate(values):
            if v is not None:
                out[i, : len(v)] = v
        return out
    if name == "true_score":
        return col.to_numpy(zero_copy_only=False).astype(np.float32)  # nulls -> NaN
    if name in ("path", "reason"):
        return np.array(col.to_pylist(), dtype=object)
    return col.to_numpy(zero_copy_only=False)


# ---------------------------------------------------------------------------------------------
# derived metrics
def _scored(labels, pred) -> tuple[np.ndarray, np.ndarray]:
    labels, pred = np.asarray(labels, dtype=np.int64), np.asarray(pred, dtype=np.int64)
    keep = pred >= 0  # skipped rows (pred -1) are not scored
    return labels[keep], pred[keep]


def confusion_matrix(labels, pred, num_classes: int) -> np.ndarray:
    """(num_classes, num_classes) counts; row = true class, column = predicted class. Rows with
    ``pred`` -1 (skipped videos) are left out."""
    labels, pred = _scored(labels, pred)
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (labels, pred), 1)
    return cm


def per_class_accuracy(labels, pred, num_classes: int) -> np.ndarray:
    """Top-1 accuracy (%) of each class over its scored videos, NaN for a class without any (skipped
    rows, ``pred`` -1, are left out). Its NaN-mean is final.json's ``mean_class_acc``."""
    cm = confusion_matrix(labels, pred, num_classes)
    support = cm.sum(axis=1)
    return np.where(support > 0, np.diag(cm) / np.maximum(support, 1) * 100, np.nan)


__all__ = [
    "COLUMNS",
    "META_KEY",
    "OPTIONAL",
    "REQUIRED",
    "VERSION",
    "PredictionsError",
    "build_columns",
    "confusion_matrix",
    "eval_predictions_path",
    "file_sha256",
    "per_class_accuracy",
    "read_meta",
    "read_predictions",
    "write_predictions",
]
