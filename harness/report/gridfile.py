"""What a report reads from a grid file (``experiments/<name>.yaml``): its title, the paper table it reproduces and
the paper's reference CSV, the table's row keys and metrics, the published reference points and the baseline of
its comparisons (:class:`GridMeta`); with the size of the paper's test lists (``experiments/paper/test_sets.csv``)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import ConfigError
from harness.report.columns import DERIVED_METRICS
from harness.report.paper import TEST_SETS_FILE, _resolve_reference, read_test_sets


@dataclass
class GridMeta:
    """What a report needs from a grid file (``experiments/<name>.yaml``, CONTRACTS.md "Grid files");
    a grid without a file is reported by name with rows and metrics chosen from its runs."""

    name: str
    title: str = ""
    paper_table: str = ""
    paper_reference: str | None = None
    task: str | None = None
    rows: list[str] = field(default_factory=list)
    metrics: list[str] = field(default_factory=list)
    zoo: str | None = None
    """``report.zoo``: the published reference points of the grid's dataset (``harness.report.zoo``)."""
    test_sets: dict = field(default_factory=dict)
    """``experiments/paper/test_sets.csv``: ``{data.name: (videos or None, source)}``, the size of the test list
    behind the paper's numbers (:func:`read_test_sets`)."""
    baseline: dict | None = None
    """``report.baseline``: the config values of the runs every other run is compared with (None: each run's
    backbone; ``harness.report.compare``)."""

    @classmethod
    def load(cls, name: str, experiments_dir: str | os.PathLike = "experiments") -> GridMeta:
        experiments_dir = Path(experiments_dir)
        path = experiments_dir / f"{name}.yaml"
        test_sets = read_test_sets(experiments_dir / "paper" / TEST_SETS_FILE)
        if not path.exists():
            return cls(name=name, test_sets=test_sets)
        from harness.config import read_yaml

        doc = read_yaml(path, "grid file") or {}
        if not isinstance(doc, dict):
            raise ConfigError(f"{path}: expected a mapping at the top level")
        report = doc.get("report") or {}
        if not isinstance(report, dict):
            raise ConfigError(f"{path}: report: must be a mapping (rows, metrics)")
        baseline = report.get("baseline")
        if baseline is not None and not (isinstance(baseline, dict) and baseline):
            raise ConfigError(
                f"{path}: report.baseline: {baseline!r}: expected a mapping, e.g. {{model.split_ratio: 0.125}}"
            )
        ref = doc.get("paper_reference")
        if ref is not None and not isinstance(ref, str):
            raise ConfigError(f"{path}: paper_reference: {ref!r} is not a CSV path, e.g. experiments/paper/<name>.csv")
        zoo = report.get("zoo")
        if zoo is not None and not (isinstance(zoo, str) and zoo.endswith(".csv")):
            raise ConfigError(f"{path}: report.zoo: {zoo!r} is not a CSV path; e.g. experiments/zoo/kinetics400.csv")
        metrics = report.get("metrics") or []
        bad = [m for m in metrics if not isinstance(m, str) or not m.strip()] if isinstance(metrics, list) else metrics
        if bad:
            raise ConfigError(
                f"{path}: report.metrics: {bad!r}: expected a list of metric names (results-store columns such as "
                f"test.top1, or {', '.join(DERIVED_METRICS)})"
            )
        return cls(
            name=name,
            title=str(doc.get("description") or ""),
            paper_table=str(doc.get("paper_table") or ""),
            paper_reference=_resolve_reference(doc.get("paper_reference"), experiments_dir),
            task=doc.get("task"),
            rows=list(report.get("rows") or []),
            metrics=list(report.get("metrics") or []),
            zoo=_resolve_reference(zoo, experiments_dir),
            baseline=dict(baseline) if baseline else None,
            test_sets=test_sets,
        )
