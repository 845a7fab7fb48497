"""Reports: paper-style tables (Markdown, LaTeX, terminal) with the paper's numbers and deltas, plots,
and the reports/README.md index — all drawn from the results store."""

from harness.report.index import write_report
from harness.report.tables import GridMeta, grid_table, read_paper, to_latex, to_markdown, to_terminal

__all__ = ["GridMeta", "grid_table", "read_paper", "to_latex", "to_markdown", "to_terminal", "write_report"]
