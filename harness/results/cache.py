"""The results store's on-disk caches (Parquet via pyarrow; never pickle), inside the results folder:

    <root>/.cache/store.parquet     one row per run folder: what ``load_runs`` read from it, keyed by its
                                    path under <root> and its signature (size + mtime_ns of config.json,
                                    final.json, metrics.jsonl, job.json, error.json, predictions.parquet;
                                    presence of checkpoint.pt and log.txt: ``rundir.scan_run_dirs``)
    <root>/.cache/correct.parquet   per run with predictions.parquet: correct / scored per test video, as
                                    packed bits (np.packbits), keyed by the predictions file's size + mtime_ns

``<root>`` is the folder given to ``load_runs`` (``results/runs``). Both files are written atomically (temp
file + rename) and only when something changed. A cache that cannot be read (truncated, another schema, another
cache version) is rebuilt, with a one-line note on stderr; a results folder that cannot be written to is read
all the same (nothing cached, no error). A run whose files changed within :data:`RACY_NS` of being read is
not cached (a change within the clock's tick could keep its signature), so it is read again next time.

Summary encoding (``store.parquet``): meta columns ``__key``, ``__sig``, ``__problems`` (JSON list),
``__config`` (JSON list of config column names), ``__metrics`` (JSON of the run's metrics in columns); then one
column ``v:<name>`` per store column. A column whose values are all of one type (bool, int, float, str; missing
cells as nulls) is stored natively; any other column (str in one run, float in another, None values, ints out of
int64) as JSON text per cell, listed in the schema metadata (``harness.store`` -> ``{"version", "root",
"json_columns"}``), decoded on read: a warm load gives exactly the frame a cold one does.

    correct, problems = load_correct(runs)     # {run path: (correct, scored)}, [(path, message), ...]
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

import harness.results.predictions as predictions  # the one reader of prediction files (checks them)
from harness.results.rundir import CACHE_DIR, PREDICTIONS, RunDir, atomic_write_bytes

VERSION = 1
SUMMARY = "store.parquet"
CORRECT = "correct.parquet"
META_KEY = b"harness.store"
CORRECT_META_KEY = b"harness.correct"
RACY_NS = 2_000_000_000
"""A run folder whose newest file is younger than this (at reading) is not cached."""
MISSING = type("Missing", (), {"__repr__": lambda self: "MISSING"})()
"""A cell a run does not have (NaN in the frame, as ``DataFrame.from_records`` gives)."""
_META_COLS = ("__key", "__sig", "__problems", "__config", "__metrics")
_PREDICTION_COLUMNS = ["index", "label", "pred", "skipped"]


def cache_dir(root: str | os.PathLike) -> Path:
    """Where the caches of the results folder ``root`` live."""
    return Path(root) / CACHE_DIR


def note(message: str) -> None:
    print(f"results cache: {message}", file=sys.stderr)


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0][:200] if text else ''}".rstrip(": ")


def now_ns() -> int:
    return time.time_ns()


def _write_table(path: Path, table) -> bool:
    """Write ``table`` to ``path`` atomically; False (quietly) where the folder cannot be written."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    try:
        atomic_write_bytes(path, sink.getvalue().to_pybytes())
    except OSError:  # read-only results folder, full disk: read all the same, cache nothing
        return False
    return True


# ---------------------------------------------------------------------------------------------
# store.parquet


def _kind(values: list) -> str:
    """How a column is stored: ``bool`` / ``int`` / ``float`` / ``str`` natively (MISSING as null), else ``json``."""
    kinds = set()
    for v in values:
        if v is MISSING:
            continue
        t = type(v)
        if t is float:
            kinds.add("float")
        elif t is int:
            if not -(2**63) <= v < 2**63:
                return "json"
            kinds.add("int")
        elif t is str:
            kinds.add("str")
        elif t is bool:
            kinds.add("bool")
        else:
            return "json"
        if len(kinds) > 1:
            return "json"
    return kinds.pop() if kinds else "json"


def encode_summary(
    root: Path, keys: list[str], sigs: list[str], meta: dict[str, list], columns: dict[str, list]
) -> Any:
    """The summary as a pyarrow Table (see the module doc). ``meta``: the lists of the JSON meta columns."""
    import pyarrow as pa

    arrays, names, json_columns = [pa.array(keys, pa.string()), pa.array(sigs, pa.string())], ["__key", "__sig"], []
    names += ["__problems", "__config", "__metrics"]
    arrays += [pa.array(meta[k], pa.string()) for k in ("problems", "config", "metrics")]
    types = {"bool": pa.bool_(), "int": pa.int64(), "float": pa.float64(), "str": pa.string()}
    for name, values in columns.items():
        kind = _kind(values)
        if kind == "json":
            json_columns.append(name)
            cells = [None if v is MISSING else json.dumps(v) for v in values]
            arrays.append(pa.array(cells, pa.string()))
        else:
            arrays.append(pa.array([None if v is MISSING else v for v in values], types[kind]))
        names.append("v:" + name)
    doc = {"version": VERSION, "root": str(root.resolve()), "json_columns": json_columns}
    return pa.Table.from_arrays(arrays, names=names, metadata={META_KEY: json.dumps(doc)})


def write_summary(root: Path, table) -> bool:
    return _write_table(cache_dir(root) / SUMMARY, table)


class Summary:
    """A read ``store.parquet``: keys, signatures, meta columns, and the store columns decoded on demand."""

    def __init__(self, table, json_columns: set[str]):
        self.table = table
        self.keys: list[str] = table.column("__key").to_pylist()
        self.sigs: list[str] = table.column("__sig").to_pylist()
        self.json_columns = json_columns
        self.names = [n[2:] for n in table.column_names if n.startswith("v:")]

    def meta(self, name: str) -> list:
        return self.table.column("__" + name).to_pylist()

    def metrics_column(self):
        return self.table.column("__metrics")

    def column_list(self, name: str) -> list:
        """Column ``name`` as a list with MISSING for absent cells (exact values)."""
        col = self.table.column("v:" + name)
        values = col.to_pylist()
        if name in self.json_columns:
            return [MISSING if v is None else json.loads(v) for v in values]
        if col.null_count:
            return [MISSING if v is None else v for v in values]
        return values

    def frame_column(self, name: str):
        """Column ``name`` as the frame takes it: numbers as numpy arrays (NaN where absent), the rest as
        lists with NaN where absent (what :func:`frame_values` gives for the same column)."""
        col = self.table.column("v:" + name)
        t = str(col.type)
        if name not in self.json_columns and (t in ("double", "int64") or (t == "bool" and not col.null_count)):
            return col.to_numpy()  # int64 with nulls -> float64 with NaN, as pandas infers from [1, nan]
        return frame_values(self.column_list(name))


def frame_values(values: list) -> list:
    """MISSING -> NaN: the list a frame column is built from."""
    return [math.nan if v is MISSING else v for v in values]


def read_summary(root: Path) -> Summary | None:
    """The summary cache of ``root``; None when there is none, or (with a note on stderr) when it cannot be
    read or is not one this version wrote for this folder."""
    path = cache_dir(root) / SUMMARY
    if not path.exists():
        return None
    try:
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        raw = (table.schema.metadata or {}).get(META_KEY)
        if raw is None:
            raise ValueError("no harness.store metadata")
        doc = json.loads(raw)
        if doc.get("version") != VERSION:
            raise ValueError(f"cache version {doc.get('version')!r}, this harness writes {VERSION}")
        if doc.get("root") != str(root.resolve()):
            raise ValueError(f"written for {doc.get('root')}")
        missing = [c for c in _META_COLS if c not in table.column_names]
        if missing or any(str(table.column(c).type) != "string" for c in _META_COLS):
            raise ValueError(f"wrong schema (meta columns {missing or 'of another type'})")
        return Summary(table, set(doc.get("json_columns") or ()))
    except Exception as e:  # any failure: rebuild (pyarrow raises ArrowInvalid, OSError, ...)
        note(f"{path} unreadable ({_one_line(e)}); rebuilding it")
        return None


# ---------------------------------------------------------------------------------------------
# correct.parquet and load_correct


def _pack(a: np.ndarray) -> bytes:
    return np.packbits(a.astype(bool)).tobytes()


def _unpack(b: bytes, n: int) -> np.ndarray:
    return np.unpackbits(np.frombuffer(b, np.uint8), count=n).astype(bool)


def _read_correct_cache(path: Path) -> dict[str, tuple[str, int, bytes, bytes]]:
    if not path.exists():
        return {}
    try:
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        doc = json.loads((table.schema.metadata or {}).get(CORRECT_META_KEY, b"null"))
        if not isinstance(doc, dict) or doc.get("version") != VERSION:
            raise ValueError("not a correct-cache of this version")
        cols = [table.column(c).to_pylist() for c in ("key", "sig", "n", "correct", "scored")]
        return {k: (s, n, c, sc) for k, s, n, c, sc in zip(*cols)}
    except Exception as e:
        note(f"{path} unreadable ({_one_line(e)}); rebuilding it")
        return {}


def read_correct(rd: RunDir, expected_rows: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(correct, scored) of one run's predictions.parquet, in dataset index order (raises on a bad file, and on
    a row count other than ``expected_rows``: the videos its manifest lists)."""
    import pyarrow.compute as pc

    table, _meta = predictions.read_predictions(rd.predictions_path, _PREDICTION_COLUMNS, expected_rows=expected_rows)
    index = table.column("index").to_numpy(zero_copy_only=False)
    n = len(index)
    order = np.argsort(index, kind="stable")
    if not np.array_equal(index[order], np.arange(n)):
        raise ValueError(f"column index is not 0..{n - 1} (one row per listed video)")
    label = pc.fill_null(table.column("label"), -2).to_numpy(zero_copy_only=False)
    pred = pc.fill_null(table.column("pred"), -1).to_numpy(zero_copy_only=False)
    skipped = pc.fill_null(table.column("skipped"), True).to_numpy(zero_copy_only=False).astype(bool)
    return (pred == label)[order], ~skipped[order]


def load_correct(runs, root: str | os.PathLike | None = None) -> tuple[dict, list[tuple[str, str]]]:
    """Per run of ``runs`` (a :func:`harness.results.store.load_runs` frame) with a predictions.parquet:
    ``{run path: (correct, scored)}``, two bool arrays over the dataset's index order (correct = pred ==
    label; scored = not skipped), and ``problems``: ``[(run path, one-line message naming the file), ...]``
    for predictions files that cannot be read (the run is then absent from the dict, as is a run without
    predictions: the caller says "no predictions"). Cached in ``<root>/.cache/correct.parquet`` (``root``:
    the folder ``runs`` was loaded from, ``runs.attrs["root"]``; no on-disk cache without one) by the file's
    size + mtime_ns: a warm call reads no predictions file. A file whose row count differs from the run's
    manifest (``manifest.test.rows``) is refused by name, like an unreadable one."""
    root = Path(root) if root is not None else (Path(runs.attrs["root"]) if runs.attrs.get("root") else None)
    cache_path = cache_dir(root) / CORRECT if root is not None else None
    cached = _read_correct_cache(cache_path) if cache_path is not None else {}
    now = now_ns()
    found, todo, changed = _look_up_correct(runs, root, cached)
    for (at, _rd, _rows, key, sig, mtime), (arrays, message) in zip(todo, _read_correct_files(todo)):
        found[at] = (found[at][0], arrays, message)
        if now - mtime >= RACY_NS:
            cached[key] = (
                (sig, -1, message.encode(), b"")
                if arrays is None
                else (sig, len(arrays[0]), _pack(arrays[0]), _pack(arrays[1]))
            )
            changed = True
    out = {path: arrays for path, arrays, _ in found if arrays is not None}
    problems = [(path, message) for path, arrays, message in found if arrays is None]
    if changed and cache_path is not None:
        _write_correct_cache(cache_path, cached)
    return out, problems


def _look_up_correct(runs, root: Path | None, cached: dict) -> tuple[list, list, bool]:
    """Each run of ``runs`` with a predictions file, in order, as ``(path, arrays or None, problem or None)``:
    from ``cached`` (the correct-cache's entries, by the run's path under ``root``) when the file's signature is
    unchanged, else a placeholder with a task to read it, ``(position, RunDir, manifest rows, key, signature,
    mtime_ns)``. Returns (found, tasks, whether ``cached`` changed: entries of runs without the file dropped)."""
    prefix = str(root) + os.sep if root is not None else None
    listed = runs["manifest.test.rows"] if "manifest.test.rows" in runs.columns else [None] * len(runs)
    found: list = []  # per run, in order: (path, arrays or None, problem message or None)
    todo: list = []  # files to read: (position in found, RunDir, rows, key, sig, mtime_ns)
    changed = False
    for path, rows in zip(runs["path"], listed):
        rd = RunDir(path)
        rows = None if rows is None or (isinstance(rows, float) and np.isnan(rows)) else int(rows)
        key = path[len(prefix) :] if prefix and path.startswith(prefix) else str(Path(path).resolve())
        st = rd.predictions_signature()
        if st is None:
            changed |= cached.pop(key, None) is not None
            continue
        sig = f"{st[1]}:{st[0]}:{rows}"  # the manifest's count too: a file checked against another count is read again
        hit = cached.get(key)
        if hit is not None and hit[0] == sig:
            if hit[1] < 0:  # a file found unreadable, unchanged since: its message
                found.append((path, None, hit[2].decode()))
            else:
                found.append((path, (_unpack(hit[2], hit[1]), _unpack(hit[3], hit[1])), None))
            continue
        todo.append((len(found), rd, rows, key, sig, st[0]))
        found.append((path, None, None))
    return found, todo, changed


def _read_correct_files(todo: list) -> list:
    """``(arrays, None)`` or ``(None, problem message)`` per task of :func:`_look_up_correct`, in order."""

    def read(task):
        try:
            return read_correct(task[1], task[2]), None
        except Exception as e:  # pyarrow's errors (ArrowInvalid, ...), OSError, missing columns, bad index
            return None, f"{PREDICTIONS} unreadable: {_one_line(e)}"

    # Parquet reading releases the GIL: a few threads read a cold cache's files side by side
    workers = min(4, os.cpu_count() or 1)
    if len(todo) > 1 and workers > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(workers) as pool:
            return list(pool.map(read, todo))
    return [read(task) for task in todo]


def _write_correct_cache(cache_path: Path, cached: dict) -> None:
    """Write the correct-cache's entries ``{key: (sig, n, correct bits, scored bits)}`` to ``cache_path``."""
    import pyarrow as pa

    keys = list(cached)
    cols = list(zip(*(cached[k] for k in keys))) or [(), (), (), ()]
    table = pa.Table.from_arrays(
        [
            pa.array(keys, pa.string()),
            pa.array(cols[0], pa.string()),
            pa.array(cols[1], pa.int64()),
            pa.array(cols[2], pa.binary()),
            pa.array(cols[3], pa.binary()),
        ],
        names=["key", "sig", "n", "correct", "scored"],
        metadata={CORRECT_META_KEY: json.dumps({"version": VERSION})},
    )
    _write_table(cache_path, table)


__all__ = ["CORRECT", "RACY_NS", "SUMMARY", "cache_dir", "load_correct", "read_correct"]
