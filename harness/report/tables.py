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

import pandas as pd
from tabulate import tabulate

from harness.errors import ConfigError

METRIC_LABELS = {
    "test.top1": "top-1 (%)",
    "test.top5": "top-5 (%)",
    "test.mean_class_acc": "mean class acc. (%)",
    "test.mAP": "mAP (%)",
    "test.groups.order.top1": "order acc. (%)",
    "test.groups.motion.top1": "motion acc. (%)",
    "test.views": "views (clips x crops)",
    "profile.gflops_per_view": "GFLOPs/view (fvcore, 1 MAC = 1 FLOP)",
    "profile.gflops_per_video": "GFLOPs/video (per view x views)",
    "profile.views": "views (clips x crops)",
    "profile.test_size": "test crop (px)",
    "profile.test_gflops_per_view": "test GFLOPs/view (at the test crop)",
    "profile.test_gflops_per_video": "test GFLOPs/video (per test view x views)",
    "profile.params_m": "Params (M, incl. classifier)",
    "profile.params_m_no_classifier": "Params (M, w/o classifier)",
    "profile.aggregator_params": "aggregator params",
    "profile.latency_ms": "latency (ms/view, batch 1)",
    "profile.throughput_clips_s": "throughput (clips/s)",
    "last.val_top1": "last val top-1 (%)",
    "wall_time_s": "wall time (s)",
}
"""Column headers that say what they count."""

DIGITS = {
    "test.views": 0,
    "profile.test_size": 0,
    "profile.views": 0,
    "profile.aggregator_params": 0,
    "profile.latency_ms": 1,
    "wall_time_s": 0,
}
"""Decimals shown per metric (default 2)."""

DEFAULT_METRICS = ("test.top1", "test.top5", "profile.gflops_per_view", "profile.params_m", "profile.latency_ms")
"""Metrics shown for a grid without ``report.metrics`` (those its runs have)."""

COST_METRICS = ("profile.gflops_per_view", "profile.gflops_per_video")
"""Per-view costs: a ``views`` column is added beside them so totals compare with other model zoos."""

_NOT_KEYS = {"run_id", "path", "seed", "status", "grid", "task", "epochs_done", "job_state", "error"}


def metric_label(col: str) -> str:
    return METRIC_LABELS.get(col, col)


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

    @classmethod
    def load(cls, name: str, experiments_dir: str | os.PathLike = "experiments") -> GridMeta:
        experiments_dir = Path(experiments_dir)
        path = experiments_dir / f"{name}.yaml"
        if not path.exists():
            return cls(name=name)
        from harness.config import read_yaml

        doc = read_yaml(path, "grid file") or {}
        if not isinstance(doc, dict):
            raise ConfigError(f"{path}: expected a mapping at the top level")
        report = doc.get("report") or {}
        if not isinstance(report, dict):
            raise ConfigError(f"{path}: report: must be a mapping (rows, metrics)")
        zoo = report.get("zoo")
        if zoo is not None and not (isinstance(zoo, str) and zoo.endswith(".csv")):
            raise ConfigError(f"{path}: report.zoo: {zoo!r} is not a CSV path; e.g. experiments/zoo/kinetics400.csv")
        return cls(
            name=name,
            title=str(doc.get("description") or ""),
            paper_table=str(doc.get("paper_table") or ""),
            paper_reference=_resolve_reference(doc.get("paper_reference"), experiments_dir),
            task=doc.get("task"),
            rows=list(report.get("rows") or []),
            metrics=list(report.get("metrics") or []),
            zoo=_resolve_reference(zoo, experiments_dir),
        )


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


def _key(value) -> str:
    """Row keys compared as text (JSON for lists), so 0.125 == '0.125', 1.0 == 1 and masks compare."""
    if hasattr(value, "item") and not isinstance(value, (list, tuple, dict)):
        value = value.item()  # numpy scalars
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return value if isinstance(value, str) else json.dumps(value)


def varying_columns(runs: pd.DataFrame) -> list[str]:
    """Config columns whose value differs across ``runs`` (not seed, run id, grid or task)."""
    cols = runs.attrs.get("config_columns") or [
        c for c in runs.columns if c.split(".", 1)[0] in ("model", "data", "train", "eval")
    ]
    out = []
    for col in cols:
        if col in _NOT_KEYS or col not in runs.columns:
            continue
        if runs[col].map(_key).nunique(dropna=False) > 1:
            out.append(col)
    return out


def _choose_metrics(meta: GridMeta, done: pd.DataFrame) -> list[str]:
    metrics = [m for m in (meta.metrics or DEFAULT_METRICS) if m in done.columns and done[m].notna().any()]
    for cost in COST_METRICS:  # a per-view cost says how many views a video takes
        if cost in metrics:
            views = next(
                (v for v in ("test.views", "profile.views") if v in done.columns and done[v].notna().any()), None
            )
            if views and views not in metrics:
                metrics.insert(metrics.index(cost) + 1, views)
            break
    return metrics


SKIPPED_COLUMN = "test.num_skipped"
"""Unreadable test videos a run left out (data.on_error=skip): the ``skipped`` column (summed over the row's
runs) when any run has some."""


def grid_table(runs: pd.DataFrame, meta: GridMeta, paper: pd.DataFrame | None = None) -> pd.DataFrame:
    """Aggregate the *done* runs of one grid.

    One row per combination of the row keys (``meta.rows``, else the config columns that vary across
    ``runs``); columns: the keys, ``n`` (runs averaged, i.e. seeds), ``skipped`` (unreadable test videos
    left out, summed over the runs; only when a run has some), for each metric its mean and
    ``<metric> std`` (sample std, ddof = 1; NaN for one run), and for each metric the paper has a
    number for: ``paper <metric>`` and ``delta <metric>`` (ours - paper). Rows in the paper CSV's
    order first, then ours in order of appearance (``harness.report.index.current_runs`` puts a grid's
    runs in the grid file's order). ``table.attrs`` holds ``rows``, ``metrics`` and the reference ``label``."""
    done = runs[runs["status"] == "done"]
    rows = [r for r in (meta.rows or varying_columns(runs) or ["model.variant"]) if r in runs.columns]
    rows = rows or ["run_id"]
    metrics = _choose_metrics(meta, done)
    label = paper.attrs.get("label", "paper") if paper is not None else "paper"
    attrs = {"rows": rows, "metrics": metrics, "label": label}
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
            vals = pd.to_numeric(g[m], errors="coerce").dropna()
            rec[m] = float(vals.mean()) if len(vals) else float("nan")
            rec[f"{m} std"] = float(vals.std(ddof=1)) if len(vals) > 1 else float("nan")
        out.append(rec)
    table = pd.DataFrame(out)
    order: dict = {}
    if paper is not None and not paper.empty and all(r in paper.columns for r in rows):
        p = paper
        if "grid" in p.columns and "grid" not in rows:
            p = p[p["grid"].isna() | (p["grid"] == meta.name)]
        keys = [tuple(_key(v) for v in vals) for vals in p[rows].itertuples(index=False)]
        for i, k in enumerate(keys):
            order.setdefault(k, i)
        for m in metrics:
            if m in p.columns and p[m].notna().any():
                lookup = {k: v for k, v in zip(keys, p[m]) if not pd.isna(v)}
                table[f"paper {m}"] = table["_key"].map(lookup).astype(float)
                table[f"delta {m}"] = table[m] - table[f"paper {m}"]
    table["_order"] = [order.get(k, len(order) + i) for i, k in enumerate(table["_key"])]
    table = table.sort_values("_order", kind="stable").drop(columns=["_order", "_key"]).reset_index(drop=True)
    table.attrs.update(attrs)
    return table


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


def display_rows(table: pd.DataFrame, meta: GridMeta | None = None) -> tuple[list[str], list[list[str]]]:
    """Headers and formatted cells: keys, ``n``, each metric as ``mean ± std`` (costs without spread)
    with its paper number and the delta (``Δ``) beside it where the paper has one."""
    rows = table.attrs.get("rows") or [c for c in (meta.rows if meta else []) if c in table.columns]
    metrics = table.attrs.get("metrics") or [c for c in (meta.metrics if meta else []) if c in table.columns]
    label = table.attrs.get("label", "paper")
    headers = [key_label(r) for r in rows] + ["n"]
    if "skipped" in table.columns:
        headers.append("skipped videos")
    for m in metrics:
        headers.append(metric_label(m))
        if f"paper {m}" in table.columns:
            headers += [f"{label} {metric_label(m)}", "Δ"]
    cells = []
    for _, r in table.iterrows():
        line = [format_key(r[c]) for c in rows] + [str(int(r["n"]))]
        if "skipped" in table.columns:
            line.append(str(int(r["skipped"])))
        for m in metrics:
            digits = DIGITS.get(m, 2)
            mean, std = r[m], r.get(f"{m} std", float("nan"))
            spread = (
                "" if _fmt(std) == "" or m.startswith("profile.") or m.endswith(".views") else f" ± {_fmt(std, digits)}"
            )
            line.append(_fmt(mean, digits) + spread)
            if f"paper {m}" in table.columns:
                d = r[f"delta {m}"]
                line += [_fmt(r[f"paper {m}"], digits), "" if _fmt(d) == "" else f"{d:+.{digits}f}"]
        cells.append(line)
    return headers, cells


def to_markdown(table: pd.DataFrame, meta: GridMeta | None = None) -> str:
    """GitHub-flavoured Markdown (pipe table)."""
    headers, cells = display_rows(table, meta)
    return tabulate(cells, headers=headers, tablefmt="github", disable_numparse=True)


def to_terminal(table: pd.DataFrame, meta: GridMeta | None = None) -> str:
    """Plain aligned text for a terminal."""
    headers, cells = display_rows(table, meta)
    return tabulate(cells, headers=headers, tablefmt="simple", disable_numparse=True)


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
    """Escape LaTeX specials; ``±`` and ``Δ`` become math."""
    return "".join(_LATEX_ESCAPES.get(c, c) for c in str(text)).replace("±", r"$\pm$").replace("Δ", r"$\Delta$")


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
        rf"\caption{{{latex_escape(caption or meta.paper_table or meta.name)}}}",
        rf"\label{{tab:{meta.name.replace('_', '-')}}}",
        r"\end{table}",
    ]
    return "\n".join(lines) + "\n"
