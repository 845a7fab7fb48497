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


def _key(value) -> str:
    from harness.report.tables import _key as key

    return key(value)


def _config_key(run: pd.Series, columns: list[str], skip: set[str]) -> tuple:
    return tuple(_key(run.get(c)) for c in columns if c not in skip)


def pair_runs(done: pd.DataFrame, baseline: dict | None = None) -> pd.DataFrame:
    """One row per done run that has a baseline run (module doc): ``run_id``, ``baseline_run_id``, ``seed``,
    ``path``, ``baseline_path``. ``baseline``: the grid's ``report.baseline`` mapping, else the backbone rule."""
    columns = [
        c
        for c in (
            done.attrs.get("config_columns")
            or [c for c in done.columns if c.split(".")[0] in ("model", "data", "train", "eval", "inputs")]
        )
        if c in done.columns and c not in _NOT_CONFIG
    ]
    if baseline:
        skip = set(baseline)

        def is_base(r):
            return all(_key(r.get(k)) == _key(v) for k, v in baseline.items())
    else:
        skip = set(AGGREGATOR_FIELDS)

        def is_base(r):
            return r.get("model.aggregator") == "avg"

    bases: dict[tuple, pd.Series] = {}
    if "task" in done.columns:  # only runs that tested on videos compare (a profile run has no test)
        done = done[done["task"] == "train"]
    records = list(done.iterrows())
    for _, r in records:
        if is_base(r):
            bases.setdefault((_key(r.get("seed")), _config_key(r, columns, skip)), r)
    out = []
    for _, r in records:
        if is_base(r) or (not baseline and r.get("model.aggregator") in (None, "avg")):
            continue
        b = bases.get((_key(r.get("seed")), _config_key(r, columns, skip)))
        if b is not None:
            out.append(
                {
                    "run_id": r["run_id"],
                    "baseline_run_id": b["run_id"],
                    "seed": r.get("seed"),
                    "path": r["path"],
                    "baseline_path": b["path"],
                    "test_list": _test_list(r),
                    "baseline_test_list": _test_list(b),
                    "test_list_name": r.get("manifest.test.list"),
                    "baseline_test_list_name": b.get("manifest.test.list"),
                }
            )
    return pd.DataFrame(out, columns=[*PAIR_COLUMNS])


def _test_list(run: pd.Series):
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
    n, a_only, b_only, dropped, why = [], [], [], [], []
    for p in pairs.itertuples(index=False):
        reason = None
        if p.test_list is not None and p.baseline_test_list is not None and p.test_list != p.baseline_test_list:
            names = [str(n) for n in (p.test_list_name, p.baseline_test_list_name) if isinstance(n, str)]
            reason = "not paired: tested on different lists" + (f" ({' vs '.join(names)})" if len(names) == 2 else "")
        elif p.path not in correct or p.baseline_path not in correct:
            missing = [
                rid for rid, path in ((p.run_id, p.path), (p.baseline_run_id, p.baseline_path)) if path not in correct
            ]
            reason = "no predictions (" + ", ".join(missing) + ")"
        else:
            (ca, sa), (cb, sb) = correct[p.path], correct[p.baseline_path]
            if len(ca) != len(cb):
                reason = f"not paired: tested on different lists ({len(ca)} vs {len(cb)} videos)"
        if reason is not None:
            n.append(0)
            a_only.append(0)
            b_only.append(0)
            dropped.append(0)
            why.append(reason)
            continue
        both = sa & sb
        n.append(int(both.sum()))
        a_only.append(int((ca & ~cb & both).sum()))
        b_only.append(int((cb & ~ca & both).sum()))
        dropped.append(int(len(ca) - both.sum()))
        why.append(None)
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


__all__ = ["AGGREGATOR_FIELDS", "TEST_LIST_COLUMNS", "pair_counts", "pair_runs", "with_deltas"]
