"""The results store: every run directory -> one row of a pandas DataFrame.

Columns: ``run_id``, ``grid``, ``task``, ``seed``, ``status`` (done | failed | running | queued |
incomplete | pending), ``path``, ``epochs_done``, then the config flattened with dotted names (``model.variant``,
``data.size``, ...), then final.json flattened (``test.top1``, ``profile.gflops_per_view``,
``hardware.device_name``, ...). Lists (confusion matrices, per-class accuracies, breakdowns) are left
out of the table; read them from the run's final.json.

Reading is tolerant: a run with a missing or half-written file is reported in ``problems`` (a list of
``(path, message)``) and kept with status ``incomplete``, never fatal. A cache keyed by each run file's
(mtime, size) makes reloading thousands of runs cheap.
"""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path
from typing import Any

import pandas as pd

from harness.results.rundir import CONFIG, ERROR, FINAL, JOB, METRICS, RunDir, atomic_write_bytes, iter_run_dirs

CACHE_FILE = ".store_cache.pkl"
CACHE_VERSION = 3
_SKIP_CONFIG = ("model_resolved", "resources")


def flatten(obj: Any, prefix: str = "", out: dict | None = None) -> dict:
    """Nested dicts -> {"a.b.c": scalar}; lists are dropped unless short lists of scalars (kept as text)."""
    out = {} if out is None else out
    if isinstance(obj, dict):
        for k, v in obj.items():
            flatten(v, f"{prefix}{k}.", out)
        return out
    key = prefix[:-1]
    if isinstance(obj, (list, tuple)):
        if len(obj) <= 8 and all(isinstance(v, (int, float, str, bool)) or v is None for v in obj):
            out[key] = json.dumps(obj)
        elif obj and all(isinstance(v, (list, tuple)) for v in obj) and len(obj) <= 8:  # e.g. stage masks
            out[key] = json.dumps(obj)
        return out
    out[key] = obj
    return out


def _signature(rd: RunDir) -> tuple:
    sig = []
    for name in (CONFIG, FINAL, METRICS, JOB, ERROR):
        try:
            st = os.stat(rd.path / name)
            sig.append((name, st.st_mtime_ns, st.st_size))
        except FileNotFoundError:
            sig.append((name, None, None))
    return tuple(sig)


def _row(rd: RunDir) -> tuple[dict, list[str], list[dict]]:
    problems: list[str] = []
    row: dict[str, Any] = {"run_id": rd.run_id, "path": str(rd.path)}
    try:
        config = rd.read_config()
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
        return {**row, "status": "incomplete"}, [f"config.json unreadable: {type(e).__name__}: {e}"], []
    row["grid"] = config.get("grid") or rd.path.parent.name
    row["task"] = config.get("task")
    row["seed"] = config.get("seed")
    flatten({k: v for k, v in config.items() if k not in _SKIP_CONFIG and k not in ("grid", "task", "seed",
                                                                                     "run_id")}, out=row)
    metrics = rd.read_metrics()
    row["epochs_done"] = len(metrics)
    if metrics:
        last = metrics[-1]
        for k in ("train_loss", "val_top1"):
            if k in last:
                row[f"last.{k}"] = last[k]
    final = rd.read_final()
    if final is not None:
        row["status"] = "done"
        flatten({k: v for k, v in final.items() if k not in ("run_id", "task", "status")}, out=row)
    else:
        if rd.final_path.exists():
            problems.append("final.json present but not parsable (half-written?)")
            row["status"] = "incomplete"
        elif rd.error_path.exists():
            row["status"] = "failed"
            err = rd.read_error() or {}
            row["error"] = str(err.get("message") or err.get("error") or "")[:200]
        elif rd.job_path.exists():
            row["status"] = "running" if (metrics or rd.log_path.exists()) else "queued"
        elif metrics or rd.has_checkpoint():
            row["status"] = "incomplete"
        else:
            row["status"] = "pending"
    return row, problems, metrics


def load_runs(root: str | os.PathLike = "results/runs", *, cache: bool = True) -> pd.DataFrame:
    """One row per run directory under ``root`` (any depth). ``df.attrs["problems"]`` lists
    ``(path, message)`` for unreadable files."""
    root = Path(root)
    cache_path = root / CACHE_FILE
    old: dict = {}
    if cache and cache_path.exists():
        try:
            with open(cache_path, "rb") as f:
                stored = pickle.load(f)
            if stored.get("version") == CACHE_VERSION:
                old = stored["runs"]
        except Exception:  # noqa: BLE001 - a broken cache is just rebuilt
            old = {}
    new, rows, problems, metrics = {}, [], [], {}
    for rd in iter_run_dirs(root):
        key = str(rd.path)
        sig = _signature(rd)
        hit = old.get(key)
        if hit is not None and hit[0] == sig:
            row, probs, recs = hit[1], hit[2], hit[3]
        else:
            row, probs, recs = _row(rd)
        new[key] = (sig, row, probs, recs)
        rows.append(row)
        metrics[key] = recs
        problems += [(key, p) for p in probs]
    if cache and root.exists() and new != old:
        try:
            atomic_write_bytes(cache_path, pickle.dumps({"version": CACHE_VERSION, "runs": new}))
        except OSError:
            pass
    base = ["run_id", "grid", "task", "seed", "status", "path", "epochs_done"]
    df = pd.DataFrame(rows)
    for col in base:
        if col not in df.columns:
            df[col] = pd.Series(dtype=object)
    df = df[base + sorted(c for c in df.columns if c not in base)]
    df.attrs["problems"] = problems
    _METRICS_SEEN.update(metrics)
    return df


_METRICS_SEEN: dict[str, list[dict]] = {}
"""Per-epoch records read by the last ``load_runs`` calls (path -> records), reused by ``load_metrics``."""


def load_metrics(runs: pd.DataFrame) -> pd.DataFrame:
    """Per-epoch metrics of ``runs`` in long form: one row per (run, epoch) with run_id, grid, seed."""
    records = []
    extra = [c for c in ("run_id", "grid", "seed", "model.variant") if c in runs.columns]
    for path, *values in runs[["path", *extra]].itertuples(index=False):
        recs = _METRICS_SEEN.get(path)
        if recs is None:
            recs = RunDir(path).read_metrics()
        tags = dict(zip(extra, values))
        records += [{**rec, **tags} for rec in recs]
    return pd.DataFrame.from_records(records)


def to_csv(df: pd.DataFrame, path: str | os.PathLike) -> None:
    atomic_write_bytes(path, df.to_csv(index=False).encode())
