"""``write_report``: results/ -> reports/ (tables per grid, figures, an index page).

    from harness.report import write_report
    write_report(results_root="results", reports_dir="reports", grids=None,
                 formats=("md", "tex", "png", "svg"), experiments_dir="experiments")   # -> reports/README.md

Layout: ``reports/README.md`` (the index: hardware, dates, run and status counts, a contents table,
each grid's table and figures), ``reports/<grid>.md`` and ``.tex`` (tables),
``reports/figures/<grid>_*.png|svg``, ``reports/runs.csv`` (one row per run). The figures each grid gets are
chosen in ``harness.report.figures`` (drawn here, and not again while unchanged); what the index says about the
runs' settings, dates and statuses comes from ``harness.report.runinfo``.

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
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from harness.errors import UsageError
from harness.report.columns import RATIO_CI_WARN_WIDTH, WARN_MARK
from harness.report.figures import (
    ABLATION_KNOBS,
    LABEL,
    TAGS,
    FigureSpec,
    _row_labels,
    _spec_digest,
    figure_specs,
    zoo_spec,
)
from harness.report.formatting import RESOLVED_MARK, pairs_csv, to_latex, to_markdown
from harness.report.runinfo import dates as _dates
from harness.report.runinfo import hardware as _hardware
from harness.report.runinfo import run_settings
from harness.report.runinfo import status_counts as _status_counts
from harness.report.tables import GridMeta, comparison_memo, grid_table, memo_text, read_paper
from harness.results.cache import load_correct
from harness.results.rundir import atomic_write_bytes, read_grid_manifest
from harness.results.store import load_runs, to_csv

FORMATS = ("md", "tex", "png", "svg")
MAX_PROBLEMS_LISTED = 50


def _write(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


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


def grid_runs(runs: pd.DataFrame, name: str, runs_root: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(current, stale) runs of grid ``name`` (:func:`current_runs`): those in its folder, and those its
    manifest lists that another folder holds (a run two grids ask for, or one trained by hand, is trained once
    and kept where it was: the store has one row per run id), so its table shows every run it asks for."""
    own = runs[runs["grid"] == name] if "grid" in runs.columns else runs
    manifest = read_grid_manifest(runs_root / name)
    if manifest is not None and not runs.empty:
        elsewhere = runs[(runs["grid"] != name) & runs["run_id"].isin(manifest["run_ids"])]
        if len(elsewhere):
            own = pd.concat([own, elsewhere])
    return current_runs(own, runs_root / name)


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
    for name in ("plots.py", "zoo.py", "index.py", "figures.py", "runinfo.py", "columns.py", "formatting.py"):
        h.update((here / name).read_bytes())
    return h.hexdigest()


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
    out = Path(reports_dir)
    runs = _runs_to_report(results_root, out, formats, runs)
    problems = runs.attrs.get("problems", [])
    available, names = _grid_names(runs, grids, results_root, experiments_dir)
    if runs.empty or "grid" not in runs.columns:  # no run at all: an empty frame with the columns used below
        runs = pd.DataFrame(columns=["run_id", "grid", "task", "status", "seed", "path"])
        runs.attrs["problems"] = problems
    image_formats = tuple(f for f in ("png", "svg") if f in formats)
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    splits = {name: grid_runs(runs, name, Path(results_root) / "runs") for name in names}
    out.mkdir(parents=True, exist_ok=True)
    _write_runs_csv(runs, out)
    index = _index_head(runs, splits, available, results_root, now)
    problems = list(problems)
    record = read_figure_record(out)
    grids_info, specs = _grid_tables(runs, splits, experiments_dir, out, image_formats, record, problems)
    figures = draw_figures(specs, record, out)
    write_figure_record(out, record)
    contents, sections = [], []
    for name, g, stale, meta, notes, table, first, count in grids_info:
        figs = figures[first : first + count]
        section, files = _grid_section(name, g, stale, meta, notes, table, figs, out, results_root, formats)
        contents.append(
            f"| [{name}](#{_anchor(name)}) | {meta.paper_table or '-'} | {len(g)} "
            f"({_status_counts(g)}) | {', '.join(files) or '-'} | {len(figs)}: "
            f"{', '.join(f['title'] for f in figs) or '-'} |"
        )
        sections.append(section)
    if names:
        index += ["| grid | reproduces | runs | table | figures |", "|---|---|---|---|---|", *contents, ""]
    for section in sections:
        index += section
    index += _problem_lines(problems)
    path = out / "README.md"
    _write(path, "\n".join(index).rstrip() + "\n")
    return path


def _runs_to_report(
    results_root: str | os.PathLike, out: Path, formats: tuple[str, ...], runs: pd.DataFrame | None
) -> pd.DataFrame:
    """The runs of ``results_root/runs`` (``runs`` when given), after refusing (UsageError) an unknown format, a
    results folder that is a file, and a report of no run where ``out`` reports some (a mistyped ``--results``)."""
    bad = set(formats) - set(FORMATS)
    if bad:
        raise UsageError(f"unknown report format(s) {sorted(bad)}; choose from {', '.join(FORMATS)}")
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
    return runs


def _grid_names(
    runs: pd.DataFrame, grids: list[str] | None, results_root: str | os.PathLike, experiments_dir: str | os.PathLike
) -> tuple[list[str], list[str]]:
    """(the grids with runs, the grids to report: ``grids``, else those with runs and those with published points
    to show); UsageError when a grid of ``grids`` has neither."""
    from harness.report.zoo import grids_with_zoo

    available = sorted(runs["grid"].dropna().unique()) if not runs.empty else []
    with_zoo = grids_with_zoo(experiments_dir)  # reported even without runs: their published points
    if grids:
        unknown = sorted(set(grids) - set(available) - set(with_zoo))
        if unknown:
            raise UsageError(no_runs_message(unknown, results_root, available))
    return available, list(dict.fromkeys(grids or [*available, *with_zoo]))


def _index_head(
    runs: pd.DataFrame, splits: dict, available: list[str], results_root: str | os.PathLike, now: str
) -> list[str]:
    """The index's title, run counts, dates and hardware (of the runs shown: ``splits``' current runs), and where
    the numbers come from and what they mean."""
    n_stale = sum(len(stale) for _, stale in splits.values())
    shown = pd.concat([g for g, _ in splits.values()]) if splits else runs
    done_all = shown[shown["status"] == "done"]
    return [
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


def _grid_tables(
    runs: pd.DataFrame,
    splits: dict,
    experiments_dir: str | os.PathLike,
    out: Path,
    image_formats: tuple[str, ...],
    record: dict,
    problems: list,
) -> tuple[list[tuple], list[FigureSpec]]:
    """Each grid's table and figure specs: ``(name, current runs, stale runs, meta, paper notes, table, first spec,
    spec count)`` per grid, and all the specs. The paired comparisons read predictions only for runs they pair and
    not at all for a table whose inputs are unchanged (the reports folder's comparison memo, rewritten here); the
    predictions files that could not be read are added to ``problems``."""

    def read_correct(paths: list[str]) -> tuple[dict, list]:
        """Per-video correctness of these runs (only the paired ones are read) and the files it could not read."""
        return load_correct(runs[runs["path"].isin(paths)])

    memo = comparison_memo(out / COMPARISON_MEMO)
    grids_info, specs = [], []
    for name, (g, stale) in splits.items():
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
    return grids_info, specs


def _grid_section(
    name: str,
    g: pd.DataFrame,
    stale: pd.DataFrame,
    meta: GridMeta,
    notes: list[str],
    table: pd.DataFrame,
    figs: list[dict],
    out: Path,
    results_root: str | os.PathLike,
    formats: tuple[str, ...],
) -> tuple[list[str], list[str]]:
    """One grid's section of the index (also its ``<grid>.md``): its runs, the paper reference, the table, the
    published points and the figures; writes ``<grid>.md``, ``<grid>.tex`` and ``<grid>.pairs.csv``. Returns the
    section's lines and the links to the table files written."""
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
    return section, files


def _problem_lines(problems: list) -> list[str]:
    """The index's list of the problems found while reading results (up to ``MAX_PROBLEMS_LISTED``)."""
    if not problems:
        return []
    lines = [
        "## Problems found while reading results",
        "",
        f"{len(problems)} problem(s); these runs are kept with their status, never averaged unless done.",
        "",
    ]
    lines += [f"- `{p}`: {msg}" for p, msg in problems[:MAX_PROBLEMS_LISTED]]
    if len(problems) > MAX_PROBLEMS_LISTED:
        lines.append(f"- ... and {len(problems) - MAX_PROBLEMS_LISTED} more (`runs.csv` has every run's status)")
    lines.append("")
    return lines


__all__ = [
    "ABLATION_KNOBS",
    "FORMATS",
    "LABEL",
    "TAGS",
    "FigureSpec",
    "current_runs",
    "draw_figures",
    "figure_specs",
    "grid_figures",
    "run_settings",
    "write_report",
    "zoo_spec",
]
