"""Tables, plots, the report index and the `report` command, from a results folder built here with
known numbers; every expected cell is computed independently in the test."""

from __future__ import annotations

import re
import statistics
from pathlib import Path

import numpy as np
import pytest

from harness.cli import main
from harness.report import GridMeta, grid_table, read_paper, stats, to_latex, to_markdown, to_terminal, write_report
from harness.report.index import current_runs
from harness.report.plots import ablation_curve, pareto_front, scatter_tradeoff, training_curves
from harness.report.tables import format_key
from harness.results.rundir import RunDir, write_grid_manifest
from harness.results.store import load_metrics, load_runs

TOP1 = {"i3d_r50": [70.0, 71.0, 73.0], "i3d_r50_dsa": [75.5, 76.0, 77.0], "tsm_r50": [72.0]}
GFLOPS = {"i3d_r50": 167.9, "i3d_r50_dsa": 168.0, "tsm_r50": 131.7}
PAPER = {"i3d_r50_dsa": 78.2, "i3d_r50": 74.9}
TEST_VIDEOS = 1000  # the paper's test list has as many (experiments/paper/test_sets.csv of the fixture)
RATIO_TOP1 = {0.125: [60.0, 62.0], 0.25: [64.0, 65.0], 0.5: [63.0, 63.5], 1.0: [61.0, 60.0]}


def _run(root, grid, name, seed, top1, *, model, final=True, epochs=2):
    rd = RunDir(root / "runs" / grid / name).create()
    rd.write_config(
        {
            "task": "train",
            "grid": grid,
            "seed": seed,
            "model": model,
            "data": {"name": "testset"},
            "train": {"epochs": epochs},
        }
    )
    for e in range(epochs):
        rd.append_metrics({"epoch": e, "train_loss": 2.0 - e, "val_top1": top1 - 5 + e})
    if final:
        rd.write_final(
            {
                "run_id": rd.run_id,
                "task": "train",
                "status": "done",
                "finished_at": f"2026-11-2{seed}T10:00:00+00:00",
                "hardware": {"device": "cpu", "device_name": "Test CPU", "threads": 2},
                "test": {"top1": top1, "top5": top1 + 10, "views": 6, "num_videos": TEST_VIDEOS},
                "profile": {"gflops_per_view": GFLOPS.get(model.get("variant"), 168.0), "params_m": 24.3},
            }
        )
    return rd


@pytest.fixture
def results(tmp_path):
    for variant, values in TOP1.items():
        for seed, v in enumerate(values):
            _run(tmp_path, "main", f"{variant}-{seed}", seed, v, model={"variant": variant})
    for ratio, values in RATIO_TOP1.items():
        for seed, v in enumerate(values):
            _run(tmp_path, "ratio", f"r{ratio}-{seed}", seed, v, model={"variant": "i3d_r50_dsa", "split_ratio": ratio})
    exp = tmp_path / "experiments"
    (exp / "paper").mkdir(parents=True)
    # paper_reference written relative to the repository root, as the real grid files do
    (exp / "main.yaml").write_text(
        "name: main\ndescription: test grid\npaper_table: Table 1\npaper_reference: experiments/paper/main.csv\n"
        "report:\n  rows: [model.variant]\n  metrics: [test.top1, profile.gflops_per_view]\n"
    )
    (exp / "paper" / "main.csv").write_text(
        "# source: test\n# second note\nmodel.variant,test.top1\ni3d_r50_dsa,78.2\ni3d_r50,74.9\ntsm_r50,\n"
    )
    (exp / "paper" / "test_sets.csv").write_text(f"data.name,videos,source\ntestset,{TEST_VIDEOS},the fixture\n")
    (exp / "ratio.yaml").write_text(
        "name: ratio\npaper_reference: experiments/paper/ratio.csv\n"
        "report:\n  rows: [model.split_ratio]\n  metrics: [test.top1]\n"
    )
    (exp / "paper" / "ratio.csv").write_text("# source: test\nmodel.split_ratio,test.top1\n1.0,\n0.5,\n0.25,\n0.125,\n")
    return tmp_path


def _main_table(results):
    runs = load_runs(results / "runs")
    meta = GridMeta.load("main", results / "experiments")
    paper, notes = read_paper(meta.paper_reference)
    return grid_table(runs[runs["grid"] == "main"], meta, paper), meta, notes


def test_table_cells_equal_independent_computation(results):
    table, meta, notes = _main_table(results)
    assert list(table["model.variant"]) == ["i3d_r50_dsa", "i3d_r50", "tsm_r50"]  # the paper's order
    t = table.set_index("model.variant")
    for variant, values in TOP1.items():
        assert t.loc[variant, "n"] == len(values)
        assert t.loc[variant, "test.top1"] == pytest.approx(statistics.mean(values))
        if len(values) > 1:
            assert t.loc[variant, "test.top1 std"] == pytest.approx(statistics.stdev(values))
        else:
            assert np.isnan(t.loc[variant, "test.top1 std"])
        assert t.loc[variant, "profile.gflops_per_view"] == pytest.approx(GFLOPS[variant])
    for variant, paper in PAPER.items():
        assert t.loc[variant, "paper test.top1"] == paper
        assert t.loc[variant, "delta test.top1"] == pytest.approx(statistics.mean(TOP1[variant]) - paper)
    assert np.isnan(t.loc["tsm_r50", "paper test.top1"])  # unverified: empty, never guessed
    assert notes == ["source: test", "second note"]
    md = to_markdown(table, meta)
    dsa = TOP1["i3d_r50_dsa"]
    summary = stats.seed_summary(np.array(dsa))  # the mean and its 95% interval over the 3 seeds
    cell = f"{summary['mean']:.1f} [{summary['low']:.1f}, {summary['high']:.1f}]"
    assert cell in md and f"{statistics.mean(dsa) - 78.2:+.1f}" in md
    header = md.splitlines()[0]
    for label in (
        "variant",
        "n",
        "top-1 (%)",
        "paper top-1 (%)",
        "Δ",
        "GFLOPs x views",  # the compact cost cell: the grid names a per-view cost, its runs their views
    ):
        assert label in header
    assert "views (clips x crops)" not in header and "| 168.0 x 6 " in md and "| 131.7 x 6 " in md
    lines = md.splitlines()
    notes = [
        "- GFLOPs x views: GFLOPs per view (fvcore, 1 multiply-add = 1 FLOP) x views (clips x crops).",
        "- Accuracies: [low, high] is a 95% interval: over the test videos for a row of one run (Wilson for top-1, "
        "top-5 and factor accuracies, a seeded bootstrap over videos for mean class accuracy), over seeds for a row "
        "of several (t interval of the mean, clipped to [0, 100]; `n` seeds).",
        "- ‡: no interval (the run kept no per-video predictions).",  # tsm_r50's one run has no interval
    ]
    assert lines[1].startswith("|--") and lines[2 + 3 :] == ["", *notes]
    assert f"| {TOP1['tsm_r50'][0]:.1f} ‡ " in md
    assert to_terminal(table, meta).count("\n") == 1 + 1 + 3 - 1 + len(notes)  # and the notes


def test_a_skipped_videos_column_only_when_a_run_left_unreadable_test_videos_out(results):
    table, meta, _ = _main_table(results)
    assert "skipped" not in table.columns and "skipped videos" not in to_markdown(table, meta)
    for seed, n in ((0, 4), (2, 1)):  # two of i3d_r50_dsa's three seeds left some out
        rd = RunDir(results / "runs" / "main" / f"i3d_r50_dsa-{seed}")
        final = rd.read_final()
        final["test"].update(num_skipped=n, skipped_videos=[{"path": "v/x.mp4", "line": 3, "reason": "empty"}] * n)
        rd.write_final(final)
    table, meta, _ = _main_table(results)
    assert dict(zip(table["model.variant"], table["skipped"])) == {"i3d_r50_dsa": 5, "i3d_r50": 0, "tsm_r50": 0}
    md = to_markdown(table, meta).splitlines()
    headers = [h.strip() for h in md[0].strip("|").split("|")]
    assert headers[:3] == ["variant", "n", "skipped videos"]
    assert [line.strip("|").split("|")[2].strip() for line in md[2:5]] == ["5", "0", "0"]
    assert "skipped videos" in to_latex(table, meta)


def test_rows_without_grid_file_are_the_varying_config(results):
    runs = load_runs(results / "runs")
    table = grid_table(runs[runs["grid"] == "ratio"], GridMeta("ratio"))
    assert table.attrs["rows"] == ["model.split_ratio"]  # seed varies too but is averaged over
    t = table.set_index("model.split_ratio")
    for ratio, values in RATIO_TOP1.items():
        assert t.loc[ratio, "test.top1"] == pytest.approx(statistics.mean(values)) and t.loc[ratio, "n"] == 2


def test_paper_order_with_numeric_keys(results):
    runs = load_runs(results / "runs")
    meta = GridMeta.load("ratio", results / "experiments")
    table = grid_table(runs[runs["grid"] == "ratio"], meta, read_paper(meta.paper_reference)[0])
    assert list(table["model.split_ratio"]) == [1.0, 0.5, 0.25, 0.125]  # 1.0 in the CSV matches 1.0 ours
    assert "paper test.top1" not in table.columns  # no verified number: no paper or delta column


def test_rows_follow_the_grid_files_order_without_a_paper_csv(results):
    runs = load_runs(results / "runs")
    grid_dir = results / "runs" / "ratio"
    ratio = runs[runs["grid"] == "ratio"]
    ids = {r: sorted(ratio.loc[ratio["model.split_ratio"] == r, "run_id"]) for r in RATIO_TOP1}
    # the manifest lists the runs in the launcher's expansion order: the table reads in the same order
    write_grid_manifest(
        grid_dir,
        grid="ratio",
        grid_file="ratio.yaml",
        written_at="now",
        run_ids=[i for r in (0.25, 1.0, 0.125, 0.5) for i in ids[r]],
    )
    shown, stale = current_runs(ratio, grid_dir)
    assert stale.empty and len(shown) == len(ratio)
    table = grid_table(shown, GridMeta("ratio"))
    assert list(table["model.split_ratio"]) == [0.25, 1.0, 0.125, 0.5]
    # a row the grid file no longer lists is stale: left out, not lost (still on disk and in the runs table)
    write_grid_manifest(
        grid_dir,
        grid="ratio",
        grid_file="ratio.yaml",
        written_at="now",
        run_ids=[i for r in (0.5, 0.125, 1.0) for i in ids[r]],
    )
    shown, stale = current_runs(ratio, grid_dir)
    table = grid_table(shown, GridMeta("ratio"))
    assert list(table["model.split_ratio"]) == [0.5, 0.125, 1.0] and sorted(stale["run_id"]) == ids[0.25]
    # an unreadable manifest hides nothing
    (grid_dir / "_grid.json").write_text("{torn")
    assert current_runs(ratio, grid_dir)[0].equals(ratio)


def test_read_paper_errors_and_label(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("# source: x\nmodel.variant,test.top1\na,1.0\nb,2.0,3.0\n")
    with pytest.raises(ValueError, match=r"bad\.csv:4"):
        read_paper(bad)
    ref = tmp_path / "ref.csv"
    ref.write_text("# source: fvcore\n# label: ref\nmodel.variant,profile.params_m\ntsm_r50,24.33\n")
    df, notes = read_paper(ref)
    assert df.attrs["label"] == "ref" and df["profile.params_m"].tolist() == [24.33]
    assert read_paper(tmp_path / "absent.csv")[0].empty


def test_repo_paper_csvs_parse_and_cite_a_source():
    """experiments/paper/*.csv: parse, cite the source first, and hold only the verified numbers."""
    folder = Path(__file__).resolve().parents[1] / "experiments" / "paper"
    files = sorted(folder.glob("*.csv"))
    assert files
    numbers = set()
    for f in files:
        df, notes = read_paper(f)
        assert notes and notes[0].startswith("source:"), f
        for col in df.columns:
            if col.startswith(("test.", "profile.")):
                numbers |= {float(v) for v in df[col].dropna()}
    assert numbers <= {74.9, 78.2, 24.33}


def test_repo_grids_and_their_paper_csvs_agree():
    """Each grid's paper CSV has the grid's row-key columns, and every key in it is a value a run of the grid has
    once resolved (the values the report joins on: e.g. stage masks in their canonical text)."""
    from harness.config import get_dotted
    from harness.launch.grid import expand, load_grid

    repo = Path(__file__).resolve().parents[1]
    checked = 0
    for grid_file in sorted((repo / "experiments").glob("*.yaml")):
        grid = load_grid(grid_file)
        meta = GridMeta.load(grid.name, repo / "experiments")
        if not meta.paper_reference:
            continue
        paper, _ = read_paper(repo / grid.paper_reference)
        assert set(meta.rows) <= set(paper.columns), grid_file
        runs = expand(grid)
        for key in meta.rows:
            values = {format_key(get_dotted(r.config, key)) for r in runs}
            rows = paper if "grid" not in paper.columns else paper[paper["grid"] == grid.name]
            assert {format_key(v) for v in rows[key]} <= values, (grid_file, key)
        checked += 1
    assert checked >= 1


def test_latex_structure(results):
    table, meta, _ = _main_table(results)
    tex = to_latex(table, meta)
    lines = tex.splitlines()
    assert lines[0] == r"\begin{table}[t]" and lines[-1] == r"\end{table}"
    assert lines.index(r"\toprule") < lines.index(r"\midrule") < lines.index(r"\bottomrule")
    assert r"i3d\_r50\_dsa" in tex and r"top-1 (\%) [95\% CI]" in tex and r"$\Delta$" in tex
    assert "_" not in tex.replace(r"\_", "")  # every underscore escaped
    body = lines[lines.index(r"\midrule") + 1 : lines.index(r"\bottomrule")]
    assert len(body) == 3 and all(line.endswith(r"\\") for line in body)
    spec = re.search(r"\\begin\{tabular\}\{([lr]+)\}", tex).group(1)
    # variant | n, top-1, paper, delta, GFLOPs x views
    assert spec == "l" + "r" * 5 and all(line.count("&") == len(spec) - 1 for line in body + [lines[4]])
    assert r"\caption{Table 1. GFLOPs x views: GFLOPs per view (fvcore, 1 multiply-add" in tex  # the notes
    assert r"\label{tab:main}" in tex


def test_scatter_with_pareto_front(results, tmp_path):
    table, _, _ = _main_table(results)
    info = scatter_tradeoff(table, tmp_path / "fig" / "trade", title="t")
    assert info["points"] == 3 and info["xlabel"].startswith("GFLOPs/view") and info["ylabel"] == "top-1 (%)"
    assert all((tmp_path / "fig" / f"trade.{ext}").stat().st_size > 1000 for ext in ("png", "svg"))
    assert set(info["pareto"]) == {"tsm_r50", "i3d_r50_dsa"}  # i3d_r50 costs more than tsm and scores less
    svg = (tmp_path / "fig" / "trade.svg").read_text()
    assert "Pareto front" in svg and "i3d_r50_dsa" in svg
    # drawn again, the files are the same bytes: a regenerated report changes only where its numbers do
    first = {ext: (tmp_path / "fig" / f"trade.{ext}").read_bytes() for ext in ("png", "svg")}
    scatter_tradeoff(table, tmp_path / "fig" / "trade", title="t")
    assert all((tmp_path / "fig" / f"trade.{ext}").read_bytes() == b for ext, b in first.items())


def test_pareto_front():
    x, y = np.array([1.0, 2.0, 3.0, 4.0, 3.0]), np.array([1.0, 0.5, 2.0, 1.5, 1.0])
    assert pareto_front(x, y).tolist() == [0, 2]


def test_ablation_curve_points_and_groups(results, tmp_path):
    runs = load_runs(results / "runs")
    table = grid_table(runs[runs["grid"] == "ratio"], GridMeta.load("ratio", results / "experiments"))
    info = ablation_curve(table, "model.split_ratio", tmp_path / "abl", formats=("png",))
    assert info["points"] == len(RATIO_TOP1) and info["lines"] == 1 and info["xlabel"] == "split_ratio"
    assert (tmp_path / "abl.png").stat().st_size > 1000 and not (tmp_path / "abl.svg").exists()
    two = table.assign(**{"model.variant": ["a", "b"] * 2})
    assert (
        ablation_curve(two, "model.split_ratio", tmp_path / "abl2", group="model.variant", formats=("svg",))["lines"]
        == 2
    )


def test_training_curves_one_line_per_run(results, tmp_path):
    runs = load_runs(results / "runs")
    curves = load_metrics(runs[(runs["grid"] == "main") & (runs["status"] == "done")])
    info = training_curves(curves, tmp_path / "tc", formats=("png",))
    assert info["lines"] == sum(len(v) for v in TOP1.values()) and info["per_run"]
    assert info["ylabels"] == ["train loss (cross-entropy)", "val top-1 (%)"]
    info = training_curves(curves, tmp_path / "tc2", max_lines=2, formats=("png",))
    assert info["lines"] == len(TOP1) and not info["per_run"]  # many runs: one mean line per variant


def test_missing_or_half_written_files_are_reported_not_fatal(results):
    _run(results, "main", "still-running", 9, 10.0, model={"variant": "i3d_r50"}, final=False)
    torn = _run(results, "main", "torn", 8, 10.0, model={"variant": "i3d_r50"}, final=False)
    torn.final_path.write_text('{"status": "do')
    (results / "runs" / "main" / "bad").mkdir()
    (results / "runs" / "main" / "bad" / "config.json").write_text("{not json")
    table, _, _ = _main_table(results)
    t = table.set_index("model.variant")
    assert t.loc["i3d_r50", "n"] == 3  # unfinished runs are not averaged
    assert t.loc["i3d_r50", "test.top1"] == pytest.approx(statistics.mean(TOP1["i3d_r50"]))
    index = write_report(results, results / "reports", experiments_dir=results / "experiments").read_text()
    assert "Problems found while reading results" in index and "torn" in index and "bad" in index
    assert "2 incomplete" in index and "1 pending" in index  # torn config.json: never started, as sweep says


def test_index_links_every_table_and_figure(results):
    out = results / "reports"
    index_path = write_report(results, out, experiments_dir=results / "experiments")
    index = index_path.read_text()
    links = re.findall(r"\]\(([^)#]+)\)", index)
    assert all((out / link).is_file() and (out / link).stat().st_size > 0 for link in links), links
    for name in (
        "main.md",
        "main.tex",
        "ratio.md",
        "ratio.tex",
        "runs.csv",
        "figures/main_accuracy_vs_gflops.png",
        "figures/main_accuracy_vs_gflops.svg",
        "figures/main_training.svg",
        "figures/ratio_split_ratio.png",
    ):
        assert name in links
    total = sum(len(v) for v in TOP1.values()) + sum(len(v) for v in RATIO_TOP1.values())
    assert f"runs: {total} ({total} done)" in index and "Test CPU" in index and "2026-11-20" in index
    assert "| [main](#main) | Table 1 | 7 (7 done) |" in index
    assert "source: test" in index and "second note" in index


def test_report_command(results, capsys):
    out = results / "reports"
    args = ["report", "--results", str(results), "--out", str(out), "--experiments", str(results / "experiments")]
    assert main([*args, "--grid", "main", "--formats", "md,png", "--csv", str(results / "runs.csv")]) == 0
    printed = capsys.readouterr().out
    assert f"report: {out / 'README.md'}" in printed
    assert (out / "main.md").exists() and not (out / "main.tex").exists() and not (out / "ratio.md").exists()
    assert (out / "figures" / "main_accuracy_vs_gflops.png").stat().st_size > 1000
    assert not (out / "figures" / "main_accuracy_vs_gflops.svg").exists()
    assert (results / "runs.csv").read_text().count("\n") == 1 + 7 + 8
    assert main([*args, "--grid", "nope"]) == 2
    assert main([*args, "--formats", "md,pdf"]) == 2
    assert "pdf" in capsys.readouterr().err


def test_report_print_prints_and_writes_nothing(results, capsys):
    out = results / "reports"

    def snapshot():  # but the results store's cache (results/runs/.cache/) and the folder holding it
        cache = results / "runs" / ".cache"
        return {
            p: p.stat().st_mtime_ns for p in results.rglob("*") if cache not in (p, *p.parents) and p != cache.parent
        }

    before = snapshot()
    args = ["report", "--results", str(results), "--out", str(out), "--experiments", str(results / "experiments")]
    assert main([*args, "--grid", "main", "--print"]) == 0
    printed = capsys.readouterr().out
    assert "i3d_r50_dsa" in printed and "report:" not in printed
    assert snapshot() == before and not out.exists()
    assert main([*args, "--print", "--csv", str(results / "x.csv")]) == 2


def test_a_report_redraws_from_the_results_and_leaves_no_cache_but_the_stores(results):
    out = results / "reports"
    kw = {"experiments_dir": results / "experiments"}
    write_report(results, out, **kw)
    runs_files = sorted(p for p in (results / "runs").rglob("*") if p.is_file())
    figs = sorted(p.name for p in (out / "figures").iterdir())
    assert figs and not [f for f in figs if f.startswith(".")]  # figure files only
    rd = RunDir(results / "runs" / "main" / "tsm_r50-0")
    final = rd.read_final()
    final["test"]["top1"] = 50.0
    rd.write_final(final)
    (out / "figures" / "ratio_split_ratio.png").unlink()
    write_report(results, out, **kw)
    assert sorted(p.name for p in (out / "figures").iterdir()) == figs  # a deleted figure is drawn again
    assert re.search(r"\| tsm_r50 +\| 1 +\| 50\.0 ‡ ", (out / "main.md").read_text())
    # reports write no cache of their own (the store's: results/runs/.cache/store.parquet)
    assert sorted(p for p in (results / "runs").rglob("*") if p.is_file()) == runs_files
    assert [p for p in runs_files if ".cache" in p.parts] == [results / "runs" / ".cache" / "store.parquet"]


@pytest.mark.parametrize("runs", [2, 20])  # one line per run, and the mean of runs per label
@pytest.mark.parametrize("val", ["absent", "empty", "present"])
def test_training_curves_without_validation_is_a_missing_curve(tmp_path, runs, val):
    """Runs trained with a test list only (no validation) have no val_top1: the figure leaves that curve out
    and says so, never a KeyError."""
    import pandas as pd

    metrics = pd.DataFrame(
        {
            "epoch": [0, 1] * runs,
            "train_loss": [1.0, 0.5] * runs,
            "run_id": [f"r{i // 2}" for i in range(2 * runs)],
            "seed": 0,
            "model.variant": "tsm_r18",
        }
    )
    if val != "absent":
        metrics["val_top1"] = None if val == "empty" else 50.0
    info = training_curves(metrics, tmp_path / "curves", formats=("png",))
    assert info["curves"] == (["train_loss", "val_top1"] if val == "present" else ["train_loss"])
    assert Path(info["paths"][0]).exists()
