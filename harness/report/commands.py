"""`dsa-harness report`: regenerate tables and figures from results/."""

from __future__ import annotations

import argparse

from harness.helpfmt import HelpFormatter

FORMATS = ("md", "tex", "png", "svg")


def register_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="regenerate reports/ (paper tables, plots, index) from results/",
        formatter_class=HelpFormatter,
        description=(
            "Load every run under RESULTS/runs (config.json, final.json, metrics.jsonl; unfinished and broken\n"
            "runs are counted and listed, never fatal) and write, per grid:\n"
            "  OUT/<grid>.md, OUT/<grid>.tex   the paper-style table: one row per setting (the grid's\n"
            "                                  report.rows), n = runs averaged, mean ± std over seeds, the\n"
            "                                  paper's verified number (experiments/paper/*.csv) and Δ = ours - paper\n"
            "  OUT/figures/<grid>_*.png|svg    accuracy vs GFLOPs with the Pareto front, latency vs GFLOPs,\n"
            "                                  time ratios to the baseline (95% intervals), ablation curves,\n"
            "                                  training curves (those the grid's data allows)\n"
            "and OUT/README.md, the index linking every table and figure with hardware, dates and run counts,\n"
            "plus OUT/runs.csv (one row per run). Only finished runs are averaged."
        ),
        epilog=(
            "examples:\n"
            "  dsa-harness report                                  # every grid with runs, every format\n"
            "  dsa-harness report --grid profile --formats md      # one grid's table only\n"
            "  dsa-harness report --grid profile --print           # print its table; writes nothing\n"
            "  dsa-harness report --results /scratch/results --out /tmp/reports --csv runs.csv"
        ),
    )
    p.add_argument(
        "--grid", action="append", metavar="NAME", help="only this grid (repeatable; default: every grid with runs)"
    )
    p.add_argument(
        "--formats",
        default=",".join(FORMATS),
        metavar="LIST",
        help=f"comma-separated subset of {','.join(FORMATS)} (default: all)",
    )
    p.add_argument(
        "--results",
        default="results",
        metavar="DIR",
        help="results root holding runs/<grid>/<run_id>/ (default: results)",
    )
    p.add_argument("--out", default="reports", metavar="DIR", help="report folder (default: reports)")
    p.add_argument(
        "--experiments",
        default="experiments",
        metavar="DIR",
        help="grid files <name>.yaml and paper/*.csv (default: experiments)",
    )
    p.add_argument(
        "--print",
        action="store_true",
        help="print each grid's table to the terminal instead of writing the report (writes nothing)",
    )
    p.add_argument("--csv", metavar="FILE", help="also export the runs table (one row per run) to FILE")
    p.set_defaults(func=_report)


def _report(args: argparse.Namespace) -> int:
    from harness.errors import UsageError

    formats = tuple(f.strip() for f in args.formats.split(",") if f.strip())
    bad = sorted(set(formats) - set(FORMATS))
    if bad or not formats:
        raise UsageError(f"--formats {args.formats!r}: unknown {bad or 'empty list'}; choose from {','.join(FORMATS)}")
    if args.print and args.csv:
        raise UsageError("--print writes nothing: drop --csv, or drop --print to write the report and the CSV")
    from pathlib import Path

    from harness.report import write_report
    from harness.report.index import grid_runs, no_runs_message
    from harness.report.tables import GridMeta, grid_table, read_paper, to_terminal
    from harness.results.store import load_runs, to_csv

    runs = load_runs(Path(args.results) / "runs")  # read once: for the report or the terminal, and the CSV
    if args.print:  # read only: no report file
        available = sorted(runs["grid"].dropna().unique()) if not runs.empty else []
        unknown = sorted(set(args.grid or []) - set(available))
        if unknown:  # as the written report
            raise UsageError(no_runs_message(unknown, args.results, available))
        for name in args.grid or sorted(runs["grid"].dropna().unique()):
            meta = GridMeta.load(name, args.experiments)
            shown, _ = grid_runs(runs, name, Path(args.results) / "runs")
            table = grid_table(shown, meta, read_paper(meta.paper_reference)[0])
            print(f"\n{name}" + (f": {meta.paper_table}" if meta.paper_table else ""))
            print(to_terminal(table, meta) if not table.empty else "(no finished run yet)")
        return 0
    path = write_report(
        results_root=args.results,
        reports_dir=args.out,
        grids=args.grid,
        formats=formats,
        experiments_dir=args.experiments,
        runs=runs,
    )
    if args.csv:
        print(f"runs table: {to_csv(runs, args.csv)} ({len(runs)} runs)")
    print(f"report: {path}")
    return 0
