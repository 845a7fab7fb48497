"""Reports: paper-style tables (Markdown, LaTeX, terminal) with the paper's numbers and deltas, plots,
and the reports/README.md index — all drawn from the results store.

    from harness.report import write_report
    index = write_report(results_root="results", reports_dir="reports")   # -> reports/README.md

Names are imported on first use, so that ``harness.report.commands`` (loaded by every CLI call) does
not pull in pandas and matplotlib.
"""

from harness.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "write_report": "harness.report.index",
        "GridMeta": "harness.report.tables",
        "grid_table": "harness.report.tables",
        "read_paper": "harness.report.tables",
        "to_latex": "harness.report.tables",
        "to_markdown": "harness.report.tables",
        "to_terminal": "harness.report.tables",
    },
)
