"""Comparisons in the report tables: accuracy intervals, the paired Δ to the baseline, seeds, the test-set
check before a paper Δ, and `sweep show`'s resolution planning (issue 21)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness.report import stats
from harness.report.compare import pair_counts, pair_runs
from harness.report.tables import GridMeta, check_test_set, grid_table, read_test_sets, to_markdown

N = 400


def _runs(seeds=(0, 1), shift=0.15, *, lists=("a", "a"), ci=True, seed=0):
    """A backbone (tsm_r18) and its DSA run (tsm_r18_dsa) per seed, with per-video correctness: DSA gets
    right every video the backbone does, plus a share ``shift`` of the others."""
    rng = np.random.default_rng(seed)
    rows, correct = [], {}
    for s in seeds:
        base = rng.random(N) < 0.6
        for (variant, agg), test_list in zip((("tsm_r18", "avg"), ("tsm_r18_dsa", "dsa")), lists):
            c = base.copy() if agg == "avg" else base | (rng.random(N) < shift)
            path = f"/runs/g/{variant}-{s}"
            top1 = c.mean() * 100
            lo, hi = stats.wilson_interval(int(c.sum()), N)
            rows.append(
                {
                    "run_id": f"{variant}-{s}",
                    "grid": "g",
                    "task": "train",
                    "seed": s,
                    "status": "done",
                    "path": path,
                    "model.variant": variant,
                    "model.aggregator": agg,
                    "model.flavour": "tsm",
                    "model.split_ratio": 0.125 if agg == "avg" else 0.5,
                    "data.name": "synth",
                    "manifest.test.sha256": test_list,
                    "manifest.test.list": f"{test_list}.txt",
                    "manifest.test.rows": N,
                    "test.top1": top1,
                    "test.num_videos": N,
                    **({"test.top1_ci_low": lo, "test.top1_ci_high": hi} if ci else {}),
                }
            )
            correct[path] = (c, np.ones(N, bool))
    df = pd.DataFrame(rows)
    df.attrs["config_columns"] = [
        "model.variant",
        "model.aggregator",
        "model.flavour",
        "model.split_ratio",
        "data.name",
    ]
    return df, correct


META = GridMeta(name="g", rows=["model.variant"], metrics=["test.top1"])


def test_backbone_rule_pairs_each_variant_with_its_backbone_seed_by_seed():
    df, _ = _runs(seeds=(0, 1, 2))
    pairs = pair_runs(df)
    assert list(zip(pairs["run_id"], pairs["baseline_run_id"])) == [
        (f"tsm_r18_dsa-{s}", f"tsm_r18-{s}") for s in (0, 1, 2)
    ]  # the aggregator's own fields (split ratio) may differ; the seed may not


def test_stated_baseline_pairs_rows_that_differ_only_in_its_keys():
    df, _ = _runs(seeds=(0,))
    df["model.aggregator"], df["model.variant"] = "dsa", "tsm_r18_dsa"  # an ablation grid: only the split varies
    pairs = pair_runs(df, {"model.split_ratio": 0.125})
    assert list(zip(pairs["run_id"], pairs["baseline_run_id"])) == [("tsm_r18_dsa-0", "tsm_r18-0")]
    assert pair_runs(df, {"model.split_ratio": 0.3}).empty  # no run holds the stated values


def test_stated_variant_baseline_pairs_other_aggregators_with_it():
    """A baseline stated by variant (the embedded aggregator table: every row against the static conv): the
    aggregator each variant implies differs from the baseline's, and still the rows pair, seed by seed; a field
    that varies *within* a variant stays a key (a row is never paired with a baseline of another split)."""
    df, _ = _runs(seeds=(0, 1))
    static = df[df["model.variant"] == "tsm_r18"].assign(
        **{"model.variant": "tsm_r18_static", "model.aggregator": "static_conv"}
    )
    static["run_id"] = static["run_id"].str.replace("tsm_r18", "tsm_r18_static")
    static["path"] = static["path"] + "_static"
    df = pd.concat([df, static], ignore_index=True)
    df.attrs["config_columns"] = ["model.variant", "model.aggregator", "model.flavour", "data.name"]
    pairs = pair_runs(df, {"model.variant": "tsm_r18_static"})
    assert sorted(zip(pairs["run_id"], pairs["baseline_run_id"])) == [
        (f"{v}-{s}", f"tsm_r18_static-{s}") for v in ("tsm_r18", "tsm_r18_dsa") for s in (0, 1)
    ]
    df.attrs["config_columns"].append("model.split_ratio")  # varies with the variant here: still one function
    assert len(pair_runs(df, {"model.variant": "tsm_r18_static"})) == 4
    df.loc[df["run_id"] == "tsm_r18_dsa-1", "model.split_ratio"] = 0.25  # now it varies within a variant
    pairs = pair_runs(df, {"model.variant": "tsm_r18_static"})
    assert "tsm_r18_dsa-1" not in set(pairs["run_id"]) and "tsm_r18_dsa-0" not in set(pairs["run_id"])


def test_table_shows_paired_delta_interval_p_and_resolved_mark():
    df, correct = _runs()
    table = grid_table(df, META, None, correct=lambda paths: ({p: correct[p] for p in paths}, []))
    text = to_markdown(table)
    dsa = table[table["model.variant"] == "tsm_r18_dsa"].iloc[0]
    pooled = stats.pool_counts(list(table.attrs["pairs"][["n", "a_only", "b_only"]].itertuples(index=False, name=None)))
    expected = stats.paired_delta_counts(*pooled)
    assert dsa["paired delta"] == pytest.approx(float(expected["delta"]))
    assert (dsa["paired low"], dsa["paired high"]) == pytest.approx((float(expected["low"]), float(expected["high"])))
    assert bool(dsa["paired resolved"]) and dsa["baseline"] == "tsm_r18"
    assert "Δ top-1 vs baseline [95% CI]" in text and "McNemar p" in text and "✓" in text
    assert "(baseline)" in text  # the backbone row says what it is
    assert "Paired comparisons, seed by seed" in text and text.count("tsm_r18_dsa-") == 2


def test_identical_predictions_pair_with_delta_exactly_zero():
    df, correct = _runs(seeds=(0,), shift=0.0)  # the DSA run answers every video as the backbone does
    table = grid_table(df, META, None, correct=correct)
    dsa = table[table["model.variant"] == "tsm_r18_dsa"].iloc[0]
    assert (dsa["paired delta"], dsa["paired low"], dsa["paired high"]) == (0.0, 0.0, 0.0)
    assert dsa["paired p"] == 1.0 and not dsa["paired resolved"]


def test_runs_on_different_test_lists_are_never_paired_and_say_so():
    df, correct = _runs(seeds=(0,), lists=("a", "b"))
    table = grid_table(df, META, None, correct=correct)
    text = to_markdown(table)
    assert "not paired: tested on different lists (b.txt vs a.txt)" in text
    assert pd.isna(table.loc[table["model.variant"] == "tsm_r18_dsa", "paired delta"]).all()


def test_runs_without_predictions_keep_their_aggregates_and_say_no_interval():
    df, _ = _runs(seeds=(0,), ci=False)
    table = grid_table(df, META, None, correct={})
    text = to_markdown(table)
    assert "no predictions (tsm_r18_dsa-0, tsm_r18-0)" in text
    assert "‡" in text and "no interval (the run kept no per-video predictions)" in text
    top1 = df.loc[df["model.variant"] == "tsm_r18", "test.top1"].iloc[0]
    assert f"{top1:.1f} ‡" in text  # the aggregate itself is still shown


def test_one_run_rows_show_the_interval_over_videos_several_the_interval_over_seeds():
    df, correct = _runs(seeds=(0,))
    one = grid_table(df, META, None, correct=correct)
    r = one[one["model.variant"] == "tsm_r18"].iloc[0]
    assert (r["test.top1 low"], r["test.top1 high"]) == pytest.approx(
        stats.wilson_interval(int(r["test.top1"] * N / 100 + 0.5), N)
    )
    assert "seed-to-seed noise is not measured" in to_markdown(one)
    df3, correct3 = _runs(seeds=(0, 1, 2))
    three = grid_table(df3, META, None, correct=correct3)
    r = three[three["model.variant"] == "tsm_r18_dsa"].iloc[0]
    s = stats.seed_summary(df3.loc[df3["model.variant"] == "tsm_r18_dsa", "test.top1"].to_numpy())
    assert (r["test.top1 low"], r["test.top1 high"]) == pytest.approx((s["low"], s["high"]))
    p = stats.probability_of_improvement(
        df3.loc[df3["model.variant"] == "tsm_r18_dsa", "test.top1"].to_numpy(),
        df3.loc[df3["model.variant"] == "tsm_r18", "test.top1"].to_numpy(),
    )
    assert r["P(beats)"] == pytest.approx(p["p"])
    assert "P(beats baseline) [95% CI]" in to_markdown(three)


def test_pair_counts_leave_out_videos_unreadable_in_either_run():
    df, correct = _runs(seeds=(0,))
    path = df.loc[df["model.variant"] == "tsm_r18_dsa", "path"].iloc[0]
    c, scored = correct[path]
    scored = scored.copy()
    scored[:10] = False
    correct[path] = (c, scored)
    counts = pair_counts(pair_runs(df), correct)
    assert counts["n"].iloc[0] == N - 10 and counts["dropped"].iloc[0] == 10


def test_paper_delta_only_when_the_test_list_has_the_reference_size(tmp_path):
    df, _ = _runs(seeds=(0,))
    assert check_test_set(df, {"synth": (N, "source")}) == (True, "")
    ok, why = check_test_set(df, {"synth": (2 * N, "source")})
    assert not ok and f"has {N} videos, the paper's {2 * N}" in why
    ok, why = check_test_set(df, {"synth": (None, "")})
    assert not ok and "not verified" in why
    csv = tmp_path / "test_sets.csv"
    csv.write_text("# c\ndata.name,videos,source\nsynth,400,here\nother,,\n")
    assert read_test_sets(csv) == {"synth": (400, "here"), "other": (None, "")}
    paper = pd.DataFrame({"model.variant": ["tsm_r18"], "test.top1": [99.0]})
    table = grid_table(
        df, GridMeta(name="g", rows=["model.variant"], metrics=["test.top1"], test_sets={"synth": (9999, "")}), paper
    )
    assert table["delta test.top1"].isna().all() and "Δ to the paper not shown" in to_markdown(table)
    table = grid_table(
        df, GridMeta(name="g", rows=["model.variant"], metrics=["test.top1"], test_sets={"synth": (N, "")}), paper
    )
    assert table["delta test.top1"].notna().any()


def test_shipped_test_sets_file_reads_and_every_count_names_its_source():
    sets = read_test_sets("experiments/paper/test_sets.csv")
    assert sets["kinetics400"][0] == 19796
    assert all(source for _, source in sets.values())


def _write_run(root, grid, run_id, *, variant, aggregator, seed, correct):
    """A finished run folder with per-video predictions whose correctness is ``correct``."""
    from harness.results.predictions import build_columns, write_predictions
    from harness.results.rundir import RunDir

    n = len(correct)
    labels = np.zeros(n, dtype=np.int64)
    scores = np.where(np.asarray(correct)[:, None], [[0.9, 0.1]], [[0.1, 0.9]])
    rd = RunDir(root / "runs" / grid / run_id).create()
    rd.write_config(
        {"task": "train", "grid": grid, "seed": seed, "model": {"variant": variant, "aggregator": aggregator}}
    )
    cols = build_columns(
        lines=range(1, n + 1),
        paths=[f"v{i}.mp4" for i in range(n)],
        labels=labels,
        scored_index=np.arange(n),
        scores=scores,
    )
    write_predictions(
        rd.predictions_path, cols, {"run_id": run_id, "list": "t.txt", "list_sha256": "x", "num_classes": 2, "views": 1}
    )
    rd.write_final(
        {
            "run_id": run_id,
            "task": "train",
            "status": "done",
            "test": {"top1": float(np.mean(correct) * 100)},
            "manifest": {"test": {"sha256": "x", "rows": n}},
        }
    )


def test_sweep_show_prints_the_resolution_and_the_seeds_for_a_target(tmp_path, capsys):
    """From the grid's test set and seeds, with the assumed discordance; then with the discordance measured from
    earlier runs' predictions paired with their backbone (here: 60 of 400 videos differ, 0.15 -> 0.150 measured)."""
    from harness.cli import main
    from harness.launch.grid import expand, load_grid
    from harness.launch.resolution import plan_resolution

    grid = load_grid("experiments/synthetic_study.yaml")
    runs = expand(grid, tmp_path)
    plan = plan_resolution(grid, runs, tmp_path, target_delta=5.0)
    assert (plan.videos, plan.seeds, plan.top1_source) == (120, 2, "assumed")
    assert plan.discordance == stats.DEFAULT_DISCORDANCE and plan.discordance_source.startswith("assumed")
    assert plan.min_delta == pytest.approx(
        stats.min_detectable_delta(120, discordance=stats.DEFAULT_DISCORDANCE, seeds=2)
    )
    assert plan.seeds_for_target == stats.seeds_to_resolve(5.0, 120, discordance=stats.DEFAULT_DISCORDANCE)
    assert plan.half_width == pytest.approx(stats.binomial_half_width(70.0, 120))
    rc = main(
        [
            "sweep",
            "show",
            "experiments/synthetic_study.yaml",
            "--no-check-data",
            "--no-cost",
            "--results",
            str(tmp_path),
            "--target-delta",
            "5",
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0 and "resolution (95%, 80% power), 120 test videos (cost.test_clips) x 2 seed(s):" in out
    assert f"--target-delta 5: {plan.seeds_for_target} seed(s) resolve it (the grid has 2)" in out
    base = np.arange(400) % 2 == 0
    dsa = base.copy()
    dsa[1:120:2] = True  # 60 more right: discordance 60 / 400
    _write_run(tmp_path, grid.name, "b0", variant="tsm_r18", aggregator="avg", seed=0, correct=base)
    _write_run(tmp_path, grid.name, "d0", variant="tsm_r18_dsa", aggregator="dsa", seed=0, correct=dsa)
    measured = plan_resolution(grid, runs, tmp_path)
    assert (
        measured.discordance == pytest.approx(60 / 400)
        and "measured: 1 earlier run pair" in measured.discordance_source
    )
    assert measured.top1_source == "mean of 2 earlier runs"


def test_target_delta_out_of_range_is_one_line(capsys):
    from harness.cli import main

    for bad in ("0", "-1", "100", "nan"):
        rc = main(
            ["sweep", "show", "experiments/synthetic_study.yaml", "--no-check-data", "--no-cost", "--target-delta", bad]
        )
        err = capsys.readouterr().err
        assert rc == 2 and err.count("\n") == 1 and "--target-delta" in err


def test_profile_runs_are_never_paired():
    df, _ = _runs(seeds=(0,))
    assert len(pair_runs(df)) == 1
    df["task"] = "profile"  # a profile grid of a DSA model and its backbone: no test videos to pair
    assert pair_runs(df).empty


def test_printed_accuracies_carry_their_interval_when_recorded():
    rec = {"top1": 78.2, "top1_ci_low": 77.6, "top1_ci_high": 78.8, "top5": 93.0}
    assert stats.format_accuracy(rec, "top1") == "78.20% [77.60, 78.80]"
    assert stats.format_accuracy(rec, "top5") == "93.00%"  # no interval recorded: none made up
    assert stats.format_accuracy(rec, "mean_class_acc") == ""


def test_delta_plot_draws_each_paired_row_with_its_interval(tmp_path):
    from harness.report.plots import delta_plot

    df, correct = _runs(seeds=(0, 1))
    table = grid_table(df, META, None, correct=correct)
    info = delta_plot(table, tmp_path / "delta", formats=("png",))
    row = table[table["paired delta"].notna()].iloc[0]
    assert info["points"] == 1 and info["resolved"] == 1 and Path(info["paths"][0]).exists()
    (below,), (above,) = info["yerr"]
    expected = (row["paired delta"] - row["paired low"], row["paired high"] - row["paired delta"])
    assert (below, above) == pytest.approx(expected)
    empty = delta_plot(grid_table(df, META, None, correct={}), tmp_path / "none", formats=("png",))
    assert empty["points"] == 0  # nothing paired: an empty figure, never an invented point


def test_an_unchanged_table_reuses_its_comparisons_and_a_changed_one_is_computed_again(tmp_path, monkeypatch):
    """The report's comparison memo (reports/.cache/comparisons.json): a second report of unchanged runs reads no
    predictions and resamples nothing, and writes the same tables; a changed predictions file is read again; an
    unreadable one is listed under the problems whether the memo is used or not."""
    import harness.report.index as index
    from harness.report import write_report

    (tmp_path / "experiments").mkdir()
    base = np.arange(400) % 2 == 0
    for seed in (0, 1):
        dsa = base.copy()
        dsa[1 : 100 + 40 * seed : 2] = True
        _write_run(tmp_path, "g", f"b{seed}", variant="tsm_r18", aggregator="avg", seed=seed, correct=base)
        _write_run(tmp_path, "g", f"d{seed}", variant="tsm_r18_dsa", aggregator="dsa", seed=seed, correct=dsa)
    _write_run(tmp_path, "g", "x0", variant="i3d_r18_dsa", aggregator="dsa", seed=0, correct=base)
    _write_run(tmp_path, "g", "xb0", variant="i3d_r18", aggregator="avg", seed=0, correct=base)
    cut = tmp_path / "runs" / "g" / "x0" / "predictions.parquet"
    cut.write_bytes(cut.read_bytes()[:-100])
    out = tmp_path / "reports"
    kw = {"experiments_dir": tmp_path / "experiments", "formats": ("md",)}
    first = write_report(tmp_path, out, **kw).read_text()
    table = (out / "g.md").read_text()
    assert "Δ top-1 vs baseline" in table and "predictions.parquet" in first  # the cut file is a problem

    def no_reading(*args, **kwargs):
        raise AssertionError("read predictions for an unchanged table")

    monkeypatch.setattr(index, "load_correct", no_reading)
    second = write_report(tmp_path, out, **kw).read_text()
    assert (out / "g.md").read_text() == table and "predictions.parquet" in second  # the same, problems too
    monkeypatch.undo()
    changed = base.copy()
    changed[1:300:2] = True
    _write_run(tmp_path, "g", "d1", variant="tsm_r18_dsa", aggregator="dsa", seed=1, correct=changed)
    os.utime(tmp_path / "runs" / "g" / "d1" / "predictions.parquet", ns=(1, 1))  # another signature
    write_report(tmp_path, out, **kw)
    assert (out / "g.md").read_text() != table  # computed again from the new predictions


def test_an_interval_over_few_seeds_stays_within_0_and_100():
    df, correct = _runs(seeds=(0, 1))
    df.loc[df["model.variant"] == "tsm_r18", "test.top1"] = [5.0, 95.0]  # t interval of 2 seeds: far past both ends
    table = grid_table(df, META, None, correct=correct)
    r = table[table["model.variant"] == "tsm_r18"].iloc[0]
    assert (r["test.top1 low"], r["test.top1 high"]) == (0.0, 100.0)
    assert "(baseline)" in to_markdown(table)
    tsn = df.iloc[[0]].assign(**{"model.variant": "tsn_r18", "model.flavour": "tsn", "run_id": "tsn-0", "path": "/x"})
    other = grid_table(pd.concat([df, tsn]).set_axis(range(len(df) + 1)), META, None, correct=correct)
    assert "(no baseline)" in to_markdown(other)  # a backbone no run of the grid is compared with says so


def test_runs_csv_is_written_again_only_when_the_runs_changed(tmp_path):
    import time

    from harness.report import write_report

    (tmp_path / "experiments").mkdir()
    base = np.arange(40) % 2 == 0
    _write_run(tmp_path, "g", "b0", variant="tsm_r18", aggregator="avg", seed=0, correct=base)
    for p in (tmp_path / "runs").rglob("*"):
        os.utime(p, (time.time() - 60, time.time() - 60))  # older than the store's 2-s window
    out, kw = tmp_path / "reports", {"experiments_dir": tmp_path / "experiments", "formats": ("md",)}
    write_report(tmp_path, out, **kw)
    before = (out / "runs.csv").stat().st_mtime_ns
    write_report(tmp_path, out, **kw)
    assert (out / "runs.csv").stat().st_mtime_ns == before  # the same runs: not written again
    _write_run(tmp_path, "g", "b0", variant="tsm_r18", aggregator="avg", seed=0, correct=~base)
    for p in (tmp_path / "runs").rglob("*"):
        os.utime(p, (time.time() - 30, time.time() - 30))
    write_report(tmp_path, out, **kw)
    assert (out / "runs.csv").stat().st_mtime_ns != before  # a run changed: written again
