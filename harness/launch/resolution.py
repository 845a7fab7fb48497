"""What a grid can resolve before it is paid for (``dsa-harness sweep show``).

    plan = plan_resolution(grid, runs, results_root)       # test videos, seeds, accuracy, discordance, Δ
    print(resolution_text(plan))

From the test-set size (``cost.test_clips``, else the lines of ``data.test``), the grid's seeds, the expected
top-1 (the paper column where verified, else the mean of earlier finished runs of the grid, else
``ASSUMED_TOP1``) and the discordance rate of two variants (the share of test videos that one gets right and
the other wrong: measured from the stored predictions of earlier runs of the same grid paired with their
baseline where they exist, else ``harness.report.stats.DEFAULT_DISCORDANCE``): the half-width of one run's
95% interval, and the smallest Δ top-1 a paired test resolves at 95% with 80% power
(``harness.report.stats.min_detectable_delta``); with a target Δ, the seeds that resolve it. Every assumption
is printed with its source.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from harness.config import get_dotted
from harness.launch.cost import _count_lines
from harness.launch.grid import Grid, RunSpec

ASSUMED_TOP1 = 70.0
"""Expected top-1 (%) when neither the paper nor an earlier run of the grid gives one: a stated assumption."""
ALPHA = 0.05
POWER = 0.8


@dataclass(frozen=True)
class ResolutionPlan:
    videos: int | None
    videos_source: str
    seeds: int
    top1: float
    top1_source: str
    discordance: float
    discordance_source: str
    half_width: float | None  # points: half the 95% Wilson interval of one run's top-1
    min_delta: float | None  # points: the smallest paired Δ resolved at 95% with 80% power
    target_delta: float | None = None
    seeds_for_target: int | None = None


def _paper_top1(grid: Grid) -> float | None:
    from harness.report.tables import read_paper

    table, _ = read_paper(grid.paper_reference) if grid.paper_reference else (None, None)
    if table is None or table.empty or "test.top1" not in table.columns:
        return None
    vals = table["test.top1"].dropna()
    return float(vals.mean()) if len(vals) else None


def _earlier(grid: Grid, results_root: str | os.PathLike):
    """Finished runs of this grid under the results root (a frame; empty without any)."""
    from harness.results.store import load_runs

    runs = load_runs(Path(results_root) / "runs" / grid.name)
    return runs[runs["status"] == "done"] if len(runs) else runs


def _measured_discordance(done) -> tuple[float | None, int]:
    """The pooled discordance of earlier runs paired with their baseline, and the number of pairs."""
    from harness.report.compare import pair_counts, pair_runs
    from harness.results.cache import load_correct

    if done is None or done.empty:
        return None, 0
    pairs = pair_runs(done)
    if pairs.empty:
        return None, 0
    correct, _problems = load_correct(done[done["path"].isin(set(pairs["path"]) | set(pairs["baseline_path"]))])
    counts = pair_counts(pairs, correct)
    ok = counts[counts["why"].isna() & (counts["n"] > 0)]
    if ok.empty:
        return None, 0
    return float((ok["a_only"] + ok["b_only"]).sum() / ok["n"].sum()), len(ok)


def plan_resolution(
    grid: Grid, runs: list[RunSpec], results_root: str | os.PathLike = "results", target_delta: float | None = None
) -> ResolutionPlan:
    """The resolution of ``grid`` (module doc); ``target_delta`` (points): also the seeds that resolve it."""
    from harness.report import stats

    videos, videos_source = grid.cost.get("test_clips"), "cost.test_clips"
    if videos is None and runs:
        path = get_dotted(runs[0].config, "data.test")
        videos, videos_source = _count_lines(path), f"lines of {path}"
    seeds = max(1, len(grid.seeds))
    done = _earlier(grid, results_root)
    top1, top1_source = _paper_top1(grid), "the paper's verified numbers"
    if top1 is None and len(done) and "test.top1" in done.columns and done["test.top1"].notna().any():
        top1, top1_source = (
            float(done["test.top1"].mean()),
            f"mean of {int(done['test.top1'].notna().sum())} earlier runs",
        )
    if top1 is None:
        top1, top1_source = ASSUMED_TOP1, "assumed"
    measured, n_pairs = _measured_discordance(done)
    if measured is not None:
        discordance, discordance_source = measured, f"measured: {n_pairs} earlier run pair(s) of this grid"
    else:
        discordance, discordance_source = stats.DEFAULT_DISCORDANCE, "assumed, no earlier predictions of this grid"
    half = min_delta = seeds_for_target = None
    if videos:
        half = float(stats.binomial_half_width(top1, videos))
        min_delta = float(
            stats.min_detectable_delta(videos, discordance=discordance, seeds=seeds, alpha=ALPHA, power=POWER)
        )
        if target_delta is not None:
            seeds_for_target = stats.seeds_to_resolve(
                target_delta, videos, discordance=discordance, alpha=ALPHA, power=POWER
            )
    return ResolutionPlan(
        videos,
        videos_source,
        seeds,
        top1,
        top1_source,
        discordance,
        discordance_source,
        half,
        min_delta,
        target_delta,
        seeds_for_target,
    )


def resolution_text(plan: ResolutionPlan) -> str:
    """The lines ``sweep show`` prints under its table (each assumption with its source)."""
    if not plan.videos:
        return "resolution: unknown (no test-set size: set cost.test_clips, or make data.test readable)"
    lines = [
        f"resolution (95%, {POWER:.0%} power), {plan.videos:,} test videos ({plan.videos_source}) "
        f"x {plan.seeds} seed(s):",
        f"  one run's top-1 at {plan.top1:.1f}% ({plan.top1_source}): ±{plan.half_width:.2f} points (Wilson)",
        f"  paired Δ top-1 vs the baseline, same videos: resolved from {plan.min_delta:.2f} points",
        f"    (discordance {plan.discordance:.3f}: {plan.discordance_source})",
    ]
    if plan.target_delta is not None:
        target = f"  --target-delta {plan.target_delta:g}: "
        if plan.seeds_for_target is not None:
            lines.append(target + f"{plan.seeds_for_target} seed(s) resolve it (the grid has {plan.seeds})")
        elif plan.target_delta / 100 >= plan.discordance:
            lines.append(target + f"never: a Δ cannot exceed the discordance rate ({plan.discordance:.3f})")
        else:
            lines.append(target + "more than 1000 seeds")
    return "\n".join(lines)


__all__ = ["ASSUMED_TOP1", "ResolutionPlan", "plan_resolution", "resolution_text"]
