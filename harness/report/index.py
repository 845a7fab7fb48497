"""``write_report``: results/ -> reports/ (tables per grid, figures, an index page).

    from harness.report import write_report
    write_report(results_root="results", reports_dir="reports", grids=None,
                 formats=("md", "tex", "png", "svg"), experiments_dir="experiments")   # -> reports/README.md

Layout: ``reports/README.md`` (the index: hardware, dates, run and status counts, a contents table,
each grid's table and figures), ``reports/<grid>.md`` and ``.tex`` (tables),
``reports/figures/<grid>_*.png|svg``, ``reports/runs.csv`` (one row per run).

Every number of ours comes from the run directories under ``results/runs``; paper numbers come only from
``experiments/paper/*.csv`` (verified cells). Every report draws every figure; the runs come from the results
store, which reads again only the run folders that changed since its cache was written
(``results/runs/.cache/``, :mod:`harness.results.cache`): a report from the cache is byte-identical to one from
the run folders.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from harness.errors import UsageError
from harness.report.tables import (
    RATIO_CI_WARN_WIDTH,
    RATIO_METRICS,
    RESOLVED_MARK,
    WARN_MARK,
    GridMeta,
    comparison_memo,
    format_key,
    grid_table,
    key_label,
    memo_text,
    pairs_csv,
    read_paper,
    to_latex,
    to_markdown,
)
from harness.results.cache import load_correct
from harness.results.rundir import atomic_write_bytes, metrics_signature, read_grid_manifest
from harness.results.store import load_metrics, load_runs, to_csv

FORMATS = ("md", "tex", "png", "svg")
MAX_PROBLEMS_LISTED = 50
ABLATION_KNOBS = ("model.split_ratio", "model.alpha", "model.kernel_size", "model.num_snippets")


def _write(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def _first(run: dict, *cols: str):
    """The first of ``cols`` the run recorded (None if none)."""
    for col in cols:
        v = run.get(col)
        if v is not None and not (isinstance(v, float) and pd.isna(v)):
            return v
    return None


def _on_off(v) -> str:
    return "on" if bool(v) else "off"


def run_settings(run: dict) -> tuple[str, ...]:
    """What a run was measured on and with, as recorded (nothing is assumed): device and its name, then
    threads, batch, dtype / autocast, TF32, cudnn.benchmark (CUDA), channels_last, compile mode and the
    torch / CUDA / cuDNN versions, from ``profile.settings.*`` (profile records since issue 13), else the
    older ``hardware.*``, ``profile.*`` and ``versions.*`` fields."""
    device = _first(run, "profile.settings.device", "hardware.device") or "?"
    device = str(device).split(":")[0]
    parts = [f"{device}: {_first(run, 'profile.settings.device_name', 'hardware.device_name')}"]
    threads = _first(run, "profile.settings.threads", "hardware.threads")
    if threads is not None:
        parts.append(f"{int(threads)} thread{'' if int(threads) == 1 else 's'}")
    batch = _first(run, "profile.settings.batch", "profile.batch")
    if batch is not None:
        parts.append(f"batch {int(batch)}")
    dtype = _first(run, "profile.settings.dtype")
    if dtype is not None:
        parts.append(f"{dtype} autocast" if _first(run, "profile.settings.autocast") else str(dtype))
    if device == "cuda":
        matmul, cudnn = _first(run, "profile.settings.tf32_matmul"), _first(run, "profile.settings.tf32_cudnn")
        if matmul is not None or cudnn is not None:
            tf32 = [f"{name} {_on_off(v)}" for name, v in (("matmul", matmul), ("cudnn", cudnn)) if v is not None]
            parts.append("TF32 " + "/".join(tf32))
        bench = _first(run, "profile.settings.cudnn_benchmark")
        if bench is not None:
            parts.append(f"cudnn.benchmark {_on_off(bench)}")
    channels_last = _first(run, "profile.settings.channels_last", "profile.channels_last")
    if channels_last is not None:
        parts.append(f"channels_last {_on_off(channels_last)}")
    mode = _first(run, "profile.settings.compile_mode")
    compiled = _first(run, "profile.compiled")
    if mode is not None:
        parts.append(f"compile {mode}")
    elif compiled is not None:
        parts.append("compiled" if compiled else "compile none")
    for name, cols in (
        ("torch", ("profile.settings.torch", "versions.torch")),
        ("CUDA", ("profile.settings.cuda", "versions.cuda")),
        ("cuDNN", ("profile.settings.cudnn",)),
    ):
        v = _first(run, *cols)
        if v is not None:
            parts.append(f"{name} {int(v) if isinstance(v, float) and v.is_integer() else v}")
    return tuple(parts)


def _hardware(runs: pd.DataFrame) -> str:
    """Every recorded setting (:func:`run_settings`) with the number of runs measured so, runs with equal
    settings grouped: ``cpu: AMD EPYC, 2 threads, batch 1, fp32, channels_last off, compile none, torch
    2.13.0 (7 runs); ...``; ``unknown`` when no run recorded its device."""
    cols = [c for c in runs.columns if c.startswith(("profile.settings.", "hardware.", "versions."))]
    cols += [c for c in ("profile.batch", "profile.channels_last", "profile.compiled") if c in runs.columns]
    named = [c for c in ("profile.settings.device_name", "hardware.device_name") if c in runs.columns]
    if not named:
        return "unknown"
    # runs with equal recorded values share one run_settings call (thousands of runs, a few settings);
    # missing values as None so that equal rows compare equal (NaN != NaN), in order of first appearance
    sub = runs[cols].astype(object)
    sub = sub.where(sub.notna(), None)
    same: dict[tuple, int] = {}
    for values in zip(*(sub[c].tolist() for c in cols)):
        same[values] = same.get(values, 0) + 1
    groups: dict[tuple[str, ...], int] = {}
    for values, n in same.items():
        run = dict(zip(cols, values))
        if _first(run, *named) is None:
            continue
        key = run_settings(run)
        groups[key] = groups.get(key, 0) + n
    return "; ".join(f"{', '.join(k)} ({n} run{'' if n == 1 else 's'})" for k, n in groups.items()) or "unknown"


def _dates(runs: pd.DataFrame) -> str:
    if "finished_at" not in runs.columns or runs["finished_at"].dropna().empty:
        return "-"
    d = runs["finished_at"].dropna().sort_values()
    return d.iloc[0] if d.iloc[0] == d.iloc[-1] else f"{d.iloc[0]} to {d.iloc[-1]}"


def _status_counts(runs: pd.DataFrame) -> str:
    counts = runs["status"].value_counts()
    return ", ".join(f"{n} {s}" for s, n in counts.items()) or "none"


LABEL = "_label"
TAGS = ("run_id", "grid", "seed", "model.variant")  # the run columns load_metrics puts beside each epoch


def current_runs(runs: pd.DataFrame, grid_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split one grid's runs into (current, stale) by the grid manifest ``grid_dir/_grid.json``
    (written by ``sweep submit``): a run whose id the grid file no longer expands to was made by an
    earlier version of it (another recipe) and must not be averaged with the current runs. Current runs
    come in the manifest's order (the launcher's expansion order), so tables read as the grid file does.
    Without a readable manifest every run is current, in the order given."""
    manifest = read_grid_manifest(grid_dir)
    if manifest is None or runs.empty:
        return runs, runs.iloc[0:0]
    position = {run_id: i for i, run_id in enumerate(manifest["run_ids"])}
    where = runs["run_id"].map(position)
    current = where.notna()
    return runs[current].iloc[where[current].to_numpy().argsort(kind="stable")], runs[~current]


def _row_labels(frame: pd.DataFrame, rows: list[str]) -> pd.Series:
    """Point / line labels: the row-key values that vary in ``frame`` joined with ' / ' (keys that
    are the same everywhere say nothing); the first key if none varies."""
    keys = [r for r in rows if r in frame.columns]
    if not keys or frame.empty:
        return pd.Series([""] * len(frame), index=frame.index, dtype=object)
    shown = {r: frame[r].map(format_key) for r in keys}
    varying = [r for r in keys if shown[r].nunique() > 1] or keys[:1]
    out = shown[varying[0]]
    for r in varying[1:]:
        out = out + " / " + shown[r]
    return out


@dataclass
class FigureSpec:
    """One figure to draw: ``plots.<fn>(frame, out=out, **kwargs)``, shown in the index as ``title``."""

    title: str
    fn: str
    frame: pd.DataFrame | Callable[[], pd.DataFrame]  # a callable: built only if the figure is drawn
    out: Path
    kwargs: dict
    inputs: str = ""  # a digest of what ``frame`` is built from, when that is cheaper to tell than the frame


COMPARISON_MEMO = Path(".cache") / "comparisons.json"
"""``<reports>/.cache/comparisons.json``: per grid table, the paired comparisons computed for a digest of their
inputs (``harness.report.tables.comparison_memo``): an unchanged table reads no predictions and resamples nothing."""

FIGURE_RECORD = Path(".cache") / "figures.json"
"""``<reports>/.cache/figures.json``: per figure, the digest of its inputs (frame, options, plotting code,
matplotlib) and what drawing it returned; a figure whose digest and files are unchanged is not drawn again."""


def _code_digest() -> str:
    from importlib.metadata import version

    from harness import __version__

    h = hashlib.sha256(f"{__version__} matplotlib {version('matplotlib')} pandas {pd.__version__}".encode())
    here = Path(__file__).resolve().parent
    for name in ("plots.py", "zoo.py", "index.py"):
        h.update((here / name).read_bytes())
    return h.hexdigest()


def _spec_digest(spec: FigureSpec, code: str) -> str | None:
    """What the figure of ``spec`` is drawn from, hashed; None when it cannot be told (then it is drawn)."""
    try:
        h = hashlib.sha256(code.encode())
        h.update(
            repr((spec.title, spec.fn, str(spec.out), sorted((k, repr(v)) for k, v in spec.kwargs.items()))).encode()
        )
        zoo = spec.kwargs.get("zoo_path")
        if zoo and Path(zoo).is_file():
            h.update(Path(zoo).read_bytes())
        if spec.inputs:
            h.update(spec.inputs.encode())
        else:
            frame = spec.frame() if callable(spec.frame) else spec.frame
            h.update(repr((list(frame.columns), [str(t) for t in frame.dtypes], frame.attrs)).encode())
            h.update(pd.util.hash_pandas_object(frame, index=True).to_numpy().tobytes())
        return h.hexdigest()
    except Exception:  # unhashable cells (lists), odd attrs: draw it
        return None


def _read_record(out: Path) -> dict:
    try:
        record = json.loads((out / FIGURE_RECORD).read_text())
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def _files_of(out: Path, info: dict) -> dict | None:
    files = {}
    for p in info.get("paths", ()):
        try:
            st = os.stat(p)
            files[Path(p).relative_to(out).as_posix()] = [st.st_size, st.st_mtime_ns]
        except (OSError, ValueError):
            return None
    return files


def figure_specs(
    name: str,
    runs: pd.DataFrame,
    table: pd.DataFrame,
    meta: GridMeta,
    fig_dir: Path,
    formats: tuple[str, ...],
    record: dict | None = None,
) -> list[FigureSpec]:
    """The figures a reader expects for one grid (those its data allows): accuracy vs GFLOPs with the
    Pareto front, order accuracy (synthetic study), latency vs GFLOPs, time ratios to the baseline (with
    their 95% intervals), ablation curves for the knobs
    that are row keys, training curves of its finished runs. ``record``: what :func:`draw_figures` recorded
    (the training curves' metrics are then read only when they changed)."""
    specs: list[FigureSpec] = []
    rows = table.attrs.get("rows") or meta.rows or []
    table = table.assign(**{LABEL: _row_labels(table, rows)})
    if meta.zoo and formats:  # drawn with or without runs of ours: the published points alone still inform
        spec = zoo_spec(name, runs, table, meta, rows, fig_dir, formats)
        if spec is not None:
            specs.append(spec)
    if table.empty or not formats:
        return specs
    hw = _hardware(runs[runs["status"] == "done"])
    common = {"label": LABEL, "formats": formats}
    if "test.top1" in table.columns and "profile.gflops_per_view" in table.columns:
        specs.append(
            FigureSpec(
                "accuracy vs GFLOPs",
                "scatter_tradeoff",
                table,
                fig_dir / f"{name}_accuracy_vs_gflops",
                {
                    "x": "profile.gflops_per_view",
                    "y": "test.top1",
                    "title": f"{name}: top-1 vs cost",
                    "note": f"measured on {hw}",
                    **common,
                },
            )
        )
    if "test.groups.order.top1" in table.columns:  # the synthetic long-range set: order factor, chance 50%
        specs.append(
            FigureSpec(
                "order accuracy",
                "bar_metric",
                table,
                fig_dir / f"{name}_order_accuracy",
                {
                    "y": "test.groups.order.top1",
                    "chance": 50.0,
                    **common,
                    "title": f"{name}: accuracy on the order of events (needs several snippets)",
                },
            )
        )
    if "profile.latency_ms" in table.columns and table["profile.latency_ms"].notna().any():
        specs.append(
            FigureSpec(
                "latency vs GFLOPs",
                "scatter_tradeoff",
                table,
                fig_dir / f"{name}_latency_vs_gflops",
                {
                    "x": "profile.gflops_per_view",
                    "y": "profile.latency_ms",
                    "pareto": False,
                    "title": f"{name}: latency vs GFLOPs",
                    "note": f"measured on {hw}",
                    **common,
                },
            )
        )
    ratios = [m for m in RATIO_METRICS if m in table.columns and table[m].notna().any()]
    if ratios:
        specs.append(
            FigureSpec(
                "time ratio to baseline",
                "ratio_plot",
                table,
                fig_dir / f"{name}_ratio_to_baseline",
                {
                    "metrics": tuple(ratios),
                    "title": f"{name}: time relative to the baseline timed beside each variant",
                    "note": f"measured on {hw}",
                    **common,
                },
            )
        )
    if "paired delta" in table.columns and pd.to_numeric(table["paired delta"], errors="coerce").notna().any():
        specs.append(
            FigureSpec(
                "paired Δ top-1 to the baseline",
                "delta_plot",
                table,
                fig_dir / f"{name}_delta_to_baseline",
                {
                    "title": f"{name}: top-1 relative to the baseline, on the same test videos",
                    "note": "error bars: paired bootstrap 95% interval, pooled over seed pairs",
                    **common,
                },
            )
        )
    for knob in ABLATION_KNOBS:
        others = [r for r in rows if r != knob]
        if knob in rows and len(others) <= 1 and "test.top1" in table.columns:
            short = key_label(knob)
            specs.append(
                FigureSpec(
                    f"ablation: {short}",
                    "ablation_curve",
                    table,
                    fig_dir / f"{name}_{short}",
                    {
                        "knob": knob,
                        "group": others[0] if others else None,
                        "formats": formats,
                        "title": f"{name}: top-1 vs {short}",
                    },
                )
            )
    done = runs[runs["status"] == "done"]
    if (done["task"] == "train").any():
        labels = dict(zip(done["run_id"], _row_labels(done, rows)))

        def curves() -> pd.DataFrame:
            metrics = load_metrics(done)
            metrics[LABEL] = metrics["run_id"].map(labels)
            return metrics

        spec = FigureSpec(
            "training curves",
            "training_curves",
            curves,
            fig_dir / f"{name}_training",
            {"title": f"{name}: training curves", **common},
            # the curves come from the runs' metrics.jsonl: their signatures tell whether they changed
            inputs=json.dumps(
                [[p, metrics_signature(p)] for p in done["path"]]
                + [labels, done[[c for c in TAGS if c in done.columns]].astype(str).to_numpy().tolist()]
            ),
        )
        known = (record or {}).get(str(spec.out))
        digest = _spec_digest(spec, record["__code__"]) if record else None
        if known is not None and digest is not None and known.get("digest") == digest:
            if known.get("info") is not None:  # drawn before from the same metrics: drawn again only if gone
                specs.append(spec)
            return specs  # else: no run had training curves then, and none has now
        metrics = curves()
        if not metrics.empty and "train_loss" in metrics.columns:
            specs.append(FigureSpec(spec.title, spec.fn, metrics, spec.out, spec.kwargs, inputs=spec.inputs))
        elif record is not None and digest is not None:
            record[str(spec.out)] = {"digest": digest, "info": None}
    return specs


def zoo_spec(
    name: str,
    runs: pd.DataFrame,
    table: pd.DataFrame,
    meta: GridMeta,
    rows: list[str],
    fig_dir: Path,
    formats: tuple[str, ...],
) -> FigureSpec | None:
    """Top-1 vs GFLOPs/video of our runs (coloured) beside the grid's published points (grey); None when
    neither has a point with a cost in our convention."""
    from harness.report.zoo import our_points, plotted, read_zoo

    ours = our_points(runs, table, rows, LABEL)
    if ours.empty and plotted(read_zoo(meta.zoo)).empty:
        return None
    return FigureSpec(
        "accuracy vs GFLOPs/video, with published models",
        "zoo.scatter_zoo",
        ours,
        fig_dir / f"{name}_accuracy_vs_gflops_zoo",
        {
            "zoo_path": meta.zoo,
            "formats": formats,
            "title": f"{name}: top-1 vs GFLOPs/video, ours and published ({Path(meta.zoo).name})",
            "note": "grey: published (experiments/zoo, sources per row); blue: ours (results/). "
            "One convention: fvcore, 1 MAC = 1 FLOP, per view x views.",
        },
    )


def _draw(fn: str, frame: pd.DataFrame, out: Path, kwargs: dict) -> dict:
    from harness.report import plots  # matplotlib only when figures are drawn

    if fn.startswith("zoo."):
        from harness.report import zoo

        return getattr(zoo, fn[4:])(frame, out=out, **kwargs)
    return getattr(plots, fn)(frame, out=out, **kwargs)


def draw_figures(specs: list[FigureSpec], record: dict | None = None, out: Path | None = None) -> list[dict]:
    """Draw ``specs`` and return each figure's metadata (paths, labels, point counts; ``title`` = the
    spec's, ``plot_title`` = the plot's). Sequential: drawing in forked workers was slower on the shared
    2-core machine. With ``record`` (:func:`read_figure_record` of the reports folder ``out``) a figure whose
    inputs and files are unchanged since it was drawn is not drawn again (figures are byte-reproducible: the
    same inputs draw the same bytes), and ``record`` is updated."""
    figures = []
    code = record.get("__code__") if record is not None else None
    for s in tqdm(specs, desc="figures", unit=" fig", leave=False, disable=None, delay=1.0):
        digest = _spec_digest(s, code) if code else None
        known = record.get(str(s.out)) if record is not None else None
        if (
            digest is not None
            and known is not None
            and known.get("digest") == digest
            and known.get("info") is not None
            and _files_of(out, known["info"]) == known.get("files")
        ):
            info = known["info"]
        else:
            frame = s.frame() if callable(s.frame) else s.frame
            info = _draw(s.fn, frame, s.out, s.kwargs)
            if record is not None and digest is not None:
                files = _files_of(out, info)
                try:
                    json.dumps(info)
                except (TypeError, ValueError):
                    files = None
                if files is not None:
                    record[str(s.out)] = {"digest": digest, "info": info, "files": files}
                else:
                    record.pop(str(s.out), None)
        figures.append({**info, "plot_title": info.get("title", ""), "title": s.title})
    return figures


RUNS_CSV_RECORD = Path(".cache") / "runs_csv.json"
"""``<reports>/.cache/runs_csv.json``: the store signature runs.csv was written from, and the file's size and
mtime: an unchanged runs.csv of unchanged runs is not written again."""


def _write_runs_csv(runs: pd.DataFrame, out: Path) -> None:
    """``out/runs.csv`` (one row per run, no paths), unless the file already holds exactly these runs."""
    path, signature = out / "runs.csv", runs.attrs.get("signature")
    try:
        record = json.loads((out / RUNS_CSV_RECORD).read_text(encoding="utf-8"))
        st = path.stat()
        if signature and record == {"signature": signature, "size": st.st_size, "mtime_ns": st.st_mtime_ns}:
            return
    except (OSError, ValueError):
        pass
    to_csv(runs.drop(columns=["path"]), path)
    if signature:
        st = path.stat()
        try:
            _write(
                out / RUNS_CSV_RECORD,
                json.dumps({"signature": signature, "size": st.st_size, "mtime_ns": st.st_mtime_ns}),
            )
        except OSError:  # a cache: the report is right without it
            pass


def read_figure_record(out: Path) -> dict:
    """The figure record of the reports folder ``out`` (empty when absent, unreadable or from other code)."""
    code = _code_digest()
    record = _read_record(out)
    return record if record.get("__code__") == code else {"__code__": code}


def write_figure_record(out: Path, record: dict) -> None:
    try:
        _write(out / FIGURE_RECORD, json.dumps(record, sort_keys=True, default=str))
    except OSError:
        pass


def grid_figures(
    name: str, runs: pd.DataFrame, table: pd.DataFrame, meta: GridMeta, fig_dir: Path, formats: tuple[str, ...]
) -> list[dict]:
    """Draw one grid's figures (see :func:`figure_specs`); returns their metadata."""
    return draw_figures(figure_specs(name, runs, table, meta, fig_dir, formats))


def _anchor(heading: str) -> str:
    """GitHub's anchor of a Markdown heading (lower case, spaces -> '-', punctuation but '-' and '_' dropped)."""
    return "".join(c for c in heading.lower().replace(" ", "-") if c.isalnum() or c in "-_")


def _figure_lines(fig: dict, out: Path) -> list[str]:
    """A figure in Markdown: title with what it shows, the PNG (or SVG) inline, links to every file."""
    rels = [Path(p).relative_to(out).as_posix() for p in fig["paths"]]
    shown = next((r for r in rels if r.endswith(".png")), rels[0])
    n, unit = (fig["points"], "point") if "points" in fig else (fig.get("lines", 0), "line")
    what = f"{n} {unit}{'' if n == 1 else 's'}"
    links = ", ".join(f"[{Path(r).suffix[1:].upper()}]({r})" for r in rels)
    return [f"**{fig['title']}** ({what}; {links})", "", f"![{fig['title']}]({shown})", ""]


def _zoo_lines(name: str, runs: pd.DataFrame, table: pd.DataFrame, meta: GridMeta) -> list[str]:
    """The grid's published reference points: which points are ours and which published, each of our
    rows beside its nearest published neighbours in cost, and every published row with its convention."""
    from harness.report.zoo import neighbours, neighbours_markdown, our_points, plotted, read_zoo, zoo_table_markdown

    zoo = read_zoo(meta.zoo)
    rows = table.attrs.get("rows") or meta.rows or []
    ours = our_points(runs, table.assign(**{LABEL: _row_labels(table, rows)}), rows, LABEL)
    n_plotted = len(plotted(zoo))
    figure = (
        "In the figure *with published models*, grey squares are published numbers (model zoos, papers; a "
        f"source per row), blue circles are ours (this report's finished runs: {len(ours)} point(s))."
        if n_plotted or len(ours)
        else "No figure: no published row has a cost in our convention and no run of ours has finished."
    )
    lines = [
        f"Published reference points: `{meta.zoo}` ({len(zoo)} rows, {n_plotted} with a cost in our "
        f"convention; the others are listed below without one). {figure} Cost: GFLOPs/video = GFLOPs/view x "
        "views, fvcore, 1 multiply-add = 1 FLOP (conversion rule: `experiments/zoo/README.md`).",
        "",
    ]
    if len(ours):
        lines += ["Each of our rows beside its two nearest published points in cost (Δ = ours - published):", ""]
        lines += [neighbours_markdown(neighbours(ours, zoo)), ""]
    lines += ["<details><summary>published rows</summary>", "", zoo_table_markdown(zoo), "", "</details>", ""]
    return lines


def reported_runs(out: Path) -> int:
    """How many runs the report already in ``out`` was written from (its README.md's ``- runs: N`` line, else the
    rows of its runs.csv); 0 without a report."""
    import re

    try:
        match = re.search(r"^- runs: (\d+)", (out / "README.md").read_text(encoding="utf-8", errors="replace"), re.M)
        if match:
            return int(match.group(1))
    except OSError:
        pass
    try:
        with open(out / "runs.csv", "rb") as f:
            return max(0, sum(1 for line in f if line.strip()) - 1)
    except OSError:
        return 0


def no_runs_message(unknown: list[str], results_root: str | os.PathLike, available: list[str]) -> str:
    return (
        f"--grid: no runs for grid(s) {unknown} under {Path(results_root) / 'runs'}; grids with runs: "
        f"{', '.join(available) or 'none'}"
    )


def write_report(
    results_root: str | os.PathLike = "results",
    reports_dir: str | os.PathLike = "reports",
    grids: list[str] | None = None,
    formats: tuple[str, ...] = ("md", "tex", "png", "svg"),
    experiments_dir: str | os.PathLike = "experiments",
    runs: pd.DataFrame | None = None,
) -> Path:
    """Regenerate ``reports_dir`` from the runs under ``results_root/runs``: per grid a table
    (``<grid>.md`` with ``md``, ``<grid>.tex`` with ``tex``) and figures (``figures/<grid>_*.png|svg``
    with ``png``/``svg``), ``runs.csv`` (one row per run) and the index ``README.md`` linking them all
    with hardware, dates, run and status counts. ``grids``: only these (UsageError, a ValueError, if one has
    no runs).
    ``runs``: that folder's ``load_runs`` frame when the caller has read it already. Returns the path
    of ``README.md``."""
    bad = set(formats) - set(FORMATS)
    if bad:
        raise UsageError(f"unknown report format(s) {sorted(bad)}; choose from {', '.join(FORMATS)}")
    out = Path(reports_dir)
    runs_dir = Path(results_root) / "runs"
    for folder in (Path(results_root), runs_dir):
        if folder.exists() and not folder.is_dir():
            raise UsageError(f"--results {results_root}: {folder} is a file, not a results folder; give the folder")
    if runs is None:
        runs = load_runs(runs_dir)
    if runs.empty:
        before = reported_runs(out)
        if before:
            why = "does not exist" if not runs_dir.exists() else "holds no run folder"
            raise UsageError(
                f"--results {str(results_root) or chr(39) * 2}: {runs_dir} {why}, and {out / 'README.md'} reports "
                f"{before} run(s): not overwritten by a report of nothing; check --results (or give another --out)"
            )
    problems = runs.attrs.get("problems", [])
    available = sorted(runs["grid"].dropna().unique()) if not runs.empty else []
    from harness.report.zoo import grids_with_zoo

    with_zoo = grids_with_zoo(experiments_dir)  # reported even without runs: their published points
    if grids:
        unknown = sorted(set(grids) - set(available) - set(with_zoo))
        if unknown:
            raise UsageError(no_runs_message(unknown, results_root, available))
    names = list(dict.fromkeys(grids or [*available, *with_zoo]))
    if runs.empty or "grid" not in runs.columns:  # no run at all: an empty frame with the columns used below
        runs = pd.DataFrame(columns=["run_id", "grid", "task", "status", "seed", "path"])
        runs.attrs["problems"] = problems
    image_formats = tuple(f for f in ("png", "svg") if f in formats)
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    splits = {name: current_runs(runs[runs["grid"] == name], Path(results_root) / "runs" / name) for name in names}
    n_stale = sum(len(stale) for _, stale in splits.values())
    shown = pd.concat([g for g, _ in splits.values()]) if splits else runs
    done_all = shown[shown["status"] == "done"]
    out.mkdir(parents=True, exist_ok=True)
    _write_runs_csv(runs, out)
    index = [
        "# DSA harness report",
        "",
        f"- generated: {now}, from `{Path(results_root) / 'runs'}`",
        f"- runs: {len(runs)} ({_status_counts(runs) if len(runs) else 'none'}) in {len(available)} grid(s); "
        + (f"{n_stale} of them made by earlier versions of their grid files, not shown; " if n_stale else "")
        + "all runs, one row each: [`runs.csv`](runs.csv)",
        f"- finished: {_dates(done_all)}",
        f"- hardware: {_hardware(done_all)}",
        "",
        f"Where the numbers come from: every number of ours is read from a run folder under "
        f"`{Path(results_root) / 'runs'}` "
        "(its `final.json` and `metrics.jsonl`); only finished runs (`final.json` parses) are averaged. The "
        "paper's numbers come from `experiments/paper/*.csv` and are shown only where verified (empty "
        "otherwise); Δ = ours - paper, shown only where our test list has the size of the "
        "one behind the paper's number "
        "(`experiments/paper/test_sets.csv`). Accuracies in %, `78.2 [77.6, 78.8]`: the mean and its 95% "
        "interval (over test videos for one run, over seeds for several; `n` = runs averaged); `Δ top-1 vs "
        f"baseline`: paired over the same videos, {RESOLVED_MARK} where its interval excludes 0, with the exact "
        "McNemar p. "
        "FLOPs: fvcore, 1 multiply-add = 1 FLOP, per view (one clip of U snippets x T frames, one crop); "
        "views = clips x crops per video (a cost cell `167.9 x 6` is GFLOPs per view x views); params in millions, "
        "with the classifier unless stated. Timings: median ms at the stated batch, `[low, high]` its bootstrap "
        "95% interval; ratios to the baseline timed beside each variant in the same process, flagged "
        f"{WARN_MARK} when their interval is wider than {RATIO_CI_WARN_WIDTH:g}. Costs in significant figures.",
        "",
    ]
    if names:
        index += ["| grid | reproduces | runs | table | figures |", "|---|---|---|---|---|"]
        contents_at = len(index)
    problems = list(problems)

    def read_correct(paths: list[str]) -> tuple[dict, list]:
        """Per-video correctness of these runs (only the paired ones are read) and the files it could not read."""
        return load_correct(runs[runs["path"].isin(paths)])

    memo = comparison_memo(out / COMPARISON_MEMO)

    grids_info, specs = [], []
    record = read_figure_record(out)
    for name in names:
        g, stale = splits[name]
        meta = GridMeta.load(name, experiments_dir)
        paper, notes = read_paper(meta.paper_reference)
        table = grid_table(g, meta, paper, correct=read_correct, memo=memo)
        problems.extend(table.attrs.get("problems", []))  # predictions files that could not be read
        grid_specs = figure_specs(name, g, table, meta, out / "figures", image_formats, record)
        grids_info.append((name, g, stale, meta, notes, table, len(specs), len(grid_specs)))
        specs += grid_specs
    try:
        _write(out / COMPARISON_MEMO, memo_text(memo))
    except OSError:  # a cache: the report is right without it
        pass
    figures = draw_figures(specs, record, out)
    write_figure_record(out, record)
    sections = []
    for name, g, stale, meta, notes, table, first, count in grids_info:
        figs = figures[first : first + count]
        done = g[g["status"] == "done"]
        section = [f"## {name}", ""]
        if meta.title:
            section += [meta.title, ""]
        section += [
            f"- reproduces: {meta.paper_table or '-'}",
            f"- runs: {len(g)} ({_status_counts(g)}); finished: {_dates(done)}",
            f"- hardware: {_hardware(done)}",
        ]
        if len(stale):
            section.append(
                f"- not shown: {len(stale)} run(s) of an earlier version of the grid file (no longer "
                f"among its runs; still in `{Path(results_root) / 'runs' / name}` and in `runs.csv`)"
            )
        if meta.paper_reference:
            section.append(f"- {table.attrs.get('label', 'paper')} numbers: `{meta.paper_reference}`")
            text = " ".join(n for n in notes if not n.lower().startswith("label:"))
            if text:
                section.append(f"  ({text})")
        pairs_text = pairs_csv(table)
        if pairs_text is not None:  # before the markdown, which links it
            _write(out / f"{name}.pairs.csv", pairs_text)
            table.attrs["pairs_file"] = f"{name}.pairs.csv"
        section += ["", to_markdown(table, meta) if not table.empty else "_no finished run yet_", ""]
        if meta.zoo:
            section += _zoo_lines(name, g, table, meta)
        for fig in figs:
            section += _figure_lines(fig, out)
        files = []
        if "md" in formats:
            _write(out / f"{name}.md", "\n".join(section).rstrip() + "\n")
            files.append(f"[md]({name}.md)")
        if "tex" in formats and not table.empty:
            _write(out / f"{name}.tex", to_latex(table, meta))
            files.append(f"[tex]({name}.tex)")
        if pairs_text is not None:
            files.append(f"[pairs csv]({name}.pairs.csv)")
        if files:
            section += [f"Table files: {', '.join(files)}", ""]
        index.insert(
            contents_at + len(sections),
            f"| [{name}](#{_anchor(name)}) | {meta.paper_table or '-'} | {len(g)} "
            f"({_status_counts(g)}) | {', '.join(files) or '-'} | {len(figs)}: "
            f"{', '.join(f['title'] for f in figs) or '-'} |",
        )
        sections.append(section)
    if names:
        index.append("")
    for section in sections:
        index += section
    if problems:
        index += [
            "## Problems found while reading results",
            "",
            f"{len(problems)} problem(s); these runs are kept with their status, never averaged unless done.",
            "",
        ]
        index += [f"- `{p}`: {msg}" for p, msg in problems[:MAX_PROBLEMS_LISTED]]
        if len(problems) > MAX_PROBLEMS_LISTED:
            index.append(f"- ... and {len(problems) - MAX_PROBLEMS_LISTED} more (`runs.csv` has every run's status)")
        index.append("")
    path = out / "README.md"
    _write(path, "\n".join(index).rstrip() + "\n")
    return path


__all__ = ["FORMATS", "FigureSpec", "current_runs", "draw_figures", "figure_specs", "grid_figures", "write_report"]
