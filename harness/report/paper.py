"""The paper's side of a report table: reference CSVs (``experiments/paper/*.csv``), the test-set sizes behind
their numbers, and the ``paper <metric>`` / ``delta <metric>`` columns beside ours.

A paper reference CSV starts with ``#`` comment lines (``# source: ...`` first; ``# label: NAME``
optionally names the reference column, default ``paper``), then a header row whose columns are our
column names (row keys such as ``model.variant``, metrics such as ``test.top1``). Empty cells are
numbers we have not verified: they stay empty, never guessed.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import numpy as np
import pandas as pd

from harness.errors import ConfigError
from harness.report.columns import COMPOSITE, TEXT_METRICS
from harness.report.compare import row_key as _key

TEST_SETS_FILE = "test_sets.csv"
TEST_SET_TOLERANCE = 0.01
"""A run is compared with a paper number only when its test list has the paper's number of videos within 1%."""


def read_test_sets(path: str | os.PathLike) -> dict:
    """``experiments/paper/test_sets.csv`` -> ``{data.name: (videos or None, source)}`` ({} without the file);
    a malformed file raises ConfigError naming it."""
    table, _ = read_paper(path)
    if table.empty:
        return {}
    missing = [c for c in ("data.name", "videos", "source") if c not in table.columns]
    if missing:
        raise ConfigError(f"{path}: missing column(s) {missing}; expected data.name,videos,source")
    out = {}
    for name, videos, source in table[["data.name", "videos", "source"]].itertuples(index=False):
        v = pd.to_numeric(pd.Series([videos]), errors="coerce").iloc[0]
        out[str(name)] = (None if pd.isna(v) else int(v), "" if pd.isna(source) else str(source))
    return out


def check_test_set(rows: pd.DataFrame, test_sets: dict) -> tuple[bool, str]:
    """Whether runs ``rows`` may be compared with a paper number: (True, '') when every run's test list
    (``manifest.test.rows``, else scored + skipped videos) has the reference size of its ``data.name`` within
    ``TEST_SET_TOLERANCE``; else (False, why)."""
    names = rows["data.name"].dropna().unique() if "data.name" in rows.columns else []
    if len(names) != 1:
        return False, "Δ to the paper not shown: the runs name no single dataset (data.name)"
    name = str(names[0])
    videos, _source = test_sets.get(name, (None, ""))
    if videos is None:
        return (
            False,
            f"Δ to the paper not shown: the size of the paper's {name} test list is not verified "
            f"(experiments/paper/{TEST_SETS_FILE})",
        )
    if "manifest.test.rows" in rows.columns and rows["manifest.test.rows"].notna().all():
        sizes = pd.to_numeric(rows["manifest.test.rows"], errors="coerce")
    else:
        scored = pd.to_numeric(rows.get("test.num_videos", pd.Series(np.nan, index=rows.index)), errors="coerce")
        skipped = pd.to_numeric(rows.get("test.num_skipped", pd.Series(0, index=rows.index)), errors="coerce")
        sizes = scored + skipped.fillna(0)
    bad = sizes[(sizes - videos).abs() > TEST_SET_TOLERANCE * videos]
    if sizes.isna().any() or len(bad):
        got = ", ".join(str(int(v)) for v in dict.fromkeys(sizes.dropna())) or "unknown"
        return (
            False,
            f"Δ to the paper not shown: our {name} test list has {got} videos, the paper's {videos} "
            f"(must agree within {TEST_SET_TOLERANCE:.0%})",
        )
    return True, ""


def _resolve_reference(ref: str | None, experiments_dir: Path) -> str | None:
    """A grid's ``paper_reference`` as written (relative to the repository root, e.g.
    ``experiments/paper/x.csv``), else relative to the grid folder's parent, else ``<grids>/paper/<name>``."""
    if not ref:
        return None
    for candidate in (
        Path(ref),
        experiments_dir.parent / ref,
        experiments_dir / ref,
        experiments_dir / "paper" / Path(ref).name,
    ):
        if candidate.exists():
            return str(candidate)
    return str(ref)


def read_paper(path: str | os.PathLike | None) -> tuple[pd.DataFrame, list[str]]:
    """A paper reference CSV -> (table, comment lines). Numeric columns become floats; empty cells
    stay NaN (unverified numbers are never filled in). ``table.attrs["label"]`` names the reference
    column (``paper`` unless a ``# label: NAME`` line says otherwise). A missing file gives an empty
    table; a malformed one raises ConfigError (a ValueError) naming the file and line."""
    if not path or not Path(path).exists():
        return pd.DataFrame(), []
    lines = Path(path).read_text().splitlines()
    notes = [line[1:].strip() for line in lines if line.startswith("#")]
    body = [(i + 1, line) for i, line in enumerate(lines) if line.strip() and not line.startswith("#")]
    if not body:
        return pd.DataFrame(), notes
    parsed = list(csv.reader(io.StringIO("\n".join(line for _, line in body))))
    header = [h.strip() for h in parsed[0]]
    for (lineno, _), cells in zip(body[1:], parsed[1:]):
        if len(cells) != len(header):
            raise ConfigError(f"{path}:{lineno}: {len(cells)} cells, the header has {len(header)} ({header})")
    df = pd.DataFrame([[c.strip() for c in cells] for cells in parsed[1:]], columns=header, dtype=object)
    for col in df.columns:
        filled = df[col] != ""
        converted = pd.to_numeric(df[col].where(filled), errors="coerce")
        if filled.any() and converted[filled].notna().all():
            df[col] = converted.astype(float)
        else:
            df[col] = df[col].where(filled)
    label = next((n.split(":", 1)[1].strip() for n in notes if n.lower().startswith("label:")), "paper")
    df.attrs["label"] = label or "paper"
    return df, notes


def add_paper_columns(
    table: pd.DataFrame, paper: pd.DataFrame | None, done: pd.DataFrame, attrs: dict, *, grid: str, test_sets: dict
) -> dict:
    """The paper's numbers beside ours in ``table`` (a grid table's rows, keyed by ``_key``; in place): for each
    metric ``attrs["metrics"]`` the paper has a number for, ``paper <metric>`` and ``delta <metric>`` (ours -
    paper; NaN for a test metric when the runs ``done`` are not on the paper's test list, :func:`check_test_set`,
    whose reason goes to ``attrs["paper_note"]``). Paper rows of another grid (column ``grid``) are left out.
    Returns the paper's row order, ``{row key: position}`` ({} without paper rows for ``attrs["rows"]``)."""
    rows, metrics = attrs["rows"], attrs["metrics"]
    order: dict = {}
    if paper is None or paper.empty or not all(r in paper.columns for r in rows):
        return order
    p = paper
    if "grid" in p.columns and "grid" not in rows:
        p = p[p["grid"].isna() | (p["grid"] == grid)]
    keys = [tuple(_key(v) for v in vals) for vals in p[rows].itertuples(index=False)]
    for i, k in enumerate(keys):
        order.setdefault(k, i)
    comparable, why = check_test_set(done, test_sets)
    for m in metrics:
        col = COMPOSITE.get(m, m)  # a compact cost cell compares its per-view cost
        if m not in TEXT_METRICS and col in p.columns and p[col].notna().any():
            lookup = {k: v for k, v in zip(keys, p[col]) if not pd.isna(v)}
            table[f"paper {m}"] = table["_key"].map(lookup).astype(float)
            if comparable or not m.startswith("test."):  # costs are counted, not measured on a test set
                table[f"delta {m}"] = table[col] - table[f"paper {m}"]
            else:
                table[f"delta {m}"] = float("nan")
                attrs["paper_note"] = why
    return order
