"""A grid table (``harness.report.tables.grid_table``) as a reader sees it: each cell's text (means with their
spread or 95% interval, compact costs, marks), the paper's number and Δ beside ours, the paired comparisons, the
notes that say what the cells mean, and the table as GitHub Markdown, LaTeX (booktabs) or terminal text."""

from __future__ import annotations

import math

import pandas as pd
from tabulate import tabulate

from harness.numfmt import format_interval, format_sig, sig_decimals
from harness.report import stats
from harness.report.columns import (
    ACCURACY_DECIMALS,
    COMPOSITE,
    DIGITS,
    NO_INTERVAL_MARK,
    RATIO_CI_WARN_WIDTH,
    RATIO_DECIMALS,
    RATIO_METRICS,
    SIG_DIGITS,
    TEXT_METRICS,
    WARN_MARK,
    interval_columns,
    is_accuracy,
    key_label,
    metric_label,
)
from harness.report.gridfile import GridMeta


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
    notes = _cost_notes(metrics) + _timing_notes(table, metrics)
    if table.attrs.get("paper_note"):
        notes.append(table.attrs["paper_note"] + ".")
    notes += _accuracy_notes(table, metrics)
    notes += _comparison_notes(table)
    notes += _ratio_notes(table, metrics)
    notes += _memory_notes(table, metrics)
    return notes


def _cost_notes(metrics: list[str]) -> list[str]:
    """The convention of each compact cost cell (``167.9 x 6``)."""
    notes = []
    for m in metrics:
        if m in COMPOSITE:
            crop = " at the test crop" if m == "profile.test_cost" else ""
            notes.append(
                f"{metric_label(m)}: GFLOPs per view{crop} (fvcore, 1 multiply-add = 1 FLOP) x views (clips x crops)."
            )
    return notes


def _timing_notes(table: pd.DataFrame, metrics: list[str]) -> list[str]:
    """What a timing is: the median over rounds of a forward pass or a training step, at the runs' batch."""
    timed = [m for m in metrics if m in ("profile.latency_ms", "profile.train_step_ms")]
    if not timed:
        return []

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
    return [
        f"Timings: median ms per {what} at {batch}"
        + ("; [low, high]: bootstrap 95% interval of the median (rows of one run)." if ci else ".")
    ]


def _accuracy_notes(table: pd.DataFrame, metrics: list[str]) -> list[str]:
    """What an accuracy's interval is over (videos or seeds), and the mark of one shown without one."""
    accuracies = [m for m in metrics if is_accuracy(m)]
    if not accuracies:
        return []
    n = pd.to_numeric(table.get("n", pd.Series(dtype=float)), errors="coerce")
    notes = [
        "Accuracies: [low, high] is a 95% interval: over the test videos for a row of one run (Wilson for "
        "top-1, top-5 and factor accuracies, a seeded bootstrap over videos for mean class accuracy), over "
        "seeds for a row of several (t interval of the mean, clipped to [0, 100]; `n` seeds)."
    ]
    if len(n) and (n <= 1).all():
        notes.append("Every row is one seed: seed-to-seed noise is not measured (the intervals are over videos only).")
    if any(NO_INTERVAL_MARK in metric_cell(table, r, m) for _, r in table.iterrows() for m in accuracies):
        notes.append(f"{NO_INTERVAL_MARK}: no interval (the run kept no per-video predictions).")
    return notes


def _comparison_notes(table: pd.DataFrame) -> list[str]:
    """What the paired Δ to the baseline and P(beats baseline) columns are."""
    notes = []
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
    return notes


def _ratio_notes(table: pd.DataFrame, metrics: list[str]) -> list[str]:
    """How a ratio to the baseline is timed, and the flag of one whose interval is wide."""
    ratios = [m for m in metrics if m in RATIO_METRICS]
    if not ratios:
        return []
    notes = [
        "Ratio to baseline: median over rounds of (variant time / baseline time), the baseline (column "
        "baseline; none for a backbone itself) timed in the same process, alternating with the variant; "
        "[low, high]: bootstrap 95% interval. Each row's absolute times come from its own process, so "
        "compare variants through this ratio, not by subtracting times of two rows."
    ]
    if any(flagged(r, m) for _, r in table.iterrows() for m in ratios):
        notes.append(
            f"{WARN_MARK}: the ratio's 95% interval is wider than {RATIO_CI_WARN_WIDTH:g} (high - low): the "
            "difference from the baseline is not resolved at that precision."
        )
    return notes


def _memory_notes(table: pd.DataFrame, metrics: list[str]) -> list[str]:
    """What a peak memory counts, and how it was measured."""
    if not any(m in ("profile.infer_peak_mem_gb", "profile.train_peak_mem_gb") for m in metrics):
        return []
    how = table.attrs.get("memory_method") or []
    return [
        "Peak memory: GB = 1e9 bytes; inference: one forward pass, training: one training step (weights, "
        "gradients, momentum, input and activations)" + (f"; measured as {' / '.join(map(str, how))}." if how else ".")
    ]


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
