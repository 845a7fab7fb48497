"""Cost numbers a paper can cite (issue 13, the report side): the compact cost cell, significant figures,
latency and training-step medians with their 95% intervals, ratios to the baseline (flagged when the
interval is wide), peak memory, the recorded settings in the hardware line, and plots whose labels do not
overlap and whose error bars are the intervals. Profile records with the new keys (CONTRACTS.md / the
profile record schema) are written into run folders as ``dsa-harness sweep`` would; older records come from
the real ``profile_model``, which does not write the new keys."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.text import Text

from harness.errors import ConfigError
from harness.numfmt import format_interval, format_sig, sig_decimals
from harness.report import GridMeta, grid_table, plots, read_paper, to_latex, to_markdown, write_report
from harness.report.index import _hardware
from harness.report.tables import METRIC_LABELS, RATIO_CI_WARN_WIDTH, WARN_MARK, table_notes
from harness.results.rundir import RunDir
from harness.results.store import load_runs

REPO = Path(__file__).resolve().parents[1]

OLD_KEYS = set(
    "variant flavour depth width aggregator position split_ratio alpha kernel_size snippets frames size num_classes "
    "views gflops_per_view gflops_per_video aggregator_gflops_per_view flops_by_operator unsupported_ops params_m "
    "params_m_no_classifier aggregator_params batch device device_name threads latency_ms latency_iqr_ms "
    "throughput_clips_s timed_runs channels_last compiled".split()
)
"""A profile record's keys before issue 13 (the report must read such records as they are)."""

# the paper's seven variants as profiled (experiments/profile.yaml): near-identical GFLOPs, the dense case
VARIANTS = {  # variant: (GFLOPs/view, params M, baseline, latency ms)
    "tsn_r50": (131.71, 24.33, None, 1868.4),
    "tsm_r50": (131.71, 24.33, None, 1721.2),
    "tsm_r50_dsa": (131.71, 24.33, "tsm_r50", 1829.0),
    "i3d_r50": (167.88, 32.45, None, 2220.0),
    "i3d_r50_dsa": (167.89, 32.45, "i3d_r50", 2311.6),
    "i3d_r50_static": (167.88, 32.45, "i3d_r50", 2149.5),
    "i3d_r50_nonlocal": (167.88, 32.46, "i3d_r50", 2225.1),
}
RATIO = {  # latency ratio, its interval; i3d_r50_static's is wider than 0.05
    "tsm_r50_dsa": (1.0123, 0.991, 1.034),
    "i3d_r50_dsa": (1.0412, 1.021, 1.062),
    "i3d_r50_static": (0.9683, 0.921, 1.013),
    "i3d_r50_nonlocal": (1.0021, 0.988, 1.019),
}
CPU_SETTINGS = {
    "device": "cpu",
    "device_name": "AMD EPYC",
    "dtype": "fp32",
    "autocast": False,
    "tf32_matmul": False,
    "tf32_cudnn": False,
    "cudnn_benchmark": False,
    "channels_last": False,
    "compile_mode": "none",
    "torch": "2.13.0",
    "cuda": None,
    "cudnn": None,
    "threads": 2,
    "batch": 1,
}
CUDA_SETTINGS = {
    **CPU_SETTINGS,
    "device": "cuda",
    "device_name": "NVIDIA H200",
    "dtype": "bf16",
    "autocast": True,
    "tf32_cudnn": True,
    "cudnn_benchmark": True,
    "torch": "2.5.1",
    "cuda": "12.4",
    "cudnn": 90100,
    "threads": 16,
}


def new_record(variant: str, *, train: bool = True, memory: bool = True, settings: dict = CPU_SETTINGS) -> dict:
    """A profile record as the issue-13 measurement writes it (every new key; None where not measured)."""
    gflops, params, baseline, lat = VARIANTS[variant]
    ratio = RATIO.get(variant)
    step = 3.1 * lat
    return {
        "variant": variant,
        "snippets": 4,
        "frames": 8,
        "size": 224,
        "views": 6,
        "gflops_per_view": gflops,
        "gflops_per_video": gflops * 6,
        "params_m": params,
        "batch": 1,
        "device": settings["device"],
        "device_name": settings["device_name"],
        "threads": settings["threads"],
        "latency_ms": lat,
        "latency_iqr_ms": 30.0,
        "throughput_clips_s": 4 / (lat / 1000),
        "timed_runs": 20,
        "rounds": 10,
        "latency_ci_low_ms": lat - 21.3,
        "latency_ci_high_ms": lat + 23.4,
        "baseline": baseline,
        "baseline_latency_ms": VARIANTS[baseline][3] if baseline else None,
        "latency_ratio": ratio[0] if ratio else None,
        "latency_ratio_ci_low": ratio[1] if ratio else None,
        "latency_ratio_ci_high": ratio[2] if ratio else None,
        "train_step_ms": step if train else None,
        "train_step_iqr_ms": 50.0 if train else None,
        "train_step_ci_low_ms": step - 40.0 if train else None,
        "train_step_ci_high_ms": step + 41.0 if train else None,
        "train_clips_s": 4 / (step / 1000) if train else None,
        "train_videos_s": 1 / (step / 1000) if train else None,
        "baseline_train_step_ms": 3.1 * VARIANTS[baseline][3] if train and baseline else None,
        "train_ratio": ratio[0] + 0.01 if train and ratio else None,
        "train_ratio_ci_low": ratio[0] - 0.005 if train and ratio else None,
        "train_ratio_ci_high": ratio[0] + 0.025 if train and ratio else None,
        "infer_peak_mem_gb": 0.4123 * gflops / 100 if memory else None,
        "train_peak_mem_gb": 3.456 * gflops / 100 if memory and train else None,
        "memory_method": "torch.profiler memory events (live tensor bytes)" if memory else None,
        "settings": dict(settings),
    }


def write_profile_run(root: Path, grid: str, name: str, record: dict, hardware: dict | None = None) -> RunDir:
    """A finished profile run folder: config.json and final.json as the profile task writes them."""
    rd = RunDir(root / "runs" / grid / name).create()
    rd.write_config({"task": "profile", "grid": grid, "seed": 0, "model": {"variant": record["variant"]}})
    hw = hardware or {"device": record["device"], "device_name": record["device_name"], "threads": record["threads"]}
    rd.write_final(
        {
            "run_id": rd.run_id,
            "task": "profile",
            "status": "done",
            "finished_at": "2026-12-01T04:14:33+00:00",
            "hardware": hw,
            "versions": {"torch": "2.13.0+cpu", "cuda": None},
            "profile": record,
        }
    )
    return rd


def profile_table(root: Path, grid: str = "profile"):
    runs = load_runs(root / "runs")
    meta = GridMeta.load("profile", REPO / "experiments")  # the repository's grid file: its report.metrics
    return grid_table(runs[runs["grid"] == grid], meta, read_paper(meta.paper_reference)[0]), meta


def cells(md: str) -> tuple[list[str], dict[str, dict[str, str]]]:
    """A Markdown table's headers and its rows by first cell: {variant: {header: cell}}."""
    lines = [line for line in md.splitlines() if line.startswith("|")]
    split = [[c.strip() for c in line.strip("|").split("|")] for line in lines]
    headers = split[0]
    return headers, {row[0]: dict(zip(headers, row)) for row in split[2:]}


@pytest.fixture
def new_runs(tmp_path):
    for variant in VARIANTS:
        write_profile_run(tmp_path, "profile", variant, new_record(variant))
    return tmp_path


# ------------------------------------------------------------------------------------------------
# numbers


@pytest.mark.parametrize(
    "x, digits, text",
    [
        (167.885761472, 4, "167.9"),
        (0.021312, 4, "0.02131"),
        (0.021312, 3, "0.0213"),
        (0.0251, 3, "0.0251"),
        (1007.314568832, 4, "1007"),
        (123456.7, 4, "123457"),  # integer digits are never dropped
        (9.99996, 4, "10.00"),  # rounding up gains a digit before the point
        (24.33, 4, "24.33"),
        (-0.0012345, 3, "-0.00123"),
        (0, 4, "0"),
        (None, 4, ""),
        (float("nan"), 4, ""),
    ],
)
def test_format_sig(x, digits, text):
    assert format_sig(x, digits) == text


def test_format_interval_uses_the_centres_decimals_and_never_makes_one_up():
    assert format_interval(1.0123, 0.991, 1.034, 3) == "1.01 [0.99, 1.03]"
    assert format_interval(2311.6, 2290.3, 2335.0, 4) == "2312 [2290, 2335]"
    assert format_interval(2311.6, None, 2335.0, 4) == "2312"  # a missing bound: the value alone
    assert format_interval(None, 1.0, 2.0) == "" and sig_decimals(0.5, 2) == 2  # 0.50


# ------------------------------------------------------------------------------------------------
# the profile table


def test_profile_table_with_new_records(new_runs):
    table, meta = profile_table(new_runs)
    md = to_markdown(table, meta)
    headers, rows = cells(md)
    cost, lat, ratio = "GFLOPs x views", "latency (ms/forward, batch 1) [95% CI]", "latency ratio to baseline [95% CI]"
    step, step_ratio = "train step (ms, batch 1) [95% CI]", "train step ratio to baseline [95% CI]"
    mem_i, mem_t = "inference peak mem. (GB)", "training peak mem. (GB)"
    for h in (cost, "Params (M, incl. classifier)", lat, "baseline", ratio, step, step_ratio, mem_i, mem_t):
        assert h in headers, (h, headers)
    for gone in ("views (clips x crops)", "GFLOPs/view (fvcore, 1 MAC = 1 FLOP)", "GFLOPs/video"):
        assert not any(h.startswith(gone) for h in headers)  # the three wide columns are one compact cell
    assert headers.index("baseline") == headers.index(ratio) - 1
    for variant, (gflops, params, baseline, ms) in VARIANTS.items():
        row = rows[variant]
        assert row[cost] == f"{gflops:.1f} x 6"  # 4 significant figures
        assert row["Params (M, incl. classifier)"] == f"{params:.2f}"
        assert row[lat] == f"{ms:.0f} [{ms - 21.3:.0f}, {ms + 23.4:.0f}]"
        assert row[step] == f"{3.1 * ms:.0f} [{3.1 * ms - 40:.0f}, {3.1 * ms + 41:.0f}]"
        assert row[mem_i] == format_sig(0.4123 * gflops / 100, 3) and row[mem_t] == format_sig(3.456 * gflops / 100, 3)
        if baseline is None:  # a backbone: no ratio (never 1.00 made up)
            assert row["baseline"] == row[ratio] == row[step_ratio] == ""
            continue
        r, lo, hi = RATIO[variant]
        assert row["baseline"] == baseline
        expected = f"{r:.2f} [{lo:.2f}, {hi:.2f}]"
        wide = hi - lo > RATIO_CI_WARN_WIDTH
        assert row[ratio] == (f"{expected} {WARN_MARK}" if wide else expected)
        assert (variant == "i3d_r50_static") == wide
    notes = md.split("\n\n", 1)[1]
    assert "GFLOPs per view (fvcore, 1 multiply-add = 1 FLOP) x views (clips x crops)" in notes
    assert f"{WARN_MARK}: the ratio's 95% interval is wider than 0.05" in notes
    assert "over 10 interleaved rounds" in notes and "torch.profiler memory events" in notes
    tex = to_latex(table, meta)
    assert r"$\dagger$" in tex and "wider than 0.05" in tex and "167.9 x 6" in tex


def test_old_records_render_empty_cells_and_invent_nothing(tmp_path):
    """Records from before issue 13 (the real profile_model, no interval/ratio/memory keys) beside new ones:
    their cells stay empty; a table of old records alone has no column for what they lack."""
    from harness.measure.profile import profile_model

    record = profile_model("tsn_r18", {"width": 16, "num_classes": 10}, size=32, views=2, rounds=2, memory=False)
    old = {k: v for k, v in record.items() if k in OLD_KEYS}  # as written before the issue-13 keys
    old.update(channels_last=False, compiled=False)  # what the old timer recorded (now in settings)
    assert OLD_KEYS == set(old)
    write_profile_run(tmp_path, "old", "tsn_r18", old)
    table, meta = profile_table(tmp_path, "old")
    headers, rows = cells(to_markdown(table, meta))
    assert headers == [
        "variant",
        "n",
        "GFLOPs x views",
        "Params (M, incl. classifier)",
        "reference Params (M, incl. classifier)",  # experiments/paper/profile.csv (none for tsn_r18: empty)
        "Δ",
        "latency (ms/forward, batch 1)",
    ]
    row = rows["tsn_r18"]
    assert row["GFLOPs x views"] == f"{format_sig(old['gflops_per_view'])} x 2" and "[" not in row[headers[-1]]
    # mixed: an old record beside new ones
    for variant in ("i3d_r50", "i3d_r50_dsa"):
        write_profile_run(tmp_path, "old", variant, new_record(variant, train=False, memory=False))
    table, meta = profile_table(tmp_path, "old")
    md = to_markdown(table, meta)
    headers, rows = cells(md)
    assert "train step (ms, batch 1) [95% CI]" not in headers and "inference peak mem. (GB)" not in headers
    ratio = "latency ratio to baseline [95% CI]"
    assert rows["tsn_r18"][ratio] == rows["tsn_r18"]["baseline"] == ""
    assert rows["tsn_r18"]["latency (ms/forward, batch 1) [95% CI]"] == format_sig(old["latency_ms"])
    assert rows["i3d_r50_dsa"][ratio] == "1.04 [1.02, 1.06]"
    # the written report: no crash, the old run's hardware line from its older fields
    index = write_report(tmp_path, tmp_path / "reports", formats=("md", "png"), experiments_dir=REPO / "experiments")
    text = index.read_text()
    assert "cpu: AMD EPYC, 2 threads, batch 1, fp32, channels_last off, compile none, torch 2.13.0 (2 runs)" in text
    assert f"{old['device_name']}, {old['threads']} thread" in text


def test_compact_cost_cell_with_significant_figures_for_tiny_models(tmp_path):
    """A training grid (synthetic study) names profile.cost: its tiny models keep 4 significant figures."""
    for variant, gflops in (("tsn_r18", 0.021312), ("i3d_r18", 0.029471)):
        rd = RunDir(tmp_path / "runs" / "synthetic_study" / variant).create()
        rd.write_config({"task": "train", "grid": "synthetic_study", "seed": 0, "model": {"variant": variant}})
        rd.append_metrics({"epoch": 0, "train_loss": 1.0, "val_top1": 50.0})
        rd.write_final(
            {
                "status": "done",
                "hardware": {"device": "cpu", "device_name": "AMD EPYC", "threads": 1},
                "test": {"top1": 50.0, "views": 2},
                "profile": {"gflops_per_view": gflops, "views": 2, "params_m": 0.7034},
            }
        )
    runs = load_runs(tmp_path / "runs")
    meta = GridMeta.load("synthetic_study", REPO / "experiments")
    assert "profile.cost" in meta.metrics
    headers, rows = cells(to_markdown(grid_table(runs, meta), meta))
    assert rows["tsn_r18"]["GFLOPs x views"] == "0.02131 x 2" and rows["i3d_r18"]["GFLOPs x views"] == "0.02947 x 2"


def test_report_metrics_are_validated_and_every_repo_metric_is_labelled(tmp_path):
    (tmp_path / "g.yaml").write_text("name: g\nreport:\n  metrics: profile.cost\n")
    with pytest.raises(ConfigError, match=r"g\.yaml: report\.metrics"):
        GridMeta.load("g", tmp_path)
    (tmp_path / "g.yaml").write_text("name: g\nreport:\n  metrics: [test.top1, 3]\n")
    with pytest.raises(ConfigError, match="expected a list of metric names"):
        GridMeta.load("g", tmp_path)
    for grid_file in sorted((REPO / "experiments").glob("*.yaml")):
        for m in GridMeta.load(grid_file.stem, REPO / "experiments").metrics:
            assert m in METRIC_LABELS, (grid_file.name, m)  # a header that says what it counts: no typo


# ------------------------------------------------------------------------------------------------
# the hardware line


def test_hardware_line_shows_every_recorded_setting_grouped(tmp_path):
    for variant in ("tsm_r50", "tsm_r50_dsa"):
        write_profile_run(tmp_path, "g", variant, new_record(variant))
    for variant in ("i3d_r50", "i3d_r50_dsa", "i3d_r50_static"):
        write_profile_run(tmp_path, "g", variant, new_record(variant, settings=CUDA_SETTINGS))
    line = _hardware(load_runs(tmp_path / "runs"))
    assert sorted(line.split("; ")) == [
        "cpu: AMD EPYC, 2 threads, batch 1, fp32, channels_last off, compile none, torch 2.13.0 (2 runs)",
        "cuda: NVIDIA H200, 16 threads, batch 1, bf16 autocast, TF32 matmul off/cudnn on, cudnn.benchmark on, "
        "channels_last off, compile none, torch 2.5.1, CUDA 12.4, cuDNN 90100 (3 runs)",
    ]
    assert _hardware(load_runs(tmp_path / "nothing")) == "unknown"


# ------------------------------------------------------------------------------------------------
# plots


@pytest.fixture
def kept_figures(monkeypatch):
    """The figures the plot functions draw, kept open (they close them after saving) to be inspected."""
    figures, close = [], plt.close
    monkeypatch.setattr(plots.plt, "close", figures.append)
    yield figures
    for fig in figures:
        close(fig)


def label_boxes(fig) -> list:
    """Window extents of the figure's text labels (the annotations' text, without their leader lines),
    after drawing it."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    return [Text.get_window_extent(t, renderer) for ax in fig.axes for t in ax.texts]


def assert_apart_and_inside(fig, n: int) -> None:
    boxes = label_boxes(fig)
    assert len(boxes) == n
    whole = fig.bbox
    for i, a in enumerate(boxes):
        assert whole.x0 <= a.x0 and a.x1 <= whole.x1 and whole.y0 <= a.y0 and a.y1 <= whole.y1, (i, a, whole)
        for j in range(i):
            assert not a.overlaps(boxes[j]), (i, j, a, boxes[j])


def test_dense_labels_do_not_overlap_and_error_bars_are_the_intervals(new_runs, tmp_path, kept_figures):
    table, _ = profile_table(new_runs)
    table = table.assign(_label=table["model.variant"])
    info = plots.scatter_tradeoff(
        table,
        tmp_path / "lat",
        x="profile.gflops_per_view",
        y="profile.latency_ms",
        label="_label",
        pareto=False,
        note="measured on " + "a long description of the hardware and every setting, " * 4,
        formats=("png",),
    )
    assert_apart_and_inside(kept_figures[-1], len(VARIANTS))
    assert (
        info["xlabel"] == "GFLOPs/view (fvcore, 1 MAC = 1 FLOP)" and info["ylabel"] == "latency (ms/forward, batch 1)"
    )
    assert info["error_bars"] == "95% interval"
    assert np.allclose(info["yerr"], [[21.3] * 7, [23.4] * 7])  # below and above each median
    # accuracy vs GFLOPs too: the seven labels of one table at two GFLOPs values, and a label per point
    dense = table.assign(**{"test.top1": [70.0, 70.2, 70.1, 71.0, 71.1, 70.9, 71.05]})
    plots.scatter_tradeoff(dense, tmp_path / "acc", label="_label", formats=("png",))
    assert_apart_and_inside(kept_figures[-1], len(VARIANTS))
    # old records: no interval, no error bar made up
    old = table.drop(columns=["profile.latency_ms low", "profile.latency_ms high"])
    info = plots.scatter_tradeoff(old, tmp_path / "old", y="profile.latency_ms", label="_label", formats=("png",))
    assert info["error_bars"] == "" and info["yerr"] is None


def test_ratio_plot_has_interval_bars_a_line_at_one_and_the_wide_interval_ringed(new_runs, tmp_path, kept_figures):
    table, _ = profile_table(new_runs)
    info = plots.ratio_plot(table, tmp_path / "ratio", formats=("png", "svg"))
    assert info["metrics"] == ["profile.latency_ratio", "profile.train_ratio"] and info["points"] == 2 * len(RATIO)
    lat = info["yerr"]["profile.latency_ratio"]
    with_ratio = [v for v in VARIANTS if v in RATIO]
    assert np.allclose(lat[0], [RATIO[v][0] - RATIO[v][1] for v in with_ratio])
    assert np.allclose(lat[1], [RATIO[v][2] - RATIO[v][0] for v in with_ratio])
    assert info["flagged"] == 1 + 0  # i3d_r50_static's latency ratio (train ratios' intervals are 0.03 wide)
    ax = kept_figures[-1].axes[0]
    flat = [set(np.asarray(line.get_ydata(), float)) for line in ax.lines]
    assert {1.0} in flat  # the line at 1.0
    assert "vs i3d_r50" in " ".join(t.get_text() for t in ax.get_xticklabels())
    fig = kept_figures[-1]
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    for t in ax.get_xticklabels():  # no tick label cut at the figure's foot
        assert t.get_window_extent(renderer).y0 >= 0
    assert (tmp_path / "ratio.svg").stat().st_size > 1000


def test_the_report_draws_the_ratio_figure_and_notes_the_settings(new_runs):
    out = new_runs / "reports"
    text = write_report(new_runs, out, formats=("md", "png"), experiments_dir=REPO / "experiments").read_text()
    assert "figures/profile_ratio_to_baseline.png" in text and (out / "figures/profile_ratio_to_baseline.png").exists()
    assert "hardware: cpu: AMD EPYC, 2 threads, batch 1, fp32" in (out / "profile.md").read_text()
    table, _ = profile_table(new_runs)
    assert len(table_notes(table)) == 5  # cost convention, timings, ratio, the flag, memory


def test_ratio_plot_of_seed_means_draws_their_std_bars(tmp_path, kept_figures):
    """A row averaging several seeds' ratios has ± std error bars (no interval): drawn, not an IndexError."""
    table = pd.DataFrame(
        {
            "model.variant": ["tsm_r50_dsa", "i3d_r50_dsa"],
            "profile.baseline": ["tsm_r50", "i3d_r50"],
            "profile.latency_ratio": [1.02, float("nan")],
            "profile.latency_ratio std": [0.01, float("nan")],
            "profile.train_ratio": [1.05, 1.04],
            "profile.train_ratio std": [0.02, 0.03],
        }
    )
    info = plots.ratio_plot(table, tmp_path / "ratio", formats=("png",))
    assert info["points"] == 3 and np.allclose(info["yerr"]["profile.train_ratio"], [0.02, 0.03])
    assert (tmp_path / "ratio.png").stat().st_size > 1000
