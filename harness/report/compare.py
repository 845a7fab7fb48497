"""Paired comparisons of a grid's runs with their baseline, over the same test videos.

    pairs = pair_runs(done, meta)                       # one row per (run, its baseline run of the same seed)
    counts = pair_counts(pairs, correct)                # + n, a_only, b_only (or why not paired)
    rows = row_comparisons(counts, done, row_keys)      # pooled over seeds, per table row

Which run is a run's baseline (:func:`pair_runs`):

- the grid says it (``report.baseline: {model.split_ratio: 0.125}``): the run of the same seed whose config
  equals this run's except for those keys, which hold the stated values;
- else the backbone: the run of the same seed with ``model.aggregator: avg`` whose config equals this run's
  except for the aggregator's own fields (``AGGREGATOR_FIELDS``). A backbone run has no baseline.

Two runs are paired only when they were tested on the same list (``manifest.test.sha256``, else the run id's
``inputs.data.test`` fingerprint) and both kept per-video predictions; else the pair names why. Videos
unreadable in either run are left out of the pair (counted in ``dropped``). Pooling seeds = concatenating
their video pairs (summing counts). Statistics: :mod:`harness.report.stats`.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd

from harness.report import stats

AGGREGATOR_FIELDS = (
    "model.variant",
    "model.name",
    "model.aggregator",
    "model.position",
    "model.stage_masks",
    "model.split_ratio",
    "model.alpha",
    "model.kernel_size",
    "model.with_identity",
)
"""Config fields that say how (and whether) snippets are aggregated: a backbone run differs from its DSA run
only in these."""

TEST_LIST_COLUMNS = ("manifest.test.sha256", "inputs.data.test")
"""Where the identity of a run's test list is read (the first a run has)."""

PAIR_COLUMNS = (
    "run_id",
    "baseline_run_id",
    "seed",
    "path",
    "baseline_path",
    "test_list",
    "baseline_test_list",
    "test_list_name",
    "baseline_test_list_name",
)
"""The columns of :func:`pair_runs`' frame."""

_NOT_CONFIG = {"run_id", "path", "seed", "status", "grid", "task"}


def row_key(value) -> str:
    """Row keys compared as text (JSON for lists), so 0.125 == '0.125', 1.0 == 1 and masks compare (the one
    rule of the report tables, the pairing and the zoo points)."""
    if hasattr(value, "item") and not isinstance(value, (list, tuple, dict)):
        value = value.item()  # numpy scalars
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return value if isinstance(value, str) else json.dumps(value)


_key = row_key


def row_keys(column: pd.Series) -> list[str]:
    """:func:`row_key` of every value of ``column``, each distinct value computed once (reports map thousands)."""
    seen: dict = {}
    out = []
    for v in column.tolist():
        try:
            k = seen.get(v)
            if k is None:
                k = seen[v] = row_key(v)
        except TypeError:  # unhashable (a list): computed as it is
            k = row_key(v)
        out.append(k)
    return out


def pair_runs(done: pd.DataFrame, baseline: dict | None = None) -> pd.DataFrame:
    """One row per done run that has a baseline run (module doc): ``run_id``, ``baseline_run_id``, ``seed``,
    ``path``, ``baseline_path``, the two test lists. ``baseline``: the grid's ``report.baseline`` mapping,
    else the backbone rule. Only training runs compare (a profile run has no test)."""
    if "task" in done.columns:
        done = done[done["task"] == "train"]
    if done.empty:
        return pd.DataFrame(columns=list(PAIR_COLUMNS))
    skip = set(baseline) if baseline else set(AGGREGATOR_FIELDS)
    configured = done.attrs.get("config_columns") or [
        c for c in done.columns if c.split(".")[0] in ("model", "data", "train", "eval", "inputs")
    ]
    # a column holding one value in every run cannot tell runs apart: only the others make the key
    columns = [
        c
        for c in configured
        if c in done.columns and c not in _NOT_CONFIG and c not in skip and done[c].astype(str).nunique() > 1
    ]
    if baseline:  # a field that the stated keys determine (the variant's aggregator) is not a key of its own
        columns = _not_determined_by([k for k in baseline if k in done.columns], columns, done)
    keys = list(zip(row_keys(done["seed"]), *(row_keys(done[c]) for c in columns)))
    if baseline:
        base = np.ones(len(done), dtype=bool)
        for k, v in baseline.items():
            base &= (np.array(row_keys(done[k])) == _key(v)) if k in done.columns else False
        compared = ~base
    else:
        aggregator = done.get("model.aggregator", pd.Series(None, index=done.index))
        base = (aggregator == "avg").to_numpy()
        compared = (aggregator.notna() & (aggregator != "avg")).to_numpy()
    rows = (
        done[["run_id", "seed", "path"]]
        .assign(
            test_list=[
                _test_list(r) for r in done[[c for c in TEST_LIST_COLUMNS if c in done.columns]].to_dict("records")
            ]
            if any(c in done.columns for c in TEST_LIST_COLUMNS)
            else None,
            test_list_name=done["manifest.test.list"] if "manifest.test.list" in done.columns else None,
        )
        .to_dict("records")
    )
    bases: dict[tuple, dict] = {}
    for key, r, is_base in zip(keys, rows, base):
        if is_base:
            bases.setdefault(key, r)
    out = []
    for key, r, is_compared in zip(keys, rows, compared):
        b = bases.get(key) if is_compared else None
        if b is not None:
            out.append(
                {
                    "run_id": r["run_id"],
                    "baseline_run_id": b["run_id"],
                    "seed": r["seed"],
                    "path": r["path"],
                    "baseline_path": b["path"],
                    "test_list": r["test_list"],
                    "baseline_test_list": b["test_list"],
                    "test_list_name": r["test_list_name"],
                    "baseline_test_list_name": b["test_list_name"],
                }
            )
    return pd.DataFrame(out, columns=[*PAIR_COLUMNS])


def _not_determined_by(stated: list[str], columns: list[str], done: pd.DataFrame) -> list[str]:
    """``columns`` less those whose value is one function of the ``stated`` columns' values over ``done`` (e.g.
    ``model.aggregator`` under ``model.variant``: ``i3d_r18_dsa`` is always ``dsa``); such a column would keep a
    row from its stated baseline though it says nothing the stated keys do not."""
    if not stated:
        return columns
    groups = pd.Series(list(zip(*(row_keys(done[k]) for k in stated))), index=done.index).astype(str)
    kept = []
    for c in columns:
        per_group = pd.Series(row_keys(done[c]), index=done.index).groupby(groups).nunique()
        if per_group.max() > 1:
            kept.append(c)
    return kept


def _test_list(run: dict):
    for col in TEST_LIST_COLUMNS:
        v = run.get(col)
        if v is not None and not (isinstance(v, float) and math.isnan(v)):
            return v
    return None


def pair_counts(pairs: pd.DataFrame, correct: dict) -> pd.DataFrame:
    """``pairs`` with ``n`` (videos scored in both runs), ``a_only`` (right in the run, wrong in its baseline),
    ``b_only``, ``dropped`` (videos unreadable in either) and ``why`` (None when paired, else the reason:
    different test lists, no predictions). ``correct``: ``{run path: (correct, scored)}`` bool arrays over the
    test list's order (``harness.results.store.load_correct``)."""
    k = len(pairs)
    n, a_only, b_only, dropped = (np.zeros(k, dtype=np.int64) for _ in range(4))
    why: list[str | None] = [None] * k
    by_length: dict[int, list[int]] = {}  # pairs to count, by their test list's length
    for i, p in enumerate(pairs.itertuples(index=False)):
        if p.test_list is not None and p.baseline_test_list is not None and p.test_list != p.baseline_test_list:
            names = [str(n) for n in (p.test_list_name, p.baseline_test_list_name) if isinstance(n, str)]
            why[i] = "not paired: tested on different lists" + (f" ({' vs '.join(names)})" if len(names) == 2 else "")
        elif p.path not in correct or p.baseline_path not in correct:
            missing = [
                rid for rid, path in ((p.run_id, p.path), (p.baseline_run_id, p.baseline_path)) if path not in correct
            ]
            why[i] = "no predictions (" + ", ".join(missing) + ")"
        elif (la := len(correct[p.path][0])) != (lb := len(correct[p.baseline_path][0])):
            why[i] = f"not paired: tested on different lists ({la} vs {lb} videos)"
        else:
            by_length.setdefault(la, []).append(i)
    paths, bases = pairs["path"].to_numpy(), pairs["baseline_path"].to_numpy()
    for length, rows in by_length.items():  # every pair of one length at once: runs stacked as bit rows
        rows = np.asarray(rows)
        runs = list(dict.fromkeys([*paths[rows], *bases[rows]]))
        where = {path: j for j, path in enumerate(runs)}
        right = np.stack([correct[path][0] for path in runs])
        scored = np.stack([correct[path][1] for path in runs])
        for chunk in np.array_split(rows, max(1, len(rows) // 2048)):
            ia = np.fromiter((where[x] for x in paths[chunk]), dtype=np.int64, count=len(chunk))
            ib = np.fromiter((where[x] for x in bases[chunk]), dtype=np.int64, count=len(chunk))
            both = scored[ia] & scored[ib]
            ra, rb = right[ia] & both, right[ib] & both
            n[chunk] = both.sum(axis=1)
            a_only[chunk] = (ra & ~rb).sum(axis=1)
            b_only[chunk] = (rb & ~ra).sum(axis=1)
            dropped[chunk] = length - n[chunk]
    out = pairs.assign(n=n, a_only=a_only, b_only=b_only, dropped=dropped, why=why)
    return with_deltas(out)


def with_deltas(counts: pd.DataFrame) -> pd.DataFrame:
    """``counts`` (columns n, a_only, b_only, why) with the paired Δ top-1 of each paired row: ``delta``,
    ``low``, ``high`` (paired bootstrap 95% interval, points), ``p_mcnemar`` and ``resolved``."""
    counts = counts.copy()
    ok = counts["why"].isna().to_numpy() & (counts["n"].to_numpy() > 0)
    for col in ("delta", "low", "high", "p_mcnemar"):
        counts[col] = np.nan
    counts["resolved"] = False
    if ok.any():
        res = stats.paired_delta_counts(
            counts.loc[ok, "n"].to_numpy(), counts.loc[ok, "a_only"].to_numpy(), counts.loc[ok, "b_only"].to_numpy()
        )
        for col in ("delta", "low", "high", "p_mcnemar", "resolved"):
            counts.loc[ok, col] = np.asarray(res[col])
    return counts


__all__ = ["row_key", "AGGREGATOR_FIELDS", "TEST_LIST_COLUMNS", "pair_counts", "pair_runs", "with_deltas"]
