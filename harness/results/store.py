"""The results store: every run directory -> one row of a pandas DataFrame.

    runs = load_runs("results/runs")       # one row per run; runs.attrs["problems"] lists what was wrong
    curves = load_metrics(runs)            # one row per (run, epoch): training curves
    to_csv(runs, "runs.csv")

Columns (CONTRACTS.md, "Results store columns"): ``run_id``, ``grid``, ``task``, ``seed``, ``status``,
``path``; then bookkeeping (``epochs_done``, ``job_state``, ``error``, ``last.train_loss``,
``last.val_top1``); then the config flattened with dotted names (``model.variant``, ``data.size``, ...);
then final.json flattened (``test.top1``, ``profile.gflops_per_view``, ``hardware.device_name``, ...).
Lists longer than 8 items are left out of the table; read them from the run's final.json. Per-video
results (and the per-class accuracy and confusion matrix derived from them) are in the run's predictions
file, read through ``harness.results.predictions``, never by the store: a run without one reads as well.
Short lists of scalars are kept as JSON text. New fields in any file simply become new columns.

``status`` is the run's state read from its directory alone (``harness.results.status.run_state``
without a scheduler; the states and the rule are documented there): every state but ``unknown``, the
job marker taken at its word (``dsa-harness sweep status`` asks the scheduler too).

One row per run: folders named by the same run id (12 hex digits) in several places of the root (two grids
that asked for the same run, a grid and ``manual/``) are one run, counted once, from the folder that stands for
it (:data:`ROW_ORDER`: a done one first, then diverged, damaged, alive, ...; among equals the one finished
first, then path order); a left-out folder that is over too (the run trained twice, before one run id trained
once) is named in the problems. Folders holding another run's config (``foreign``) stay rows of their own.

Reading is tolerant: a missing or half-written file is reported in ``runs.attrs["problems"]`` (a tuple
of ``(run path, message)``) and never raises.

Cached on disk: ``load_runs`` keeps a columnar summary of what it read in ``<root>/.cache/store.parquet``
(:mod:`harness.results.cache`: layout, encoding, what a bad or unwritable cache does) and reads again only the run
folders whose signature changed (size + mtime_ns of config.json, final.json, metrics.jsonl, job.json, error.json,
predictions.parquet; presence of checkpoint.pt and log.txt) or that are new; removed folders drop out. A warm
load gives exactly the frame a cold one does (values, dtypes, column order, attrs). The cache is the only thing
reading writes into the results folder (``load_runs(root, cache=False)``: nothing). Per-video predictions are
read only on demand: :func:`harness.results.cache.load_correct`.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import threading
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm import tqdm

import harness.results.cache as cache_mod
from harness.results.cache import MISSING
from harness.results.rundir import (
    RunDir,
    about_metrics,
    atomic_write_bytes,
    is_run_id,
    metrics_signature,
    scan_run_dirs,
)
from harness.results.status import FILE_STATES, diverged_problem, run_state

STATUSES = FILE_STATES
BASE_COLUMNS = ["run_id", "grid", "task", "seed", "status", "path"]
BOOK_COLUMNS = ["epochs_done", "job_state", "error", "last.train_loss", "last.val_top1"]
_SKIP_CONFIG = ("model_resolved", "resources", "grid", "task", "seed", "run_id")
_SKIP_FINAL = ("run_id", "task", "status", "grid", "seed")
_MAX_LIST = 8


_SCALARS = (str, int, float, bool, type(None))


def flatten(obj: Any, prefix: str = "", out: dict | None = None) -> dict:
    """Nested dicts -> ``{"a.b.c": scalar}``. Lists of at most 8 scalars (or of short lists, e.g. stage
    masks) are kept as JSON text; longer lists are dropped."""
    out = {} if out is None else out
    if not isinstance(obj, dict):
        obj = {prefix[:-1]: obj} if prefix else {}
        prefix = ""
    for k, v in obj.items():
        if isinstance(v, _SCALARS):
            out[sys.intern(prefix + k)] = v  # interned: thousands of rows share one copy of each name
        elif isinstance(v, dict):
            flatten(v, f"{prefix}{k}.", out)
        elif isinstance(v, (list, tuple)):
            if len(v) <= _MAX_LIST and all(
                isinstance(x, _SCALARS) or (isinstance(x, (list, tuple)) and len(x) <= 32) for x in v
            ):
                out[sys.intern(prefix + k)] = json.dumps(v)
        else:
            out[sys.intern(prefix + k)] = v
    return out


def _columnar(records: list[dict]) -> dict[str, list]:
    """Metric records -> {name: [value per epoch]} (None where a record lacks the name): compact to keep."""
    names = dict.fromkeys(sys.intern(k) for rec in records for k in rec)
    return {k: [rec.get(k) for rec in records] for k in names}


def _read_run(rd: RunDir) -> tuple[dict, list[str], list[str], dict[str, list]]:
    """(row, config column names, problems, metrics in columns) of one run directory."""
    problems: list[str] = []
    row: dict[str, Any] = {"run_id": rd.run_id, "path": str(rd.path)}
    try:
        config = rd.read_config()
        if not isinstance(config, dict):
            raise ValueError(f"expected a JSON object, got {type(config).__name__}")
    except (OSError, ValueError):  # JSONDecodeError, UnicodeDecodeError are ValueErrors
        state = run_state(rd)  # its problems name config.json (RunDir.config_problem)
        row.update(grid=rd.path.parent.name, status=state.state)
        return row, [], list(state.problems), {}
    row["grid"] = config.get("grid") or rd.path.parent.name
    row["task"] = config.get("task")
    row["seed"] = config.get("seed")
    config_cols = flatten({k: v for k, v in config.items() if k not in _SKIP_CONFIG})
    metrics, metric_problems = rd.scan_metrics()
    problems += [f"{m}; the line is left out" for m in metric_problems]
    row["epochs_done"] = len(metrics)
    if metrics:
        for k in ("train_loss", "val_top1"):
            if k in metrics[-1]:
                row[f"last.{k}"] = metrics[-1][k]
    state = run_state(rd)
    problems += [p for p in state.problems if not (metric_problems and about_metrics(p))]  # named once
    row["status"] = state.state
    if state.job:
        row["job_state"] = state.job.get("state")
    if state.state == "failed" and state.error:
        row["error"] = f"{state.error.get('type', 'Error')}: {str(state.error.get('message', ''))[:200]}"
    if state.state == "diverged":  # over, never averaged: the report lists it under its problems
        problems.append(diverged_problem(state.final))
    final = state.final
    row.update(config_cols)
    if final is not None:
        if row["task"] == "train" and not metrics:
            problems.append("metrics.jsonl missing or empty for a finished training run")
        flatten({k: v for k, v in final.items() if k not in _SKIP_FINAL}, out=row)
    return row, list(config_cols), problems, _columnar(metrics)


PARALLEL_READ_MIN = 1000
"""Run folders to read (a cold store, many changed runs) from which :func:`_read_runs` uses worker processes:
reading is JSON parsing (CPU, under the GIL); each worker costs about a second to start (imports)."""


def _read_run_at(path: str) -> tuple[dict, list[str], list[str], dict[str, list]]:
    return _read_run(RunDir(path))


def _read_runs(rds: list[RunDir], *, desc: str, parallel_min: int | None = None) -> list[tuple]:
    """:func:`_read_run` of each folder, in order: in this process or, for ``parallel_min`` folders or more
    when 2 or more CPUs are free to use, in up to 4 forked worker processes (each starts in milliseconds,
    sharing what is imported); only while this process runs no other Python thread (one could hold a lock a
    forked child would inherit locked; tqdm's monitor aside), else here. Either way the same results;
    progress on a terminal only (disable=None), and only for slow reads."""
    parallel_min = PARALLEL_READ_MIN if parallel_min is None else parallel_min
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
    workers = min(4, cpus, max(1, len(rds) // max(parallel_min // 2, 1)))
    if len(rds) >= parallel_min and workers >= 2 and _no_other_threads():
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
            # the workers are forked here, as the folders are handed out: before the progress bar's thread
            results = pool.map(_read_run_at, [str(rd.path) for rd in rds], chunksize=max(1, len(rds) // (workers * 8)))
            return list(tqdm(results, total=len(rds), desc=desc, **_BAR))
    return [_read_run(rd) for rd in tqdm(rds, desc=desc, **_BAR)]


def _no_other_threads() -> bool:
    """No Python thread but the main one and tqdm's monitor (which only counts bars, never used by the workers)."""
    from tqdm._monitor import TMonitor

    return all(t is threading.main_thread() or isinstance(t, TMonitor) for t in threading.enumerate())


_BAR = {"unit": " runs", "leave": False, "disable": None, "delay": 1.0, "mininterval": 0.5}


class SharedTuple(tuple):
    """A tuple of immutable items that ``copy.deepcopy`` returns as it is, without walking it: pandas deep-copies
    ``df.attrs`` in every operation that derives a frame (a report makes thousands, 0.35 s of a 4 s report over
    20,000 runs when the problems and config columns were lists). What deepcopy of a plain tuple of strings
    gives anyway, the same object, minus the walk."""

    def __deepcopy__(self, memo: dict) -> SharedTuple:
        return self


# path -> (signature of metrics.jsonl, metrics in columns, or their JSON text from the cache): filled by load_runs,
# reused by load_metrics in the same process while the file is unchanged (a report reads each metrics.jsonl once)
_METRICS_READ: dict[str, tuple[Any, Any]] = {}


def load_runs(root: str | os.PathLike = "results/runs", *, cache: bool = True) -> pd.DataFrame:
    """One row per run directory under ``root`` (any depth; a run = a folder holding config.json).

    ``df.attrs["problems"]``: ``((run path, message), ...)`` (a :class:`SharedTuple`) for missing or
    half-written files (never fatal). ``df.attrs["config_columns"]``: the columns that came from config.json.
    ``df.attrs["root"]``: ``root``. ``df.attrs["signature"]``: a digest of every run folder's file signatures
    (None when a folder changed as it was read): equal digests, the same frame. With ``cache`` (the default)
    the summary cache ``<root>/.cache/store.parquet`` is read and refreshed: only run folders whose
    files changed (or that are new) are read; ``cache=False`` reads every run and writes nothing."""
    root = Path(root)
    scans = list(scan_run_dirs(root))
    summary = cache_mod.read_summary(root) if cache and scans else None
    prefix = str(root) + os.sep
    keys = [str(s.rd.path) for s in scans]
    keys = [k[len(prefix) :] if k.startswith(prefix) else k for k in keys]
    if summary is not None and summary.keys == keys and summary.sigs == [s.signature for s in scans]:
        df = _frame_from_summary(root, scans, summary)
        df.attrs["signature"] = _signature(keys, summary.sigs)
        return df
    where = {k: i for i, k in enumerate(summary.keys)} if summary is not None else {}
    now = cache_mod.now_ns()
    todo = [i for i, (s, k) in enumerate(zip(scans, keys)) if k not in where or summary.sigs[where[k]] != s.signature]
    fresh = dict(zip(todo, _read_runs([scans[i].rd for i in todo], desc=f"reading {root}")))  # position -> read
    names = dict.fromkeys(summary.names if summary is not None else ())
    for row, *_ in fresh.values():
        names.update(dict.fromkeys(row))
    cached_cols = {n: summary.column_list(n) for n in summary.names} if summary is not None else {}
    old_meta = {m: summary.meta(m) for m in ("problems", "config")} if summary is not None else {}
    old_metrics = summary.metrics_column().to_pylist() if summary is not None else None
    columns: dict[str, list] = {n: [] for n in names}
    meta: dict[str, list] = {"problems": [], "config": [], "metrics": []}
    sigs, problems, config_cols = [], [], {}
    decoded: dict[str, list] = {}
    for i, (s, key) in enumerate(zip(scans, keys)):
        path = str(s.rd.path)
        if i in fresh:
            row, cols, probs, recs = fresh[i]
            row = {**row, "run_id": MISSING, "path": MISSING}  # from the folder, never cached
            for n, values in columns.items():
                values.append(row.get(n, MISSING))
            text = json.dumps(recs, separators=(",", ":"))
            meta["problems"].append(json.dumps(probs))
            meta["config"].append(json.dumps(cols))
            meta["metrics"].append(text)
            sigs.append(s.signature if now - s.newest_ns >= cache_mod.RACY_NS else "")
            _METRICS_READ[path] = (s.metrics, recs)
        else:
            j = where[key]
            for n, values in columns.items():
                values.append(cached_cols[n][j] if n in cached_cols else MISSING)
            probs_text, cols_text = old_meta["problems"][j], old_meta["config"][j]
            probs = decoded.setdefault(probs_text, json.loads(probs_text))
            cols = decoded.setdefault(cols_text, json.loads(cols_text))
            meta["problems"].append(probs_text)
            meta["config"].append(cols_text)
            text = old_metrics[j]
            meta["metrics"].append(text)
            sigs.append(s.signature)
            _METRICS_READ[path] = (s.metrics, text)
        config_cols.update(dict.fromkeys(cols))
        problems += [(path, p) for p in probs]
    columns = {n: v for n, v in columns.items() if any(x is not MISSING for x in v)}  # removed runs' columns
    columns.pop("run_id", None)
    columns.pop("path", None)
    if cache and scans:
        cache_mod.write_summary(root, cache_mod.encode_summary(root, keys, sigs, meta, columns))
    data = {n: cache_mod.frame_values(v) for n, v in columns.items()}
    df = _assemble(root, scans, data, problems, config_cols)
    df.attrs["signature"] = _signature(keys, sigs) if all(sigs) else None
    return df


def _signature(keys: list[str], sigs: list[str]) -> str:
    """What a frame was read from, hashed: every run folder's name and file signature (equal signatures: the
    same frame), with this module's code."""
    h = hashlib.sha256(Path(__file__).read_bytes())
    for key, sig in zip(keys, sigs):
        h.update(f"{key}\0{sig}\n".encode())
    return h.hexdigest()


ROW_ORDER = ("done", "diverged", "damaged", "running", "requeued", "queued", "incomplete", "failed", "cancelled")
"""Which of a run id's folders is its row: the first state in this order (then the earliest ``finished_at``, then
path order); any other state comes last."""


def _one_row_per_run(df: pd.DataFrame) -> tuple[pd.DataFrame, list[tuple[str, str]]]:
    """``df`` with one row per run id (folders named by run ids only; ``foreign`` ones kept), and a problem for
    every left-out folder whose run is over there too."""
    if not df["run_id"].duplicated().any():  # the usual case: nothing to look at
        return df, []
    ids = df["run_id"]
    named = ids.map(lambda name: isinstance(name, str) and is_run_id(name)) & (df["status"] != "foreign")
    shared = named & ids.where(named).duplicated(keep=False)
    if not shared.any():
        return df, []
    rows = df[shared]
    rank = rows["status"].map({state: i for i, state in enumerate(ROW_ORDER)}).fillna(len(ROW_ORDER))
    finished = rows["finished_at"].fillna("~").astype(str) if "finished_at" in rows else ""
    order = pd.DataFrame({"id": rows["run_id"], "rank": rank, "finished": finished, "path": rows["path"]})
    order = order.sort_values(["id", "rank", "finished", "path"], kind="stable")
    kept = order.drop_duplicates("id")
    keep_path = dict(zip(kept["id"], kept["path"]))
    dropped = order.index.difference(kept.index)
    problems = []
    for i in dropped:
        if df.at[i, "status"] in ("done", "diverged", "damaged"):  # over here too: the run was trained twice
            run_id = df.at[i, "run_id"]
            problems.append(
                (df.at[i, "path"], f"run {run_id} is also in {keep_path[run_id]}: counted once, from there")
            )
    return df.drop(index=dropped).reset_index(drop=True), problems


def _assemble(root: Path, scans: list, data: dict[str, Any], problems: list, config_cols: dict) -> pd.DataFrame:
    """The frame from its columns (the same way for a cold read and a cached one)."""
    data["run_id"] = [s.rd.run_id for s in scans]
    data["path"] = [str(s.rd.path) for s in scans]
    for col in BASE_COLUMNS:
        if col not in data:
            data[col] = pd.Series([None] * len(scans), dtype=object) if scans else pd.Series(dtype=object)
    book = [c for c in BOOK_COLUMNS if c in data]
    cfg = sorted(c for c in config_cols if c in data and c not in BASE_COLUMNS)
    rest = sorted(c for c in data if c not in BASE_COLUMNS and c not in book and c not in config_cols)
    order = BASE_COLUMNS + book + cfg + rest
    df = pd.DataFrame({c: data[c] for c in order}, columns=order) if scans else pd.DataFrame(columns=BASE_COLUMNS)
    if not scans:
        for col in BASE_COLUMNS:
            df[col] = pd.Series(dtype=object)
    else:
        df, shared = _one_row_per_run(df)
        problems = problems + shared
    df.attrs["problems"] = SharedTuple(tuple(p) for p in problems)
    df.attrs["config_columns"] = SharedTuple(cfg)
    df.attrs["root"] = str(root)
    return df


def _frame_from_summary(root: Path, scans: list, summary: cache_mod.Summary) -> pd.DataFrame:
    """Nothing changed since the cache was written: the frame from the cache alone."""
    problems, config_cols, decoded = [], {}, {}
    for s, probs_text, cols_text, metrics in zip(
        scans, summary.meta("problems"), summary.meta("config"), summary.metrics_column()
    ):
        path = str(s.rd.path)
        if probs_text != "[]":
            problems += [(path, p) for p in decoded.setdefault(probs_text, json.loads(probs_text))]
        if cols_text not in decoded:
            decoded[cols_text] = json.loads(cols_text)
            config_cols.update(dict.fromkeys(decoded[cols_text]))
        _METRICS_READ[path] = (s.metrics, metrics)
    data = {n: summary.frame_column(n) for n in summary.names}
    return _assemble(root, scans, data, problems, config_cols)


def load_metrics(runs: pd.DataFrame, columns: list[str] | tuple[str, ...] = ()) -> pd.DataFrame:
    """Per-epoch metrics of ``runs`` (a frame from :func:`load_runs`) in long form: one row per
    (run, epoch), the metrics.jsonl fields (``epoch``, ``train_loss``, ``val_top1``, ...) plus the run's
    ``run_id``, ``grid``, ``seed``, ``model.variant`` and any ``columns`` of ``runs``. Records read by
    ``load_runs`` are reused while the file is unchanged."""
    tags = [c for c in dict.fromkeys(("run_id", "grid", "seed", "model.variant", *columns)) if c in runs.columns]
    tag_set = set(tags)
    cols: dict[str, list] = {}
    total = 0
    for path, *values in zip(*(runs[c].tolist() for c in ["path", *tags])):
        sig = metrics_signature(path)
        hit = _METRICS_READ.get(str(path))
        if hit is not None and hit[0] == sig:
            run_cols = hit[1]
            if not isinstance(run_cols, dict):  # JSON text from the cache (a pyarrow scalar or str)
                run_cols = json.loads(run_cols if isinstance(run_cols, str) else run_cols.as_py())
                _METRICS_READ[str(path)] = (sig, run_cols)
        else:
            run_cols = _columnar(RunDir(path).read_metrics())
        n = len(next(iter(run_cols.values()), ()))
        if not n:
            continue
        for k, v in run_cols.items():
            if k in tag_set:  # the run's own tags win over same-named metric fields
                continue
            if k not in cols:
                cols[k] = [None] * total
            cols[k].extend(v)
        for k, v in zip(tags, values):
            if k not in cols:  # (not setdefault: its default list would be built for every run)
                cols[k] = [None] * total
            cols[k].extend([v] * n)
        total += n
        for v in cols.values():  # names this run lacks
            if len(v) < total:
                v.extend([None] * (total - len(v)))
    if not total:
        return pd.DataFrame(columns=["epoch", *tags])
    front = [c for c in ("epoch", *tags) if c in cols]
    return pd.DataFrame({c: cols[c] for c in [*front, *(k for k in cols if k not in front)]})


def to_csv(runs: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write ``runs`` as CSV (one row per run), atomically. Returns the path."""
    path = Path(path)
    atomic_write_bytes(path, runs.to_csv(index=False).encode())
    return path


__all__ = ["STATUSES", "flatten", "load_metrics", "load_runs", "to_csv"]
