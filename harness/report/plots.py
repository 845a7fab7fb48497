"""Plots (matplotlib, Agg): accuracy vs GFLOPs with the Pareto front, latency vs GFLOPs, time ratios to
the baseline, ablation curves with error bars, training curves. Each function writes PNG and/or SVG and returns metadata
(paths, axis labels, number of points) so that callers and tests need not parse images."""

from __future__ import annotations

import io
import os
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from harness.report.columns import RATIO_CI_WARN_WIDTH, RATIO_METRICS, key_label, metric_label  # noqa: E402
from harness.report.formatting import flagged  # noqa: E402
from harness.results.rundir import atomic_write_bytes  # noqa: E402


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
    pass, which cost a quarter of the drawing time); returns the paths. The files are byte-for-byte the
    same for the same figure (no date in the SVG, element ids from a fixed salt), so a regenerated report
    changes in git only where its numbers do."""
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.subplots_adjust(**margins)
    paths = []
    for fmt in formats:
        path = out.with_suffix(f".{fmt}")
        buffer = io.BytesIO()
        with plt.rc_context({"svg.hashsalt": "dsa-harness"}):
            fig.savefig(buffer, format=fmt, dpi=120, metadata={"Date": None} if fmt == "svg" else None)
        atomic_write_bytes(path, buffer.getvalue())  # never a cut figure under its name (a full disk)
        paths.append(str(path))
    plt.close(fig)
    return paths


def _points(table: pd.DataFrame, x: str, y: str, label: str) -> pd.DataFrame:
    cols = [c for c in dict.fromkeys((x, y, label, f"{y} std", f"{y} low", f"{y} high")) if c in table.columns]
    pts = table[cols].copy()
    pts[x] = pd.to_numeric(pts[x], errors="coerce")
    pts[y] = pd.to_numeric(pts[y], errors="coerce")
    return pts.dropna(subset=[x, y])


def _yerr(pts: pd.DataFrame, y: str) -> tuple[np.ndarray | None, str]:
    """Error bars of ``y``: its 95% interval (asymmetric; rows without one get none) when some row has one,
    else ± its std over seeds when some row has one; and the legend's word for them ('' for none)."""
    if f"{y} low" in pts.columns and pts[f"{y} low"].notna().any():
        v = pts[y].to_numpy(float)
        lo, hi = pts[f"{y} low"].to_numpy(float), pts[f"{y} high"].to_numpy(float)
        return np.clip(np.nan_to_num(np.vstack([v - lo, hi - v])), 0, None), "95% interval"
    if f"{y} std" in pts.columns and pts[f"{y} std"].notna().any():
        return np.nan_to_num(pts[f"{y} std"].to_numpy(float)), "± std"
    return None, ""


def _set_title(ax, text: str, width_in: float) -> int:
    """Title wrapped to the figure width; returns its number of lines."""
    lines = textwrap.wrap(text, max(20, int(width_in * 10))) or [""]
    ax.set_title("\n".join(lines))
    return len(lines)


def _note(fig, text: str, width_in: float) -> int:
    """A grey note at the figure's foot, wrapped to its width (never cut); returns its number of lines."""
    lines = textwrap.wrap(text, max(20, int(width_in * 17))) if text else []
    if lines:
        fig.text(0.01, 0.01, "\n".join(lines), fontsize=7, color="gray", va="bottom")
    return len(lines)


def _overlaps(boxes: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Overlap area of each box (N x 4: x0, y0, x1, y1) with each other box (M x 4): N x M."""
    if not len(others):
        return np.zeros((len(boxes), 0))
    w = np.minimum(boxes[:, None, 2], others[None, :, 2]) - np.maximum(boxes[:, None, 0], others[None, :, 0])
    h = np.minimum(boxes[:, None, 3], others[None, :, 3]) - np.maximum(boxes[:, None, 1], others[None, :, 1])
    return np.clip(w, 0, None) * np.clip(h, 0, None)


def place_labels(
    ax,
    xs: np.ndarray,
    ys: np.ndarray,
    texts: list[str],
    *,
    fontsize: float = 8,
    obstacles: list[tuple[float, float, float, float]] = (),
) -> list:
    """Label each point (xs, ys in data coordinates) so that no two labels overlap, none covers a point
    (or an ``obstacles`` box, in display pixels) and all lie inside the axes (else the figure): each label
    takes the free place nearest its point, first the eight places around it, then a grid over the axes;
    a label set apart from its point gets a grey leader line. Call it once the axes' limits and the
    figure's margins are final. Returns the annotations."""
    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    ax.get_xlim(), ax.get_ylim()  # autoscale now: the transform below is final
    pts = ax.transData.transform(np.column_stack([xs, ys])) if len(xs) else np.zeros((0, 2))
    pad = 3.0 * fig.dpi / 72
    sizes = _label_sizes(ax, renderer, texts, fontsize)
    r = 6.0 * fig.dpi / 72  # a marker's half size (the Pareto ring's)
    taken = [(x - r, y - r, x + r, y + r) for x, y in pts] + list(obstacles)
    order = sorted(range(len(texts)), key=lambda i: (-pts[i][1], pts[i][0]))
    annotations = [None] * len(texts)
    for i in order:
        (px, py), (w, h) = pts[i], sizes[i]
        near = _places_around(px, py, w, h, pad)
        best = _free_place(near, (ax.bbox, fig.bbox), px, py, w, h, taken)
        if best is None:
            best = np.array(near[0])
        bx, by = best
        taken.append((bx, by, bx + w, by + h))
        gap = np.hypot(max(bx - px, 0, px - bx - w), max(by - py, 0, py - by - h))
        to_pt = 72 / fig.dpi
        annotations[i] = ax.annotate(
            texts[i],
            (xs[i], ys[i]),
            xytext=((bx - px) * to_pt, (by - py) * to_pt),
            textcoords="offset points",
            ha="left",
            va="bottom",
            fontsize=fontsize,
            arrowprops={"arrowstyle": "-", "color": "0.55", "lw": 0.6, "shrinkA": 1, "shrinkB": 3}
            if gap > 2.5 * pad
            else None,
        )
    return annotations


def _label_sizes(ax, renderer, texts: list[str], fontsize: float) -> list[tuple[float, float]]:
    """Each text's (width, height) in display pixels at ``fontsize``, one pixel of margin added."""
    sizes = []
    for text in texts:
        probe = ax.text(0, 0, text, fontsize=fontsize)
        bb = probe.get_window_extent(renderer)
        probe.remove()
        sizes.append((bb.width + 1, bb.height + 1))
    return sizes


def _places_around(px: float, py: float, w: float, h: float, pad: float) -> list[tuple[float, float]]:
    """The eight places (lower-left corners) of a ``w`` x ``h`` label around its point (px, py), preferred first."""
    return [
        (px + pad, py + pad),
        (px + pad, py - h - pad),
        (px - w - pad, py + pad),
        (px - w - pad, py - h - pad),
        (px + pad, py - h / 2),
        (px - w - pad, py - h / 2),
        (px - w / 2, py + 2 * pad),
        (px - w / 2, py - h - 2 * pad),
    ]


def _free_place(near: list, regions: tuple, px: float, py: float, w: float, h: float, taken: list):
    """The lower-left corner of a ``w`` x ``h`` label for the point (px, py): the first of the places ``near`` it,
    else of a grid over the region nearest the point, that overlaps no ``taken`` box and lies inside the first
    region (the axes) that has one, else the second (the figure); with no free place at all, the least covered
    place of the first region that can hold the label; None when none can."""
    best = None
    for region in regions:
        x0, y0, x1, y1 = region.x0 + 1, region.y0 + 1, region.x1 - w - 1, region.y1 - h - 1
        if x1 < x0 or y1 < y0:
            continue
        step_x, step_y = max(w / 4, 4.0), max(h / 2, 4.0)
        while (x1 - x0) / step_x * (y1 - y0) / step_y > 4000:  # a coarser grid for tiny labels
            step_x, step_y = 1.5 * step_x, 1.5 * step_y
        gx, gy = np.meshgrid(np.arange(x0, x1 + 0.5, step_x), np.arange(y0, y1 + 0.5, step_y))
        grid = np.column_stack([gx.ravel(), gy.ravel()])
        grid = grid[np.argsort(np.hypot(grid[:, 0] + w / 2 - px, grid[:, 1] + h / 2 - py), kind="stable")]
        cands = np.vstack([np.array(near), grid])
        inside = (cands[:, 0] >= x0) & (cands[:, 0] <= x1) & (cands[:, 1] >= y0) & (cands[:, 1] <= y1)
        cands = cands[inside]
        boxes = np.column_stack([cands, cands[:, 0] + w, cands[:, 1] + h])
        clash = _overlaps(boxes, np.array(taken)).sum(axis=1)
        free = np.flatnonzero(clash == 0)
        if len(free):
            return cands[free[0]]
        if best is None and len(cands):
            best = cands[np.argmin(clash)]  # no free place at all: the least covered one
    return best


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
    """One labelled point per row of an aggregated table; the Pareto front (cheaper and better) drawn.
    Error bars: the rows' 95% intervals of ``y`` when the table has them (``<y> low``, ``<y> high``), else
    ± std over seeds. Labels never overlap (:func:`place_labels`); axis titles carry their units."""
    pts = _points(table, x, y, label)
    batch = table.attrs.get("batch")
    xlabel, ylabel = metric_label(x, batch), metric_label(y, batch)
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    xs, ys = pts[x].to_numpy(float), pts[y].to_numpy(float)
    yerr, bars = _yerr(pts, y)
    what = "median" if bars == "95% interval" else "mean over seeds"
    ax.errorbar(
        xs,
        ys,
        yerr=yerr,
        fmt="o",
        capsize=3,
        color="tab:blue",
        label=f"{what} (bars: {bars})" if bars else "one point per table row",
    )
    labels = pts[label].astype(str).tolist() if label in pts.columns else [""] * len(pts)
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
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    n_title = _set_title(ax, title or f"{ylabel} vs {xlabel}", 6.4)
    ax.grid(alpha=0.3)
    n_note = _note(fig, note, 6.4)
    if len(xs):  # room right of the points for their labels (about a quarter of the axes)
        lo, hi = float(xs.min()), float(xs.max())
        span = hi - lo or max(abs(hi) * 0.1, 1.0)
        ax.set_xlim(lo - 0.08 * span, hi + 0.3 * span)
    ax.margins(y=0.12)
    margins = {
        "left": 0.12,
        "right": 0.97,
        "top": 0.92 - 0.05 * (n_title - 1),
        "bottom": 0.12 + 0.03 * n_note,
    }
    fig.subplots_adjust(**margins)  # final before the labels are placed
    place_labels(ax, xs, ys, labels, obstacles=_bar_boxes(ax, xs, ys, yerr))
    ax.legend(fontsize=8, loc="best")
    paths = _save(fig, Path(out), formats, margins)
    return {
        "paths": paths,
        "xlabel": xlabel,
        "ylabel": ylabel,
        "points": len(xs),
        "pareto": [labels[i] for i in front],
        "title": ax.get_title(),
        "error_bars": bars,
        "yerr": None if yerr is None else np.asarray(yerr).tolist(),
    }


def _bar_boxes(ax, xs: np.ndarray, ys: np.ndarray, yerr) -> list[tuple[float, float, float, float]]:
    """The error bars' boxes in display pixels (labels keep off them)."""
    if yerr is None or not len(xs):
        return []
    err = np.asarray(yerr, float)
    lo, hi = (ys - err[0], ys + err[1]) if err.ndim == 2 else (ys - err, ys + err)
    a = ax.transData.transform(np.column_stack([xs, lo]))
    b = ax.transData.transform(np.column_stack([xs, hi]))
    cap = 3.0 * ax.figure.dpi / 72
    return [(x0 - cap, min(y0, y1), x0 + cap, max(y0, y1)) for (x0, y0), (_, y1) in zip(a, b)]


def _legend_right(fig, ax, width: float, legend_in: float, n_title: int, n_note: int) -> dict:
    """A per-row figure's legend right of the axes (it never covers a point) and its margins: room for the
    legend, the title's and the note's lines, and the tick labels (their height sets the bottom: none is cut)."""
    handles, texts = ax.get_legend_handles_labels()
    ax.legend(
        handles,
        [textwrap.fill(t, 30) for t in texts],
        fontsize=7,
        loc="upper left",
        bbox_to_anchor=(1.02, 1.0),
        borderaxespad=0.0,
    )
    margins = {
        "left": min(0.2, 0.85 / width),
        "right": 1 - (legend_in + 0.1) / width,
        "top": 0.91 - 0.055 * (n_title - 1),
        "bottom": 0.12,
    }
    fig.subplots_adjust(**margins)
    renderer = fig.canvas.get_renderer()
    tall = max((t.get_window_extent(renderer).height for t in ax.get_xticklabels()), default=0.0)
    margins["bottom"] = min(0.6, (tall + 8 + 14 * n_note * 0.7 + 6) / fig.bbox.height)
    return margins


def ratio_plot(
    table: pd.DataFrame,
    out: str | os.PathLike,
    *,
    metrics: tuple[str, ...] = RATIO_METRICS,
    label: str = "model.variant",
    baseline: str = "profile.baseline",
    title: str = "",
    formats: tuple[str, ...] = ("png", "svg"),
    note: str = "",
) -> dict:
    """Each variant's time ratio to its baseline (``metrics``: latency, training step), its 95% interval
    as error bars, a line at 1.0 (as fast as the baseline); a ratio whose interval is wider than
    ``RATIO_CI_WARN_WIDTH`` is ringed red. One column per row of the table that has a ratio."""
    metrics = tuple(m for m in metrics if m in table.columns and table[m].notna().any())
    rows = table[table[list(metrics)].notna().any(axis=1)] if metrics else table.iloc[0:0]
    legend_in = 2.4  # the legend right of the axes: it never covers a bar
    width = max(5.0, 0.9 * len(rows) + 2.0) + legend_in
    fig, ax = plt.subplots(figsize=(width, 4.4))
    xs = np.arange(len(rows), dtype=float)
    shift = (np.arange(len(metrics)) - (len(metrics) - 1) / 2) * 0.18
    errors, n_flagged = {}, 0
    for k, m in enumerate(metrics):
        v = pd.to_numeric(rows[m], errors="coerce").to_numpy(float)
        yerr, bars = _yerr(rows.assign(**{m: v}), m)
        errors[m] = None if yerr is None else np.asarray(yerr).tolist()
        ok = np.isfinite(v)
        ax.errorbar(
            xs[ok] + shift[k],
            v[ok],
            yerr=None if yerr is None else np.asarray(yerr)[..., ok],  # 2 x N (an interval) or N (± std)
            fmt="os"[k % 2],
            capsize=3,
            label=metric_label(m) + (f" (bars: {bars})" if bars else ""),
        )
        wide = np.array([flagged(r, m) for _, r in rows.iterrows()], dtype=bool)
        if wide.any():
            n_flagged += int(wide.sum())
            ax.plot(xs[wide] + shift[k], v[wide], "o", mfc="none", mec="tab:red", ms=12, mew=1.2)
    if n_flagged:
        ax.plot([], [], "o", mfc="none", mec="tab:red", ms=12, label=f"95% interval wider than {RATIO_CI_WARN_WIDTH:g}")
    ax.axhline(1.0, color="gray", ls="--", lw=1, label="1.0: as fast as the baseline")
    names = rows[label].astype(str).tolist() if label in rows.columns else [str(i) for i in range(len(rows))]
    bases = rows[baseline].tolist() if baseline in rows.columns else [None] * len(rows)
    ticks = [n if b is None or pd.isna(b) else f"{n}\nvs {b}" for n, b in zip(names, bases)]
    ax.set_xticks(xs, ticks, rotation=30, ha="right", fontsize=8)
    ax.set_xlim(-0.6, len(rows) - 0.4)
    ax.set_ylabel("time ratio (variant / baseline)")
    n_title = _set_title(ax, title or "time relative to the baseline", width)
    n_note = _note(fig, note, width)
    ax.grid(alpha=0.3, axis="y")
    margins = _legend_right(fig, ax, width, legend_in, n_title, n_note)
    paths = _save(fig, Path(out), formats, margins)
    return {
        "paths": paths,
        "ylabel": ax.get_ylabel(),
        "points": int(sum(rows[m].notna().sum() for m in metrics)),
        "metrics": list(metrics),
        "flagged": n_flagged,
        "yerr": errors,
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
    """One bar per row (the mean), its 95% interval as the error bar (else ± std over seeds), with an optional
    dashed chance level."""
    cols = [c for c in (label, y, f"{y} std", f"{y} low", f"{y} high") if c in table.columns]
    pts = table[cols].dropna(subset=[y])
    pts = pts.assign(**{y: pd.to_numeric(pts[y], errors="coerce")})
    width = max(5.0, 0.9 * len(pts) + 1.5)
    fig, ax = plt.subplots(figsize=(width, 4.0))
    yerr, bars = _yerr(pts, y)
    xs = np.arange(len(pts))
    ax.bar(xs, pts[y].to_numpy(float), yerr=yerr, capsize=3, color="tab:blue", alpha=0.8)
    ax.set_xticks(xs, pts[label].astype(str).tolist(), rotation=30, ha="right")
    if chance is not None:
        ax.axhline(chance, ls="--", color="tab:red", label=f"chance ({chance:g}%)")
        ax.legend(fontsize=8)
    ax.set_ylabel(metric_label(y) + (f" (bars: {bars})" if bars else ""))
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


def delta_plot(
    table: pd.DataFrame,
    out: str | os.PathLike,
    *,
    label: str = "model.variant",
    title: str = "",
    formats: tuple[str, ...] = ("png", "svg"),
    note: str = "",
) -> dict:
    """Each row's paired Δ top-1 to its baseline (``paired delta`` of ``grid_table``: same videos, pooled over
    seed pairs) with its paired bootstrap 95% interval as the error bar and a line at 0; a resolved Δ (interval
    excluding 0) is a filled marker, an unresolved one hollow. One column per row that was paired."""
    rows = (
        table[pd.to_numeric(table.get("paired delta"), errors="coerce").notna()]
        if "paired delta" in table
        else table.iloc[0:0]
    )
    legend_in = 2.4  # the legend right of the axes: it never covers an error bar
    width = max(5.0, 0.9 * len(rows) + 2.5) + legend_in
    fig, ax = plt.subplots(figsize=(width, 4.4))
    xs = np.arange(len(rows), dtype=float)
    d = pd.to_numeric(rows.get("paired delta"), errors="coerce").to_numpy(float) if len(rows) else np.zeros(0)
    lo = pd.to_numeric(rows.get("paired low"), errors="coerce").to_numpy(float) if len(rows) else np.zeros(0)
    hi = pd.to_numeric(rows.get("paired high"), errors="coerce").to_numpy(float) if len(rows) else np.zeros(0)
    resolved = rows["paired resolved"].astype(bool).to_numpy() if len(rows) else np.zeros(0, bool)
    yerr = np.clip(np.vstack([d - lo, hi - d]), 0, None) if len(rows) else None
    ax.errorbar(xs, d, yerr=yerr, fmt="none", ecolor="tab:blue", capsize=4)
    ax.plot(xs[resolved], d[resolved], "o", color="tab:blue", label="resolved (95% interval excludes 0)")
    ax.plot(xs[~resolved], d[~resolved], "o", mfc="white", mec="tab:blue", label="not resolved")
    ax.axhline(0.0, color="gray", ls="--", lw=1, label="0: same top-1 as the baseline")
    names = rows[label].astype(str).tolist() if label in rows.columns else [str(i) for i in range(len(rows))]
    bases = rows["baseline"].tolist() if "baseline" in rows.columns else [None] * len(rows)
    ax.set_xticks(
        xs,
        [n if not isinstance(b, str) else f"{n}\nvs {b}" for n, b in zip(names, bases)],
        rotation=30,
        ha="right",
        fontsize=8,
    )
    ax.set_xlim(-0.6, max(len(rows), 1) - 0.4)
    ax.set_ylabel("Δ top-1 vs baseline (points, same videos)")
    n_title = _set_title(ax, title or "paired Δ top-1 to the baseline", width)
    n_note = _note(fig, note, width)
    ax.grid(alpha=0.3, axis="y")
    margins = _legend_right(fig, ax, width, legend_in, n_title, n_note)
    paths = _save(fig, Path(out), formats, margins)
    return {
        "paths": paths,
        "ylabel": ax.get_ylabel(),
        "points": len(rows),
        "resolved": int(resolved.sum()),
        "yerr": None if yerr is None else yerr.tolist(),
        "title": ax.get_title(),
    }


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
    # a missing or empty column is a missing curve, never a crash (runs trained without a validation list)
    present = [c for c in ("train_loss", "val_top1") if c in metrics.columns]
    metrics = metrics.assign(**{c: pd.to_numeric(metrics[c], errors="coerce") for c in present})
    cols = [c for c in present if metrics[c].notna().any()]
    labels = sorted(metrics[label].astype(str).unique())
    colours = {lab: plt.cm.tab10(i % 10) for i, lab in enumerate(labels)}
    per_run = metrics["run_id"].nunique() <= max_lines
    if per_run:
        for _run_id, g in metrics.groupby("run_id", sort=False):
            lab = str(g[label].iloc[0])
            seed = g["seed"].iloc[0] if "seed" in g.columns else None
            style, name = ("-" if not seed else "--"), f"{lab} (seed {seed})"
            for ax, col, marker in ((a1, "train_loss", None), (a2, "val_top1", "o")):
                if col in cols:
                    v = g.dropna(subset=[col])
                    ax.plot(v["epoch"] + 1, v[col], style, marker=marker, color=colours[lab], label=name)
        lines = metrics["run_id"].nunique()
    else:
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
    for ax, col, what in ((a1, "train_loss", "no training loss recorded"), (a2, "val_top1", "no validation recorded")):
        if col not in cols:
            ax.text(0.5, 0.5, what, transform=ax.transAxes, ha="center", va="center", color="0.4")
    (a2 if "val_top1" in cols else a1).legend(fontsize=7, ncol=2, loc="best")
    fig.suptitle(title or "training curves")
    paths = _save(fig, Path(out), formats, {"left": 0.065, "right": 0.985, "top": 0.88, "bottom": 0.13, "wspace": 0.22})
    return {
        "paths": paths,
        "lines": lines,
        "per_run": per_run,
        "ylabels": [a1.get_ylabel(), a2.get_ylabel()],
        "curves": cols,
    }
