"""Whether a difference between two video classifiers is real: intervals, paired tests, seeds and planning.

Accuracies are percentages (0..100) and differences of accuracies are percentage points, everywhere in this
module (fractions only internally). Every resampling function takes ``seed=`` (numpy ``default_rng``), so the
same input gives the same interval every time.

    accuracy_intervals(labels, pred, top5, num_classes)   # top-1 / top-5 (Wilson), mean class acc (bootstrap)
    d = paired_delta(correct_a, correct_b)                # a - b on the same videos: bootstrap + exact McNemar
    format_delta(d), format_p(d["p_mcnemar"])             # '+0.6 [+0.1, +1.1]', '0.003'
    min_detectable_delta(25_000, seeds=3)                 # points a paired test resolves with 80 % power

Methods come from scipy / statsmodels (Wilson: ``proportion_confint``; exact McNemar: the binomial test of
``mcnemar(exact=True)``; t intervals: ``scipy.stats.t``; power: ``TTestPower``); the two resamplers written
here (the cells of a multinomial instead of the videos) are checked against ``scipy.stats.bootstrap`` by
``tests/test_stats.py``.
"""

from __future__ import annotations

import math

import numpy as np

from harness.numfmt import format_interval, format_sig


def _sps():
    """``scipy.stats``, imported when a computation needs it (0.6 s: a report whose comparisons are remembered
    needs none)."""
    from scipy import stats

    return stats


CONFIDENCE = 0.95
"""Two-sided confidence level of every interval (and 1 - alpha of the tests)."""
RESAMPLES = 1_000
"""Bootstrap resamples (the default of every resampler): 1,000 keeps ``accuracy_intervals`` under 50 ms for
20,000 videos of 400 classes (10,000 took ~0.4 s); the Monte-Carlo error of a 95 % percentile bound is then
~0.09 bootstrap standard deviations (0.03 at 10,000), and fixed by the seed."""
SEED = 0
"""Default seed of every resampler."""
DEFAULT_DISCORDANCE = 0.15
"""ASSUMED fraction of test videos on which two comparable models (e.g. two variants of one backbone, or two
seeds of one variant) disagree about correctness, used for planning when no pair has been measured yet. An
assumption, not a measured figure: replace it by ``discordance_from(correct_a, correct_b)`` of a real pair."""


def _scalar_or_array(x):
    x = np.asarray(x)
    return x.item() if x.ndim == 0 else x


def _alpha(confidence: float) -> float:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    return 1.0 - confidence


def _percentile_bounds(samples: np.ndarray, confidence: float, axis: int = -1):
    """The percentile interval of bootstrap ``samples`` (numpy's linear interpolation, as scipy's bootstrap)."""
    a = _alpha(confidence)
    low, high = np.percentile(samples, [100 * a / 2, 100 * (1 - a / 2)], axis=axis)
    return low, high


# ---------------------------------------------------------------------------------------------- proportions


def wilson_interval(successes, n, confidence: float = CONFIDENCE):
    """Wilson score interval of a proportion ``successes / n``, as ``(low_pct, high_pct)`` in percent
    (statsmodels ``proportion_confint(method="wilson")``). Scalars or numpy arrays (broadcast); n == 0 gives
    (nan, nan)."""
    s = np.asarray(successes, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    s, n = np.broadcast_arrays(s, n)
    empty = n <= 0
    from statsmodels.stats.proportion import proportion_confint

    low, high = proportion_confint(s, np.where(empty, 1.0, n), alpha=_alpha(confidence), method="wilson")
    low = np.where(empty, np.nan, np.asarray(low) * 100)
    high = np.where(empty, np.nan, np.asarray(high) * 100)
    return _scalar_or_array(low), _scalar_or_array(high)


def binomial_half_width(accuracy_pct, n_videos, confidence: float = CONFIDENCE):
    """Half the width of the Wilson interval of an accuracy of ``accuracy_pct`` (%) over ``n_videos`` videos,
    in points: how precisely one run's top-1 is known. Scalars or arrays; nan for n_videos == 0."""
    n = np.asarray(n_videos, dtype=np.float64)
    low, high = wilson_interval(np.asarray(accuracy_pct, dtype=np.float64) / 100 * n, n, confidence)
    return _scalar_or_array((np.asarray(high) - np.asarray(low)) / 2)


def _mean_class(correct: np.ndarray, total: np.ndarray) -> np.ndarray:
    """Mean over classes with videos (total > 0) of per-class accuracy, in %, along the last axis."""
    present = total > 0
    acc = np.divide(correct, total, out=np.zeros(np.broadcast(correct, total).shape), where=present)
    count = present.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, acc.sum(axis=-1) / np.maximum(count, 1) * 100, np.nan)


def _multinomial_rows(rng: np.random.Generator, counts: np.ndarray, rows: int) -> np.ndarray:
    """``rows`` draws of Multinomial(M, counts / M), M = counts.sum(): the cell counts of M videos resampled
    with replacement, (rows, cells) int. Twice as fast as ``rng.multinomial`` for many small cells, and exact:
    independent Poisson(lam * counts / M) cells (lam = M - 2 sqrt(M)) total S ~ Poisson(lam) and, given S = s,
    are Multinomial(s, counts / M); a row with s > M is drawn again, and M - s more videos drawn uniformly
    complete it, so that given any s <= M the row is Multinomial(M, counts / M)."""
    counts = np.asarray(counts, dtype=np.int64)
    m = int(counts.sum())
    expected = max(m - 2 * math.sqrt(m), 0.0) * counts / m
    out = rng.poisson(expected, size=(rows, counts.size))
    total = out.sum(axis=1)
    over = total > m
    while over.any():
        out[over] = rng.poisson(expected, size=(int(over.sum()), counts.size))
        total[over] = out[over].sum(axis=1)
        over = total > m
    deficit = m - total
    videos = rng.integers(0, m, size=int(deficit.sum()))  # the missing videos, uniformly; then their cells
    cell = np.repeat(np.arange(counts.size), counts)[videos]
    row = np.repeat(np.arange(rows), deficit)
    out += np.bincount(row * counts.size + cell, minlength=rows * counts.size).reshape(rows, counts.size)
    return out


def accuracy_intervals(
    labels,
    pred,
    top5,
    num_classes: int,
    *,
    confidence: float = CONFIDENCE,
    resamples: int = RESAMPLES,
    seed: int = SEED,
) -> dict:
    """Top-1, top-5 and mean class accuracy of the scored videos, in %, each with an interval.

    ``labels`` int (M,), ``pred`` int (M,) (top-1 prediction), ``top5`` int (M, k), k <= 5 (the k best
    classes). Top-1 and top-5 are plain proportions: Wilson intervals. Mean class accuracy (mean over the
    classes present of per-class accuracy) gets a seeded percentile bootstrap over videos, drawn as multinomial
    counts of the (class, correct) cells, which is exactly the distribution of resampling the videos with
    replacement (a class absent from a resample is left out of its mean, as for the real statistic). M == 0:
    every number nan.
    """
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    pred = np.asarray(pred, dtype=np.int64).reshape(-1)
    top5 = np.asarray(top5, dtype=np.int64)
    top5 = top5.reshape(len(labels), -1) if top5.ndim != 2 else top5
    m = len(labels)
    if len(pred) != m:
        raise ValueError(f"labels ({m}) and pred ({len(pred)}) must have one entry per video")
    if top5.shape[1] > 5:
        raise ValueError(f"top5 must hold at most 5 classes per video, got {top5.shape[1]}")
    correct1 = pred == labels
    correct5 = (top5 == labels[:, None]).any(axis=1)
    out = {}
    for name, hits in (("top1", correct1), ("top5", correct5)):
        low, high = wilson_interval(int(hits.sum()), m, confidence)
        out[name] = float(hits.mean() * 100) if m else math.nan
        out[f"{name}_ci_low"], out[f"{name}_ci_high"] = float(low), float(high)

    cells = np.bincount(labels * 2 + correct1, minlength=2 * num_classes).reshape(-1, 2)  # (class, [wrong, right])
    present = cells.sum(axis=1) > 0
    cells = cells[present]
    mean_class = _mean_class(cells[:, 1], cells.sum(axis=1)) if m else np.nan
    low = high = math.nan
    if m:
        rng = np.random.default_rng(seed)
        draws = _multinomial_rows(rng, cells.reshape(-1), resamples).reshape(resamples, -1, 2)
        boot = _mean_class(draws[..., 1], draws.sum(axis=2))
        low, high = _percentile_bounds(boot, confidence)
    out["mean_class_acc"] = float(mean_class)
    out["mean_class_acc_ci_low"], out["mean_class_acc_ci_high"] = float(low), float(high)
    out["ci_method"] = (
        f"top1/top5: Wilson score; mean_class_acc: percentile bootstrap over videos ({resamples} resamples, "
        f"seed {seed})"
    )
    out["confidence"] = confidence
    return out


# ------------------------------------------------------------------------------------------------- paired


def mcnemar_exact_p(a_only, b_only):
    """Exact (binomial) McNemar p-value, two-sided, of the discordant counts; vectorised. Equals statsmodels
    ``mcnemar([[., a_only], [b_only, .]], exact=True).pvalue`` (1 when there is no discordant video)."""
    a = np.asarray(a_only, dtype=np.int64)
    b = np.asarray(b_only, dtype=np.int64)
    p = np.minimum(_sps().binom.cdf(np.minimum(a, b), a + b, 0.5) * 2, 1.0)
    return _scalar_or_array(p)


def _paired_bounds(triples: np.ndarray, confidence: float, resamples: int, seed: int) -> np.ndarray:
    """Percentile bounds (U, 2) of the top-1 difference (points) of each (n, a_only, b_only) row over
    ``resamples`` resamples of its n videos: the 3-cell multinomial (a-only, b-only, concordant) drawn as two
    binomials (the discordant count, then its a-only share). Each row's stream is seeded by (seed, n, a, b), so
    a pair's interval never depends on the others passed with it; the percentiles are taken a block of rows at
    a time."""
    out = np.full((len(triples), 2), np.nan)
    block = max(1, 2**22 // max(resamples, 1))  # rows of int64 samples per ~32 MiB
    for start in range(0, len(triples), block):
        rows = triples[start : start + block]
        diff = np.zeros((len(rows), resamples), dtype=np.int64)  # a-only minus b-only videos of each resample
        for i, (n, a, b) in enumerate(rows.tolist()):
            if n > 0 and a + b > 0:
                rng = np.random.default_rng([int(seed), n, a, b])
                k = rng.binomial(n, (a + b) / n, size=resamples)
                diff[i] = 2 * rng.binomial(k, a / (a + b)) - k
        low, high = _percentile_bounds(diff, confidence, axis=1)
        scale = 100 / np.maximum(rows[:, 0], 1)
        out[start : start + len(rows)] = np.where(rows[:, :1] > 0, np.stack([low * scale, high * scale], 1), np.nan)
    return out


def paired_delta_counts(
    n,
    a_only,
    b_only,
    *,
    confidence: float = CONFIDENCE,
    resamples: int = RESAMPLES,
    seed: int = SEED,
) -> dict:
    """Paired comparison of two classifiers on the same ``n`` videos from counts: ``a_only`` videos a gets
    right and b wrong, ``b_only`` the reverse. Scalars or numpy arrays of pairs (broadcast; the dict then holds
    arrays). Keys: ``delta`` (top-1 of a minus b, points), ``low`` / ``high`` (paired percentile bootstrap over
    videos), ``p_mcnemar`` (exact McNemar), ``resolved`` (interval excludes 0), ``n``, ``a_only``, ``b_only``,
    ``discordance`` (fraction of videos where they differ). n == 0: delta, bounds, p and discordance nan.
    A pair's interval depends only on (n, a_only, b_only, confidence, resamples, seed).
    """
    n, a, b = (np.asarray(x, dtype=np.int64) for x in np.broadcast_arrays(n, a_only, b_only))
    if (a < 0).any() or (b < 0).any() or (a + b > n).any():
        raise ValueError("need 0 <= a_only, b_only and a_only + b_only <= n")
    empty = n <= 0
    with np.errstate(invalid="ignore", divide="ignore"):
        delta = np.where(empty, np.nan, (a - b) / np.maximum(n, 1) * 100)
        discordance = np.where(empty, np.nan, (a + b) / np.maximum(n, 1))
    p = np.where(empty, np.nan, mcnemar_exact_p(a, b))
    low = np.full(n.shape, np.nan)
    high = np.full(n.shape, np.nan)
    triples = np.stack([n.reshape(-1), a.reshape(-1), b.reshape(-1)], axis=1)
    unique, inverse = np.unique(triples, axis=0, return_inverse=True)
    bounds = _paired_bounds(unique, confidence, resamples, seed)
    low.reshape(-1)[:] = bounds[inverse.reshape(-1), 0]
    high.reshape(-1)[:] = bounds[inverse.reshape(-1), 1]
    resolved = (low > 0) | (high < 0)
    out = {
        "delta": delta,
        "low": low,
        "high": high,
        "p_mcnemar": p,
        "resolved": resolved,
        "n": n,
        "a_only": a,
        "b_only": b,
        "discordance": discordance,
    }
    return {k: _scalar_or_array(v) for k, v in out.items()}


def paired_counts(correct_a, correct_b) -> tuple[int, int, int]:
    """(n, a_only, b_only) of two per-video correctness vectors (bool (M,), the same videos in the same order)."""
    a = np.asarray(correct_a, dtype=bool).reshape(-1)
    b = np.asarray(correct_b, dtype=bool).reshape(-1)
    if a.shape != b.shape:
        raise ValueError(f"paired comparison needs the same videos: {a.shape[0]} vs {b.shape[0]} entries")
    return int(a.size), int((a & ~b).sum()), int((b & ~a).sum())


def paired_delta(
    correct_a,
    correct_b,
    *,
    confidence: float = CONFIDENCE,
    resamples: int = RESAMPLES,
    seed: int = SEED,
) -> dict:
    """Paired comparison of classifiers a and b on the SAME videos from per-video correctness (bool (M,)):
    ``paired_delta_counts`` of their counts (the bootstrap over videos depends on the counts only), so the
    two always agree exactly. Keys as there (plain Python numbers)."""
    return paired_delta_counts(
        *paired_counts(correct_a, correct_b), confidence=confidence, resamples=resamples, seed=seed
    )


def pool_counts(pairs) -> tuple[int, int, int]:
    """Pools (n, a_only, b_only) counts of several pairs (e.g. seed pairs of two variants): the counts of their
    videos concatenated."""
    pairs = list(pairs)
    if not pairs:
        return 0, 0, 0
    arr = np.asarray(pairs, dtype=np.int64).reshape(-1, 3)
    n, a, b = arr.sum(axis=0)
    return int(n), int(a), int(b)


def discordance_from(correct_a, correct_b) -> float:
    """Fraction (0..1) of videos on which a and b differ in correctness (nan for no videos)."""
    n, a, b = paired_counts(correct_a, correct_b)
    return (a + b) / n if n else math.nan


# -------------------------------------------------------------------------------------------------- seeds


def seed_summary(values, *, confidence: float = CONFIDENCE) -> dict:
    """Mean over seeds (a metric's unit, e.g. % top-1) with a t interval (``scipy.stats.t.interval``, n - 1
    degrees of freedom, standard error std / sqrt(n)); ``std`` is the sample standard deviation (ddof 1).
    n == 1: low, high and std nan; n == 0: every number nan; all seeds equal: low == high == mean."""
    x = np.asarray(values, dtype=np.float64).reshape(-1)
    n = int(x.size)
    out = {"mean": math.nan, "low": math.nan, "high": math.nan, "n": n, "std": math.nan}
    if n == 0:
        return out
    out["mean"] = float(x.mean())
    if n == 1:
        return out
    std = float(x.std(ddof=1))
    out["std"] = std
    if std == 0:
        out["low"] = out["high"] = out["mean"]
    else:
        from scipy.special import stdtrit  # the t quantile (scipy.stats.t.ppf), without importing scipy.stats

        half = float(stdtrit(n - 1, (1 + confidence) / 2)) * std / math.sqrt(n)  # = scipy.stats.t.interval
        out["low"], out["high"] = out["mean"] - half, out["mean"] + half
    return out


def _prob_greater(x, y, axis=-1):
    """P(X > Y) + 0.5 P(X = Y) over all pairs, along ``axis`` (vectorised for scipy's bootstrap): the
    Mann-Whitney U of x from the average ranks of the pooled sample (``scipy.stats.rankdata``: ties count
    half), / (n m). O((n + m) log(n + m)) per resample, not O(n m): a grid of many seeds stays fast."""
    x = np.moveaxis(np.asarray(x, dtype=np.float64), axis, -1)
    y = np.moveaxis(np.asarray(y, dtype=np.float64), axis, -1)
    n, m = x.shape[-1], y.shape[-1]
    lead = np.broadcast_shapes(x.shape[:-1], y.shape[:-1])
    x, y = np.broadcast_to(x, (*lead, n)), np.broadcast_to(y, (*lead, m))
    ranks = _sps().rankdata(np.concatenate([x, y], axis=-1), axis=-1)
    u = ranks[..., :n].sum(axis=-1) - n * (n + 1) / 2
    return u / (n * m)


def probability_of_improvement(
    x,
    y,
    *,
    confidence: float = CONFIDENCE,
    resamples: int = RESAMPLES,
    seed: int = SEED,
) -> dict:
    """P(X > Y) + 0.5 P(X = Y) over all seed pairs (0..1): the Mann-Whitney U of x (``scipy.stats.mannwhitneyu``)
    divided by n_x n_y; x = per-seed values of the variant (e.g. top-1, %), y = of the baseline. Interval:
    ``scipy.stats.bootstrap`` over the two independent samples (percentile, ``resamples``, ``seed``). Fewer
    than 2 values in either sample: low / high nan; an empty one: p nan too."""
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    out = {"p": math.nan, "low": math.nan, "high": math.nan, "n_x": int(x.size), "n_y": int(y.size)}
    if not x.size or not y.size:
        return out
    out["p"] = float(_sps().mannwhitneyu(x, y, alternative="two-sided").statistic / (x.size * y.size))
    if x.size < 2 or y.size < 2:
        return out
    res = _sps().bootstrap(
        (x, y),
        _prob_greater,
        n_resamples=resamples,
        vectorized=True,
        paired=False,
        confidence_level=confidence,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    out["low"], out["high"] = float(res.confidence_interval.low), float(res.confidence_interval.high)
    return out


# ----------------------------------------------------------------------------------------------- planning


def min_detectable_delta(
    n_videos,
    *,
    discordance: float = DEFAULT_DISCORDANCE,
    seeds: int = 1,
    alpha: float = 0.05,
    power: float = 0.8,
) -> float:
    """Smallest true top-1 difference (points) that a two-sided paired test over ``n_videos * seeds`` video
    pairs resolves with probability ``power`` at level ``alpha``: statsmodels ``TTestPower().solve_power`` (the
    one-sample t-test on per-video differences in {-1, 0, 1}) gives the effect size es = Δ / sd, and the sd of a
    per-video difference is sqrt(discordance - Δ²), so Δ = es · sqrt(discordance / (1 + es²)) (fractions
    internally). nan when fewer than 2 video pairs or no discordance."""
    nobs = int(n_videos) * int(seeds)
    if nobs < 2 or not discordance > 0:
        return math.nan
    from statsmodels.stats.power import TTestPower

    es = float(TTestPower().solve_power(effect_size=None, nobs=nobs, alpha=alpha, power=power, alternative="two-sided"))
    return 100 * es * math.sqrt(discordance / (1 + es * es))


def _power(es: float, nobs: int, alpha: float) -> float:
    """statsmodels' power of the two-sided one-sample t-test; 1 where its noncentral t gives nan (a
    noncentrality far beyond any critical value)."""
    from statsmodels.stats.power import TTestPower

    p = float(TTestPower().power(effect_size=es, nobs=nobs, alpha=alpha, alternative="two-sided"))
    if math.isnan(p) and es * math.sqrt(nobs) > 40:
        return 1.0
    return p


def seeds_to_resolve(
    delta_points: float,
    n_videos: int,
    *,
    discordance: float = DEFAULT_DISCORDANCE,
    alpha: float = 0.05,
    power: float = 0.8,
    max_seeds: int = 1000,
) -> int | None:
    """Fewest seeds (each ``n_videos`` video pairs, pooled) for which a true difference of ``delta_points``
    (points) is resolved with probability ``power`` (the inverse of ``min_detectable_delta``). None when
    impossible: a difference of 0 or larger than the discordance allows (|Δ| > discordance), or more than
    ``max_seeds`` seeds needed."""
    d = abs(float(delta_points)) / 100
    n_videos = int(n_videos)
    if d == 0 or d > discordance or n_videos < 1:
        return None
    if d == discordance:  # every discordant video favours one side: no variance, any sample resolves it
        return 1 if n_videos >= 2 else (2 if max_seeds >= 2 else None)
    es = d / math.sqrt(discordance - d * d)
    z = _sps().norm.ppf(1 - alpha / 2) + _sps().norm.ppf(power)  # the normal approximation: a first guess only
    seeds = max(1, math.ceil((z / es) ** 2 / n_videos), math.ceil(2 / n_videos))
    if seeds > max_seeds:
        seeds = max_seeds + 1 if _power(es, n_videos * max_seeds, alpha) < power else max_seeds
    while seeds > 1 and n_videos * (seeds - 1) >= 2 and _power(es, n_videos * (seeds - 1), alpha) >= power:
        seeds -= 1
    while seeds <= max_seeds and _power(es, n_videos * seeds, alpha) < power:
        seeds += 1
    return seeds if seeds <= max_seeds else None


# ------------------------------------------------------------------------------------------------ printing


def format_delta(d: dict, decimals: int = 1) -> str:
    """``+0.6 [+0.1, +1.1]``: a ``paired_delta`` dict (points), signed (``numfmt.format_interval``: only the
    delta when a bound is missing, '' when the delta is)."""
    return format_interval(d.get("delta"), d.get("low"), d.get("high"), decimals=decimals, signed=True)


def format_accuracy(record: dict, key: str, decimals: int = 2) -> str:
    """``record[key]`` as a percentage with its 95% interval when the record holds one (``<key>_ci_low`` /
    ``<key>_ci_high``, as final.json and eval results do): ``78.20% [77.60, 78.80]``; ``78.20%`` without."""
    value = record.get(key)
    if format_sig(value) == "":
        return ""
    low, high = record.get(f"{key}_ci_low"), record.get(f"{key}_ci_high")
    text = f"{float(value):.{decimals}f}%"
    if format_sig(low) == "" or format_sig(high) == "":
        return text
    return f"{text} [{float(low):.{decimals}f}, {float(high):.{decimals}f}]"


def format_p(p) -> str:
    """A p-value as printed: three decimals (``0.003``), ``<0.001`` below that, ``1`` for 1; '' when missing."""
    if format_sig(p) == "":
        return ""
    p = float(p)
    if p < 0.001:
        return "<0.001"
    text = f"{p:.3f}"
    return "1" if text == "1.000" else text


__all__ = [
    "CONFIDENCE",
    "format_accuracy",
    "DEFAULT_DISCORDANCE",
    "RESAMPLES",
    "SEED",
    "accuracy_intervals",
    "binomial_half_width",
    "discordance_from",
    "format_delta",
    "format_p",
    "mcnemar_exact_p",
    "min_detectable_delta",
    "paired_counts",
    "paired_delta",
    "paired_delta_counts",
    "pool_counts",
    "probability_of_improvement",
    "seed_summary",
    "seeds_to_resolve",
    "wilson_interval",
]
