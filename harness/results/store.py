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

Reading is tolerant: a missing or half-written file is reported in ``runs.attrs["problems"]`` (a list
of ``(run path, message)``) and never raises. Nothing is cached on disk: every call reads every run
(5,000 runs in about a second), and reading writes nothing into the results folder.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm import tqdm

from harness.results.rundir import RunDir, atomic_write_bytes, iter_run_dirs
from harness.results.status import FILE_STATES, run_state

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
    except (OSError, ValueError, UnicodeDecodeError) as e:  # JSONDecodeError is a ValueError
        state = run_state(rd)
        row.update(grid=rd.path.parent.name, status=state.state)
        return row, [], [f"config.json unreadable (half-written?): {type(e).__name__}: {e}", *state.problems], {}
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
    problems += state.problems
    row["status"] = state.state
    if state.job:
        row["job_state"] = state.job.get("state")
    if state.state == "failed" and state.error:
        row["error"] = f"{state.error.get('type', 'Error')}: {str(state.error.get('message', ''))[:200]}"
    final = state.final
    row.update(config_cols)
    if final is not None:
        if row["task"] == "train" and not metrics:
            problems.append("metrics.jsonl missing or empty for a finished training run")
        flatten({k: v for k, v in final.items() if k not in _SKIP_FINAL}, out=row)
    return row, list(config_cols), problems, _columnar(metrics)


# path -> (signature of metrics.jsonl, metrics in columns): filled by load_runs, reused by load_metrics in the
# same process while the file is unchanged (a report reads each metrics.jsonl once, not twice)
_METRICS_READ: dict[str, tuple[Any, dict[str, list]]] = {}


def load_runs(root: str | os.PathLike = "results/runs") -> pd.DataFrame:
    """One row per run directory under ``root`` (any depth; a run = a folder holding config.json).

    ``df.attrs["problems"]``: ``[(run path, message), ...]`` for missing or half-written files (never
    fatal). ``df.attrs["config_columns"]``: the columns that came from config.json."""
    root = Path(root)
    rows, problems, config_cols = [], [], {}
    # progress on a terminal only (disable=None), and only for slow reads
    for rd in tqdm(
        iter_run_dirs(root), desc=f"reading {root}", unit=" runs", leave=False, disable=None, delay=1.0, mininterval=0.5
    ):
        key = str(rd.path)
        sig = rd.metrics_signature()
        row, cols, probs, recs = _read_run(rd)
        rows.append(row)
        config_cols.update(dict.fromkeys(cols))
        problems += [(key, p) for p in probs]
        _METRICS_READ[key] = (sig, recs)
    df = pd.DataFrame.from_records(rows) if rows else pd.DataFrame()
    for col in BASE_COLUMNS:
        if col not in df.columns:
            df[col] = pd.Series(dtype=object)
    book = [c for c in BOOK_COLUMNS if c in df.columns]
    cfg = sorted(c for c in config_cols if c in df.columns and c not in BASE_COLUMNS)
    rest = sorted(c for c in df.columns if c not in BASE_COLUMNS and c not in book and c not in config_cols)
    df = df[BASE_COLUMNS + book + cfg + rest]
    df.attrs["problems"] = problems
    df.attrs["config_columns"] = cfg
    return df


def load_metrics(runs: pd.DataFrame, columns: list[str] | tuple[str, ...] = ()) -> pd.DataFrame:
    """Per-epoch metrics of ``runs`` (a frame from :func:`load_runs`) in long form: one row per
    (run, epoch), the metrics.jsonl fields (``epoch``, ``train_loss``, ``val_top1``, ...) plus the run's
    ``run_id``, ``grid``, ``seed``, ``model.variant`` and any ``columns`` of ``runs``. Records read by
    ``load_runs`` are reused while the file is unchanged."""
    tags = [c for c in dict.fromkeys(("run_id", "grid", "seed", "model.variant", *columns)) if c in runs.columns]
    tag_set = set(tags)
    cols: dict[str, list] = {}
    total = 0
    for path, *values in runs[["path", *tags]].itertuples(index=False, name=None):
        rd = RunDir(path)
        sig = rd.metrics_signature()
        hit = _METRICS_READ.get(str(path))
        run_cols = hit[1] if hit is not None and hit[0] == sig else _columnar(rd.read_metrics())
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
            cols.setdefault(k, [None] * total).extend([v] * n)
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
