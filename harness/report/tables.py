"""Paper-style tables from the results store: mean +- std over seeds, run counts, the paper's
number beside ours and the difference; GitHub Markdown, LaTeX (booktabs) and terminal output.

    runs = load_runs("results/runs")
    meta = GridMeta.load("ablation_split_ratio")             # experiments/ablation_split_ratio.yaml
    paper, notes = read_paper(meta.paper_reference)          # experiments/paper/ablation_split_ratio.csv
    table = grid_table(runs[runs.grid == meta.name], meta, paper)
    print(to_terminal(table, meta))

A paper reference CSV starts with ``#`` comment lines (``# source: ...`` first; ``# label: NAME``
optionally names the reference column, default ``paper``), then a header row whose columns are our
column names (row keys such as ``model.variant``, metrics such as ``test.top1``). Empty cells are
numbers we have not verified: they stay empty, never guessed.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from tabulate import tabulate

from harness.errors import ConfigError
from harness.numfmt import format_interval, format_sig, sig_decimals
from harness.report import stats
from harness.report.compare import row_key as _key
from harness.report.compare import row_keys

METRIC_LABELS = {
    "test.top1": "top-1 (%)",
    "test.top5": "top-5 (%)",
    "test.mean_class_acc": "mean class acc. (%)",
    "test.mAP": "mAP (%)",
    "test.groups.order.top1": "order acc. (%)",
    "test.groups.motion.top1": "motion acc. (%)",
    "test.views": "views (clips x crops)",
    "profile.cost": "GFLOPs x views",
    "profile.test_cost": "test GFLOPs x views",
    "profile.gflops_per_view": "GFLOPs/view (fvcore, 1 MAC = 1 FLOP)",
    "profile.gflops_per_video": "GFLOPs/video (fvcore, 1 MAC = 1 FLOP; per view x views)",
    "profile.views": "views (clips x crops)",
    "profile.test_size": "test crop (px)",
    "profile.test_gflops_per_view": "test GFLOPs/view (at the test crop)",
    "profile.test_gflops_per_video": "test GFLOPs/video (per test view x views)",
    "profile.params_m": "Params (M, incl. classifier)",
    "profile.params_m_no_classifier": "Params (M, w/o classifier)",
    "profile.aggregator_params": "aggregator params",
    "profile.latency_ms": "latency (ms/forward, {batch})",
    "profile.throughput_clips_s": "throughput (clips/s)",
    "profile.baseline": "baseline",
    "profile.latency_ratio": "latency ratio to baseline",
    "profile.train_step_ms": "train step (ms, {batch})",
    "profile.train_ratio": "train step ratio to baseline",
    "profile.train_clips_s": "train throughput (clips/s)",
    "profile.infer_peak_mem_gb": "inference peak mem. (GB)",
    "profile.train_peak_mem_gb": "training peak mem. (GB)",
    "last.val_top1": "last val top-1 (%)",
    "wall_time_s": "wall time (s)",
}
"""Column headers that say what they count (``{batch}``: the runs' batch, see :func:`metric_label`)."""

DIGITS = {
    "test.views": 0,
    "profile.test_size": 0,
    "profile.views": 0,
    "profile.aggregator_params": 0,
    "wall_time_s": 0,
}
"""Decimals shown per metric (default 2); costs are shown with significant figures instead (``SIG_DIGITS``)."""

SIG_DIGITS = {
    "profile.gflops_per_view": 4,
    "profile.gflops_per_video": 4,
    "profile.test_gflops_per_view": 4,
    "profile.test_gflops_per_video": 4,
    "profile.aggregator_gflops_per_view": 4,
    "profile.params_m": 4,
    "profile.params_m_no_classifier": 4,
    "profile.latency_ms": 4,
    "profile.throughput_clips_s": 4,
    "profile.train_step_ms": 4,
    "profile.train_clips_s": 4,
    "profile.train_videos_s": 4,
    "profile.infer_peak_mem_gb": 3,
    "profile.train_peak_mem_gb": 3,
}
"""Significant figures per cost metric (``harness.numfmt.format_sig``): 167.9 and 0.02131 GFLOPs alike."""

COMPOSITE = {"profile.cost": "profile.gflops_per_view", "profile.test_cost": "profile.test_gflops_per_view"}
"""Compact cost cells ``167.9 x 6``: a per-view cost (the value column) x the views a video takes."""

PER_VIEW = {v: k for k, v in COMPOSITE.items()}
"""A per-view cost named with views at hand is shown as its compact cell (it says how many views a video takes)."""

VIEWS_COLUMNS = ("test.views", "profile.views")
"""Where the views per video are read (the first with values)."""

ACCURACY_METRICS = ("test.top1", "test.top5", "test.mean_class_acc")
"""Accuracies over the test videos: shown with a 95% interval, over videos for a row of one run (recorded in
final.json from its per-video predictions: ``test.top1_ci_low`` ...), over seeds for a row of several
(``harness.report.stats.seed_summary``)."""


def is_accuracy(m: str) -> bool:
    """Whether metric ``m`` is an accuracy over test videos (``ACCURACY_METRICS`` and a label factor's top-1,
    ``test.groups.<factor>.top1``)."""
    return m in ACCURACY_METRICS or (m.startswith("test.groups.") and m.endswith(".top1"))


def interval_columns(m: str) -> tuple[str | None, str | None]:
    """The (low, high) columns of metric ``m``'s 95% interval in the results store ((None, None): none)."""
    if is_accuracy(m):
        return f"{m}_ci_low", f"{m}_ci_high"
    return INTERVALS.get(m, (None, None))


ACCURACY_DECIMALS = 1
"""Decimals of an accuracy and its interval (78.2 [77.6, 78.8]): a 95% interval of a test set is wider than 0.1."""

NO_INTERVAL_MARK = "‡"
"""Marks an accuracy of one run shown without an interval (it kept no per-video predictions)."""

INTERVALS = {
    **{m: (f"{m}_ci_low", f"{m}_ci_high") for m in ACCURACY_METRICS},
    "profile.latency_ms": ("profile.latency_ci_low_ms", "profile.latency_ci_high_ms"),
    "profile.latency_ratio": ("profile.latency_ratio_ci_low", "profile.latency_ratio_ci_high"),
    "profile.train_step_ms": ("profile.train_step_ci_low_ms", "profile.train_step_ci_high_ms"),
    "profile.train_ratio": ("profile.train_ratio_ci_low", "profile.train_ratio_ci_high"),
}
"""A metric's bootstrap 95% interval (low, high columns of the profile record); shown for rows of one run
as ``value [low, high]`` (intervals of several runs do not combine into one)."""

RATIO_METRICS = ("profile.latency_ratio", "profile.train_ratio")
"""Ratios to the baseline timed beside the variant (``profile.baseline``), shown with ``RATIO_DECIMALS``."""

RATIO_DECIMALS = 2
"""Decimals of a ratio and its interval (ratios sit near 1: one column, one number of decimals)."""

RATIO_CI_WARN_WIDTH = 0.05
"""A ratio whose 95% interval is wider than this (high - low) is flagged ``WARN_MARK`` in tables and plots."""

WARN_MARK = "⚠"

TEXT_METRICS = ("profile.baseline",)
"""Metrics that are text, not numbers: a row shows its runs' value(s)."""

DERIVED_METRICS = tuple(COMPOSITE)
"""Metric names that are no results-store column but built from some (validated in grid files)."""

DEFAULT_METRICS = ("test.top1", "test.top5", "profile.cost", "profile.params_m", "profile.latency_ms")
"""Metrics shown for a grid without ``report.metrics`` (those its runs have)."""

_NOT_KEYS = {"run_id", "path", "seed", "status", "grid", "task", "epochs_done", "job_state", "error"}


def metric_label(col: str, batch: str | None = None) -> str:
    """A metric's header; ``batch`` (e.g. ``batch 1``, a table's ``attrs["batch"]``) fills a timing's
    ``{batch}``, else ``the run's batch``."""
    return METRIC_LABELS.get(col, col).replace("{batch}", batch or "the run's batch")


def key_label(col: str) -> str:
    """Header of a row-key column: ``model.split_ratio`` -> ``split_ratio``."""
    return col.split(".", 1)[-1]


@dataclass
class GridMeta:
    """What a report needs from a grid file (``experiments/<name>.yaml``, CONTRACTS.md "Grid files");
    a grid without a file is reported by name with rows and metrics chosen from its runs."""

    name: str
    title: str = ""
    paper_table: str = ""
    paper_reference: str | None = None
    task: str | None = None
    rows: list[str] = field(default_factory=list)
    metrics: list[str] = field(default_factory=list)
    zoo: str | None = None
    """``report.zoo``: the published reference points of the grid's dataset (``harness.report.zoo``)."""
    test_sets: dict = field(default_factory=dict)
    """``experiments/paper/test_sets.csv``: ``{data.name: (videos or None, source)}``, the size of the test list
    behind the paper's numbers (:func:`read_test_sets`)."""
    baseline: dict | None = None
    """``report.baseline``: the config values of the runs every other run is compared with (None: each run's
    backbone; ``harness.report.compare``)."""

    @classmethod
    def load(cls, name: str, experiments_dir: str | os.PathLike = "experiments") -> GridMeta:
        experiments_dir = Path(experiments_dir)
        path = experiments_dir / f"{name}.yaml"
        test_sets = read_test_sets(experiments_dir / "paper" / TEST_SETS_FILE)
        if not path.exists():
            return cls(name=name, test_sets=test_sets)
        from harness.config import read_yaml

        doc = read_yaml(path, "grid file") or {}
        if not isinstance(doc, dict):
            raise ConfigError(f"{path}: expected a mapping at the top level")
        report = doc.get("report") or {}
        if not isinstance(report, dict):
            raise ConfigError(f"{path}: report: must be a mapping (rows, metrics)")
        baseline = report.get("baseline")
        if baseline is not None and not (isinstance(baseline, dict) and baseline):
            raise ConfigError(
                f"{path}: report.baseline: {baseline!r}: expected a mapping, e.g. {{model.split_ratio: 0.125}}"
            )
        ref = doc.get("paper_reference")
        if ref is not None and not isinstance(ref, str):
            raise ConfigError(f"{path}: paper_reference: {ref!r} is not a CSV path, e.g. experiments/paper/<name>.csv")
        zoo = report.get("zoo")
        if zoo is not None and not (isinstance(zoo, str) and zoo.endswith(".csv")):
            raise ConfigError(f"{path}: report.zoo: {zoo!r} is not a CSV path; e.g. experiments/zoo/kinetics400.csv")
        metrics = report.get("metrics") or []
        bad = [m for m in metrics if not isinstance(m, str) or not m.strip()] if isinstance(metrics, list) else metrics
        if bad:
            raise ConfigError(
                f"{path}: report.metrics: {bad!r}: expected a list of metric names (results-store columns such as "
                f"test.top1, or {', '.join(DERIVED_METRICS)})"
            )
        return cls(
            name=name,
            title=str(doc.get("description") or ""),
            paper_table=str(doc.get("paper_table") or ""),
            paper_reference=_resolve_reference(doc.get("paper_reference"), experiments_dir),
            task=doc.get("task"),
            rows=list(report.get("rows") or []),
            metrics=list(report.get("metrics") or []),
            zoo=_resolve_reference(zoo, experiments_dir),
            baseline=dict(baseline) if baseline else None,
            test_sets=test_sets,
        )


TEST_SETS_FILE = "test_sets.csv"
TEST_SET_TOLERANCE = 0.01
"""A run is compared with a paper number only when its test list has the paper's number of videos within 1%."""


def read_test_sets(path: str | os.PathLike) -> dict:
    """``experiments/paper/test_sets.csv`` -> ``{data.name: (videos or None, source)}`` ({} without the file);
    a malformed file raises ConfigError naming it."""
    table, _ = read_paper(path)
    if table.empty:
        return {}
    missing = [c for c in ("data.name", "videos", "source") if c not in table.columns]
    if missing:
        raise ConfigError(f"{path}: missing column(s) {missing}; expected data.name,videos,source")
    out = {}
    for name, videos, source in table[["data.name", "videos", "source"]].itertuples(index=False):
        v = pd.to_numeric(pd.Series([videos]), errors="coerce").iloc[0]
        out[str(name)] = (None if pd.isna(v) else int(v), "" if pd.isna(source) else str(source))
    return out


def check_test_set(rows: pd.DataFrame, test_sets: dict) -> tuple[bool, str]:
    """Whether runs ``rows`` may be compared with a paper number: (True, '') when every run's test list
    (``manifest.test.rows``, else scored + skipped videos) has the reference size of its ``data.name`` within
    ``TEST_SET_TOLERANCE``; else (False, why)."""
    names = rows["data.name"].dropna().unique() if "data.name" in rows.columns else []
    if len(names) != 1:
        return False, "Δ to the paper not shown: the runs name no single dataset (data.name)"
    name = str(names[0])
    videos, _source = test_sets.get(name, (None, ""))
    if videos is None:
        return (
            False,
            f"Δ to the paper not shown: the size of the paper's {name} test list is not verified "
            f"(experiments/paper/{TEST_SETS_FILE})",
        )
    if "manifest.test.rows" in rows.columns and rows["manifest.test.rows"].notna().all():
        sizes = pd.to_numeric(rows["manifest.test.rows"], errors="coerce")
    else:
        scored = pd.to_numeric(rows.get("test.num_videos", pd.Series(np.nan, index=rows.index)), errors="coerce")
        skipped = pd.to_numeric(rows.get("test.num_skipped", pd.Series(0, index=rows.index)), errors="coerce")
        sizes = scored + skipped.fillna(0)
    bad = sizes[(sizes - videos).abs() > TEST_SET_TOLERANCE * videos]
    if sizes.isna().any() or len(bad):
        got = ", ".join(str(int(v)) for v in dict.fromkeys(sizes.dropna())) or "unknown"
        return (
            False,
            f"Δ to the paper not shown: our {name} test list has {got} videos, the paper's {videos} "
            f"(must agree within {TEST_SET_TOLERANCE:.0%})",
        )
    return True, ""


def _resolve_reference(ref: str | None, experiments_dir: Path) -> str | None:
    """A grid's ``paper_reference`` as written (relative to the repository root, e.g.
    ``experiments/paper/x.csv``), else relative to the grid folder's parent, else ``<grids>/paper/<name>``."""
    if not ref:
        return None
    for candidate in (
        Path(ref),
        experiments_dir.parent / ref,
        experiments_dir / ref,
        experiments_dir / "paper" / Path(ref).name,
    ):
        if candidate.exists():
            return str(candidate)
    return str(ref)


def read_paper(path: str | os.PathLike | None) -> tuple[pd.DataFrame, list[str]]:
    """A paper reference CSV -> (table, comment lines). Numeric columns become floats; empty cells
    stay NaN (unverified numbers are never filled in). ``table.attrs["label"]`` names the reference
    column (``paper`` unless a ``# label: NAME`` line says otherwise). A missing file gives an empty
    table; a malformed one raises ConfigError (a ValueError) naming the file and line."""
    if not path or not Path(path).exists():
        return pd.DataFrame(), []
    lines = Path(path).read_text().splitlines()
    notes = [line[1:].strip() for line in lines if line.startswith("#")]
    body = [(i + 1, line) for i, line in enumerate(lines) if line.strip() and not line.startswith("#")]
    if not body:
        return pd.DataFrame(), notes
    parsed = list(csv.reader(io.StringIO("\n".join(line for _, line in body))))
    header = [h.strip() for h in parsed[0]]
    for (lineno, _), cells in zip(body[1:], parsed[1:]):
        if len(cells) != len(header):
            raise ConfigError(f"{path}:{lineno}: {len(cells)} cells, the header has {len(header)} ({header})")
    df = pd.DataFrame([[c.strip() for c in cells] for cells in parsed[1:]], columns=header, dtype=object)
    for col in df.columns:
        filled = df[col] != ""
        converted = pd.to_numeric(df[col].where(filled), errors="coerce")
        if filled.any() and converted[filled].notna().all():
            df[col] = converted.astype(float)
        else:
            df[col] = df[col].where(filled)
    label = next((n.split(":", 1)[1].strip() for n in notes if n.lower().startswith("label:")), "paper")
    df.attrs["label"] = label or "paper"
    return df, notes


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
    rows = [r for r in (meta.rows or varying_columns(runs) or ["model.variant"]) if r in runs.columns]
    rows = rows or ["run_id"]
    metrics = _choose_metrics(meta, done)
    label = paper.attrs.get("label", "paper") if paper is not None else "paper"
    views = _views_column(done)
    attrs = {
        "rows": rows,
        "metrics": metrics,
        "label": label,
        "views": views,
        "batch": _batch_text(done),
        "memory_method": _unique(done, "profile.memory_method"),
        "rounds": _unique(done, "profile.rounds"),
        "train_rounds": _unique(done, "profile.train_rounds"),
    }
    if done.empty:
        table = pd.DataFrame(columns=rows + ["n"])
        table.attrs.update(attrs)
        return table
    keyed = done.assign(_key=[tuple(_key(v) for v in vals) for vals in done[rows].itertuples(index=False)])
    out = []
    skipped = pd.to_numeric(done.get(SKIPPED_COLUMN, pd.Series(dtype=float)), errors="coerce").fillna(0)
    for key, g in keyed.groupby("_key", sort=False):
        rec = {r: g[r].iloc[0] for r in rows}
        rec.update({"_key": key, "n": len(g)})
        if (skipped > 0).any():  # a column only when some run left unreadable test videos out
            rec["skipped"] = int(skipped.loc[g.index].sum())
        for m in metrics:
            if m in TEXT_METRICS:
                rec[m] = " / ".join(str(v) for v in dict.fromkeys(g[m].dropna())) or None
                continue
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
        out.append(rec)
    table = pd.DataFrame(out)
    _add_comparisons(table, keyed, rows, meta, correct if correct is not None else {}, attrs, memo)
    order: dict = {}
    if paper is not None and not paper.empty and all(r in paper.columns for r in rows):
        p = paper
        if "grid" in p.columns and "grid" not in rows:
            p = p[p["grid"].isna() | (p["grid"] == meta.name)]
        keys = [tuple(_key(v) for v in vals) for vals in p[rows].itertuples(index=False)]
        for i, k in enumerate(keys):
            order.setdefault(k, i)
        comparable, why = check_test_set(done, meta.test_sets)
        for m in metrics:
            col = COMPOSITE.get(m, m)  # a compact cost cell compares its per-view cost
            if m not in TEXT_METRICS and col in p.columns and p[col].notna().any():
                lookup = {k: v for k, v in zip(keys, p[col]) if not pd.isna(v)}
                table[f"paper {m}"] = table["_key"].map(lookup).astype(float)
                if comparable or not m.startswith("test."):  # costs are counted, not measured on a test set
                    table[f"delta {m}"] = table[col] - table[f"paper {m}"]
                else:
                    table[f"delta {m}"] = float("nan")
                    attrs["paper_note"] = why
    table["_order"] = [order.get(k, len(order) + i) for i, k in enumerate(table["_key"])]
    table = table.sort_values("_order", kind="stable").drop(columns=["_order", "_key"]).reset_index(drop=True)
    table.attrs.update(attrs)
    return table


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
    pairs = counts
    pairs["_key"] = pairs["run_id"].map(dict(zip(keyed["run_id"], keyed["_key"])))
    pairs["_base_key"] = pairs["baseline_run_id"].map(dict(zip(keyed["run_id"], keyed["_key"])))
    labels = {k: ", ".join(format_key(v) for v in g[rows].iloc[0]) for k, g in keyed.groupby("_key", sort=False)}
    pairs["row"] = pairs["_key"].map(labels)
    pairs["baseline"] = pairs["_base_key"].map(labels)
    attrs["pairs"] = pairs
    table["is baseline"] = table["_key"].isin(set(pairs["_base_key"]))
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
    pooled = pd.DataFrame(pooled)
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
    if hit is not None:
        p_rows = hit["improve"]
    else:
        top1 = pd.to_numeric(keyed.get("test.top1", pd.Series(index=keyed.index, dtype=float)), errors="coerce")
        by_key = {k: top1.loc[g.index].dropna().to_numpy() for k, g in keyed.groupby("_key", sort=False)}
        p_rows = []
        for key, base in zip(pooled["_key"], pooled["_base_key"]):
            x, y = by_key.get(key, np.zeros(0)), by_key.get(base, np.zeros(0)) if base is not None else np.zeros(0)
            p_rows.append(stats.probability_of_improvement(x, y) if len(x) > 1 and len(y) > 1 else {})
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


def format_key(v) -> str:
    """A row-key value as shown: floats without trailing zeros (0.125, 1), text as is."""
    if hasattr(v, "item") and not isinstance(v, (list, tuple, dict)):
        v = v.item()
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def _fmt(v, digits: int = 2) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def _num(r: pd.Series, col: str | None) -> float:
    v = r.get(col, float("nan")) if col else float("nan")
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def flagged(r: pd.Series, m: str) -> bool:
    """Whether row ``r``'s ratio ``m`` has a 95% interval wider than ``RATIO_CI_WARN_WIDTH``."""
    return m in RATIO_METRICS and _num(r, f"{m} high") - _num(r, f"{m} low") > RATIO_CI_WARN_WIDTH


def _has_interval(table: pd.DataFrame, m: str) -> bool:
    return interval_columns(m)[0] is not None and f"{m} low" in table.columns and table[f"{m} low"].notna().any()


def metric_header(table: pd.DataFrame, m: str) -> str:
    """A metric's column header in ``table`` (its label, the runs' batch, ``[95% CI]`` when it has intervals)."""
    return metric_label(m, table.attrs.get("batch")) + (" [95% CI]" if _has_interval(table, m) else "")


def metric_cell(table: pd.DataFrame, r: pd.Series, m: str) -> str:
    """One row's cell of metric ``m``: ``167.9 x 6`` (compact cost), ``1.01 [0.99, 1.03] ⚠`` (a value with
    its interval, flagged when wide), costs with significant figures, others ``mean ± std``; '' when the
    runs did not record it (nothing is made up)."""
    if m in TEXT_METRICS:
        v = r.get(m)
        return "" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)
    if m in COMPOSITE:
        cost, views = _num(r, COMPOSITE[m]), _num(r, table.attrs.get("views"))
        if math.isnan(cost):
            return ""
        return format_sig(cost, 4) + ("" if math.isnan(views) else f" x {views:g}")
    if m in SIG_DIGITS or m in RATIO_METRICS:
        decimals = RATIO_DECIMALS if m in RATIO_METRICS else None
        text = format_interval(
            _num(r, m), _num(r, f"{m} low"), _num(r, f"{m} high"), SIG_DIGITS.get(m, 4), decimals=decimals
        )
        return f"{text} {WARN_MARK}" if text and flagged(r, m) else text
    if is_accuracy(m):
        text = format_interval(_num(r, m), _num(r, f"{m} low"), _num(r, f"{m} high"), decimals=ACCURACY_DECIMALS)
        one = int(_num(r, "n")) == 1 if not math.isnan(_num(r, "n")) else False
        return f"{text} {NO_INTERVAL_MARK}" if text and one and math.isnan(_num(r, f"{m} low")) else text
    digits = DIGITS.get(m, 2)
    std = r.get(f"{m} std", float("nan"))
    spread = "" if _fmt(std) == "" or m.startswith("profile.") or m.endswith(".views") else f" ± {_fmt(std, digits)}"
    text = _fmt(r[m], digits)
    return text + spread if text else ""


def _delta_cell(r: pd.Series, m: str) -> tuple[str, str]:
    """(reference number, Δ) of metric ``m`` in row ``r``, with the metric's decimals."""
    ref, d = _num(r, f"paper {m}"), _num(r, f"delta {m}")
    sig = 4 if m in COMPOSITE else SIG_DIGITS.get(m)
    digits = sig_decimals(ref, sig) if sig else RATIO_DECIMALS if m in RATIO_METRICS else DIGITS.get(m, 2)
    return ("" if math.isnan(ref) else f"{ref:.{digits}f}"), ("" if math.isnan(d) else f"{d:+.{digits}f}")


def display_rows(table: pd.DataFrame, meta: GridMeta | None = None) -> tuple[list[str], list[list[str]]]:
    """Headers and formatted cells: keys, ``n``, each metric (:func:`metric_cell`) with its paper number
    and the delta (``Δ``) beside it where the paper has one."""
    rows = table.attrs.get("rows") or [c for c in (meta.rows if meta else []) if c in table.columns]
    metrics = table.attrs.get("metrics") or [c for c in (meta.metrics if meta else []) if c in table.columns]
    label = table.attrs.get("label", "paper")
    headers = [key_label(r) for r in rows] + ["n"]
    if "skipped" in table.columns:
        headers.append("skipped videos")
    for m in metrics:
        headers.append(metric_header(table, m))
        if f"paper {m}" in table.columns:
            headers += [f"{label} {metric_label(COMPOSITE.get(m, m), table.attrs.get('batch'))}", "Δ"]
    paired = "paired delta" in table.columns
    improve = "P(beats)" in table.columns
    if paired:
        headers += ["baseline", "Δ top-1 vs baseline [95% CI]", "McNemar p"]
    if improve:
        headers.append("P(beats baseline) [95% CI]")
    cells = []
    for _, r in table.iterrows():
        line = [format_key(r[c]) for c in rows] + [str(int(r["n"]))]
        if "skipped" in table.columns:
            line.append(str(int(r["skipped"])))
        for m in metrics:
            line.append(metric_cell(table, r, m))
            if f"paper {m}" in table.columns:
                line += _delta_cell(r, m)
        if paired:
            line += paired_cells(r, is_baseline=bool(r.get("is baseline")))
        if improve:
            line.append(
                format_interval(_num(r, "P(beats)"), _num(r, "P(beats) low"), _num(r, "P(beats) high"), decimals=2)
            )
        cells.append(line)
    return headers, cells


RESOLVED_MARK = "✓"
"""Marks a paired Δ whose 95% interval excludes 0 (resolved at that confidence)."""


def paired_cells(r: pd.Series, *, is_baseline: bool = False) -> list[str]:
    """(baseline, Δ top-1 [95% CI] with the resolved mark, McNemar p) of a table row; a baseline row says so,
    a row that could not be paired says why."""
    if math.isnan(_num(r, "paired delta")):
        why = r.get("paired why")
        why = why if isinstance(why, str) else ("(baseline)" if is_baseline else "(no baseline)")
        base = r.get("baseline")
        return [base if isinstance(base, str) else "", why, ""]
    delta = stats.format_delta(
        {"delta": _num(r, "paired delta"), "low": _num(r, "paired low"), "high": _num(r, "paired high")},
        decimals=ACCURACY_DECIMALS,
    )
    mark = f" {RESOLVED_MARK}" if bool(r.get("paired resolved")) else ""
    return [str(r.get("baseline")), delta + mark, stats.format_p(_num(r, "paired p"))]


def table_notes(table: pd.DataFrame) -> list[str]:
    """What the table's cells mean, one sentence each (printed under the table, in the LaTeX caption):
    the compact cost's convention, the intervals, the ratios' baseline, the flag's threshold, memory."""
    metrics = table.attrs.get("metrics") or []
    notes = []
    for m in metrics:
        if m in COMPOSITE:
            crop = " at the test crop" if m == "profile.test_cost" else ""
            notes.append(
                f"{metric_label(m)}: GFLOPs per view{crop} (fvcore, 1 multiply-add = 1 FLOP) x views (clips x crops)."
            )
    timed = [m for m in metrics if m in ("profile.latency_ms", "profile.train_step_ms")]
    if timed:

        def over(key: str) -> str:
            rounds = table.attrs.get(key) or []
            return f" (over {int(rounds[0])} interleaved rounds)" if len(rounds) == 1 else ""

        what = " and ".join(
            {
                "profile.latency_ms": f"forward pass{over('rounds')}",
                "profile.train_step_ms": f"training step (fwd + bwd + SGD){over('train_rounds')}",
            }[m]
            for m in timed
        )
        ci = any(_has_interval(table, m) for m in timed)
        batch = table.attrs.get("batch") or "the run's batch"
        notes.append(
            f"Timings: median ms per {what} at {batch}"
            + ("; [low, high]: bootstrap 95% interval of the median (rows of one run)." if ci else ".")
        )
    if table.attrs.get("paper_note"):
        notes.append(table.attrs["paper_note"] + ".")
    accuracies = [m for m in metrics if is_accuracy(m)]
    if accuracies:
        n = pd.to_numeric(table.get("n", pd.Series(dtype=float)), errors="coerce")
        notes.append(
            "Accuracies: [low, high] is a 95% interval: over the test videos for a row of one run (Wilson for "
            "top-1, top-5 and factor accuracies, a seeded bootstrap over videos for mean class accuracy), over "
            "seeds for a row of several (t interval of the mean, clipped to [0, 100]; `n` seeds)."
        )
        if len(n) and (n <= 1).all():
            notes.append(
                "Every row is one seed: seed-to-seed noise is not measured (the intervals are over videos only)."
            )
        if any(NO_INTERVAL_MARK in metric_cell(table, r, m) for _, r in table.iterrows() for m in accuracies):
            notes.append(f"{NO_INTERVAL_MARK}: no interval (the run kept no per-video predictions).")
    if "paired delta" in table.columns:
        notes.append(
            "Δ top-1 vs baseline: this row's top-1 minus its baseline row's on the same test videos, seed by seed "
            "and pooled over seed pairs (videos unreadable in either run left out); [low, high]: paired "
            f"bootstrap 95% interval; {RESOLVED_MARK}: the interval excludes 0 (resolved); McNemar p: exact "
            "two-sided test on the videos the two runs answer differently. Runs tested on different lists are "
            "never paired."
        )
    if "P(beats)" in table.columns:
        notes.append(
            "P(beats baseline): the probability that a seed of this row scores a higher top-1 than a seed of its "
            "baseline (ties count half; over all seed pairs), with a bootstrap 95% interval over seeds"
            + (
                f" (with {few} seeds a side the bootstrap interval is too narrow: read it as a rough range)."
                if (few := int(pd.to_numeric(table.get("n"), errors="coerce").min())) < 5
                else "."
            )
        )
    ratios = [m for m in metrics if m in RATIO_METRICS]
    if ratios:
        notes.append(
            "Ratio to baseline: median over rounds of (variant time / baseline time), the baseline (column "
            "baseline; none for a backbone itself) timed in the same process, alternating with the variant; "
            "[low, high]: bootstrap 95% interval. Each row's absolute times come from its own process, so "
            "compare variants through this ratio, not by subtracting times of two rows."
        )
        if any(flagged(r, m) for _, r in table.iterrows() for m in ratios):
            notes.append(
                f"{WARN_MARK}: the ratio's 95% interval is wider than {RATIO_CI_WARN_WIDTH:g} (high - low): the "
                "difference from the baseline is not resolved at that precision."
            )
    if any(m in ("profile.infer_peak_mem_gb", "profile.train_peak_mem_gb") for m in metrics):
        how = table.attrs.get("memory_method") or []
        notes.append(
            "Peak memory: GB = 1e9 bytes; inference: one forward pass, training: one training step (weights, "
            "gradients, momentum, input and activations)"
            + (f"; measured as {' / '.join(map(str, how))}." if how else ".")
        )
    return notes


def pair_rows(table: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    """Headers and cells of the seed-by-seed paired comparisons behind a table's pooled Δ (``attrs["pairs"]``):
    row, baseline, seed, videos paired, Δ top-1 [95% CI] with the resolved mark, McNemar p, the two run ids."""
    pairs = table.attrs.get("pairs")
    headers = ["row", "baseline", "seed", "videos", "Δ top-1 [95% CI]", "McNemar p", "run", "baseline run"]
    cells = []
    if pairs is None or pairs.empty:
        return headers, cells
    for p in pairs.to_dict("records"):
        if isinstance(p.get("why"), str):
            delta, pval = p["why"], ""
        else:
            delta = stats.format_delta(p, decimals=ACCURACY_DECIMALS) + (f" {RESOLVED_MARK}" if p["resolved"] else "")
            pval = stats.format_p(p["p_mcnemar"])
        videos = str(int(p["n"])) + (f" ({int(p['dropped'])} unreadable left out)" if p.get("dropped") else "")
        cells.append(
            [
                str(p["row"]),
                str(p["baseline"]),
                format_key(p["seed"]),
                videos,
                delta,
                pval,
                p["run_id"],
                p["baseline_run_id"],
            ]
        )
    return headers, cells


MAX_PAIR_ROWS = 40
"""A table's seed-by-seed pairs are listed under it up to this many; more are in its ``<grid>.pairs.csv`` only."""

PAIR_CSV_COLUMNS = ("row", "baseline", "seed", "n", "dropped", "delta", "low", "high", "p_mcnemar", "resolved", "why")


def pairs_csv(table: pd.DataFrame) -> str | None:
    """Every seed pair behind a table's paired Δ as CSV text (None without pairs): ``row``, ``baseline``, ``seed``,
    ``n`` (videos paired), ``dropped`` (unreadable in either run), ``delta`` / ``low`` / ``high`` (points, paired
    bootstrap 95%), ``p_mcnemar``, ``resolved``, ``why`` (why not paired), ``run_id``, ``baseline_run_id``."""
    pairs = table.attrs.get("pairs")
    if pairs is None or pairs.empty:
        return None
    return pairs[[*PAIR_CSV_COLUMNS, "run_id", "baseline_run_id"]].to_csv(index=False)


def to_markdown(table: pd.DataFrame, meta: GridMeta | None = None) -> str:
    """GitHub-flavoured Markdown (pipe table)."""
    headers, cells = display_rows(table, meta)
    text = tabulate(cells, headers=headers, tablefmt="github", disable_numparse=True)
    notes = table_notes(table)
    text += "\n\n" + "\n".join(f"- {n}" for n in notes) if notes else ""
    pairs = table.attrs.get("pairs")
    where = table.attrs.get("pairs_file")
    if pairs is not None and len(pairs) > MAX_PAIR_ROWS:
        text += f"\n\n{len(pairs)} seed pairs behind the pooled Δ above" + (
            f": every pair in [`{where}`]({where})." if where else "."
        )
    elif pairs is not None and len(pairs):
        pair_headers, pair_cells = pair_rows(table)
        text += "\n\nPaired comparisons, seed by seed (the pooled Δ above concatenates these"
        text += f"; also in [`{where}`]({where})):\n\n" if where else "):\n\n"
        text += tabulate(pair_cells, headers=pair_headers, tablefmt="github", disable_numparse=True)
    return text


def to_terminal(table: pd.DataFrame, meta: GridMeta | None = None) -> str:
    """Plain aligned text for a terminal."""
    headers, cells = display_rows(table, meta)
    text = tabulate(cells, headers=headers, tablefmt="simple", disable_numparse=True)
    notes = table_notes(table)
    return text + ("\n" + "\n".join(notes) if notes else "")


_LATEX_ESCAPES = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


def latex_escape(text: str) -> str:
    """Escape LaTeX specials; ``±`` and ``Δ`` become math, the ``⚠`` flag a dagger."""
    text = "".join(_LATEX_ESCAPES.get(c, c) for c in str(text))
    return text.replace("±", r"$\pm$").replace("Δ", r"$\Delta$").replace(WARN_MARK, r"$\dagger$")


def _caption(title: str, notes: list[str]) -> str:
    """The table's title, then its notes."""
    if not notes:
        return title
    return " ".join([title if title.endswith((".", ":", "?", "!")) else f"{title}.", *notes])


def to_latex(table: pd.DataFrame, meta: GridMeta, caption: str | None = None) -> str:
    """A booktabs tabular inside a table environment, ready to paste (needs ``\\usepackage{booktabs}``):
    key columns left-aligned, ``n`` and numbers right-aligned."""
    headers, cells = display_rows(table, meta)
    n_keys = headers.index("n")
    spec = "l" * n_keys + "r" * (len(headers) - n_keys)
    lines = [
        r"\begin{table}[t]",
        r"\centering",
        rf"\begin{{tabular}}{{{spec}}}",
        r"\toprule",
        " & ".join(latex_escape(h) for h in headers) + r" \\",
        r"\midrule",
    ]
    lines += [" & ".join(latex_escape(c) for c in row) + r" \\" for row in cells]
    lines += [
        r"\bottomrule",
        r"\end{tabular}",
        rf"\caption{{{latex_escape(_caption(caption or meta.paper_table or meta.name, table_notes(table)))}}}",
        rf"\label{{tab:{meta.name.replace('_', '-')}}}",
        r"\end{table}",
    ]
    return "\n".join(lines) + "\n"
