"""``write_report``: results/ -> reports/ (tables per grid, figures, an index page).

Layout: ``reports/README.md`` (index), ``reports/<grid>.md`` and ``.tex`` (tables),
``reports/figures/<grid>_*.png|svg``, ``reports/runs.csv`` (one row per run).

Every number comes from the run directories under ``results/runs``; the index says on which hardware,
when, and from how many runs. Paper numbers come only from ``experiments/paper/*.csv`` (verified cells).
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from harness.report import plots
from harness.report.tables import GridMeta, grid_table, metric_label, read_paper, to_latex, to_markdown
from harness.results.rundir import atomic_write_bytes
from harness.results.store import load_metrics, load_runs

ABLATION_KNOBS = ("model.split_ratio", "model.alpha", "model.kernel_size", "model.num_snippets")


def _write(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def _hardware(runs: pd.DataFrame) -> str:
    if "hardware.device_name" not in runs.columns:
        return "unknown"
    parts = []
    cols = [c for c in ("hardware.device", "hardware.device_name", "hardware.threads") if c in runs.columns]
    for vals, g in runs.dropna(subset=["hardware.device_name"]).groupby(cols, dropna=False):
        vals = vals if isinstance(vals, tuple) else (vals,)
        d = dict(zip(cols, vals))
        threads = d.get("hardware.threads")
        parts.append(f"{d.get('hardware.device', '?')}: {d['hardware.device_name']}"
                     + (f", {int(threads)} threads" if threads is not None and not pd.isna(threads) else "")
                     + f" ({len(g)} runs)")
    return "; ".join(parts) or "unknown"


def _dates(runs: pd.DataFrame) -> str:
    if "finished_at" not in runs.columns or runs["finished_at"].dropna().empty:
        return "-"
    d = runs["finished_at"].dropna().sort_values()
    return d.iloc[0] if d.iloc[0] == d.iloc[-1] else f"{d.iloc[0]} to {d.iloc[-1]}"


def _status_counts(runs: pd.DataFrame) -> str:
    counts = runs["status"].value_counts()
    return ", ".join(f"{n} {s}" for s, n in counts.items())


def grid_figures(name: str, runs: pd.DataFrame, table: pd.DataFrame, meta: GridMeta, fig_dir: Path,
                 formats: tuple[str, ...]) -> list[dict]:
    """The figures a reader expects for one grid (those its data allows)."""
    figs: list[dict] = []
    if table.empty or not formats:
        return figs
    label = "model.variant" if "model.variant" in table.columns else (meta.rows or ["model.variant"])[0]
    hw = _hardware(runs[runs["status"] == "done"])
    if "test.top1" in table.columns and "profile.gflops_per_view" in table.columns:
        figs.append({"title": "accuracy vs GFLOPs", **plots.scatter_tradeoff(
            table, fig_dir / f"{name}_accuracy_vs_gflops", x="profile.gflops_per_view", y="test.top1",
            label=label, title=f"{name}: top-1 vs cost", formats=formats, note=f"measured on {hw}")})
    if "test.groups.order.top1" in table.columns:  # the synthetic long-range set: order factor, chance 50%
        figs.append({"title": "order accuracy", **plots.bar_metric(
            table, fig_dir / f"{name}_order_accuracy", y="test.groups.order.top1", label=label, chance=50.0,
            formats=formats, title=f"{name}: accuracy on the order of events (needs several snippets)")})
    if "profile.latency_ms" in table.columns and table["profile.latency_ms"].notna().any():
        figs.append({"title": "latency vs GFLOPs", **plots.scatter_tradeoff(
            table, fig_dir / f"{name}_latency_vs_gflops", x="profile.gflops_per_view", y="profile.latency_ms",
            label=label, pareto=False, title=f"{name}: latency vs GFLOPs", formats=formats,
            note=f"measured on {hw}")})
    for knob in ABLATION_KNOBS:
        if knob in (meta.rows or []) and len(meta.rows) == 1 and "test.top1" in table.columns:
            figs.append({"title": f"ablation: {knob.split('.', 1)[1]}", **plots.ablation_curve(
                table, knob, fig_dir / f"{name}_{knob.split('.', 1)[1]}", formats=formats,
                title=f"{name}: top-1 vs {knob.split('.', 1)[1]}")})
    done = runs[runs["status"] == "done"]
    if (done["task"] == "train").any():
        metrics = load_metrics(done)
        if not metrics.empty and "train_loss" in metrics.columns:
            figs.append({"title": "training curves", **plots.training_curves(
                metrics, fig_dir / f"{name}_training", label=label, title=f"{name}: training curves",
                formats=formats)})
    return figs


def write_report(results_root: str | os.PathLike = "results", reports_dir: str | os.PathLike = "reports",
                 grids: list[str] | None = None, formats: tuple[str, ...] = ("md", "tex", "png", "svg"),
                 experiments_dir: str | os.PathLike = "experiments") -> Path:
    """Write tables and figures of every grid with runs (or of ``grids``) and ``reports/README.md``;
    return the index path."""
    out = Path(reports_dir)
    runs = load_runs(Path(results_root) / "runs")
    problems = runs.attrs.get("problems", [])
    available = sorted(runs["grid"].dropna().unique()) if not runs.empty else []
    if grids:
        unknown = sorted(set(grids) - set(available))
        if unknown:
            raise ValueError(f"no runs for grid(s) {unknown} under {results_root}/runs; grids with runs: "
                             f"{', '.join(available) or 'none'}")
    names = list(grids or available)
    image_formats = tuple(f for f in formats if f in ("png", "svg"))
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    index = [
        "# DSA harness report", "",
        f"Generated {now} from `{results_root}/runs` ({len(runs)} runs: {_status_counts(runs) if len(runs) else 'none'}).",
        "Every number below comes from a run folder under `results/`; the paper's numbers come from "
        "`experiments/paper/*.csv` and are shown only where verified (empty otherwise). "
        "FLOPs: fvcore, 1 multiply-add = 1 FLOP, per view (U snippets x T frames, one crop); "
        "accuracies in %, mean ± std over seeds, `n` = runs averaged.", "",
    ]
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out / "runs.csv", runs.drop(columns=[c for c in runs.columns if c == "path"])
                       .to_csv(index=False).encode())
    for name in names:
        g = runs[runs["grid"] == name]
        meta = GridMeta.load(name, experiments_dir)
        paper, notes = read_paper(meta.paper_reference)
        table = grid_table(g, meta, paper)
        md = to_markdown(table, meta) if not table.empty else "_no finished run yet_"
        done = g[g["status"] == "done"]
        header = [f"## {name}", ""]
        if meta.title:
            header += [meta.title, ""]
        header += [f"- reproduces: {meta.paper_table or '-'}",
                   f"- runs: {len(g)} ({_status_counts(g)}); finished: {_dates(done)}",
                   f"- hardware: {_hardware(done)}"]
        if meta.paper_reference:
            header.append(f"- paper numbers: `{meta.paper_reference}`"
                          + (f" ({notes[0]})" if notes else ""))
        section = header + ["", md, ""]
        if "md" in formats:
            _write(out / f"{name}.md", "\n".join(section) + "\n")
            section.append(f"Table files: [`{name}.md`]({name}.md)"
                           + (f", [`{name}.tex`]({name}.tex)" if "tex" in formats else ""))
        if "tex" in formats and not table.empty:
            _write(out / f"{name}.tex", to_latex(table, meta))
        for fig in grid_figures(name, g, table, meta, out / "figures", image_formats):
            png = next((p for p in fig["paths"] if p.endswith(".png")), fig["paths"][0])
            rel = Path(png).relative_to(out)
            section += ["", f"**{fig['title']}** ({fig.get('points', fig.get('lines', ''))} "
                            f"{'points' if 'points' in fig else 'lines'})", "", f"![{fig['title']}]({rel.as_posix()})"]
        index += section + [""]
    if problems:
        index += ["## Problems found while reading results", ""]
        index += [f"- `{p}`: {msg}" for p, msg in problems] + [""]
    path = out / "README.md"
    _write(path, "\n".join(index).rstrip() + "\n")
    return path


__all__ = ["write_report", "grid_figures", "metric_label"]
