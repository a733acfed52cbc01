"""The report's statistics, each checked against an independent computation in the test."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats as sps

from stackgym.analysis import stats


def wilson_by_hand(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    z = sps.norm.ppf(1 - (1 - confidence) / 2)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


@pytest.mark.parametrize(("k", "n"), [(9, 45), (7, 45), (0, 15), (15, 15), (1, 1), (41954, 99085)])
def test_wilson_interval_matches_the_score_formula(k, n):
    low, high = stats.wilson(k, n)
    expected = wilson_by_hand(k, n)
    assert low == pytest.approx(max(0.0, expected[0]), abs=1e-12)
    assert high == pytest.approx(min(1.0, expected[1]), abs=1e-12)


def test_wilson_is_undefined_without_judged_runs_and_vectorises():
    assert stats.wilson(0, 0) is None
    low, high = stats.wilson_many(np.array([9, 0, 3]), np.array([45, 0, 3]))
    assert low[0] == pytest.approx(wilson_by_hand(9, 45)[0]) and math.isnan(low[1])
    assert high[2] == pytest.approx(1.0)


def test_newcombe_difference_interval_combines_the_two_wilson_intervals():
    l1, u1 = wilson_by_hand(9, 45)
    l2, u2 = wilson_by_hand(7, 45)
    p1, p2 = 9 / 45, 7 / 45
    low = p1 - p2 - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    high = p1 - p2 + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    assert stats.difference_interval(9, 45, 7, 45) == pytest.approx((low, high), abs=1e-9)


def test_fisher_matches_scipy():
    result = stats.fisher(2, 15, 0, 15)
    expected = sps.fisher_exact([[2, 13], [0, 15]])
    assert result.p_value == pytest.approx(expected.pvalue)
    assert result.odds_ratio is None  # infinite: a zero cell


def test_mcnemar_is_the_exact_binomial_test_on_discordant_pairs():
    a = np.array([1, 1, 1, 0, 0, 1, 0, 1, 1, 0], dtype=bool)
    b = np.array([1, 0, 0, 0, 1, 0, 0, 0, 1, 0], dtype=bool)
    result = stats.mcnemar_exact(a, b)
    a_only, b_only = 4, 1
    assert (result.both, result.a_only, result.b_only, result.neither) == (2, a_only, b_only, 3)
    assert result.p_value == pytest.approx(sps.binomtest(a_only, a_only + b_only, 0.5).pvalue)
    same = stats.mcnemar_exact(a, a)
    assert same.p_value == 1.0 and same.a_only == same.b_only == 0


def brute_force_stratified_p(strata: list[tuple[int, int, int, int]]) -> float:
    """Enumerate every table with the observed margins; sum P(t) over P(t) <= P(observed)."""
    supports = []
    for passed_a, judged_a, passed_b, judged_b in strata:
        passes, total = passed_a + passed_b, judged_a + judged_b
        values = range(max(0, judged_a - (total - passes)), min(judged_a, passes) + 1)
        supports.append([(x, sps.hypergeom.pmf(x, total, passes, judged_a)) for x in values])
    totals: dict[int, float] = {}
    for combo in itertools.product(*supports):
        s = sum(x for x, _ in combo)
        totals[s] = totals.get(s, 0.0) + math.prod(p for _, p in combo)
    observed = totals[sum(s[0] for s in strata)]
    return sum(p for p in totals.values() if p <= observed * (1 + 1e-7))


def cmh_by_hand(strata: list[tuple[int, int, int, int]]) -> tuple[float, float]:
    """Continuity-corrected CMH statistic and p-value from the textbook formula."""
    numerator, variance = 0.0, 0.0
    for passed_a, judged_a, passed_b, judged_b in strata:
        n = judged_a + judged_b
        passes = passed_a + passed_b
        expected = judged_a * passes / n
        numerator += passed_a - expected
        variance += judged_a * judged_b * passes * (n - passes) / (n * n * (n - 1))
    statistic = (abs(numerator) - 0.5) ** 2 / variance
    return statistic, sps.chi2.sf(statistic, 1)


SEED002_STRATA = [(7, 15, 7, 15), (2, 15, 0, 15), (0, 15, 0, 15)]
ASYMMETRIC = [(9, 12, 3, 12), (4, 10, 1, 11), (6, 8, 5, 9)]


@pytest.mark.parametrize("strata", [SEED002_STRATA, ASYMMETRIC])
def test_stratified_tests_match_enumeration_and_the_cmh_formula(strata):
    counts = [stats.StratumCounts(f"m{i}", *s) for i, s in enumerate(strata)]
    result = stats.stratified(counts)
    informative = [s for s in strata if 0 < s[0] + s[2] < s[1] + s[3]]
    assert result.exact_p == pytest.approx(brute_force_stratified_p(informative), rel=1e-9)
    statistic, p = cmh_by_hand(informative)
    assert result.cmh_statistic == pytest.approx(statistic, rel=1e-9)
    assert result.cmh_p == pytest.approx(p, rel=1e-9)
    numerator = sum(a * (nb - b) / (na + nb) for a, na, b, nb in informative)
    denominator = sum((na - a) * b / (na + nb) for a, na, b, nb in informative)
    assert result.mh_odds_ratio == pytest.approx(numerator / denominator)


def test_strata_without_variance_are_named_and_left_out():
    counts = [stats.StratumCounts(name, *s) for name, s in zip("abc", SEED002_STRATA, strict=True)]
    result = stats.stratified(counts)
    assert result.informative == ["a", "b"] and result.uninformative == ["c"]
    nothing = stats.stratified(
        [stats.StratumCounts("x", 0, 5, 0, 5), stats.StratumCounts("y", 5, 5, 5, 5)]
    )
    assert nothing.cmh_p is None and nothing.exact_p is None
    assert nothing.uninformative == ["x", "y"] and "no informative stratum" in nothing.exact_note


def test_the_exact_stratified_test_steps_aside_for_very_large_samples():
    huge = [stats.StratumCounts("m", 20000, 50000, 19000, 50000) for _ in range(3)]
    result = stats.stratified(huge)
    assert result.exact_p is None and "too large" in result.exact_note
    assert result.cmh_p is not None and result.cmh_p < 1e-6


def test_power_matches_the_normal_approximation_on_cohens_h():
    result = stats.runs_for_power(0.20, 7 / 45, alpha=0.05, power=0.8)
    h = 2 * math.asin(math.sqrt(0.20)) - 2 * math.asin(math.sqrt(7 / 45))
    z = sps.norm.ppf(0.975) + sps.norm.ppf(0.8)
    # The arcsine-transformed rate has variance 1/n, so each of two equal
    # groups needs 2 (z/h)^2 runs; counting the far tail as well adds a hair.
    assert math.ceil(2 * (z / h) ** 2) <= result.runs_per_condition <= 2 * (z / h) ** 2 + 2
    assert result.effect_size == pytest.approx(h)
    assert stats.runs_for_power(0.3, 0.3).runs_per_condition is None


def test_holm_adjustment_is_the_step_down_bonferroni():
    adjusted = stats.holm([0.01, 0.04, 0.03])
    assert adjusted == pytest.approx([0.03, 0.06, 0.06])
