"""harness/report/stats.py: every interval and p-value against the direct scipy / statsmodels call on fixed data,
the resamplers written here against scipy.stats.bootstrap, the coverage and power of the paired test by
simulation over fixed seeds, and the edge cases (no video, one seed, all correct, all wrong, identical
predictions)."""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as sps
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.power import TTestPower
from statsmodels.stats.proportion import proportion_confint

from harness.report import stats as S

# --------------------------------------------------------------------------------------------- fixtures


def videos(m: int, num_classes: int, acc: float, seed: int):
    """labels, pred, top5 of m videos: pred right with probability ``acc``; top5 = pred + 4 other guesses."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, num_classes, m)
    right = rng.random(m) < acc
    pred = np.where(right, labels, (labels + rng.integers(1, num_classes, m)) % num_classes)
    others = rng.integers(0, num_classes, (m, 4))
    return labels, pred, np.concatenate([pred[:, None], others], axis=1)


def pair(n: int, a_only: int, b_only: int, both: int, seed: int = 0):
    """Per-video correctness of a and b on n videos with the given cells, in shuffled order."""
    a = np.array([1] * a_only + [0] * b_only + [1] * both + [0] * (n - a_only - b_only - both), bool)
    b = np.array([0] * a_only + [1] * b_only + [1] * both + [0] * (n - a_only - b_only - both), bool)
    order = np.random.default_rng(seed).permutation(n)
    return a[order], b[order]


def mean_class_reference(labels, correct, axis=-1):
    """Mean over present classes of per-class accuracy (%), vectorised over leading axes (for scipy's bootstrap)."""
    labels = np.moveaxis(np.asarray(labels), axis, -1)
    correct = np.moveaxis(np.asarray(correct), axis, -1)
    shape, m = labels.shape[:-1], labels.shape[-1]
    lab = labels.reshape(-1, m).astype(np.int64)
    k = int(lab.max()) + 1
    offset = np.arange(lab.shape[0])[:, None] * k
    tot = np.bincount((lab + offset).ravel(), minlength=lab.shape[0] * k).reshape(-1, k)
    cor = np.bincount((lab + offset).ravel(), weights=correct.reshape(-1, m).ravel(), minlength=lab.shape[0] * k)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_class = cor.reshape(-1, k) / tot
    return (np.nanmean(per_class, axis=1) * 100).reshape(shape)


# ----------------------------------------------------------------------------------------------- Wilson


def test_wilson_equals_statsmodels_in_percent_scalars_and_arrays():
    s = np.array([0, 1, 7, 50, 99, 100, 731])
    n = np.array([100, 100, 20, 100, 100, 100, 1000])
    for conf in (0.95, 0.9):
        low, high = S.wilson_interval(s, n, conf)
        ref_low, ref_high = proportion_confint(s, n, alpha=1 - conf, method="wilson")
        np.testing.assert_allclose(low, ref_low * 100, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(high, ref_high * 100, rtol=1e-12, atol=1e-12)
    low, high = S.wilson_interval(7, 20)
    assert isinstance(low, float) and low == pytest.approx(proportion_confint(7, 20, method="wilson")[0] * 100)
    assert high == pytest.approx(proportion_confint(7, 20, method="wilson")[1] * 100)


def test_wilson_edge_cases():
    assert all(math.isnan(v) for v in S.wilson_interval(0, 0))
    low, high = S.wilson_interval(np.array([0, 5]), np.array([0, 10]))
    assert math.isnan(low[0]) and math.isnan(high[0]) and 0 < low[1] < 50 < high[1] < 100
    low, high = S.wilson_interval(40, 40)  # all correct: the top is 100, the bottom below it
    assert high == pytest.approx(100) and 90 < low < 100
    low, high = S.wilson_interval(0, 40)  # all wrong
    assert low == pytest.approx(0, abs=1e-12) and 0 < high < 10


def test_binomial_half_width_is_half_the_wilson_width():
    low, high = proportion_confint(700, 1000, method="wilson")
    assert S.binomial_half_width(70.0, 1000) == pytest.approx((high - low) / 2 * 100)
    widths = S.binomial_half_width(np.array([70.0, 70.0]), np.array([1000, 4000]))
    assert widths[1] == pytest.approx(widths[0] / 2, rel=0.01)  # 4x the videos: half the width
    assert math.isnan(S.binomial_half_width(70.0, 0))


# ------------------------------------------------------------------------------------ accuracy intervals


def test_accuracy_intervals_point_values_and_wilson():
    labels, pred, top5 = videos(3000, 50, 0.6, seed=1)
    r = S.accuracy_intervals(labels, pred, top5, 50)
    correct = pred == labels
    in5 = (top5 == labels[:, None]).any(axis=1)
    assert r["top1"] == pytest.approx(correct.mean() * 100) and r["top5"] == pytest.approx(in5.mean() * 100)
    assert (r["top1_ci_low"], r["top1_ci_high"]) == pytest.approx(
        tuple(np.array(proportion_confint(correct.sum(), 3000, method="wilson")) * 100)
    )
    assert (r["top5_ci_low"], r["top5_ci_high"]) == pytest.approx(
        tuple(np.array(proportion_confint(in5.sum(), 3000, method="wilson")) * 100)
    )
    assert r["mean_class_acc"] == pytest.approx(float(mean_class_reference(labels, correct)))
    assert r["mean_class_acc_ci_low"] < r["mean_class_acc"] < r["mean_class_acc_ci_high"]
    assert r["confidence"] == 0.95 and "Wilson" in r["ci_method"] and "bootstrap" in r["ci_method"]
    assert S.accuracy_intervals(labels, pred, top5, 50) == r  # seeded: the same interval every time
    assert S.accuracy_intervals(labels, pred, top5, 50, seed=1)["mean_class_acc_ci_low"] != r["mean_class_acc_ci_low"]


def test_mean_class_bootstrap_agrees_with_scipy_bootstrap_over_videos():
    labels, pred, top5 = videos(3000, 200, 0.6, seed=2)
    correct = pred == labels
    ours = S.accuracy_intervals(labels, pred, top5, 200, resamples=4000, seed=3)
    ref = sps.bootstrap(
        (labels, correct.astype(float)),
        mean_class_reference,
        paired=True,
        vectorized=True,
        method="percentile",
        n_resamples=4000,
        batch=500,
        rng=np.random.default_rng(4),
    ).confidence_interval
    width = ref.high - ref.low
    assert 2 < width < 5  # a real interval (~1 point sd), not a degenerate one
    assert ours["mean_class_acc_ci_low"] == pytest.approx(ref.low, abs=0.3)
    assert ours["mean_class_acc_ci_high"] == pytest.approx(ref.high, abs=0.3)


def test_multinomial_cells_have_the_multinomial_distribution():
    counts = np.array([5, 0, 3, 12, 1, 40])
    m = counts.sum()
    draws = S._multinomial_rows(np.random.default_rng(0), counts, 100_000)
    assert (draws.sum(axis=1) == m).all() and (draws[:, 1] == 0).all()
    p = counts / m
    np.testing.assert_allclose(draws.mean(axis=0), m * p, atol=0.05)
    cov = m * (np.diag(p) - np.outer(p, p))
    np.testing.assert_allclose(np.cov(draws.T), cov, atol=0.12)
    # a one-video set: every resample is that video
    assert (S._multinomial_rows(np.random.default_rng(0), np.array([0, 1]), 10) == [0, 1]).all()


def test_accuracy_intervals_edge_cases():
    empty = S.accuracy_intervals(np.array([], int), np.array([], int), np.zeros((0, 5), int), 10)
    assert all(math.isnan(empty[k]) for k in empty if k not in ("ci_method", "confidence"))
    labels = np.arange(40) % 8
    all_right = S.accuracy_intervals(labels, labels, labels[:, None], 8)
    assert all_right["top1"] == all_right["top5"] == all_right["mean_class_acc"] == 100.0
    assert all_right["mean_class_acc_ci_low"] == all_right["mean_class_acc_ci_high"] == 100.0
    all_wrong = S.accuracy_intervals(labels, (labels + 1) % 8, ((labels + 1) % 8)[:, None], 8)
    assert all_wrong["top1"] == all_wrong["mean_class_acc"] == 0.0
    assert all_wrong["mean_class_acc_ci_low"] == all_wrong["mean_class_acc_ci_high"] == 0.0
    one = S.accuracy_intervals(np.array([3]), np.array([3]), np.array([[3, 1]]), 5)
    assert one["top1"] == one["mean_class_acc"] == one["mean_class_acc_ci_high"] == 100.0


def test_accuracy_intervals_is_fast_for_a_large_test_set():
    """The brief: < 50 ms for 20,000 videos of 400 classes (benchmarks/stats_speed.py measures it); bounded
    here at 0.5 s only, for a shared test machine: it catches a per-video resampler (seconds)."""
    labels, pred, top5 = videos(20_000, 400, 0.7, seed=5)
    S.accuracy_intervals(labels, pred, top5, 400)
    start = time.perf_counter()
    S.accuracy_intervals(labels, pred, top5, 400)
    assert time.perf_counter() - start < 0.5


# ---------------------------------------------------------------------------------------------- McNemar


def test_exact_mcnemar_equals_statsmodels_on_many_tables():
    tables = [(a, b) for a in range(26) for b in range(26)] + [(300, 250), (1000, 1100), (7, 400), (0, 900)]
    ours = S.mcnemar_exact_p(np.array([t[0] for t in tables]), np.array([t[1] for t in tables]))
    for (a, b), p in zip(tables, ours):
        ref = mcnemar(np.array([[17, a], [b, 5]]), exact=True).pvalue
        assert p == pytest.approx(ref, rel=1e-12, abs=1e-300), (a, b)
    assert S.mcnemar_exact_p(0, 0) == 1.0 and S.mcnemar_exact_p(4, 4) == 1.0


# -------------------------------------------------------------------------------------------- paired delta


def test_paired_delta_counts_and_point_values():
    a, b = pair(500, 31, 12, 300, seed=0)
    d = S.paired_delta(a, b)
    assert (d["n"], d["a_only"], d["b_only"]) == (500, 31, 12)
    assert d["delta"] == pytest.approx((a.mean() - b.mean()) * 100)
    assert d["discordance"] == pytest.approx(43 / 500) == S.discordance_from(a, b)
    assert d["p_mcnemar"] == pytest.approx(mcnemar([[300, 31], [12, 157]], exact=True).pvalue)
    assert d["low"] < d["delta"] < d["high"] and d["resolved"] == (d["low"] > 0 or d["high"] < 0)
    assert isinstance(d["delta"], float) and isinstance(d["resolved"], bool) and isinstance(d["n"], int)
    assert d == S.paired_delta_counts(500, 31, 12) == S.paired_delta(a, b)  # from counts, and seeded
    assert S.paired_delta(a, b, seed=1)["low"] != d["low"]
    with pytest.raises(ValueError, match="same videos"):
        S.paired_delta(a, b[:-1])


def test_paired_bootstrap_agrees_with_scipy_paired_bootstrap():
    a, b = pair(1000, 60, 40, 650, seed=1)
    ref = sps.bootstrap(
        (a.astype(float), b.astype(float)),
        lambda x, y, axis: (x.mean(axis=axis) - y.mean(axis=axis)) * 100,
        paired=True,
        vectorized=True,
        method="percentile",
        n_resamples=10_000,
        rng=np.random.default_rng(7),
    ).confidence_interval
    ours = S.paired_delta(a, b, resamples=10_000, seed=3)
    assert 3 < ref.high - ref.low < 5  # paired: ~4 points wide (unpaired would be ~8)
    assert ours["low"] == pytest.approx(ref.low, abs=0.25) and ours["high"] == pytest.approx(ref.high, abs=0.25)
    low90 = S.paired_delta(a, b, confidence=0.9, resamples=10_000, seed=3)["low"]
    ref90 = sps.bootstrap(
        (a.astype(float), b.astype(float)),
        lambda x, y, axis: (x.mean(axis=axis) - y.mean(axis=axis)) * 100,
        paired=True,
        vectorized=True,
        method="percentile",
        n_resamples=10_000,
        confidence_level=0.9,
        rng=np.random.default_rng(7),
    ).confidence_interval.low
    assert low90 == pytest.approx(ref90, abs=0.25) and low90 > ours["low"]


def test_identical_predictions_give_exactly_zero():
    for correct in (np.zeros(300, bool), np.ones(300, bool), np.arange(300) % 3 == 0):
        d = S.paired_delta(correct, correct.copy())
        assert d["delta"] == 0.0 and d["low"] == 0.0 and d["high"] == 0.0
        assert d["p_mcnemar"] == 1.0 and d["resolved"] is False and d["discordance"] == 0.0
        assert S.format_delta(d) == "+0.0 [+0.0, +0.0]" and S.format_p(d["p_mcnemar"]) == "1"


def test_all_right_against_all_wrong():
    d = S.paired_delta(np.ones(50, bool), np.zeros(50, bool))
    assert d["delta"] == d["low"] == d["high"] == 100.0 and d["resolved"] is True
    assert d["p_mcnemar"] == pytest.approx(2 * 0.5**50)


def test_no_videos():
    d = S.paired_delta(np.array([], bool), np.array([], bool))
    assert d["n"] == 0 and d["resolved"] is False
    assert all(math.isnan(d[k]) for k in ("delta", "low", "high", "p_mcnemar", "discordance"))
    assert S.format_delta(d) == "" and S.format_p(d["p_mcnemar"]) == ""


def test_vectorised_counts_equal_the_scalar_call_pair_by_pair():
    rng = np.random.default_rng(11)
    n = rng.integers(50, 2000, 40)
    a = rng.integers(0, 40, 40)
    b = rng.integers(0, 40, 40)
    n[3], a[3], b[3] = 0, 0, 0  # an empty pair among them
    a[5], b[5] = 0, 0  # an identical pair
    many = S.paired_delta_counts(n, a, b)
    for i in range(40):
        one = S.paired_delta_counts(int(n[i]), int(a[i]), int(b[i]))
        for key, value in one.items():
            assert (value == many[key][i]) or (math.isnan(value) and math.isnan(many[key][i])), (i, key)
    # a pair's interval does not depend on the pairs passed with it, nor on their order
    again = S.paired_delta_counts(n[::-1], a[::-1], b[::-1])
    np.testing.assert_array_equal(again["low"][::-1], many["low"])
    grid = S.paired_delta_counts(n.reshape(4, 10), a.reshape(4, 10), b.reshape(4, 10))
    assert grid["high"].shape == (4, 10) and np.array_equal(grid["high"].ravel(), many["high"], equal_nan=True)
    with pytest.raises(ValueError):
        S.paired_delta_counts(10, 6, 5)


def test_pool_counts_is_the_concatenation_of_videos():
    pairs = [pair(300, 20, 9, 200, seed=1), pair(500, 14, 30, 300, seed=2), pair(200, 5, 5, 150, seed=3)]
    counts = [S.paired_delta(a, b) for a, b in pairs]
    pooled = S.pool_counts([(c["n"], c["a_only"], c["b_only"]) for c in counts])
    a = np.concatenate([p[0] for p in pairs])
    b = np.concatenate([p[1] for p in pairs])
    assert pooled == (1000, 39, 44) == (len(a), int((a & ~b).sum()), int((b & ~a).sum()))
    assert S.paired_delta_counts(*pooled) == S.paired_delta(a, b)
    assert S.pool_counts([]) == (0, 0, 0)


def correlated_pair(rng, n: int, acc: float, keep: float):
    """Two classifiers of the same accuracy on n videos: b copies a's correctness with probability ``keep``
    and is otherwise an independent draw of the same accuracy (positively correlated, equal marginals)."""
    a = rng.random(n) < acc
    b = np.where(rng.random(n) < keep, a, rng.random(n) < acc)
    return a, b


def test_identical_classifiers_are_covered_in_95_percent_of_seeds():
    covered = 0
    for seed in range(200):
        a, b = correlated_pair(np.random.default_rng(seed), 400, 0.7, keep=0.6)
        d = S.paired_delta(a, b, seed=seed)
        covered += d["low"] <= 0 <= d["high"]
    assert 182 <= covered <= 198, covered


def test_a_too_narrow_interval_would_fail_the_coverage_check():
    """The coverage check can fail: an 80 % interval covers 0 in far fewer than 182 of the 200 seeds."""
    covered = 0
    for seed in range(200):
        a, b = correlated_pair(np.random.default_rng(seed), 400, 0.7, keep=0.6)
        d = S.paired_delta(a, b, confidence=0.8, seed=seed)
        covered += d["low"] <= 0 <= d["high"]
    assert covered < 182, covered


# ------------------------------------------------------------------------------------------------ seeds


def test_seed_summary_is_scipy_t_interval():
    values = [70.1, 70.5, 69.8, 70.9]
    s = S.seed_summary(values)
    x = np.array(values)
    low, high = sps.t.interval(0.95, 3, loc=x.mean(), scale=sps.sem(x))
    assert (s["mean"], s["low"], s["high"], s["n"]) == pytest.approx((x.mean(), low, high, 4))
    assert s["std"] == pytest.approx(x.std(ddof=1))
    s90 = S.seed_summary(values, confidence=0.9)
    assert s["low"] < s90["low"] < s90["high"] < s["high"]


def test_seed_summary_edge_cases():
    one = S.seed_summary([70.2])
    assert one["mean"] == 70.2 and one["n"] == 1 and all(math.isnan(one[k]) for k in ("low", "high", "std"))
    none = S.seed_summary([])
    assert none["n"] == 0 and all(math.isnan(none[k]) for k in ("mean", "low", "high", "std"))
    same = S.seed_summary([70.0, 70.0, 70.0])
    assert same["low"] == same["high"] == same["mean"] == 70.0 and same["std"] == 0.0


def test_probability_of_improvement_is_mann_whitney_over_all_pairs():
    x = np.array([70.1, 70.5, 69.8, 70.9, 70.5])
    y = np.array([69.9, 70.5, 69.2, 70.0])
    r = S.probability_of_improvement(x, y)
    brute = np.mean([(xi > yi) + 0.5 * (xi == yi) for xi in x for yi in y])
    assert r["p"] == pytest.approx(brute) == sps.mannwhitneyu(x, y).statistic / 20
    assert (r["n_x"], r["n_y"]) == (5, 4)
    ref = sps.bootstrap(
        (x, y),
        lambda a, b, axis: ((a[..., :, None] > b[..., None, :]) + 0.5 * (a[..., :, None] == b[..., None, :])).mean(
            axis=(-2, -1)
        ),
        method="percentile",
        n_resamples=S.RESAMPLES,
        vectorized=True,
        rng=np.random.default_rng(S.SEED),
    ).confidence_interval
    assert (r["low"], r["high"]) == pytest.approx((ref.low, ref.high))
    assert r["low"] <= r["p"] <= r["high"] and r["low"] < r["high"]
    assert S.probability_of_improvement(y, x)["p"] == pytest.approx(1 - r["p"])


def test_probability_of_improvement_edge_cases():
    r = S.probability_of_improvement([71.0], [70.0, 70.2])
    assert r["p"] == 1.0 and math.isnan(r["low"]) and math.isnan(r["high"])
    r = S.probability_of_improvement([], [70.0])
    assert math.isnan(r["p"]) and r["n_x"] == 0
    r = S.probability_of_improvement([71.0, 72.0, 73.0], [70.0, 70.5])  # every variant seed better
    assert r["p"] == r["low"] == r["high"] == 1.0


# --------------------------------------------------------------------------------------------- planning


def test_min_detectable_delta_solves_the_paired_t_power_equation():
    n, d = 10_000, 0.2
    delta = S.min_detectable_delta(n, discordance=d) / 100
    es = TTestPower().solve_power(nobs=n, alpha=0.05, power=0.8)
    assert delta / math.sqrt(d - delta**2) == pytest.approx(es, rel=1e-9)
    assert TTestPower().power(delta / math.sqrt(d - delta**2), n, 0.05) == pytest.approx(0.8, abs=1e-4)
    # pooled seeds are more videos; more discordance needs a larger difference
    assert S.min_detectable_delta(n, discordance=d, seeds=4) == pytest.approx(
        S.min_detectable_delta(4 * n, discordance=d)
    )
    assert S.min_detectable_delta(4 * n, discordance=d) < delta * 100 < S.min_detectable_delta(n, discordance=0.3)
    assert 0.2 < S.min_detectable_delta(20_000) < 1.0  # ~0.8 points at the default discordance
    assert math.isnan(S.min_detectable_delta(1)) and math.isnan(S.min_detectable_delta(100, discordance=0))


def test_planned_delta_resolves_in_about_power_of_fixed_seeds():
    n, disc = 400, 0.2
    delta = S.min_detectable_delta(n, discordance=disc, power=0.8) / 100
    rng = np.random.default_rng(0)
    cells = rng.multinomial(n, [(disc + delta) / 2, (disc - delta) / 2, 1 - disc], size=300)
    d = S.paired_delta_counts(np.full(300, n), cells[:, 0], cells[:, 1])
    assert 0.70 <= d["resolved"].mean() <= 0.90, d["resolved"].mean()
    # half the planned difference is resolved far less often
    cells = rng.multinomial(n, [(disc + delta / 2) / 2, (disc - delta / 2) / 2, 1 - disc], size=300)
    assert S.paired_delta_counts(np.full(300, n), cells[:, 0], cells[:, 1])["resolved"].mean() < 0.45


def test_seeds_to_resolve_inverts_min_detectable_delta():
    for delta, n, disc in [(0.5, 20_000, 0.15), (1.0, 5_000, 0.2), (0.3, 50_000, 0.1), (3.0, 2_000, 0.15)]:
        s = S.seeds_to_resolve(delta, n, discordance=disc)
        assert s is not None and S.min_detectable_delta(n, discordance=disc, seeds=s) <= delta
        if s > 1:
            assert S.min_detectable_delta(n, discordance=disc, seeds=s - 1) > delta
    assert S.seeds_to_resolve(-1.0, 5_000, discordance=0.2) == S.seeds_to_resolve(1.0, 5_000, discordance=0.2)
    assert S.seeds_to_resolve(20.0, 1000, discordance=0.15) is None  # more than the discordance allows
    assert S.seeds_to_resolve(0.0, 1000) is None
    assert S.seeds_to_resolve(0.01, 1000, max_seeds=1000) is None  # needs far more than 1000 seeds
    assert S.seeds_to_resolve(15.0, 100, discordance=0.15) == 1  # every discordant video on one side


def test_default_discordance_is_documented_as_an_assumption():
    assert S.DEFAULT_DISCORDANCE == 0.15
    source = Path(S.__file__).read_text(encoding="utf-8")
    assert 'DEFAULT_DISCORDANCE = 0.15\n"""ASSUMED' in source  # its docstring says it is an assumption
    a, b = pair(200, 10, 20, 100)
    assert S.discordance_from(a, b) == 0.15 and math.isnan(S.discordance_from([], []))


# --------------------------------------------------------------------------------------------- printing


def test_format_delta_and_p():
    assert S.format_delta({"delta": 0.6, "low": 0.1, "high": 1.1}) == "+0.6 [+0.1, +1.1]"
    assert S.format_delta({"delta": -0.62, "low": -1.14, "high": 0.04}, decimals=2) == "-0.62 [-1.14, +0.04]"
    assert S.format_delta({"delta": 0.6, "low": math.nan, "high": 1.1}) == "+0.6"  # no made-up interval
    assert S.format_delta({"delta": math.nan, "low": 0.1, "high": 1.1}) == ""
    assert [S.format_p(p) for p in (0.0031, 0.0456, 0.5, 1.0, 0.0009, 1e-12, math.nan, None)] == [
        "0.003",
        "0.046",
        "0.500",
        "1",
        "<0.001",
        "<0.001",
        "",
        "",
    ]
