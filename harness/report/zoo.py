"""Published reference points (model zoos, papers) beside our runs, on one FLOPs convention.

    zoo = read_zoo("experiments/zoo/kinetics400.csv")        # validated; ZooError names file, line, field
    ours = our_points(runs, table, rows, label="_label")      # our runs: GFLOPs/video and top-1 per table row
    print(neighbours_markdown(neighbours(ours, zoo)))         # each run beside its nearest zoo points in cost
    draw_tradeoff(ours, zoo, "reports/figures/k400_zoo", title="...")

A zoo CSV (``experiments/zoo/<dataset>.csv``, columns in ``experiments/zoo/README.md``) keeps every
number as its source published it (``gflops_published``, ``published_as``, ``published_convention``) and
the cost in our convention (``gflops_per_view``: fvcore, 1 multiply-add = 1 FLOP, one view = one clip x
one crop at the test size) under an explicit ``rule``:

- ``same``: the publisher already counts per view with 1 MAC = 1 FLOP: ``gflops_per_view == gflops_published``;
- ``measured``: the publisher gives no FLOPs; the cost is our profiler's (``gflops_per_view ==
  gflops_per_view_measured``, with ``measured_with`` saying what was built);
- ``none``: our convention cannot be derived from what is published: ``gflops_per_view`` stays empty and
  ``note`` says why. Such rows are listed, never plotted.

GFLOPs/video = GFLOPs/view x views, views = clips x crops: the x axis of the trade-off plot for zoo
points and our runs alike. No number lives in this module: they are all in the CSVs, with a source each.
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from harness.errors import ConfigError

COLUMNS = (
    "method",
    "backbone",
    "pretraining",
    "frames_x_rate",
    "clips",
    "crops",
    "test_crop",
    "top1",
    "top5",
    "gflops_published",
    "published_as",
    "published_convention",
    "rule",
    "gflops_per_view",
    "params_m",
    "measured_with",
    "gflops_per_view_measured",
    "source",
    "note",
)
REQUIRED = ("method", "backbone", "top1", "rule", "source")
NUMERIC = (
    "clips",
    "crops",
    "test_crop",
    "top1",
    "top5",
    "gflops_published",
    "gflops_per_view",
    "params_m",
    "gflops_per_view_measured",
)
RULES = ("same", "measured", "none")
MEASURED_WITH = re.compile(
    r"^(?P<variant>\w+) U=(?P<snippets>\d+) T=(?P<frames>\d+) (?P<size>\d+)px (?P<classes>\d+) classes$"
)
"""``measured_with``: what our profiler built, e.g. ``tsm_r50 U=1 T=8 224px 400 classes``."""
REL_TOL = 1e-9

COST = "gflops_per_video"
"""The plot's x axis: GFLOPs/video = GFLOPs/view x views (fvcore, 1 MAC = 1 FLOP)."""


class ZooError(ConfigError):
    """A zoo CSV that cannot be used; the one-line message names the file, line and field, and the fix."""


def _num(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=REL_TOL, abs_tol=1e-12)


def measured_args(text: str) -> dict | None:
    """``measured_with`` -> {variant, snippets, frames, size, classes} (None if it does not parse)."""
    m = MEASURED_WITH.match(text.strip())
    if not m:
        return None
    d = m.groupdict()
    return {"variant": d["variant"], **{k: int(d[k]) for k in ("snippets", "frames", "size", "classes")}}


def _check_row(path: Path, lineno: int, row: dict[str, str]) -> dict:
    def bad(field: str, problem: str) -> ZooError:
        return ZooError(f"{path}:{lineno}: {field}: {problem}")

    for col in REQUIRED:
        if not row[col]:
            fix = "cite the repository path@commit:line or paper + table it was read from" if col == "source" else ""
            raise bad(col, "empty" + (f"; {fix}" if fix else "; fill it in"))
    out: dict = dict(row)
    for col in NUMERIC:
        if row[col] == "":
            out[col] = float("nan")
            continue
        value = _num(row[col])
        if value is None:
            raise bad(col, f"{row[col]!r} is not a number; write a plain number (e.g. 32.88) or leave it empty")
        out[col] = value
    rule = row["rule"]
    if rule not in RULES:
        raise bad("rule", f"{rule!r} is not one of {', '.join(RULES)}")
    per_view = out["gflops_per_view"]
    if rule == "none":
        if not math.isnan(per_view):
            raise bad("gflops_per_view", "must be empty with rule none (our convention cannot be derived)")
        if not row["note"]:
            raise bad("note", "empty; rule none needs a note saying why our convention cannot be derived")
    else:
        if math.isnan(per_view):
            raise bad("gflops_per_view", f"empty with rule {rule}; fill it in or use rule none with a note")
        for col in ("clips", "crops"):
            if math.isnan(out[col]) or out[col] < 1:
                raise bad(col, f"needs a number >= 1 with rule {rule} (views = clips x crops)")
        if rule == "same":
            if math.isnan(out["gflops_published"]) or not row["published_convention"]:
                raise bad("gflops_published", "rule same needs the published number and its published_convention")
            if not _close(per_view, out["gflops_published"]):
                published = out["gflops_published"]
                raise bad("gflops_per_view", f"{per_view:g} != gflops_published {published:g} (rule same)")
    measured = out["gflops_per_view_measured"]
    if not math.isnan(measured) and measured_args(row["measured_with"]) is None:
        raise bad("measured_with", f"{row['measured_with']!r}: write 'VARIANT U=n T=n SIZEpx CLASSES classes'")
    if rule == "measured":
        if math.isnan(measured):
            raise bad("gflops_per_view_measured", "empty with rule measured")
        if not _close(per_view, measured):
            raise bad("gflops_per_view", f"{per_view:g} != gflops_per_view_measured {measured:g} (rule measured)")
    out["line"] = lineno
    return out


def read_zoo(path: str | os.PathLike) -> pd.DataFrame:
    """Read and validate a zoo CSV (``#`` comment lines allowed). Adds ``line`` (file line of the row),
    ``views`` (clips x crops), ``gflops_per_video`` (per view x views, NaN with rule none), ``ratio``
    (gflops_published / gflops_per_view_measured where both exist) and ``label`` (method backbone frames).
    Raises ZooError (a ConfigError) naming file, line and field."""
    path = Path(path)
    if not path.is_file():
        raise ZooError(f"{path}: no such zoo file; fix report.zoo in the grid file or add the CSV")
    lines = path.read_text(encoding="utf-8").splitlines()
    body = [(i + 1, line) for i, line in enumerate(lines) if line.strip() and not line.startswith("#")]
    if not body:
        raise ZooError(f"{path}: no header row; expected columns {', '.join(COLUMNS)}")
    parsed = list(csv.reader(io.StringIO("\n".join(text for _, text in body))))
    header = [h.strip() for h in parsed[0]]
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        where = f"{path}:{body[0][0]}: header"
        raise ZooError(f"{where}: missing column(s) {', '.join(missing)}; see experiments/zoo/README.md")
    rows = []
    for (lineno, _), cells in zip(body[1:], parsed[1:]):
        if len(cells) != len(header):
            n = len(header)
            raise ZooError(f"{path}:{lineno}: {len(cells)} cells, the header has {n}; quote cells that hold commas")
        rows.append(_check_row(path, lineno, {h: c.strip() for h, c in zip(header, cells)}))
    df = pd.DataFrame(rows, columns=[*COLUMNS, "line"]) if rows else pd.DataFrame(columns=[*COLUMNS, "line"])
    for col in NUMERIC:
        df[col] = pd.to_numeric(df[col], errors="coerce").astype(float)
    df["views"] = df["clips"] * df["crops"]
    df[COST] = df["gflops_per_view"] * df["views"]
    df["ratio"] = df["gflops_published"] / df["gflops_per_view_measured"]
    df["label"] = (df["method"] + " " + df["backbone"] + " " + df["frames_x_rate"]).str.strip()
    df.attrs["path"] = str(path)
    return df


def plotted(zoo: pd.DataFrame) -> pd.DataFrame:
    """The zoo rows with a cost in our convention (rule same or measured)."""
    return zoo[zoo[COST].notna() & zoo["top1"].notna()]


def _video_cost(runs: pd.DataFrame) -> pd.Series:
    """Per run: GFLOPs/video at the test size (``profile.test_gflops_per_video``), else
    ``profile.gflops_per_video``, else GFLOPs/view x views."""
    cost = pd.Series(np.nan, index=runs.index, dtype=float)
    for col in ("profile.test_gflops_per_video", "profile.gflops_per_video"):
        if col in runs.columns:
            cost = cost.fillna(pd.to_numeric(runs[col], errors="coerce"))
    views = next((runs[v] for v in ("test.views", "profile.views") if v in runs.columns), None)
    if views is not None and "profile.gflops_per_view" in runs.columns:
        cost = cost.fillna(pd.to_numeric(runs["profile.gflops_per_view"], errors="coerce") * pd.to_numeric(views))
    return cost


def our_points(runs: pd.DataFrame, table: pd.DataFrame, rows: list[str], label: str) -> pd.DataFrame:
    """One point per row of an aggregated grid table: ``label``, ``top1`` (the table's mean test top-1)
    and ``gflops_per_video`` (mean over the row's finished runs, see :func:`_video_cost`); rows without
    either are dropped."""
    from harness.report.compare import row_key as _key

    cols = ["label", "top1", COST]
    if table.empty or "test.top1" not in table.columns or runs.empty:
        return pd.DataFrame(columns=cols)
    done = runs[runs["status"] == "done"]
    keys = [r for r in rows if r in done.columns and r in table.columns]
    cost = _video_cost(done)
    run_keys = [tuple(_key(v) for v in vals) for vals in done[keys].itertuples(index=False)]
    out = []
    for _, r in table.iterrows():
        key = tuple(_key(r[k]) for k in keys)
        mine = cost[[k == key for k in run_keys]].dropna()
        out.append({"label": r[label] if label in table.columns else "", "top1": r["test.top1"], COST: mine.mean()})
    pts = pd.DataFrame(out, columns=cols)
    pts["top1"] = pd.to_numeric(pts["top1"], errors="coerce")
    pts[COST] = pd.to_numeric(pts[COST], errors="coerce")
    return pts.dropna(subset=["top1", COST]).reset_index(drop=True)


def neighbours(ours: pd.DataFrame, zoo: pd.DataFrame, k: int = 2) -> pd.DataFrame:
    """For each of our points, the ``k`` zoo points nearest in cost (|log GFLOPs/video| distance) with
    Δ top-1 = ours - zoo."""
    ref = plotted(zoo)
    cols = ["ours", "ours GFLOPs/video", "ours top-1", "zoo", "zoo GFLOPs/video", "zoo top-1", "Δ top-1", "zoo source"]
    out = []
    for _, o in ours.iterrows():
        dist = (np.log(ref[COST]) - math.log(o[COST])).abs().sort_values(kind="stable")
        for i in dist.index[:k]:
            z = ref.loc[i]
            out.append(
                [o["label"], o[COST], o["top1"], z["label"], z[COST], z["top1"], o["top1"] - z["top1"], z["source"]]
            )
    return pd.DataFrame(out, columns=cols)


def neighbours_markdown(table: pd.DataFrame) -> str:
    """The neighbour table as GitHub Markdown (sources shortened to repository path:line)."""
    from tabulate import tabulate

    cells = [
        [
            r["ours"],
            f"{r['ours GFLOPs/video']:.1f}",
            f"{r['ours top-1']:.2f}",
            r["zoo"],
            f"{r['zoo GFLOPs/video']:.1f}",
            f"{r['zoo top-1']:.2f}",
            f"{r['Δ top-1']:+.2f}",
            r["zoo source"].split(";")[0],
        ]
        for _, r in table.iterrows()
    ]
    return tabulate(cells, headers=list(table.columns), tablefmt="github", disable_numparse=True)


def zoo_table_markdown(zoo: pd.DataFrame) -> str:
    """Every zoo row: the published number with its convention and ours (empty where not derivable)."""
    from tabulate import tabulate

    def f(v, d=2):
        return "" if pd.isna(v) else f"{v:.{d}f}"

    cells = [
        [
            r["label"],
            f(r["top1"]),
            r["published_as"],
            r["rule"],
            f(r["gflops_per_view"]),
            "" if pd.isna(r["views"]) else f"{r['views']:.0f}",
            f(r[COST], 1),
            f(r["ratio"], 4),
            r["source"].split(";")[0],
        ]
        for _, r in zoo.iterrows()
    ]
    headers = [
        "published model",
        "top-1 (%)",
        "FLOPs as published",
        "rule",
        "GFLOPs/view (ours)",
        "views",
        "GFLOPs/video",
        "published / our profiler",
        "source",
    ]
    return tabulate(cells, headers=headers, tablefmt="github", disable_numparse=True)


def draw_tradeoff(
    ours: pd.DataFrame,
    zoo: pd.DataFrame,
    out: str | os.PathLike,
    *,
    title: str = "",
    formats: tuple[str, ...] = ("png", "svg"),
    note: str = "",
) -> dict:
    """Top-1 vs GFLOPs/video (log x): zoo points grey and labelled, ours coloured and labelled, the Pareto
    front of all points dashed. Returns paths, labels, point counts and the front's labels."""
    import matplotlib.pyplot as plt

    from harness.report.plots import _save, _set_title, pareto_front, place_labels

    ref = plotted(zoo)
    fig, ax = plt.subplots(figsize=(7.6, 5.0))
    zx, zy = ref[COST].to_numpy(float), ref["top1"].to_numpy(float)
    ox, oy = ours[COST].to_numpy(float), ours["top1"].to_numpy(float)
    zoo_labels, our_labels = ref["label"].astype(str).tolist(), ours["label"].astype(str).tolist()
    ax.scatter(zx, zy, marker="s", color="0.55", label="published (model zoos, papers)", zorder=2, gid="zoo")
    if len(ox):
        ax.scatter(ox, oy, marker="o", color="tab:blue", label="ours (results/, mean over seeds)", zorder=3, gid="ours")
    xs, ys = np.concatenate([zx, ox]), np.concatenate([zy, oy])
    labels = zoo_labels + our_labels
    front = pareto_front(xs, ys) if len(xs) else np.array([], dtype=int)
    if len(front) > 1:
        ax.plot(xs[front], ys[front], "--", color="tab:red", drawstyle="steps-post", label="Pareto front of all points")
    ax.set_xscale("log")
    ax.set_xlabel("GFLOPs/video (fvcore, 1 MAC = 1 FLOP; per view x views)")
    ax.set_ylabel("top-1 (%)")
    n_title = _set_title(ax, title or "top-1 vs GFLOPs/video", 7.6)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="lower right")
    if note:
        fig.text(0.01, 0.015, note, fontsize=7, color="gray")
    if len(xs):
        lo, hi = float(xs.min()), float(xs.max())
        ax.set_xlim(lo / 1.3, hi * 2.2)
    ax.margins(y=0.08)
    margins = {"left": 0.09, "right": 0.98, "top": 0.92 - 0.05 * (n_title - 1), "bottom": 0.15 if note else 0.11}
    fig.subplots_adjust(**margins)  # final before the labels are placed
    for i, annotation in enumerate(place_labels(ax, xs, ys, labels, fontsize=7)):
        if annotation is not None:
            annotation.set_color("0.35" if i < len(zoo_labels) else "tab:blue")
    info = {
        "title": ax.get_title(),
        "xlabel": ax.get_xlabel(),
        "ylabel": ax.get_ylabel(),
        "points": len(xs),
        "zoo_points": len(zx),
        "our_points": len(ox),
        "zoo_labels": zoo_labels,
        "our_labels": our_labels,
        "pareto": [labels[i] for i in front],
    }
    info["paths"] = _save(fig, Path(out), formats, margins)
    return info


def scatter_zoo(frame: pd.DataFrame, out: str | os.PathLike, *, zoo_path: str, **kwargs) -> dict:
    """:class:`~harness.report.figures.FigureSpec` entry point: ``frame`` = our points (:func:`our_points`)."""
    return draw_tradeoff(frame, read_zoo(zoo_path), out, **kwargs)


def grids_with_zoo(experiments_dir: str | os.PathLike) -> list[str]:
    """Names of the grid files in ``experiments_dir`` whose ``report:`` names a ``zoo`` CSV."""
    from harness.report.tables import GridMeta

    names = []
    for path in sorted(Path(experiments_dir).glob("*.yaml")):
        try:
            meta = GridMeta.load(path.stem, experiments_dir)
        except ConfigError:
            continue  # not a grid file the report can read; a grid with runs reports its error itself
        if meta.zoo:
            names.append(path.stem)
    return names


__all__ = [
    "COLUMNS",
    "COST",
    "RULES",
    "ZooError",
    "draw_tradeoff",
    "grids_with_zoo",
    "measured_args",
    "neighbours",
    "neighbours_markdown",
    "our_points",
    "plotted",
    "read_zoo",
    "scatter_zoo",
    "zoo_table_markdown",
]
