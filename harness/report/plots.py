"""Plots (matplotlib, Agg): accuracy vs GFLOPs with the Pareto front, latency vs GFLOPs, ablation
curves with error bars, training curves. Each function writes PNG and/or SVG and returns metadata
(paths, axis labels, number of points) so that callers and tests need not parse images."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from harness.report.tables import metric_label  # noqa: E402


def pareto_front(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Indices of points not dominated (lower x and higher y is better), sorted by x."""
    order = np.lexsort((-y, x))
    front, best = [], -np.inf
    for i in order:
        if y[i] > best:
            front.append(i)
            best = y[i]
    return np.array(front, dtype=int)


def _save(fig, out: Path, formats: tuple[str, ...]) -> list[str]:
    out.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in formats:
        path = out.with_suffix(f".{fmt}")
        fig.savefig(path, dpi=130, bbox_inches="tight")
        paths.append(str(path))
    plt.close(fig)
    return paths


def _points(table: pd.DataFrame, x: str, y: str, label: str) -> pd.DataFrame:
    cols = [c for c in (x, y, label, f"{y} std") if c in table.columns]
    pts = table[cols].copy()
    pts[x] = pd.to_numeric(pts[x], errors="coerce")
    pts[y] = pd.to_numeric(pts[y], errors="coerce")
    return pts.dropna(subset=[x, y])


def scatter_tradeoff(table: pd.DataFrame, out: str | os.PathLike, *, x: str = "profile.gflops_per_view",
                     y: str = "test.top1", label: str = "model.variant", title: str = "",
                     pareto: bool = True, formats: tuple[str, ...] = ("png", "svg"), note: str = "") -> dict:
    """One labelled point per row of an aggregated table; the Pareto front (cheaper and better) drawn."""
    pts = _points(table, x, y, label)
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    xs, ys = pts[x].to_numpy(float), pts[y].to_numpy(float)
    yerr = pts[f"{y} std"].to_numpy(float) if f"{y} std" in pts.columns else None
    ax.errorbar(xs, ys, yerr=None if yerr is None else np.nan_to_num(yerr), fmt="o", capsize=3, color="tab:blue",
                label="runs (mean ± std over seeds)" if yerr is not None else "runs")
    labels = pts[label].astype(str).tolist() if label in pts.columns else [""] * len(pts)
    for xi, yi, text in zip(xs, ys, labels):
        ax.annotate(text, (xi, yi), textcoords="offset points", xytext=(4, 4), fontsize=8)
    front = pareto_front(xs, ys) if pareto and len(xs) else np.array([], dtype=int)
    if len(front) > 1:
        ax.plot(xs[front], ys[front], "--", color="tab:red", label="Pareto front")
    ax.set_xlabel(metric_label(x))
    ax.set_ylabel(metric_label(y))
    ax.set_title(title or f"{metric_label(y)} vs {metric_label(x)}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    if note:
        fig.text(0.01, -0.02, note, fontsize=7, color="gray")
    paths = _save(fig, Path(out), formats)
    return {"paths": paths, "xlabel": metric_label(x), "ylabel": metric_label(y), "points": len(xs),
            "pareto": [labels[i] for i in front], "title": ax.get_title()}


def bar_metric(table: pd.DataFrame, out: str | os.PathLike, *, y: str, label: str = "model.variant",
               chance: float | None = None, title: str = "", formats: tuple[str, ...] = ("png", "svg")) -> dict:
    """One bar per row (mean, std error bar), with an optional dashed chance level."""
    pts = table[[c for c in (label, y, f"{y} std") if c in table.columns]].dropna(subset=[y])
    fig, ax = plt.subplots(figsize=(max(5.0, 0.9 * len(pts) + 1.5), 4.0))
    yerr = np.nan_to_num(pts[f"{y} std"].to_numpy(float)) if f"{y} std" in pts.columns else None
    xs = np.arange(len(pts))
    ax.bar(xs, pts[y].to_numpy(float), yerr=yerr, capsize=3, color="tab:blue", alpha=0.8)
    ax.set_xticks(xs, pts[label].astype(str).tolist(), rotation=30, ha="right")
    if chance is not None:
        ax.axhline(chance, ls="--", color="tab:red", label=f"chance ({chance:g}%)")
        ax.legend(fontsize=8)
    ax.set_ylabel(metric_label(y))
    ax.set_title(title or metric_label(y))
    ax.grid(alpha=0.3, axis="y")
    paths = _save(fig, Path(out), formats)
    return {"paths": paths, "ylabel": ax.get_ylabel(), "points": len(pts), "title": ax.get_title()}


def ablation_curve(table: pd.DataFrame, knob: str, out: str | os.PathLike, *, y: str = "test.top1",
                   title: str = "", formats: tuple[str, ...] = ("png", "svg")) -> dict:
    """y (mean, std error bars) against a numeric knob (split ratio, alpha, kernel size, U)."""
    pts = _points(table, knob, y, knob).sort_values(knob)
    fig, ax = plt.subplots(figsize=(5.6, 4.0))
    yerr = pts[f"{y} std"].to_numpy(float) if f"{y} std" in pts.columns else None
    ax.errorbar(pts[knob], pts[y], yerr=None if yerr is None else np.nan_to_num(yerr), marker="o", capsize=3)
    ax.set_xlabel(knob.split(".", 1)[-1])
    ax.set_ylabel(metric_label(y))
    ax.set_title(title or f"{metric_label(y)} vs {knob.split('.', 1)[-1]}")
    ax.grid(alpha=0.3)
    paths = _save(fig, Path(out), formats)
    return {"paths": paths, "xlabel": ax.get_xlabel(), "ylabel": ax.get_ylabel(), "points": len(pts)}


def training_curves(metrics: pd.DataFrame, out: str | os.PathLike, *, label: str = "model.variant",
                    title: str = "", max_lines: int = 12, formats: tuple[str, ...] = ("png", "svg")) -> dict:
    """Train loss and val top-1 against epoch. Up to ``max_lines`` runs: one line per run (colour per
    label, dashed for seeds > 0); more: one line per label (mean over its runs, band = ±1 std)."""
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.0))
    if label not in metrics.columns:
        metrics = metrics.assign(**{label: metrics["run_id"]})
    labels = sorted(metrics[label].astype(str).unique())
    colours = {lab: plt.cm.tab10(i % 10) for i, lab in enumerate(labels)}
    per_run = metrics["run_id"].nunique() <= max_lines
    if per_run:
        for run_id, g in metrics.groupby("run_id", sort=False):
            lab = str(g[label].iloc[0])
            seed = g["seed"].iloc[0] if "seed" in g.columns else None
            style, name = ("-" if not seed else "--"), f"{lab} (seed {seed})"
            a1.plot(g["epoch"] + 1, g["train_loss"], style, color=colours[lab], label=name)
            v = g.dropna(subset=["val_top1"]) if "val_top1" in g.columns else g.iloc[:0]
            a2.plot(v["epoch"] + 1, v["val_top1"], style, marker="o", color=colours[lab], label=name)
        lines = metrics["run_id"].nunique()
    else:
        cols = [c for c in ("train_loss", "val_top1") if c in metrics.columns]
        agg = metrics.groupby([label, "epoch"])[cols].agg(["mean", "std"]).reset_index()
        for lab in labels:
            g = agg[agg[label].astype(str) == lab]
            for ax, col in ((a1, "train_loss"), (a2, "val_top1")):
                if col not in cols:
                    continue
                m, sd, x = g[(col, "mean")], g[(col, "std")].fillna(0), g["epoch"] + 1
                ok = m.notna()
                ax.plot(x[ok], m[ok], color=colours[lab], label=f"{lab} (mean of runs)")
                ax.fill_between(x[ok], (m - sd)[ok], (m + sd)[ok], color=colours[lab], alpha=0.15)
        lines = len(labels)
    a1.set_xlabel("epoch")
    a1.set_ylabel("train loss (cross-entropy)")
    a2.set_xlabel("epoch")
    a2.set_ylabel("val top-1 (%)")
    for a in (a1, a2):
        a.grid(alpha=0.3)
    a2.legend(fontsize=7, ncol=2, loc="best")
    fig.suptitle(title or "training curves")
    paths = _save(fig, Path(out), formats)
    return {"paths": paths, "lines": lines, "per_run": per_run, "ylabels": [a1.get_ylabel(), a2.get_ylabel()]}
