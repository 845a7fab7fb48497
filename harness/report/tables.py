"""Paper-style tables from the results store: one row per setting with mean +- std over seeds, run counts, the
paper's number beside ours and the difference, and the paired comparisons with each row's baseline.

    runs = load_runs("results/runs")
    meta = GridMeta.load("ablation_split_ratio")             # experiments/ablation_split_ratio.yaml
    paper, notes = read_paper(meta.paper_reference)          # experiments/paper/ablation_split_ratio.csv
    table = grid_table(runs[runs.grid == meta.name], meta, paper)
    print(to_terminal(table, meta))

This module builds the table (:func:`grid_table`) and remembers its comparisons (:func:`comparison_memo`). What a
grid file asks of its table (:class:`GridMeta`) lives in ``harness.report.gridfile``, what its columns are in
``harness.report.columns``, the paper's side (reference CSVs, test-set sizes, the ``paper`` / ``delta`` columns)
in ``harness.report.paper``, and the cells' text, notes and the Markdown, LaTeX and terminal output in
``harness.report.formatting``; their names are importable from here too.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from harness.report import stats
from harness.report.columns import (
    ACCURACY_DECIMALS,
    ACCURACY_METRICS,
    COMPOSITE,
    DEFAULT_METRICS,
    DERIVED_METRICS,
    DIGITS,
    INTERVALS,
    METRIC_LABELS,
    NO_INTERVAL_MARK,
    PER_VIEW,
    RATIO_CI_WARN_WIDTH,
    RATIO_DECIMALS,
    RATIO_METRICS,
    SIG_DIGITS,
    TEXT_METRICS,
    VIEWS_COLUMNS,
    WARN_MARK,
    interval_columns,
    is_accuracy,
    key_label,
    metric_label,
)
from harness.report.compare import row_key as _key
from harness.report.compare import row_keys
from harness.report.formatting import (
    MAX_PAIR_ROWS,
    PAIR_CSV_COLUMNS,
    RESOLVED_MARK,
    display_rows,
    flagged,
    format_key,
    latex_escape,
    metric_cell,
    metric_header,
    pair_rows,
    paired_cells,
    pairs_csv,
    table_notes,
    to_latex,
    to_markdown,
    to_terminal,
)
from harness.report.gridfile import GridMeta
from harness.report.paper import (
    TEST_SET_TOLERANCE,
    TEST_SETS_FILE,
    add_paper_columns,
    check_test_set,
    read_paper,
    read_test_sets,
)

_NOT_KEYS = {"run_id", "path", "seed", "status", "grid", "task", "epochs_done", "job_state", "error"}


def varying_columns(runs: pd.DataFrame) -> list[str]:
    """Config columns whose value differs across ``runs`` (not seed, run id, grid or task)."""
    cols = runs.attrs.get("config_columns") or [
        c for c in runs.columns if c.split(".", 1)[0] in ("model", "data", "train", "eval")
    ]
    out = []
    for col in cols:
        if col in _NOT_KEYS or col not in runs.columns:
            continue
        if len(set(row_keys(runs[col]))) > 1:
            out.append(col)
    return out


def _has(frame: pd.DataFrame, col: str | None) -> bool:
    return bool(col) and col in frame.columns and frame[col].notna().any()


def _views_column(done: pd.DataFrame) -> str | None:
    return next((v for v in VIEWS_COLUMNS if _has(done, v)), None)


def _choose_metrics(meta: GridMeta, done: pd.DataFrame) -> list[str]:
    """The metrics a table shows: those named (or the defaults) that some run has. A per-view cost becomes
    its compact cell ``GFLOPs x views`` when the runs record their views (and a compact cell without views,
    its per-view column); ``profile.baseline`` comes before the first ratio to it."""
    views = _views_column(done)
    out: list[str] = []
    for m in meta.metrics or DEFAULT_METRICS:
        if views and m in PER_VIEW:
            m = PER_VIEW[m]
        elif not views and m in COMPOSITE:
            m = COMPOSITE[m]
        if _has(done, COMPOSITE.get(m, m)) and m not in out:
            out.append(m)
    ratios = [m for m in out if m in RATIO_METRICS]
    if ratios and "profile.baseline" not in out and _has(done, "profile.baseline"):
        out.insert(out.index(ratios[0]), "profile.baseline")
    return out


def _unique(done: pd.DataFrame, *cols: str) -> list:
    """The distinct values of the first of ``cols`` the runs have, in order of appearance."""
    col = next((c for c in cols if _has(done, c)), None)
    return list(dict.fromkeys(done[col].dropna())) if col else []


def _batch_text(done: pd.DataFrame) -> str | None:
    batches = _unique(done, "profile.settings.batch", "profile.batch")
    return f"batch {int(batches[0])}" if len(batches) == 1 else None


SKIPPED_COLUMN = "test.num_skipped"
"""Unreadable test videos a run left out (data.on_error=skip): the ``skipped`` column (summed over the row's
runs) when any run has some."""


def grid_table(
    runs: pd.DataFrame,
    meta: GridMeta,
    paper: pd.DataFrame | None = None,
    correct=None,
    memo: dict | None = None,
) -> pd.DataFrame:
    """Aggregate the *done* runs of one grid.

    One row per combination of the row keys (``meta.rows``, else the config columns that vary across
    ``runs``); columns: the keys, ``n`` (runs averaged, i.e. seeds), ``skipped`` (unreadable test videos
    left out, summed over the runs; only when a run has some), for each metric its mean and
    ``<metric> std`` (sample std, ddof = 1; NaN for one run) (a compact cost cell: its per-view cost's and
    the views'), for a metric with an interval (:func:`interval_columns`) ``<metric> low`` and ``<metric> high``
    (rows of one run; NaN otherwise or when not measured; accuracies of several runs: the 95% interval over
    seeds), for a text metric its runs' distinct values,
    and for each metric the paper has a number for: ``paper <metric>`` and ``delta <metric>`` (ours -
    paper). Rows in the paper CSV's order first, then ours in order of appearance
    (``harness.report.index.current_runs`` puts a grid's runs in the grid file's order). ``table.attrs``
    holds ``rows``, ``metrics``, the reference ``label``, the ``views`` column, the timings' ``batch``
    (``batch N`` when every run has the same) and the runs' ``memory_method`` and ``rounds`` (distinct values).

    Rows with a baseline (``harness.report.compare``: the grid's ``report.baseline``, else each run's backbone)
    get ``baseline`` (the baseline row's label) and the paired Δ top-1 over the same videos, pooled over seed
    pairs: ``paired delta``, ``paired low``, ``paired high`` (95%, points), ``paired p`` (exact McNemar),
    ``paired resolved``, ``paired pairs`` (seed pairs pooled), ``paired why`` (why a row is not paired), and
    with several seeds on both sides ``P(beats)`` (``low``, ``high``). ``correct``: per-video correctness by run
    path, or a function of a list of run paths returning it and the problems of the files it could not read
    (called once, with the paired runs only: ``harness.results.cache.load_correct``); None: no run has
    predictions. ``memo``: :func:`comparison_memo` (unchanged comparisons are not computed again). The seed
    pairs themselves: ``table.attrs["pairs"]`` (``compare.pair_counts``)."""
    done = runs[runs["status"] == "done"]
    attrs = _table_attrs(runs, done, meta, paper)
    rows = attrs["rows"]
    if done.empty:
        table = pd.DataFrame(columns=rows + ["n"])
        table.attrs.update(attrs)
        return table
    keyed = done.assign(_key=[tuple(_key(v) for v in vals) for vals in done[rows].itertuples(index=False)])
    table = pd.DataFrame(_row_records(keyed, rows, attrs["metrics"], attrs["views"]))
    _add_comparisons(table, keyed, rows, meta, correct if correct is not None else {}, attrs, memo)
    order = add_paper_columns(table, paper, done, attrs, grid=meta.name, test_sets=meta.test_sets)
    table["_order"] = [order.get(k, len(order) + i) for i, k in enumerate(table["_key"])]
    table = table.sort_values("_order", kind="stable").drop(columns=["_order", "_key"]).reset_index(drop=True)
    table.attrs.update(attrs)
    return table


def _table_attrs(runs: pd.DataFrame, done: pd.DataFrame, meta: GridMeta, paper: pd.DataFrame | None) -> dict:
    """A grid table's ``attrs``: its row keys and metrics, the reference's label, the views column, the timings'
    batch and the runs' memory methods and rounds (see :func:`grid_table`)."""
    rows = [r for r in (meta.rows or varying_columns(runs) or ["model.variant"]) if r in runs.columns]
    return {
        "rows": rows or ["run_id"],
        "metrics": _choose_metrics(meta, done),
        "label": paper.attrs.get("label", "paper") if paper is not None else "paper",
        "views": _views_column(done),
        "batch": _batch_text(done),
        "memory_method": _unique(done, "profile.memory_method"),
        "rounds": _unique(done, "profile.rounds"),
        "train_rounds": _unique(done, "profile.train_rounds"),
    }


def _row_records(keyed: pd.DataFrame, rows: list[str], metrics: list[str], views: str | None) -> list[dict]:
    """One record per distinct row key of the done runs ``keyed`` (column ``_key``), in order of appearance: the
    keys, ``_key``, ``n``, ``skipped`` (when some run left unreadable test videos out) and each metric's values
    (:func:`_metric_values`)."""
    out = []
    skipped = pd.to_numeric(keyed.get(SKIPPED_COLUMN, pd.Series(dtype=float)), errors="coerce").fillna(0)
    for key, g in keyed.groupby("_key", sort=False):
        rec = {r: g[r].iloc[0] for r in rows}
        rec.update({"_key": key, "n": len(g)})
        if (skipped > 0).any():  # a column only when some run left unreadable test videos out
            rec["skipped"] = int(skipped.loc[g.index].sum())
        for m in metrics:
            rec.update(_metric_values(g, m, views))
        out.append(rec)
    return out


def _metric_values(g: pd.DataFrame, m: str, views: str | None) -> dict:
    """Metric ``m`` over one row's runs ``g``: a text metric's distinct values; else the mean and ``std`` of its
    column(s) (a compact cost cell: its per-view cost's and the views'), and for a metric with an interval its
    ``low`` and ``high`` (over seeds for an accuracy of several runs, else one run's own; NaN otherwise)."""
    if m in TEXT_METRICS:
        return {m: " / ".join(str(v) for v in dict.fromkeys(g[m].dropna())) or None}
    rec = {}
    for col in (COMPOSITE[m], views) if m in COMPOSITE else (m,):
        vals = pd.to_numeric(g[col], errors="coerce").dropna()
        rec[col] = float(vals.mean()) if len(vals) else float("nan")
        rec[f"{col} std"] = float(vals.std(ddof=1)) if len(vals) > 1 else float("nan")
    low, high = interval_columns(m)
    if is_accuracy(m) and len(g) > 1:  # several seeds: the interval over seeds
        summary = stats.seed_summary(pd.to_numeric(g[m], errors="coerce").dropna().to_numpy())
        # a t interval is symmetric; an accuracy is not below 0 % nor above 100 %
        rec[f"{m} low"], rec[f"{m} high"] = max(summary["low"], 0.0), min(summary["high"], 100.0)
    elif low in g.columns and high in g.columns:  # one run's interval; several runs' do not combine
        lo, hi = (pd.to_numeric(g[c], errors="coerce").iloc[0] for c in (low, high))
        one = len(g) == 1 and pd.notna(lo) and pd.notna(hi)
        rec[f"{m} low"], rec[f"{m} high"] = (float(lo), float(hi)) if one else (float("nan"),) * 2
    elif is_accuracy(m):
        rec[f"{m} low"], rec[f"{m} high"] = float("nan"), float("nan")
    return rec


def _add_comparisons(
    table: pd.DataFrame, keyed: pd.DataFrame, rows: list[str], meta: GridMeta, correct, attrs: dict, memo
) -> None:
    """The paired columns of :func:`grid_table` (in place), ``attrs["pairs"]`` and ``attrs["problems"]`` (the
    predictions files that could not be read). With ``memo`` (a dict kept between reports,
    :func:`comparison_memo`), a table whose pairs, predictions files and top-1s are unchanged is not computed
    again: its counts, intervals and p-values are those computed before for exactly these inputs."""
    from harness.report import compare

    pairs = compare.pair_runs(keyed, meta.baseline)
    attrs["problems"] = []
    if pairs.empty:
        attrs["pairs"] = pairs
        return
    digest = _comparison_digest(pairs, keyed) if memo is not None else None
    hit = memo.get("old", {}).get(digest) if digest is not None else None
    if hit is not None:
        counts = pairs.assign(**{c: hit["pairs"][c] for c in COUNT_COLUMNS})
        attrs["problems"] = [tuple(p) for p in hit["problems"]]
    else:
        if callable(correct):  # a loader: predictions are read only for the runs that are paired
            correct, attrs["problems"] = correct(sorted(set(pairs["path"]) | set(pairs["baseline_path"])))
        counts = compare.pair_counts(pairs, correct)
    pairs = _label_pairs(counts, keyed, rows)
    attrs["pairs"] = pairs
    table["is baseline"] = table["_key"].isin(set(pairs["_base_key"]))
    pooled = _pooled(table, pairs)
    if hit is not None:
        pooled = pooled.assign(**{c: hit["pooled"][c] for c in DELTA_COLUMNS})
    else:
        pooled = compare.with_deltas(pooled)
    table["baseline"] = pooled["baseline"].to_numpy()
    for col in ("delta", "low", "high", "p_mcnemar", "resolved"):
        table[f"paired {col.replace('_mcnemar', '')}"] = pooled[col].to_numpy()
    table["paired pairs"] = pooled["paired pairs"].to_numpy()
    table["paired why"] = pooled["paired why"].to_numpy()
    # several seeds on both sides: the probability that a seed of the row beats a seed of its baseline
    p_rows = hit["improve"] if hit is not None else _improvement(keyed, pooled)
    if any(p_rows):
        table["P(beats)"] = [r.get("p", float("nan")) for r in p_rows]
        table["P(beats) low"] = [r.get("low", float("nan")) for r in p_rows]
        table["P(beats) high"] = [r.get("high", float("nan")) for r in p_rows]
    if digest is not None:
        memo.setdefault("new", {})[digest] = {
            "pairs": {c: _plain(pairs[c]) for c in COUNT_COLUMNS},
            "pooled": {c: _plain(pooled[c]) for c in DELTA_COLUMNS},
            "improve": [
                {k: (float(v) if isinstance(v, (int, float, np.number)) else v) for k, v in r.items()} for r in p_rows
            ],
            "problems": [list(p) for p in attrs["problems"]],
        }


def _label_pairs(pairs: pd.DataFrame, keyed: pd.DataFrame, rows: list[str]) -> pd.DataFrame:
    """The seed pairs (``compare.pair_counts``) with the row keys of both runs (``_key``, ``_base_key``) and the
    labels of their rows (``row``, ``baseline``: the row-key values joined with ', '); in place, returned."""
    pairs["_key"] = pairs["run_id"].map(dict(zip(keyed["run_id"], keyed["_key"])))
    pairs["_base_key"] = pairs["baseline_run_id"].map(dict(zip(keyed["run_id"], keyed["_key"])))
    labels = {k: ", ".join(format_key(v) for v in g[rows].iloc[0]) for k, g in keyed.groupby("_key", sort=False)}
    pairs["row"] = pairs["_key"].map(labels)
    pairs["baseline"] = pairs["_base_key"].map(labels)
    return pairs


def _pooled(table: pd.DataFrame, pairs: pd.DataFrame) -> pd.DataFrame:
    """Per table row: its baseline's label and row key, and the counts of its paired seed pairs pooled into one
    comparison (``n``, ``a_only``, ``b_only``; ``why`` when none paired), ready for ``compare.with_deltas``."""
    pooled = []
    for key in table["_key"]:
        p = pairs[pairs["_key"] == key]
        ok = p[p["why"].isna()]
        rec = {"_key": key, "baseline": p["baseline"].iloc[0] if len(p) else None}
        rec["paired pairs"] = len(ok)
        rec["paired why"] = None if len(ok) or not len(p) else p["why"].iloc[0]
        rec["n"], rec["a_only"], rec["b_only"] = (
            stats.pool_counts(list(ok[["n", "a_only", "b_only"]].itertuples(index=False, name=None)))
            if len(ok)
            else (0, 0, 0)
        )
        rec["why"] = None if len(ok) else (rec["paired why"] or "no baseline")
        rec["_base_key"] = p["_base_key"].iloc[0] if len(p) else None
        pooled.append(rec)
    return pd.DataFrame(pooled)


def _improvement(keyed: pd.DataFrame, pooled: pd.DataFrame) -> list[dict]:
    """Per pooled row: the probability that a seed of the row beats a seed of its baseline in top-1, with its
    interval (``stats.probability_of_improvement``), when both sides have several seeds; else {}."""
    top1 = pd.to_numeric(keyed.get("test.top1", pd.Series(index=keyed.index, dtype=float)), errors="coerce")
    by_key = {k: top1.loc[g.index].dropna().to_numpy() for k, g in keyed.groupby("_key", sort=False)}
    p_rows = []
    for key, base in zip(pooled["_key"], pooled["_base_key"]):
        x, y = by_key.get(key, np.zeros(0)), by_key.get(base, np.zeros(0)) if base is not None else np.zeros(0)
        p_rows.append(stats.probability_of_improvement(x, y) if len(x) > 1 and len(y) > 1 else {})
    return p_rows


COUNT_COLUMNS = ("n", "a_only", "b_only", "dropped", "why", "delta", "low", "high", "p_mcnemar", "resolved")
"""A pair's counts and paired Δ (``compare.pair_counts``): what the comparison memo keeps per pair."""
DELTA_COLUMNS = ("delta", "low", "high", "p_mcnemar", "resolved")


def _plain(column: pd.Series) -> list:
    """A column as JSON-able values (numpy scalars to Python; NaN kept: the memo is written with allow_nan)."""
    return [v.item() if isinstance(v, np.generic) else v for v in column.tolist()]


def _comparison_digest(pairs: pd.DataFrame, keyed: pd.DataFrame) -> str:
    """What a table's comparisons are computed from, hashed: the statistics code, the pairs (run ids, folders, test
    lists), each paired run's predictions file (size + mtime) and manifest row count, and the runs' top-1s."""
    import hashlib

    from harness.results.rundir import predictions_signature

    here = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for name in ("stats.py", "compare.py", "tables.py"):
        h.update((here / name).read_bytes())
    h.update(pairs.to_csv(index=False).encode())
    rows = dict(zip(keyed["path"], keyed.get("manifest.test.rows", pd.Series(None, index=keyed.index)).tolist()))
    paths = sorted(set(pairs["path"]) | set(pairs["baseline_path"]))
    h.update(repr([(p, predictions_signature(p), rows.get(p)) for p in paths]).encode())
    top1 = keyed.get("test.top1", pd.Series(None, index=keyed.index))
    h.update(repr(list(zip(keyed["run_id"].tolist(), keyed["_key"].tolist(), top1.tolist()))).encode())
    return h.hexdigest()


def comparison_memo(path: str | os.PathLike) -> dict:
    """The comparison memo kept in ``path`` (a reports folder's ``.cache/comparisons.json``) for
    :func:`grid_table`: ``{"old": {digest: result}}`` ({} entries when absent or unreadable)."""
    try:
        old = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        old = {}
    return {"old": old if isinstance(old, dict) else {}}


def memo_text(memo: dict) -> str:
    """The entries of this report (``memo["new"]``) as the memo file's text (tables no longer shown drop out)."""
    return json.dumps(memo.get("new", {}), sort_keys=True)


__all__ = [  # this module's names, and those of the modules it was split into (imported from here before)
    "ACCURACY_DECIMALS",
    "ACCURACY_METRICS",
    "COMPOSITE",
    "COUNT_COLUMNS",
    "DEFAULT_METRICS",
    "DELTA_COLUMNS",
    "DERIVED_METRICS",
    "DIGITS",
    "INTERVALS",
    "MAX_PAIR_ROWS",
    "METRIC_LABELS",
    "NO_INTERVAL_MARK",
    "PAIR_CSV_COLUMNS",
    "PER_VIEW",
    "RATIO_CI_WARN_WIDTH",
    "RATIO_DECIMALS",
    "RATIO_METRICS",
    "RESOLVED_MARK",
    "SIG_DIGITS",
    "SKIPPED_COLUMN",
    "TEST_SETS_FILE",
    "TEST_SET_TOLERANCE",
    "TEXT_METRICS",
    "VIEWS_COLUMNS",
    "WARN_MARK",
    "GridMeta",
    "add_paper_columns",
    "check_test_set",
    "comparison_memo",
    "display_rows",
    "flagged",
    "format_key",
    "grid_table",
    "interval_columns",
    "is_accuracy",
    "key_label",
    "latex_escape",
    "memo_text",
    "metric_cell",
    "metric_header",
    "metric_label",
    "pair_rows",
    "paired_cells",
    "pairs_csv",
    "read_paper",
    "read_test_sets",
    "table_notes",
    "to_latex",
    "to_markdown",
    "to_terminal",
    "varying_columns",
]
