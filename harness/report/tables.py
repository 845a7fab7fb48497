"""Paper-style tables from the results store: mean +- std over seeds, run counts, the paper's
number beside ours and the difference; GitHub Markdown, LaTeX (booktabs) and terminal output."""

from __future__ import annotations

import csv
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from tabulate import tabulate

METRIC_LABELS = {
    "test.top1": "top-1 (%)",
    "test.top5": "top-5 (%)",
    "test.mean_class_acc": "mean class acc. (%)",
    "test.groups.order.top1": "order acc. (%)",
    "test.groups.motion.top1": "motion acc. (%)",
    "test.views": "views (clips x crops)",
    "profile.gflops_per_view": "GFLOPs/view (fvcore, 1 MAC = 1 FLOP)",
    "profile.gflops_per_video": "GFLOPs/video (x views)",
    "profile.views": "views (clips x crops)",
    "profile.params_m": "Params (M, incl. classifier)",
    "profile.params_m_no_classifier": "Params (M, w/o classifier)",
    "profile.aggregator_params": "aggregator params",
    "profile.latency_ms": "latency (ms, batch 1)",
    "profile.throughput_clips_s": "throughput (clips/s)",
    "train.clips_per_s": "train clips/s",
}
"""Column headers that say what they count."""


def metric_label(col: str) -> str:
    return METRIC_LABELS.get(col, col)


@dataclass
class GridMeta:
    """What a report needs from a grid file (experiments/<name>.yaml); tolerant of its absence."""

    name: str
    title: str = ""
    paper_table: str = ""
    paper_reference: str | None = None
    rows: list[str] = field(default_factory=list)
    metrics: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, name: str, experiments_dir: str | os.PathLike = "experiments") -> "GridMeta":
        path = Path(experiments_dir) / f"{name}.yaml"
        if not path.exists():
            return cls(name=name)
        import yaml

        doc = yaml.safe_load(path.read_text()) or {}
        report = doc.get("report") or {}
        return cls(name=name, title=doc.get("description", ""), paper_table=doc.get("paper_table", ""),
                   paper_reference=doc.get("paper_reference"), rows=list(report.get("rows") or []),
                   metrics=list(report.get("metrics") or []))


def read_paper(path: str | os.PathLike | None) -> tuple[pd.DataFrame, list[str]]:
    """A paper reference CSV: ``# `` comment lines (source, notes) then a header row. Empty cells stay
    empty (NaN): unverified numbers are never filled in."""
    if not path or not Path(path).exists():
        return pd.DataFrame(), []
    lines = Path(path).read_text().splitlines()
    notes = [line[1:].strip() for line in lines if line.startswith("#")]
    body = [line for line in lines if line.strip() and not line.startswith("#")]
    if not body:
        return pd.DataFrame(), notes
    rows = list(csv.DictReader(body))
    df = pd.DataFrame(rows)
    for col in df.columns:
        converted = pd.to_numeric(df[col].replace("", float("nan")), errors="coerce")
        if converted.notna().sum() == (df[col] != "").sum() and (df[col] != "").any():
            df[col] = converted
        else:
            df[col] = df[col].replace("", float("nan"))
    return df, notes


def _key(value) -> str:
    """Row keys compared as text (JSON for lists), so 0.125 == '0.125' and masks compare."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, float) and math.isnan(value):
        return ""
    return value if isinstance(value, str) else json.dumps(value)


def varying_columns(runs: pd.DataFrame) -> list[str]:
    skip = {"run_id", "path", "seed", "status", "epochs_done", "grid", "task"}
    out = []
    for col in runs.columns:
        if col in skip or not (col.startswith("model.") or col.startswith("data.") or col.startswith("train.")
                                or col.startswith("eval.")):
            continue
        if runs[col].astype(str).nunique(dropna=False) > 1:
            out.append(col)
    return out


def grid_table(runs: pd.DataFrame, meta: GridMeta, paper: pd.DataFrame | None = None) -> pd.DataFrame:
    """Aggregate the *done* runs of one grid: one row per combination of ``meta.rows`` (or of the
    config columns that vary), ``n`` runs, mean and std of each metric over seeds, and for each metric
    the paper has: ``paper <metric>`` and ``delta <metric>`` (ours - paper). Rows in the paper's order
    first, then ours."""
    done = runs[runs["status"] == "done"]
    rows = meta.rows or varying_columns(runs) or ["model.variant"]
    rows = [r for r in rows if r in runs.columns] or ["run_id"]
    metrics = [m for m in (meta.metrics or ["test.top1"]) if m in done.columns]
    if done.empty:
        return pd.DataFrame(columns=rows + ["n"])
    keyed = done.assign(**{f"_k{i}": done[r].map(_key) for i, r in enumerate(rows)})
    kcols = [f"_k{i}" for i in range(len(rows))]
    out = []
    for key, g in keyed.groupby(kcols, sort=False, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        rec = {r: g[r].iloc[0] for r in rows}
        rec.update({"_key": tuple(key), "n": len(g)})
        for m in metrics:
            vals = pd.to_numeric(g[m], errors="coerce").dropna()
            rec[m] = vals.mean() if len(vals) else float("nan")
            rec[f"{m} std"] = vals.std(ddof=1) if len(vals) > 1 else float("nan")
        out.append(rec)
    table = pd.DataFrame(out)
    order = {}
    if paper is not None and not paper.empty and all(r in paper.columns for r in rows):
        p = paper
        if "grid" in p.columns:
            p = p[p["grid"].isna() | (p["grid"] == meta.name)]
        p = p.assign(_key=[tuple(_key(v) for v in vals) for vals in p[rows].itertuples(index=False)])
        for i, k in enumerate(p["_key"]):
            order.setdefault(k, i)
        for m in metrics:
            if m in p.columns and p[m].notna().any():
                lookup = dict(zip(p["_key"], p[m]))
                table[f"paper {m}"] = table["_key"].map(lookup).astype(float)
                table[f"delta {m}"] = table[m] - table[f"paper {m}"]
    table["_order"] = table["_key"].map(lambda k: order.get(k, len(order) + 1))
    table = table.sort_values("_order", kind="stable").drop(columns=["_order", "_key"]).reset_index(drop=True)
    return table


def _fmt(v, digits: int = 2) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def display_rows(table: pd.DataFrame, meta: GridMeta) -> tuple[list[str], list[list[str]]]:
    """Headers and formatted cells: metric as 'mean ± std', paper and delta columns beside it."""
    rows = [c for c in table.columns if c in (meta.rows or []) or (
        not meta.rows and not any(c.startswith(p) for p in ("test.", "profile.", "paper ", "delta ", "n"))
        and not c.endswith(" std"))]
    metrics = [c for c in table.columns if c in (meta.metrics or ["test.top1"])]
    headers = [r.split(".", 1)[-1] for r in rows] + ["n"]
    for m in metrics:
        headers.append(metric_label(m))
        if f"paper {m}" in table.columns:
            headers += [f"paper {metric_label(m)}", "Δ"]
    cells = []
    for _, r in table.iterrows():
        line = [_fmt(r[c]) for c in rows] + [str(int(r["n"]))]
        for m in metrics:
            mean, std = r[m], r.get(f"{m} std", float("nan"))
            spread = "" if _fmt(std) == "" or m.startswith("profile.") else f" ± {_fmt(std)}"  # costs: no spread
            line.append(_fmt(mean) + spread)
            if f"paper {m}" in table.columns:
                d = r[f"delta {m}"]
                line += [_fmt(r[f"paper {m}"]), "" if _fmt(d) == "" else f"{d:+.2f}"]
        cells.append(line)
    return headers, cells


def to_markdown(table: pd.DataFrame, meta: GridMeta) -> str:
    headers, cells = display_rows(table, meta)
    return tabulate(cells, headers=headers, tablefmt="github", disable_numparse=True)


def to_terminal(table: pd.DataFrame, meta: GridMeta) -> str:
    headers, cells = display_rows(table, meta)
    return tabulate(cells, headers=headers, tablefmt="simple", disable_numparse=True)


_LATEX_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def latex_escape(text: str) -> str:
    return "".join(_LATEX_ESCAPES.get(c, c) for c in str(text)).replace("±", r"$\pm$").replace("Δ", r"$\Delta$")


def to_latex(table: pd.DataFrame, meta: GridMeta, caption: str | None = None) -> str:
    """A booktabs tabular inside a table environment, ready to paste (needs \\usepackage{booktabs})."""
    headers, cells = display_rows(table, meta)
    n_keys = headers.index("n")  # key columns left-aligned, counts and numbers right-aligned
    spec = "l" * n_keys + "r" * (len(headers) - n_keys)
    lines = [r"\begin{table}[t]", r"\centering", rf"\begin{{tabular}}{{{spec}}}", r"\toprule",
             " & ".join(latex_escape(h) for h in headers) + r" \\", r"\midrule"]
    lines += [" & ".join(latex_escape(c) for c in row) + r" \\" for row in cells]
    lines += [r"\bottomrule", r"\end{tabular}",
              rf"\caption{{{latex_escape(caption or meta.paper_table or meta.name)}}}",
              rf"\label{{tab:{meta.name.replace('_', '-')}}}", r"\end{table}"]
    return "\n".join(lines) + "\n"
