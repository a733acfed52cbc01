"""The statistics of a report, from scipy and statsmodels (nothing hand-rolled).

* pass rates: Wilson 95 % score intervals (``proportion_confint``);
* two conditions, one model: Fisher's exact test, and McNemar's exact test on
  runs paired by repeat (the harness plays seed ``seed + repeat`` in every
  condition, so repeat r of A and repeat r of B face the same episode);
* two conditions pooled over models: Cochran–Mantel–Haenszel stratified by
  model (``StratifiedTable``), and the exact conditional test of the same
  null (the sum of each model's passes in A given every model's margins is a
  sum of independent hypergeometric variables; its distribution is the
  convolution of scipy's hypergeometric pmfs);
* the difference of two rates: Newcombe's hybrid score interval;
* power: runs per condition to detect the observed difference at 80 %
  (normal approximation on Cohen's h, ``NormalIndPower``).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

#: Two-sided level of every interval in a report.
CONFIDENCE = 0.95
#: Power a report's power statement aims at.
TARGET_POWER = 0.8
#: Largest convolution (sum over strata of support products) the exact
#: stratified test computes; beyond it the sample is large and CMH is accurate.
EXACT_STRATIFIED_LIMIT = 4_000_000


def wilson(passed: int, judged: int, confidence: float = CONFIDENCE) -> tuple[float, float] | None:
    """Wilson score interval of ``passed / judged`` (None without data)."""
    if judged <= 0:
        return None
    from statsmodels.stats.proportion import proportion_confint

    low, high = proportion_confint(passed, judged, alpha=1 - confidence, method="wilson")
    # At 0/n and n/n rounding can put a limit a hair on the wrong side of the rate.
    rate = passed / judged
    return min(float(low), rate), max(float(high), rate)


def wilson_many(
    passed: np.ndarray, judged: np.ndarray, confidence: float = CONFIDENCE
) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised :func:`wilson`; NaN where ``judged`` is 0."""
    from statsmodels.stats.proportion import proportion_confint

    judged_safe = np.where(judged > 0, judged, 1)
    low, high = proportion_confint(passed, judged_safe, alpha=1 - confidence, method="wilson")
    rate = passed / judged_safe
    low, high = np.minimum(low, rate), np.maximum(high, rate)
    empty = judged <= 0
    low = np.where(empty, np.nan, low)
    high = np.where(empty, np.nan, high)
    return np.asarray(low, dtype=float), np.asarray(high, dtype=float)


def difference_interval(
    passed_a: int, judged_a: int, passed_b: int, judged_b: int, confidence: float = CONFIDENCE
) -> tuple[float, float] | None:
    """Newcombe's interval for rate(A) − rate(B) (None without data on either side)."""
    if judged_a <= 0 or judged_b <= 0:
        return None
    from statsmodels.stats.proportion import confint_proportions_2indep

    low, high = confint_proportions_2indep(
        passed_a, judged_a, passed_b, judged_b, method="newcomb", compare="diff",
        alpha=1 - confidence,
    )  # fmt: skip
    return float(low), float(high)


@dataclass(frozen=True)
class FisherResult:
    odds_ratio: float | None
    p_value: float


def fisher(passed_a: int, judged_a: int, passed_b: int, judged_b: int) -> FisherResult | None:
    """Fisher's exact test (two-sided) of equal pass rates."""
    if judged_a <= 0 or judged_b <= 0:
        return None
    from scipy.stats import fisher_exact

    table = [[passed_a, judged_a - passed_a], [passed_b, judged_b - passed_b]]
    result = fisher_exact(table, alternative="two-sided")
    return FisherResult(_finite(float(result.statistic)), float(result.pvalue))


@dataclass(frozen=True)
class McNemarResult:
    pairs: int
    both: int
    a_only: int
    b_only: int
    neither: int
    p_value: float


def mcnemar_exact(a: np.ndarray, b: np.ndarray) -> McNemarResult | None:
    """McNemar's exact test on paired outcomes (booleans of equal length)."""
    if len(a) == 0:
        return None
    from statsmodels.stats.contingency_tables import mcnemar

    a = np.asarray(a, dtype=bool)
    b = np.asarray(b, dtype=bool)
    both = int(np.sum(a & b))
    a_only = int(np.sum(a & ~b))
    b_only = int(np.sum(~a & b))
    neither = int(np.sum(~a & ~b))
    if a_only + b_only == 0:
        p_value = 1.0  # no discordant pair: nothing tells the conditions apart
    else:
        p_value = float(mcnemar([[both, a_only], [b_only, neither]], exact=True).pvalue)
    return McNemarResult(len(a), both, a_only, b_only, neither, p_value)


@dataclass(frozen=True)
class StratumCounts:
    """One stratum (a model): passes and judged runs in A and in B."""

    name: str
    passed_a: int
    judged_a: int
    passed_b: int
    judged_b: int

    @property
    def informative(self) -> bool:
        """A stratum where every run passed, or every run failed, carries no information."""
        passes = self.passed_a + self.passed_b
        total = self.judged_a + self.judged_b
        return self.judged_a > 0 and self.judged_b > 0 and 0 < passes < total


@dataclass(frozen=True)
class StratifiedResult:
    informative: list[str]
    uninformative: list[str]
    mh_odds_ratio: float | None
    mh_interval: tuple[float, float] | None
    cmh_statistic: float | None
    cmh_p: float | None
    exact_p: float | None
    #: Why the exact test was not computed, when it was not.
    exact_note: str | None


def stratified(strata: list[StratumCounts]) -> StratifiedResult:
    """CMH test and Mantel–Haenszel odds ratio over informative strata, plus the exact test.

    Strata with zero variance (all runs passed or all failed, in both
    conditions together) add nothing to either statistic and are left out by
    name; with none left, no test is possible.
    """
    used = [s for s in strata if s.informative]
    skipped = [s.name for s in strata if not s.informative]
    if not used:
        return StratifiedResult(
            [], skipped, None, None, None, None, None,
            "no informative stratum (every model passed all or none of its runs)",
        )  # fmt: skip
    from statsmodels.stats.contingency_tables import StratifiedTable

    tables = [
        np.array(
            [[s.passed_a, s.judged_a - s.passed_a], [s.passed_b, s.judged_b - s.passed_b]],
            dtype=float,
        )
        for s in used
    ]
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        # A zero cell makes the pooled odds ratio 0 or infinite; reported as None.
        warnings.simplefilter("ignore", RuntimeWarning)
        table = StratifiedTable(tables)
        test = table.test_null_odds(correction=True)
        odds = _finite(float(table.oddsratio_pooled))
        low, high = table.oddsratio_pooled_confint(alpha=1 - CONFIDENCE)
    interval = (float(low), float(high)) if math.isfinite(low) and math.isfinite(high) else None
    exact_p, note = exact_stratified_p(used)
    return StratifiedResult(
        [s.name for s in used],
        skipped,
        odds,
        interval,
        _finite(float(test.statistic)),
        _finite(float(test.pvalue)),
        exact_p,
        note,
    )


def exact_stratified_p(strata: list[StratumCounts]) -> tuple[float | None, str | None]:
    """Two-sided exact conditional p-value of no association, stratified.

    Given each stratum's margins, its passes in A follow a hypergeometric law;
    the total over strata follows their convolution. The p-value sums the
    probabilities of totals no more likely than the observed one (Fisher's
    two-sided rule, with a relative tolerance for rounding).
    """
    from scipy.stats import hypergeom

    cost = 0
    length = 1
    for s in strata:
        support = min(s.judged_a, s.passed_a + s.passed_b) + 1
        cost += length * support
        length += support - 1
    if cost > EXACT_STRATIFIED_LIMIT:
        return None, "exact test skipped: sample too large (the CMH test is accurate there)"
    distribution = np.ones(1)
    offset = 0
    observed = 0
    for s in strata:
        passes = s.passed_a + s.passed_b
        total = s.judged_a + s.judged_b
        low = max(0, s.judged_a - (total - passes))
        high = min(s.judged_a, passes)
        support = np.arange(low, high + 1)
        pmf = hypergeom.pmf(support, total, passes, s.judged_a)
        distribution = np.convolve(distribution, pmf)
        offset += low
        observed += s.passed_a
    probability = distribution[observed - offset]
    p_value = float(distribution[distribution <= probability * (1 + 1e-7)].sum())
    return min(1.0, p_value), None


@dataclass(frozen=True)
class PowerResult:
    """Runs per condition (both conditions equal) for the target power at ``alpha``."""

    rate_a: float
    rate_b: float
    effect_size: float
    runs_per_condition: int | None


def runs_for_power(
    rate_a: float, rate_b: float, alpha: float = 0.05, power: float = TARGET_POWER
) -> PowerResult:
    """Runs per condition that detect ``rate_a`` vs ``rate_b`` (two-sided) with ``power``.

    None when the rates are equal: no number of runs detects no difference.
    """
    from statsmodels.stats.power import NormalIndPower
    from statsmodels.stats.proportion import proportion_effectsize

    effect = float(proportion_effectsize(rate_a, rate_b))
    if abs(effect) < 1e-12:
        return PowerResult(rate_a, rate_b, 0.0, None)
    analysis = NormalIndPower()
    with warnings.catch_warnings():
        # Very large effects need fewer than two runs: the root finder gives up there.
        warnings.simplefilter("ignore")
        needed = float(
            np.asarray(
                analysis.solve_power(
                    effect_size=abs(effect), alpha=alpha, power=power, ratio=1.0,
                    alternative="two-sided",
                )
            ).item()
        )  # fmt: skip
    if not math.isfinite(needed):
        needed = next(
            (
                n
                for n in range(2, 64)
                if analysis.power(abs(effect), nobs1=n, alpha=alpha, ratio=1.0) >= power
            ),
            math.nan,
        )
    runs = math.ceil(needed) if math.isfinite(needed) else None
    return PowerResult(rate_a, rate_b, effect, runs)


def holm(p_values: list[float]) -> list[float]:
    """Holm's step-down adjustment for several comparisons in one report."""
    if not p_values:
        return []
    from statsmodels.stats.multitest import multipletests

    return [float(p) for p in multipletests(p_values, method="holm")[1]]


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None
