"""Plots (matplotlib, Agg): accuracy vs GFLOPs with the Pareto front, latency vs GFLOPs, ablation
curves with error bars, training curves. Each function writes PNG and/or SVG and returns metadata
(paths, axis labels, number of points) so that callers and tests need not parse images."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from harness.report.tables import key_label, metric_label  # noqa: E402


def pareto_front(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Indices of points not dominated (lower x and higher y is better), sorted by x."""
    order = np.lexsort((-y, x))
    front, best = [], -np.inf
    for i in order:
        if y[i] > best:
            front.append(i)
            best = y[i]
    return np.array(front, dtype=int)


def _save(fig, out: Path, formats: tuple[str, ...], margins: dict) -> list[str]:
    """Write the figure in each format with fixed ``margins`` (``subplots_adjust`` fractions: no layout
    pass, which cost a quarter of the drawing time); returns the paths."""
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.subplots_adjust(**margins)
    paths = []
    for fmt in formats:
        path = out.with_suffix(f".{fmt}")
        fig.savefig(path, dpi=120)
        paths.append(str(path))
    plt.close(fig)
    return paths


def _points(table: pd.DataFrame, x: str, y: str, label: str) -> pd.DataFrame:
    cols = [c for c in dict.fromkeys((x, y, label, f"{y} std")) if c in table.columns]
    pts = table[cols].copy()
    pts[x] = pd.to_numeric(pts[x], errors="coerce")
    pts[y] = pd.to_numeric(pts[y], errors="coerce")
    return pts.dropna(subset=[x, y])


def _set_title(ax, text: str, width_in: float) -> int:
    """Title wrapped to the figure width; returns its number of lines."""
    lines = textwrap.wrap(text, max(20, int(width_in * 10))) or [""]
    ax.set_title("\n".join(lines))
    return len(lines)


def _label_offsets(xs: np.ndarray, ys: np.ndarray) -> list[tuple[int, int]]:
    """Text offsets (points) that keep labels of nearby points (within 3 % of the x range and 6 % of
    the y range) apart: among close points the highest label goes up, the next ones 11 points lower each."""
    span_x = max(float(np.ptp(xs)) if len(xs) else 0.0, 1e-12)
    span_y = max(float(np.ptp(ys)) if len(ys) else 0.0, 1e-12)
    offsets: list[tuple[int, int]] = []
    for i in range(len(xs)):
        close = [j for j in range(len(xs)) if abs(xs[i] - xs[j]) / span_x < 0.03 and abs(ys[i] - ys[j]) / span_y < 0.06]
        rank = sorted(close, key=lambda j: (-ys[j], j)).index(i)
        offsets.append((4, 4 - 11 * rank))
    return offsets


def scatter_tradeoff(
    table: pd.DataFrame,
    out: str | os.PathLike,
    *,
    x: str = "profile.gflops_per_view",
    y: str = "test.top1",
    label: str = "model.variant",
    title: str = "",
    pareto: bool = True,
    formats: tuple[str, ...] = ("png", "svg"),
    note: str = "",
) -> dict:
    """One labelled point per row of an aggregated table; the Pareto front (cheaper and better) drawn."""
    pts = _points(table, x, y, label)
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    xs, ys = pts[x].to_numpy(float), pts[y].to_numpy(float)
    yerr = pts[f"{y} std"].to_numpy(float) if f"{y} std" in pts.columns else None
    has_spread = yerr is not None and bool(np.isfinite(yerr).any())
    ax.errorbar(
        xs,
        ys,
        yerr=np.nan_to_num(yerr) if has_spread else None,
        fmt="o",
        capsize=3,
        color="tab:blue",
        label="mean over seeds (bars: ± std)" if has_spread else "one point per table row",
    )
    labels = pts[label].astype(str).tolist() if label in pts.columns else [""] * len(pts)
    for (dx, dy), xi, yi, text in zip(_label_offsets(xs, ys), xs, ys, labels):
        ax.annotate(text, (xi, yi), textcoords="offset points", xytext=(dx, dy), fontsize=8)
    front = pareto_front(xs, ys) if pareto and len(xs) else np.array([], dtype=int)
    if len(front) > 1:
        ax.plot(
            xs[front],
            ys[front],
            "--",
            color="tab:red",
            drawstyle="steps-post",
            label="Pareto front (no point is cheaper and better)",
        )
        ax.plot(xs[front], ys[front], "o", mfc="none", mec="tab:red", ms=11)
    ax.set_xlabel(metric_label(x))
    ax.set_ylabel(metric_label(y))
    n_title = _set_title(ax, title or f"{metric_label(y)} vs {metric_label(x)}", 6.4)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    if note:
        fig.text(0.01, 0.015, note, fontsize=7, color="gray")
    if len(xs):  # room right of the points for their labels (about a quarter of the axes)
        lo, hi = float(xs.min()), float(xs.max())
        span = hi - lo or max(abs(hi) * 0.1, 1.0)
        ax.set_xlim(lo - 0.08 * span, hi + 0.3 * span)
    ax.margins(y=0.08)
    paths = _save(
        fig,
        Path(out),
        formats,
        {"left": 0.12, "right": 0.97, "top": 0.92 - 0.05 * (n_title - 1), "bottom": 0.17 if note else 0.12},
    )
    return {
        "paths": paths,
        "xlabel": metric_label(x),
        "ylabel": metric_label(y),
        "points": len(xs),
        "pareto": [labels[i] for i in front],
        "title": ax.get_title(),
    }


def bar_metric(
    table: pd.DataFrame,
    out: str | os.PathLike,
    *,
    y: str,
    label: str = "model.variant",
    chance: float | None = None,
    title: str = "",
    formats: tuple[str, ...] = ("png", "svg"),
) -> dict:
    """One bar per row (mean, std error bar), with an optional dashed chance level."""
    pts = table[[c for c in (label, y, f"{y} std") if c in table.columns]].dropna(subset=[y])
    width = max(5.0, 0.9 * len(pts) + 1.5)
    fig, ax = plt.subplots(figsize=(width, 4.0))
    yerr = np.nan_to_num(pts[f"{y} std"].to_numpy(float)) if f"{y} std" in pts.columns else None
    xs = np.arange(len(pts))
    ax.bar(xs, pts[y].to_numpy(float), yerr=yerr, capsize=3, color="tab:blue", alpha=0.8)
    ax.set_xticks(xs, pts[label].astype(str).tolist(), rotation=30, ha="right")
    if chance is not None:
        ax.axhline(chance, ls="--", color="tab:red", label=f"chance ({chance:g}%)")
        ax.legend(fontsize=8)
    ax.set_ylabel(metric_label(y))
    n_title = _set_title(ax, title or metric_label(y), width)
    ax.grid(alpha=0.3, axis="y")
    longest = max((len(str(v)) for v in pts[label]), default=4) if label in pts.columns else 4
    paths = _save(
        fig,
        Path(out),
        formats,
        {"left": 0.12, "right": 0.97, "top": 0.91 - 0.055 * (n_title - 1), "bottom": min(0.5, 0.1 + 0.012 * longest)},
    )
    return {"paths": paths, "ylabel": ax.get_ylabel(), "points": len(pts), "title": ax.get_title()}


def ablation_curve(
    table: pd.DataFrame,
    knob: str,
    out: str | os.PathLike,
    *,
    y: str = "test.top1",
    group: str | None = None,
    title: str = "",
    formats: tuple[str, ...] = ("png", "svg"),
) -> dict:
    """``y`` (mean over seeds, std error bars) against a numeric knob (split ratio, alpha, kernel size,
    U); one line per value of ``group`` (e.g. ``model.variant``) when given."""
    pts = _points(table, knob, y, group or knob).sort_values(knob)
    fig, ax = plt.subplots(figsize=(5.6, 4.0))
    groups = list(pts.groupby(pts[group].astype(str), sort=False)) if group and group in pts.columns else [(None, pts)]
    for name, g in groups:
        yerr = np.nan_to_num(g[f"{y} std"].to_numpy(float)) if f"{y} std" in g.columns else None
        ax.errorbar(
            g[knob], g[y], yerr=yerr, marker="o", capsize=3, label=name if name is not None else "mean ± std over seeds"
        )
    ax.set_xlabel(key_label(knob))
    ax.set_ylabel(metric_label(y))
    ax.set_title(title or f"{metric_label(y)} vs {key_label(knob)}")
    values = sorted(pts[knob].unique())
    if 1 < len(values) <= 12:
        ax.set_xticks(values, [f"{v:g}" for v in values])
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    paths = _save(fig, Path(out), formats, {"left": 0.13, "right": 0.97, "top": 0.91, "bottom": 0.13})
    return {
        "paths": paths,
        "xlabel": ax.get_xlabel(),
        "ylabel": ax.get_ylabel(),
        "points": len(pts),
        "lines": len(groups),
        "title": ax.get_title(),
    }


def training_curves(
    metrics: pd.DataFrame,
    out: str | os.PathLike,
    *,
    label: str = "model.variant",
    title: str = "",
    max_lines: int = 12,
    formats: tuple[str, ...] = ("png", "svg"),
) -> dict:
    """Train loss and val top-1 against epoch. Up to ``max_lines`` runs: one line per run (colour per
    label, dashed for seeds > 0); more: one line per label (mean over its runs, band = ±1 std)."""
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.0))
    if label not in metrics.columns:
        metrics = metrics.assign(**{label: metrics["run_id"]})
    labels = sorted(metrics[label].astype(str).unique())
    colours = {lab: plt.cm.tab10(i % 10) for i, lab in enumerate(labels)}
    per_run = metrics["run_id"].nunique() <= max_lines
    if per_run:
        for _run_id, g in metrics.groupby("run_id", sort=False):
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
    for a in (a1, a2):
        a.xaxis.set_major_locator(MaxNLocator(integer=True))
    a1.set_xlabel("epoch")
    a1.set_ylabel("train loss (cross-entropy)")
    a2.set_xlabel("epoch")
    a2.set_ylabel("val top-1 (%)")
    for a in (a1, a2):
        a.grid(alpha=0.3)
    a2.legend(fontsize=7, ncol=2, loc="best")
    fig.suptitle(title or "training curves")
    paths = _save(fig, Path(out), formats, {"left": 0.065, "right": 0.985, "top": 0.88, "bottom": 0.13, "wspace": 0.22})
    return {"paths": paths, "lines": lines, "per_run": per_run, "ylabels": [a1.get_ylabel(), a2.get_ylabel()]}
