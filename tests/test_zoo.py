"""Published reference points (experiments/zoo/*.csv): every row parses, cites a source and follows its
conversion rule; the measured costs are what our profiler gives; the trade-off plot has one point per row
with a cost; the report draws it with and without runs of ours; bad CSVs give one-line errors."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from harness.report import write_report
from harness.report.tables import GridMeta
from harness.report.zoo import (
    COLUMNS,
    COST,
    ZooError,
    draw_tradeoff,
    measured_args,
    neighbours,
    our_points,
    plotted,
    read_zoo,
)
from harness.results.rundir import RunDir
from harness.results.store import load_runs

REPO = Path(__file__).resolve().parents[1]
ZOO_FILES = sorted((REPO / "experiments" / "zoo").glob("*.csv"))


def test_zoo_files_exist_for_the_grids_that_name_them():
    names = {p.name for p in ZOO_FILES}
    assert {"kinetics400.csv", "sthv1.csv"} <= names
    for grid in ("backbones_kinetics400", "backbones_sthv1"):
        meta = GridMeta.load(grid, REPO / "experiments")
        assert meta.zoo and Path(meta.zoo).name in names


@pytest.mark.parametrize("path", ZOO_FILES, ids=lambda p: p.name)
def test_every_row_parses_has_a_source_and_follows_its_rule(path):
    zoo = read_zoo(path)
    assert len(zoo) > 0
    for _, r in zoo.iterrows():
        where = f"{path.name}:{r['line']}"
        assert r["source"].strip() and r["method"].strip(), where
        assert not math.isnan(r["top1"]), where
        if r["rule"] == "same":  # the publisher counts per view with 1 MAC = 1 FLOP: copied as is
            assert r["gflops_per_view"] == r["gflops_published"], where
        elif r["rule"] == "measured":  # no published FLOPs: our profiler's number, and it says what was built
            assert r["gflops_per_view"] == r["gflops_per_view_measured"], where
            assert measured_args(r["measured_with"]) is not None, where
        else:  # not derivable from what is published: empty, with the reason
            assert r["rule"] == "none" and math.isnan(r["gflops_per_view"]) and r["note"].strip(), where
        if r["rule"] != "none":
            assert r["views"] == r["clips"] * r["crops"] >= 1, where
            assert r[COST] == pytest.approx(r["gflops_per_view"] * r["views"]), where


def test_kinetics400_covers_the_field_and_dsanet_headline():
    zoo = read_zoo(REPO / "experiments" / "zoo" / "kinetics400.csv")
    methods = " ".join(zoo["method"])
    for name in ("TSN", "TSM", "I3D", "Slow", "SlowFast", "TANet", "DSANet"):
        assert name in methods
    dsa = zoo[zoo["method"] == "DSANet"].iloc[0]
    base = zoo[zoo["method"].str.contains("DSANet paper baseline")].iloc[0]
    assert (dsa["top1"], base["top1"]) == (78.2, 74.9)  # dsanet-spec.md section 6 (abstract)
    assert "dsanet-spec.md:83" in dsa["source"] and dsa["views"] == 6 and dsa["test_crop"] == 256
    assert len(plotted(zoo)) >= 5


@pytest.mark.slow
def test_measured_costs_are_what_our_profiler_gives_and_check_the_rule():
    """Recount every ``gflops_per_view_measured`` with our profiler; where the publisher's number sits
    beside it (rule same), the two agree within 1 %: the conversion rule holds on real rows."""
    from harness.measure.profile import profile_record
    from harness.models import resolve_config

    checked = 0
    for path in ZOO_FILES:
        zoo = read_zoo(path)
        for _, r in zoo[zoo["gflops_per_view_measured"].notna()].iterrows():
            a = measured_args(r["measured_with"])
            config = resolve_config(
                a["variant"], num_snippets=a["snippets"], num_frames=a["frames"], num_classes=a["classes"]
            )
            record = profile_record(config, size=a["size"])
            assert record["gflops_per_view"] == pytest.approx(r["gflops_per_view_measured"], rel=1e-9), r["label"]
            if r["rule"] == "same":
                assert 0.99 < r["ratio"] < 1.01, (r["label"], r["ratio"])
            checked += 1
    assert checked >= 4


def _capture_figure(monkeypatch):
    """Keep the figure ``draw_tradeoff`` saves (instead of reading pixels back)."""
    from harness.report import plots

    saved = {}
    real = plots._save

    def keep(fig, out, formats, margins):
        if any(c.get_gid() == "zoo" for ax in fig.axes for c in ax.collections):  # the trade-off plot only
            saved["fig"] = fig
        return real(fig, out, formats, margins)

    monkeypatch.setattr(plots, "_save", keep)
    return saved


def test_plot_has_one_point_per_row_with_labels(tmp_path, monkeypatch):
    import pandas as pd

    zoo = read_zoo(REPO / "experiments" / "zoo" / "kinetics400.csv")
    ours = pd.DataFrame({"label": ["run a", "run b"], "top1": [70.0, 79.5], COST: [300.0, 5000.0]})
    saved = _capture_figure(monkeypatch)
    info = draw_tradeoff(ours, zoo, tmp_path / "fig", formats=("svg",))
    ax = saved["fig"].axes[0]
    groups = {c.get_gid(): c for c in ax.collections}
    ref = plotted(zoo)
    assert len(groups["zoo"].get_offsets()) == len(ref) == info["zoo_points"]
    assert len(groups["ours"].get_offsets()) == 2 == info["our_points"]
    assert sorted(map(tuple, groups["zoo"].get_offsets().tolist())) == sorted(zip(ref[COST], ref["top1"]))
    texts = [t.get_text() for t in ax.texts]
    assert sorted(texts) == sorted([*ref["label"], "run a", "run b"])  # placed in any order, none dropped
    assert tuple(groups["zoo"].get_facecolor()[0][:3]) == pytest.approx((0.55, 0.55, 0.55))  # grey
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("published" in t for t in legend) and any("ours" in t for t in legend)
    assert ax.get_xscale() == "log" and "GFLOPs/video" in ax.get_xlabel()
    assert info["pareto"][0] == "run a" and info["pareto"][-1] == "run b"  # cheapest and best are on the front
    assert (tmp_path / "fig.svg").exists()


def test_neighbours_are_nearest_in_cost_with_the_accuracy_difference():
    import pandas as pd

    zoo = read_zoo(REPO / "experiments" / "zoo" / "kinetics400.csv")
    ref = plotted(zoo)
    ours = pd.DataFrame({"label": ["x"], "top1": [75.0], COST: [float(ref[COST].iloc[0])]})
    nb = neighbours(ours, zoo, k=2)
    assert len(nb) == 2 and nb["zoo"].iloc[0] == ref["label"].iloc[0]
    assert nb["Δ top-1"].iloc[0] == pytest.approx(75.0 - ref["top1"].iloc[0])


def _blank_tsn_source(text: str) -> str:
    start = text.index('"open-mmlab/mmaction2 configs/recognition/tsn/README.md')
    return text[:start] + text[text.index('"', start + 1) + 1 :]


@pytest.mark.parametrize(
    "edit, expect",
    [
        (lambda t: t.replace(",published_convention,", ",convention,", 1), r":3: header: missing column\(s\) publ"),
        (lambda t: t.replace(",32.88,32.88G", ",32.88G,32.88G", 1), r":5: gflops_published: '32.88G' is not a number"),
        (_blank_tsn_source, r":4: source: empty; cite the repository"),
        (lambda t: t.replace(",same,32.88,", ",same,33.0,", 1), r":5: gflops_per_view: 33 != gflops_published"),
    ],
    ids=["missing column", "non-numeric GFLOPs", "row without source", "rule broken"],
)
def test_bad_csv_gives_one_line_error_naming_file_row_and_field(tmp_path, edit, expect):
    import re

    path = tmp_path / "bad.csv"
    path.write_text(edit((REPO / "experiments" / "zoo" / "kinetics400.csv").read_text()))
    with pytest.raises(ZooError) as err:
        read_zoo(path)
    message = str(err.value)
    assert "\n" not in message and message.startswith(str(path))
    assert re.search(expect, message), message


def test_report_with_a_bad_zoo_file_names_it(tmp_path):
    exp = tmp_path / "experiments"
    (exp / "zoo").mkdir(parents=True)
    text = (REPO / "experiments" / "zoo" / "kinetics400.csv").read_text()
    (exp / "zoo" / "broken.csv").write_text(_blank_tsn_source(text))
    (exp / "k.yaml").write_text("name: k\nreport:\n  zoo: zoo/broken.csv\n")
    with pytest.raises(ZooError, match=r"broken.csv:4: source: empty"):
        write_report(results_root=tmp_path / "results", reports_dir=tmp_path / "out", experiments_dir=exp)


def test_report_zoo_key_is_validated(tmp_path):
    from harness.errors import ConfigError

    (tmp_path / "g.yaml").write_text("name: g\nreport:\n  zoo: 3\n")
    with pytest.raises(ConfigError, match=r"g.yaml: report.zoo: 3 is not a CSV path"):
        GridMeta.load("g", tmp_path)


def test_report_draws_the_kinetics_zoo_plot_without_any_run(tmp_path):
    out = tmp_path / "reports"
    index = write_report(results_root=tmp_path / "results", reports_dir=out, experiments_dir=REPO / "experiments")
    text = (out / "backbones_kinetics400.md").read_text()
    assert "grey squares are published numbers" in text and "blue circles are ours" in text
    assert "0 point(s)" in text and "DSANet" in text
    assert (out / "figures" / "backbones_kinetics400_accuracy_vs_gflops_zoo.png").stat().st_size > 1000
    assert "backbones_kinetics400" in index.read_text()
    # asked for by name, the grid is reported though it has no run
    write_report(
        results_root=tmp_path / "results",
        reports_dir=tmp_path / "r2",
        grids=["backbones_kinetics400"],
        formats=("md",),
        experiments_dir=REPO / "experiments",
    )
    assert (tmp_path / "r2" / "backbones_kinetics400.md").exists()
    # Something-Something V1: no published row has a cost in our convention and no run exists: no figure,
    # and the text says so instead of describing one
    sthv1 = (out / "backbones_sthv1.md").read_text()
    assert "No figure: no published row has a cost in our convention" in sthv1
    assert "grey squares" not in sthv1
    assert not list((out / "figures").glob("backbones_sthv1_*zoo*"))


def _done_run(root: Path, grid: str, variant: str, top1: float, per_view: float) -> None:
    rd = RunDir(root / "runs" / grid / f"{variant}-0").create()
    rd.write_config({"task": "train", "grid": grid, "seed": 0, "model": {"variant": variant}, "train": {"epochs": 1}})
    rd.write_final(
        {
            "run_id": rd.run_id,
            "task": "train",
            "status": "done",
            "finished_at": "2026-11-20T10:00:00+00:00",
            "test": {"top1": top1, "top5": top1 + 10, "views": 6},
            "profile": {"gflops_per_view": per_view, "params_m": 32.45},
        }
    )


def test_report_adds_our_runs_and_their_neighbours(tmp_path, monkeypatch):
    exp = tmp_path / "experiments"
    (exp / "zoo").mkdir(parents=True)
    (exp / "zoo" / "mini.csv").write_text((REPO / "experiments" / "zoo" / "kinetics400.csv").read_text())
    (exp / "k.yaml").write_text(
        "name: k\nreport:\n  zoo: zoo/mini.csv\n  rows: [model.variant]\n"
        "  metrics: [test.top1, profile.gflops_per_view]\n"
    )
    _done_run(tmp_path / "results", "k", "i3d_r50", 70.0, 200.0)
    _done_run(tmp_path / "results", "k", "i3d_r50_dsa", 77.0, 201.0)
    runs = load_runs(tmp_path / "results" / "runs")
    from harness.report.index import LABEL, _row_labels
    from harness.report.tables import grid_table

    meta = GridMeta.load("k", exp)
    table = grid_table(runs, meta)
    pts = our_points(runs, table.assign(**{LABEL: _row_labels(table, ["model.variant"])}), ["model.variant"], LABEL)
    assert pts[COST].tolist() == [1200.0, 1206.0]  # per view x test views
    saved = _capture_figure(monkeypatch)
    write_report(results_root=tmp_path / "results", reports_dir=tmp_path / "out", experiments_dir=exp)
    text = (tmp_path / "out" / "k.md").read_text()
    assert "2 point(s)" in text and "nearest published points" in text and "| i3d_r50_dsa |" in text
    ax = saved["fig"].axes[0]
    ours = next(c for c in ax.collections if c.get_gid() == "ours")
    assert sorted(map(tuple, ours.get_offsets().tolist())) == [(1200.0, 70.0), (1206.0, 77.0)]


def test_columns_documented():
    readme = (REPO / "experiments" / "zoo" / "README.md").read_text()
    for col in COLUMNS:
        assert f"`{col}`" in readme, col
