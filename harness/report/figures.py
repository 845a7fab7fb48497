"""The figures a report draws for one grid, as specs (:class:`FigureSpec`: the plot function, its frame, options
and file), chosen from what the grid's table and runs allow (:func:`figure_specs`): accuracy vs GFLOPs, order
accuracy, latency vs GFLOPs, time ratios and paired Δ to the baseline, ablation curves, training curves, and the
published models beside ours. Drawing them (and not drawing those unchanged) is ``harness.report.index``'s."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from harness.report.columns import RATIO_METRICS, key_label
from harness.report.formatting import format_key
from harness.report.runinfo import hardware
from harness.report.tables import GridMeta
from harness.results.rundir import metrics_signature
from harness.results.store import load_metrics

ABLATION_KNOBS = ("model.split_ratio", "model.alpha", "model.kernel_size", "model.num_snippets")
LABEL = "_label"
TAGS = ("run_id", "grid", "seed", "model.variant")  # the run columns load_metrics puts beside each epoch


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
    hw = hardware(runs[runs["status"] == "done"])
    common = {"label": LABEL, "formats": formats}
    for make in (_accuracy_spec, _order_spec, _latency_spec, _ratio_spec, _delta_spec):
        spec = make(name, table, fig_dir, common, hw)
        if spec is not None:
            specs.append(spec)
    specs += _ablation_specs(name, table, rows, fig_dir, formats)
    specs += _training_specs(name, runs, rows, fig_dir, common, record)
    return specs


def _accuracy_spec(name: str, table: pd.DataFrame, fig_dir: Path, common: dict, hw: str) -> FigureSpec | None:
    """Top-1 vs GFLOPs per view, with the Pareto front."""
    if "test.top1" not in table.columns or "profile.gflops_per_view" not in table.columns:
        return None
    return FigureSpec(
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


def _order_spec(name: str, table: pd.DataFrame, fig_dir: Path, common: dict, hw: str) -> FigureSpec | None:
    """The synthetic long-range set's order accuracy (chance 50%), as bars."""
    if "test.groups.order.top1" not in table.columns:
        return None
    return FigureSpec(
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


def _latency_spec(name: str, table: pd.DataFrame, fig_dir: Path, common: dict, hw: str) -> FigureSpec | None:
    """Latency vs GFLOPs per view (no Pareto front), when some row was timed."""
    if "profile.latency_ms" not in table.columns or not table["profile.latency_ms"].notna().any():
        return None
    return FigureSpec(
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


def _ratio_spec(name: str, table: pd.DataFrame, fig_dir: Path, common: dict, hw: str) -> FigureSpec | None:
    """The time ratios to the baseline timed beside each variant, with their 95% intervals."""
    ratios = [m for m in RATIO_METRICS if m in table.columns and table[m].notna().any()]
    if not ratios:
        return None
    return FigureSpec(
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


def _delta_spec(name: str, table: pd.DataFrame, fig_dir: Path, common: dict, hw: str) -> FigureSpec | None:
    """Each paired row's Δ top-1 to its baseline, with its paired 95% interval."""
    if "paired delta" not in table.columns or not pd.to_numeric(table["paired delta"], errors="coerce").notna().any():
        return None
    return FigureSpec(
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


def _ablation_specs(
    name: str, table: pd.DataFrame, rows: list[str], fig_dir: Path, formats: tuple[str, ...]
) -> list[FigureSpec]:
    """Top-1 vs each ablation knob that is a row key (grouped by the other key, if one)."""
    specs = []
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
    return specs


def _training_specs(
    name: str, runs: pd.DataFrame, rows: list[str], fig_dir: Path, common: dict, record: dict | None
) -> list[FigureSpec]:
    """The training curves of the grid's finished training runs (none when no run recorded a training loss).
    With ``record``, the runs' metrics are read only when their metrics.jsonl changed since it was drawn."""
    done = runs[runs["status"] == "done"]
    if not (done["task"] == "train").any():
        return []
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
        # drawn before from the same metrics: drawn again only if gone; else no run had training curves then
        return [spec] if known.get("info") is not None else []
    metrics = curves()
    if not metrics.empty and "train_loss" in metrics.columns:
        return [FigureSpec(spec.title, spec.fn, metrics, spec.out, spec.kwargs, inputs=spec.inputs)]
    if record is not None and digest is not None:
        record[str(spec.out)] = {"digest": digest, "info": None}
    return []


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
