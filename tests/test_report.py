"""Results store and reports from a results folder built here with known numbers."""

from __future__ import annotations

import statistics
import time

import pytest

from harness.cli import main
from harness.report import GridMeta, grid_table, read_paper, to_latex, to_markdown, write_report
from harness.report.plots import pareto_front, scatter_tradeoff
from harness.results.rundir import RunDir
from harness.results.store import load_runs

TOP1 = {"i3d_r50": [70.0, 71.0, 73.0], "i3d_r50_dsa": [75.5, 76.0, 77.0], "tsm_r50": [72.0]}
GFLOPS = {"i3d_r50": 167.9, "i3d_r50_dsa": 168.0, "tsm_r50": 131.7}


def _run(root, grid, variant, seed, top1, *, final=True):
    rd = RunDir(root / "runs" / grid / f"{variant}-{seed}").create()
    rd.write_config({"task": "train", "grid": grid, "seed": seed, "model": {"variant": variant},
                     "train": {"epochs": 2}})
    for e in range(2):
        rd.append_metrics({"epoch": e, "train_loss": 2.0 - e, "val_top1": top1 - 5 + e})
    if final:
        rd.write_final({"run_id": rd.run_id, "task": "train", "status": "done",
                        "finished_at": f"2026-11-2{seed}T10:00:00+00:00",
                        "hardware": {"device": "cpu", "device_name": "Test CPU", "threads": 2},
                        "test": {"top1": top1, "top5": top1 + 10, "views": 6},
                        "profile": {"gflops_per_view": GFLOPS[variant], "params_m": 24.3}})
    return rd


@pytest.fixture
def results(tmp_path):
    for variant, values in TOP1.items():
        for seed, v in enumerate(values):
            _run(tmp_path, "main", variant, seed, v)
    exp = tmp_path / "experiments"
    (exp / "paper").mkdir(parents=True)
    (exp / "main.yaml").write_text(
        "name: main\ndescription: test grid\npaper_table: Table 1\npaper_reference: "
        f"{exp / 'paper' / 'main.csv'}\nreport:\n  rows: [model.variant]\n"
        "  metrics: [test.top1, profile.gflops_per_view]\n")
    (exp / "paper" / "main.csv").write_text(
        "# source: test\nmodel.variant,test.top1\ni3d_r50_dsa,78.2\ni3d_r50,74.9\ntsm_r50,\n")
    return tmp_path


def test_table_cells_equal_independent_computation(results):
    runs = load_runs(results / "runs")
    meta = GridMeta.load("main", results / "experiments")
    paper, notes = read_paper(meta.paper_reference)
    table = grid_table(runs, meta, paper).set_index("model.variant")
    # rows in the paper's order
    assert list(table.index) == ["i3d_r50_dsa", "i3d_r50", "tsm_r50"]
    for variant, values in TOP1.items():
        row = table.loc[variant]
        assert row["n"] == len(values)
        assert row["test.top1"] == pytest.approx(statistics.mean(values))
        if len(values) > 1:
            assert row["test.top1 std"] == pytest.approx(statistics.stdev(values))
    assert table.loc["i3d_r50_dsa", "delta test.top1"] == pytest.approx(statistics.mean(TOP1["i3d_r50_dsa"]) - 78.2)
    assert table.loc["i3d_r50", "paper test.top1"] == 74.9
    assert table["paper test.top1"].isna()["tsm_r50"]  # unverified: empty, never guessed
    assert notes == ["source: test"]
    md = to_markdown(table.reset_index(), meta)
    assert "76.17 ± 0.76" in md and "-2.03" in md and "GFLOPs/view (fvcore, 1 MAC = 1 FLOP)" in md


def test_latex_structure(results):
    runs = load_runs(results / "runs")
    meta = GridMeta.load("main", results / "experiments")
    tex = to_latex(grid_table(runs, meta, read_paper(meta.paper_reference)[0]), meta)
    lines = tex.splitlines()
    assert lines[0] == r"\begin{table}[t]" and lines[-1] == r"\end{table}"
    assert lines.index(r"\toprule") < lines.index(r"\midrule") < lines.index(r"\bottomrule")
    assert r"i3d\_r50\_dsa" in tex and r"$\pm$" in tex and r"top-1 (\%)" in tex
    body = lines[lines.index(r"\midrule") + 1:lines.index(r"\bottomrule")]
    assert len(body) == 3 and all(line.endswith(r"\\") for line in body)
    spec = next(line for line in lines if line.startswith(r"\begin{tabular}")).rsplit("{", 1)[1].rstrip("}")
    assert spec == "lrrrrr" and len(spec) == body[0].count("&") + 1


def test_plots_written_with_labels_and_points(results, tmp_path):
    runs = load_runs(results / "runs")
    meta = GridMeta.load("main", results / "experiments")
    table = grid_table(runs, meta)
    info = scatter_tradeoff(table, tmp_path / "fig" / "trade", title="t")
    assert info["points"] == 3 and info["xlabel"].startswith("GFLOPs/view") and info["ylabel"] == "top-1 (%)"
    assert all((tmp_path / "fig" / f"trade.{ext}").stat().st_size > 1000 for ext in ("png", "svg"))
    assert set(info["pareto"]) == {"tsm_r50", "i3d_r50_dsa"}


def test_pareto_front():
    x, y = [1.0, 2.0, 3.0, 4.0], [1.0, 0.5, 2.0, 1.5]
    import numpy as np

    assert pareto_front(np.array(x), np.array(y)).tolist() == [0, 2]


def test_missing_or_half_written_files_are_reported_not_fatal(results):
    _run(results, "main", "i3d_r50", 9, 10.0, final=False)  # still running: no final.json
    broken = _run(results, "main", "i3d_r50", 8, 10.0, final=False)
    broken.final_path.write_text('{"status": "do')  # torn write
    (results / "runs" / "main" / "bad").mkdir()
    (results / "runs" / "main" / "bad" / "config.json").write_text("{not json")
    runs = load_runs(results / "runs")
    status = dict(zip(runs["run_id"], runs["status"]))
    assert status["i3d_r50-9"] == "incomplete" and status["i3d_r50-8"] == "incomplete" and status["bad"] == "incomplete"
    problems = dict(runs.attrs["problems"])
    assert any("half-written" in m for m in problems.values()) and any("unreadable" in m for m in problems.values())
    table = grid_table(runs, GridMeta.load("main", results / "experiments"))
    assert table.set_index("model.variant").loc["i3d_r50", "n"] == 3  # unfinished runs are not averaged
    index = write_report(results, results / "reports", experiments_dir=results / "experiments")
    assert "Problems found while reading results" in index.read_text()


def test_store_cache_sees_changes(results):
    first = load_runs(results / "runs")
    assert (results / "runs" / ".store_cache.pkl").exists()
    rd = RunDir(results / "runs" / "main" / "tsm_r50-0")
    final = rd.read_final()
    final["test"]["top1"] = 12.5
    time.sleep(0.01)
    rd.write_final(final)
    again = load_runs(results / "runs").set_index("run_id")
    assert again.loc["tsm_r50-0", "test.top1"] == 12.5
    assert len(again) == len(first)


def test_report_command_writes_index_tables_and_figures(results, capsys):
    out = results / "reports"
    assert main(["report", "--results", str(results), "--out", str(out), "--experiments",
                 str(results / "experiments"), "--print"]) == 0
    index = (out / "README.md").read_text()
    assert "## main" in index and "Test CPU" in index and "3 done" not in index and "7 done" in index
    assert (out / "main.md").exists() and (out / "main.tex").exists()
    assert (out / "figures" / "main_accuracy_vs_gflops.png").stat().st_size > 1000
    assert (out / "figures" / "main_training.png").exists()
    assert "i3d_r50_dsa" in capsys.readouterr().out
    assert main(["report", "--results", str(results), "--out", str(out), "--grid", "nope"]) == 2
