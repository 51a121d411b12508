"""Uncertainty for every number the report compares: intervals over seeds, and paired
intervals for differences between methods.

Two sources of noise make one run's difference between two methods unreliable: the
evaluation examples (a 1-point gap on 677 PAWS rows is within sampling error) and the
training seed (initialisation, data order and dropout move OOD accuracy by points). The
paired bootstrap below resamples both: seeds with replacement, and examples with
replacement (the same examples for both methods, since they are scored on the same rows).
With few seeds, resampling seeds is too narrow: three seeds give at most three distinct
values, so the interval is about [min, max] of the per-seed differences, which covered a
known gap only 87 % (seed SD 1 point) and 77 % (2 points) of the time in simulation. So
with 2 or more seeds a comparison's interval is the envelope of the bootstrap's and the
Student-t interval over the per-seed paired differences, which keeps its coverage however
few the seeds are (tests/test_statistics.py). A difference is *resolved* only when that
envelope excludes 0; otherwise the report says it is not resolved, whatever its sign.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float
    high: float

    @property
    def resolved(self) -> bool:
        """The interval excludes 0 (a difference with a known sign)."""
        return bool(self.low > 0 or self.high < 0)

    @property
    def side(self) -> int:
        """+1 or -1: the side of 0 the interval lies on; 0 when it straddles 0 or is unknown."""
        return 1 if self.low > 0 else -1 if self.high < 0 else 0


def seed_interval(values: np.ndarray, confidence: float = CONFIDENCE) -> Interval:
    """Mean over seeds with a Student-t interval (nan bounds for a single seed: one run
    says nothing about seed-to-seed spread)."""
    values = np.asarray(values, dtype=float)
    mean = float(values.mean())
    if len(values) < 2:
        return Interval(mean, float("nan"), float("nan"))
    half = stats.t.ppf(0.5 + confidence / 2, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
    return Interval(mean, float(mean - half), float(mean + half))


def proportion_half_width(p: float, rows: int, confidence: float = CONFIDENCE) -> float:
    """Half the normal (Wald) interval of an accuracy `p` over `rows` rows: the interval over
    evaluation rows where one seed gives no spread over seeds."""
    return float(stats.norm.ppf(0.5 + confidence / 2) * np.sqrt(p * (1 - p) / rows))


def paired_t_p_value(differences: np.ndarray) -> float:
    """Two-sided p-value of a paired t-test that the mean per-seed difference is 0 (nan
    under 2 seeds; with no spread, 0 for a non-zero mean and 1 for a zero one)."""
    d = np.asarray(differences, dtype=float)
    if len(d) < 2:
        return float("nan")
    sd = d.std(ddof=1)
    if sd == 0:
        return 0.0 if d.mean() != 0 else 1.0
    return float(2 * stats.t.sf(abs(d.mean()) / (sd / np.sqrt(len(d))), len(d) - 1))


def holm(p_values: np.ndarray) -> np.ndarray:
    """Holm's step-down adjustment of a family's p-values (each compared with 0.05 as it
    stands keeps the chance of any false finding in the family under 5 %); nan p-values
    (one seed) are left out of the family and stay nan."""
    p = np.asarray(p_values, dtype=float)
    out = np.full_like(p, np.nan)
    known = np.flatnonzero(~np.isnan(p))
    order = known[np.argsort(p[known], kind="stable")]
    scaled = (len(order) - np.arange(len(order))) * p[order]
    out[order] = np.minimum(1.0, np.maximum.accumulate(scaled))
    return out


def seeds_for_power(sd: float, effect: float, power: float = 0.8, alpha: float = 0.05, most: int = 10_000) -> float:
    """The fewest seeds at which a two-sided paired t-test at level `alpha` detects a true
    mean difference of `effect` with probability `power`, when per-seed differences spread
    with standard deviation `sd` (the noncentral t; nan without a spread estimate, 2 when
    the seeds agreed exactly, inf beyond `most`)."""
    if not np.isfinite(sd):
        return float("nan")
    if sd == 0:
        return 2.0

    def reaches(n: int) -> bool:
        df, shift = n - 1, abs(effect) / (sd / np.sqrt(n))
        if shift > 30:  # power is 1 to machine precision, where scipy's noncentral t returns nan
            return True
        critical = stats.t.ppf(1 - alpha / 2, df)
        # The far tail (rejecting on the wrong side) is negligible here, and scipy gives nan for it at large shifts.
        return np.nansum([stats.nct.sf(critical, df, shift), stats.nct.cdf(-critical, df, shift)]) >= power

    if not reaches(most):
        return float("inf")
    low, high = 1, most  # power grows with n: bisect for the first n that reaches it
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if reaches(middle) else (middle, high)
    return float(high)


def median_interval(values: np.ndarray, confidence: float = CONFIDENCE) -> Interval:
    """Median with a distribution-free interval: the order statistics x(k) and x(n+1-k),
    with k the largest whose coverage 1 - 2 P(Binomial(n, 1/2) < k) reaches `confidence`.
    For repeated timings, whose noise is skewed (a background process only ever slows a
    round down), this assumes nothing about its shape. Nan bounds when n is too small for
    any k (fewer than 6 values at 95 %)."""
    values = np.sort(np.asarray(values, dtype=float))
    n, median = len(values), float(np.median(values))
    k = int(stats.binom.ppf((1 - confidence) / 2, n, 0.5))
    if stats.binom.cdf(k, n, 0.5) > (1 - confidence) / 2:
        k -= 1  # ppf gives the first k whose lower tail exceeds alpha/2; the interval excludes it
    if k < 0:
        return Interval(median, float("nan"), float("nan"))
    return Interval(median, float(values[k]), float(values[n - 1 - k]))


def example_weights(n_examples: int, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Bootstrap resamples of n examples as multiplicities, (n_resamples, n_examples): a
    resampled mean is then one matrix product instead of a gather per resample."""
    return rng.multinomial(n_examples, np.full(n_examples, 1.0 / n_examples), size=n_resamples).astype(np.float32)


def seed_resamples(n_seeds: int, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Bootstrap resamples of seed indices, (n_resamples, n_seeds)."""
    return rng.integers(0, n_seeds, size=(n_resamples, n_seeds))


def resampled_means(scores: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """scores (seeds, examples) -> per-seed means under each resample, (n_resamples, seeds)."""
    return (weights @ np.asarray(scores, dtype=np.float32).T) / weights.shape[1]


@dataclass(frozen=True)
class PairedInterval(Interval):
    """A comparison's interval (the envelope its `resolved` is judged by) and its parts."""

    bootstrap: Interval
    over_seeds: Interval


def difference_interval(
    observed_a: np.ndarray,
    observed_b: np.ndarray,
    boot_a: np.ndarray,
    boot_b: np.ndarray,
    seeds: np.ndarray,
    confidence: float = CONFIDENCE,
) -> PairedInterval:
    """The envelope of the paired bootstrap's interval and the t-interval over the per-seed
    differences (the bootstrap's alone with one seed, where the t-interval is undefined)."""
    boot = bootstrap_difference_interval(observed_a, observed_b, boot_a, boot_b, seeds, confidence)
    over_seeds = seed_interval(np.asarray(observed_a) - np.asarray(observed_b), confidence)
    lows = [i.low for i in (boot, over_seeds) if not np.isnan(i.low)]
    highs = [i.high for i in (boot, over_seeds) if not np.isnan(i.high)]
    return PairedInterval(boot.estimate, min(lows, default=float("nan")), max(highs, default=float("nan")), boot, over_seeds)


def bootstrap_difference_interval(
    observed_a: np.ndarray,
    observed_b: np.ndarray,
    boot_a: np.ndarray,
    boot_b: np.ndarray,
    seeds: np.ndarray,
    confidence: float = CONFIDENCE,
) -> Interval:
    """Percentile interval of mean_seeds(a) - mean_seeds(b).

    observed_*: the per-seed statistic (seeds,); boot_*: the same statistic recomputed on
    resampled examples (n_resamples, seeds), with the *same* resamples for a and b;
    seeds: resampled seed indices (n_resamples, seeds), paired across a and b. Resamples
    where the statistic is undefined (nan: an F_bias whose teacher gap vanished) are left out.
    """
    estimate = float(np.mean(observed_a) - np.mean(observed_b))
    diffs = np.take_along_axis(np.asarray(boot_a) - np.asarray(boot_b), seeds, axis=1).mean(axis=1)
    low, high = np.nanquantile(diffs, [0.5 - confidence / 2, 0.5 + confidence / 2])
    return Interval(estimate, float(low), float(high))


def paired_accuracy_difference(
    correct_a: np.ndarray,
    correct_b: np.ndarray,
    n_resamples: int = 2000,
    seed: int = 0,
    confidence: float = CONFIDENCE,
) -> Interval:
    """Accuracy of a minus accuracy of b on the same examples, (seeds, examples) 0/1
    arrays with seeds paired by index; examples and seeds resampled."""
    rng = np.random.default_rng(seed)
    weights = example_weights(np.shape(correct_a)[1], n_resamples, rng)
    seeds = seed_resamples(np.shape(correct_a)[0], n_resamples, rng)
    return difference_interval(np.mean(correct_a, axis=1), np.mean(correct_b, axis=1),
                               resampled_means(correct_a, weights), resampled_means(correct_b, weights), seeds, confidence)
