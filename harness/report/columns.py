"""What a report table's metric columns are: their headers, decimals and significant figures, which metrics are
accuracies (shown with a 95% interval), ratios, text or compact costs, the columns of their intervals, and the
marks cells carry. Shared by the table builder (``harness.report.tables``), the cell formatting
(``harness.report.formatting``) and the plots."""

from __future__ import annotations

METRIC_LABELS = {
    "test.top1": "top-1 (%)",
    "test.top5": "top-5 (%)",
    "test.mean_class_acc": "mean class acc. (%)",
    "test.mAP": "mAP (%)",
    "test.groups.order.top1": "order acc. (%)",
    "test.groups.motion.top1": "motion acc. (%)",
    "test.views": "views (clips x crops)",
    "profile.cost": "GFLOPs x views",
    "profile.test_cost": "test GFLOPs x views",
    "profile.gflops_per_view": "GFLOPs/view (fvcore, 1 MAC = 1 FLOP)",
    "profile.gflops_per_video": "GFLOPs/video (fvcore, 1 MAC = 1 FLOP; per view x views)",
    "profile.views": "views (clips x crops)",
    "profile.test_size": "test crop (px)",
    "profile.test_gflops_per_view": "test GFLOPs/view (at the test crop)",
    "profile.test_gflops_per_video": "test GFLOPs/video (per test view x views)",
    "profile.params_m": "Params (M, incl. classifier)",
    "profile.params_m_no_classifier": "Params (M, w/o classifier)",
    "profile.aggregator_params": "aggregator params",
    "profile.latency_ms": "latency (ms/forward, {batch})",
    "profile.throughput_clips_s": "throughput (clips/s)",
    "profile.baseline": "baseline",
    "profile.latency_ratio": "latency ratio to baseline",
    "profile.train_step_ms": "train step (ms, {batch})",
    "profile.train_ratio": "train step ratio to baseline",
    "profile.train_clips_s": "train throughput (clips/s)",
    "profile.infer_peak_mem_gb": "inference peak mem. (GB)",
    "profile.train_peak_mem_gb": "training peak mem. (GB)",
    "last.val_top1": "last val top-1 (%)",
    "wall_time_s": "wall time (s)",
}
"""Column headers that say what they count (``{batch}``: the runs' batch, see :func:`metric_label`)."""

DIGITS = {
    "test.views": 0,
    "profile.test_size": 0,
    "profile.views": 0,
    "profile.aggregator_params": 0,
    "wall_time_s": 0,
}
"""Decimals shown per metric (default 2); costs are shown with significant figures instead (``SIG_DIGITS``)."""

SIG_DIGITS = {
    "profile.gflops_per_view": 4,
    "profile.gflops_per_video": 4,
    "profile.test_gflops_per_view": 4,
    "profile.test_gflops_per_video": 4,
    "profile.aggregator_gflops_per_view": 4,
    "profile.params_m": 4,
    "profile.params_m_no_classifier": 4,
    "profile.latency_ms": 4,
    "profile.throughput_clips_s": 4,
    "profile.train_step_ms": 4,
    "profile.train_clips_s": 4,
    "profile.train_videos_s": 4,
    "profile.infer_peak_mem_gb": 3,
    "profile.train_peak_mem_gb": 3,
}
"""Significant figures per cost metric (``harness.numfmt.format_sig``): 167.9 and 0.02131 GFLOPs alike."""

COMPOSITE = {"profile.cost": "profile.gflops_per_view", "profile.test_cost": "profile.test_gflops_per_view"}
"""Compact cost cells ``167.9 x 6``: a per-view cost (the value column) x the views a video takes."""

PER_VIEW = {v: k for k, v in COMPOSITE.items()}
"""A per-view cost named with views at hand is shown as its compact cell (it says how many views a video takes)."""

VIEWS_COLUMNS = ("test.views", "profile.views")
"""Where the views per video are read (the first with values)."""

ACCURACY_METRICS = ("test.top1", "test.top5", "test.mean_class_acc")
"""Accuracies over the test videos: shown with a 95% interval, over videos for a row of one run (recorded in
final.json from its per-video predictions: ``test.top1_ci_low`` ...), over seeds for a row of several
(``harness.report.stats.seed_summary``)."""


def is_accuracy(m: str) -> bool:
    """Whether metric ``m`` is an accuracy over test videos (``ACCURACY_METRICS`` and a label factor's top-1,
    ``test.groups.<factor>.top1``)."""
    return m in ACCURACY_METRICS or (m.startswith("test.groups.") and m.endswith(".top1"))


def interval_columns(m: str) -> tuple[str | None, str | None]:
    """The (low, high) columns of metric ``m``'s 95% interval in the results store ((None, None): none)."""
    if is_accuracy(m):
        return f"{m}_ci_low", f"{m}_ci_high"
    return INTERVALS.get(m, (None, None))


ACCURACY_DECIMALS = 1
"""Decimals of an accuracy and its interval (78.2 [77.6, 78.8]): a 95% interval of a test set is wider than 0.1."""

NO_INTERVAL_MARK = "‡"
"""Marks an accuracy of one run shown without an interval (it kept no per-video predictions)."""

INTERVALS = {
    **{m: (f"{m}_ci_low", f"{m}_ci_high") for m in ACCURACY_METRICS},
    "profile.latency_ms": ("profile.latency_ci_low_ms", "profile.latency_ci_high_ms"),
    "profile.latency_ratio": ("profile.latency_ratio_ci_low", "profile.latency_ratio_ci_high"),
    "profile.train_step_ms": ("profile.train_step_ci_low_ms", "profile.train_step_ci_high_ms"),
    "profile.train_ratio": ("profile.train_ratio_ci_low", "profile.train_ratio_ci_high"),
}
"""A metric's bootstrap 95% interval (low, high columns of the profile record); shown for rows of one run
as ``value [low, high]`` (intervals of several runs do not combine into one)."""

RATIO_METRICS = ("profile.latency_ratio", "profile.train_ratio")
"""Ratios to the baseline timed beside the variant (``profile.baseline``), shown with ``RATIO_DECIMALS``."""

RATIO_DECIMALS = 2
"""Decimals of a ratio and its interval (ratios sit near 1: one column, one number of decimals)."""

RATIO_CI_WARN_WIDTH = 0.05
"""A ratio whose 95% interval is wider than this (high - low) is flagged ``WARN_MARK`` in tables and plots."""

WARN_MARK = "⚠"

TEXT_METRICS = ("profile.baseline",)
"""Metrics that are text, not numbers: a row shows its runs' value(s)."""

DERIVED_METRICS = tuple(COMPOSITE)
"""Metric names that are no results-store column but built from some (validated in grid files)."""

DEFAULT_METRICS = ("test.top1", "test.top5", "profile.cost", "profile.params_m", "profile.latency_ms")
"""Metrics shown for a grid without ``report.metrics`` (those its runs have)."""


def metric_label(col: str, batch: str | None = None) -> str:
    """A metric's header; ``batch`` (e.g. ``batch 1``, a table's ``attrs["batch"]``) fills a timing's
    ``{batch}``, else ``the run's batch``."""
    return METRIC_LABELS.get(col, col).replace("{batch}", batch or "the run's batch")


def key_label(col: str) -> str:
    """Header of a row-key column: ``model.split_ratio`` -> ``split_ratio``."""
    return col.split(".", 1)[-1]
