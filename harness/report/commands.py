"""`dsa-harness report`: regenerate tables and figures from results/."""

from __future__ import annotations

import argparse

FORMATS = ("md", "tex", "png", "svg")


def register_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report", help="regenerate reports/ (paper tables, plots, index) from results/",
        description="Load every run under RESULTS/runs into one table and write, per grid, a paper-style table "
                    "(mean ± std over seeds, run counts, the paper's verified number and the delta) as Markdown "
                    "and LaTeX, the figures a reader expects (accuracy vs GFLOPs with the Pareto front, latency vs "
                    "GFLOPs, ablation curves, training curves) and OUT/README.md linking everything. With --print, "
                    "also print the tables to the terminal.",
        epilog="example: dsa-harness report --grid synthetic_study --format md,png --print")
    p.add_argument("--grid", action="append", help="only this grid (repeatable; default: every grid with runs)")
    p.add_argument("--format", default=",".join(FORMATS), help=f"comma-separated subset of {','.join(FORMATS)}")
    p.add_argument("--results", default="results", help="results root (default results/)")
    p.add_argument("--out", default="reports", help="report folder (default reports/)")
    p.add_argument("--experiments", default="experiments", help="grid files (default experiments/)")
    p.add_argument("--print", action="store_true", help="print each grid's table to the terminal")
    p.add_argument("--csv", help="also export the full runs table (one row per run) to this CSV file")
    p.set_defaults(func=_report)


def _report(args: argparse.Namespace) -> int:
    from harness.report import write_report

    formats = tuple(f.strip() for f in args.format.split(",") if f.strip())
    bad = set(formats) - set(FORMATS)
    if bad:
        raise ValueError(f"--format: unknown {sorted(bad)}; choose from {', '.join(FORMATS)}")
    path = write_report(results_root=args.results, reports_dir=args.out, grids=args.grid, formats=formats,
                        experiments_dir=args.experiments)
    if args.print or args.csv:
        from pathlib import Path

        from harness.report.tables import GridMeta, grid_table, read_paper, to_terminal
        from harness.results.store import load_runs, to_csv

        runs = load_runs(Path(args.results) / "runs")
        if args.csv:
            to_csv(runs, args.csv)
        if args.print:
            for name in args.grid or sorted(runs["grid"].dropna().unique()):
                meta = GridMeta.load(name, args.experiments)
                paper, _ = read_paper(meta.paper_reference)
                print(f"\n{name}\n" + to_terminal(grid_table(runs[runs["grid"] == name], meta, paper), meta))
    print(f"report: {path}")
    return 0
