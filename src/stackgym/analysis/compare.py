"""Comparing two conditions: per model, pooled and stratified by model, paired, with power.

Pairing: the harness plays seed ``seed + repeat`` in every condition, so run
(experiment, model, task, repeat) of condition A and the same run of B face
the same episode. McNemar's exact test uses those pairs; Fisher's test and the
stratified tests treat the runs as independent samples.
"""

from __future__ import annotations

import math

import numpy as np

from stackgym.analysis.aggregate import RunTable
from stackgym.analysis.stats import (
    TARGET_POWER,
    StratumCounts,
    difference_interval,
    fisher,
    holm,
    mcnemar_exact,
    runs_for_power,
    stratified,
    wilson,
)
from stackgym.analysis.summary import (
    Comparison,
    ComparisonRow,
    LeaveOneOut,
    Paired,
    PowerStatement,
    Rate,
    Stratified,
)

PAIRING = (
    "runs paired by (experiment, model, task, repeat): the harness plays seed "
    "`seed + repeat` in every condition"
)


def rate(passed: int, judged: int) -> Rate:
    interval = wilson(passed, judged)
    return Rate(
        passed=passed,
        judged=judged,
        rate=passed / judged if judged else None,
        low=interval[0] if interval else None,
        high=interval[1] if interval else None,
    )


def points(a: Rate, b: Rate) -> float | None:
    """rate(A) − rate(B) in pass-rate points."""
    if a.rate is None or b.rate is None:
        return None
    return 100.0 * (a.rate - b.rate)


def _row(
    model: str | None,
    passed_a: np.ndarray,
    passed_b: np.ndarray,
    pairs: tuple[np.ndarray, np.ndarray] | None,
    alpha: float,
) -> ComparisonRow:
    a = rate(int(passed_a.sum()), len(passed_a))
    b = rate(int(passed_b.sum()), len(passed_b))
    interval = difference_interval(a.passed, a.judged, b.passed, b.judged)
    test = fisher(a.passed, a.judged, b.passed, b.judged)
    paired = mcnemar_exact(*pairs) if pairs is not None else None
    power = (
        runs_for_power(a.rate, b.rate, alpha) if a.rate is not None and b.rate is not None else None
    )
    return ComparisonRow(
        model=model,
        a=a,
        b=b,
        difference=points(a, b),
        difference_low=100.0 * interval[0] if interval else None,
        difference_high=100.0 * interval[1] if interval else None,
        fisher_p=test.p_value if test else None,
        odds_ratio=test.odds_ratio if test else None,
        paired=Paired(**paired.__dict__) if paired is not None else None,
        runs_for_power=power.runs_per_condition if power else None,
    )


def _pairs(
    table: RunTable, mask_a: np.ndarray, mask_b: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Outcomes of A and B for every (experiment, model, task, repeat) both have judged."""
    repeats, repeat_codes = np.unique(table.repeat, return_inverse=True)
    sizes = (len(table.experiments), len(table.models), len(table.tasks), max(len(repeats), 1))
    keys = np.ravel_multi_index((table.experiment, table.model, table.task, repeat_codes), sizes)
    index_a = np.flatnonzero(mask_a)
    index_b = np.flatnonzero(mask_b)
    # A key appears once per condition (run ids are unique), so intersecting is pairing.
    _, where_a, where_b = np.intersect1d(keys[index_a], keys[index_b], return_indices=True)
    return table.passed[index_a[where_a]], table.passed[index_b[where_b]]


def compare(table: RunTable, a: str, b: str, alpha: float = 0.05) -> Comparison:
    """Condition ``a`` against ``b``: per model, pooled, stratified, paired, power, stability."""
    in_a = table.judged & (table.condition == table.conditions.index(a))
    in_b = table.judged & (table.condition == table.conditions.index(b))
    by_model: list[ComparisonRow] = []
    strata: list[StratumCounts] = []
    for index, model in enumerate(table.models):
        mask_a = in_a & (table.model == index)
        mask_b = in_b & (table.model == index)
        if not mask_a.any() and not mask_b.any():
            continue
        row = _row(
            model, table.passed[mask_a], table.passed[mask_b], _pairs(table, mask_a, mask_b), alpha
        )
        by_model.append(row)
        strata.append(StratumCounts(model, row.a.passed, row.a.judged, row.b.passed, row.b.judged))
    pooled = _row(None, table.passed[in_a], table.passed[in_b], _pairs(table, in_a, in_b), alpha)
    result = stratified(strata)
    headline = result.exact_p if result.exact_p is not None else result.cmh_p
    method = (
        "exact conditional test stratified by model (hypergeometric convolution)"
        if result.exact_p is not None
        else "Cochran–Mantel–Haenszel test stratified by model (continuity-corrected)"
    )
    loo, stable = leave_one_repeat_out(table, in_a, in_b)
    return Comparison(
        a=a,
        b=b,
        pairing=PAIRING,
        by_model=by_model,
        pooled=pooled,
        stratified=Stratified(
            informative=result.informative,
            uninformative=result.uninformative,
            mh_odds_ratio=result.mh_odds_ratio,
            mh_low=result.mh_interval[0] if result.mh_interval else None,
            mh_high=result.mh_interval[1] if result.mh_interval else None,
            cmh_statistic=result.cmh_statistic,
            cmh_p=result.cmh_p,
            exact_p=result.exact_p,
            exact_note=result.exact_note,
            p=headline,
            method=method,
        ),
        power=power_statement(table, pooled, by_model, in_a, in_b, alpha),
        leave_one_repeat_out=loo,
        sign_stable=stable,
    )


def leave_one_repeat_out(
    table: RunTable, in_a: np.ndarray, in_b: np.ndarray
) -> tuple[list[LeaveOneOut], bool | None]:
    """The pooled difference with each repeat left out in turn, and whether its sign held.

    The sign holds when the full difference and every leave-one-out difference
    are on the same side of zero (a zero difference holds no sign). None with
    fewer than two repeats.
    """
    repeats = np.unique(table.repeat[in_a | in_b])
    full = _difference(table.passed[in_a], table.passed[in_b])
    # Per-repeat counts, then every leave-one-out difference at once.
    index = np.searchsorted(repeats, table.repeat)
    size = len(repeats)
    n_a = np.bincount(index[in_a], minlength=size).astype(float)
    n_b = np.bincount(index[in_b], minlength=size).astype(float)
    p_a = np.bincount(index[in_a & table.passed], minlength=size).astype(float)
    p_b = np.bincount(index[in_b & table.passed], minlength=size).astype(float)
    rest_a, rest_b = n_a.sum() - n_a, n_b.sum() - n_b
    with np.errstate(invalid="ignore", divide="ignore"):
        differences = 100.0 * ((p_a.sum() - p_a) / rest_a - (p_b.sum() - p_b) / rest_b)
    results = [
        LeaveOneOut(repeat=int(r), difference=None if np.isnan(d) else float(d))
        for r, d in zip(repeats.tolist(), differences.tolist(), strict=True)
    ]
    if size < 2 or full is None:
        return results, None
    if full == 0:
        return results, False
    sign = math.copysign(1.0, full)
    stable = all(r.difference is not None and r.difference * sign > 0 for r in results)
    return results, stable


def describe_leave_one_out(results: list[LeaveOneOut], listed: int = 10) -> str:
    """The leave-one-out differences in words: each one, or their range when there are many."""

    def signed(value: float | None) -> str:
        return "n/a" if value is None else f"{value:+.1f}"

    if len(results) <= listed:
        return ", ".join(f"{signed(r.difference)} without repeat {r.repeat}" for r in results)
    known = [r for r in results if r.difference is not None]
    if not known:
        return f"{len(results)} repeats, no difference computable"
    low = min(known, key=lambda r: (r.difference, r.repeat))
    high = max(known, key=lambda r: (r.difference, -r.repeat))
    return (
        f"{len(results)} repeats left out one at a time: from {signed(low.difference)} "
        f"(without repeat {low.repeat}) to {signed(high.difference)} (without repeat {high.repeat})"
    )


def _difference(a: np.ndarray, b: np.ndarray) -> float | None:
    if len(a) == 0 or len(b) == 0:
        return None
    return 100.0 * (float(a.mean()) - float(b.mean()))


def power_statement(
    table: RunTable,
    pooled: ComparisonRow,
    by_model: list[ComparisonRow],
    in_a: np.ndarray,
    in_b: np.ndarray,
    alpha: float,
) -> PowerStatement:
    """How many runs per model would detect the observed pooled difference at 80 % power."""
    both = [r for r in by_model if r.a.judged and r.b.judged]
    current = min((min(r.a.judged, r.b.judged) for r in both), default=0)
    models = len(both)
    tasks = len(set(table.task[in_a | in_b].tolist()))
    a, b = pooled.a.rate, pooled.b.rate
    base = {"alpha": alpha, "power": TARGET_POWER, "current_runs_per_model": current}
    if a is None or b is None:
        return PowerStatement(**base, text="no power statement: a condition has no judged runs")
    result = runs_for_power(a, b, alpha)
    rates = f"{100 * a:.1f}% vs {100 * b:.1f}%"
    if result.runs_per_condition is None:
        return PowerStatement(
            **base,
            rate_a=a,
            rate_b=b,
            effect_size=0.0,
            text=(
                f"the pass rates are equal ({rates}): no number of runs detects a difference "
                "that was not observed"
            ),
        )
    per_condition = result.runs_per_condition
    per_model = math.ceil(per_condition / max(models, 1))
    per_task = math.ceil(per_model / max(tasks, 1))
    text = (
        f"at the observed rates ({rates}, Cohen's h = {abs(result.effect_size):.3f}), a two-sided "
        f"test at α = {alpha:g} needs about {per_condition:,} runs per condition for "
        f"{TARGET_POWER:.0%} power: {per_model:,} per model"
        + (f" ({models} models)" if models > 1 else "")
        + (f", {per_task:,} per model per task ({tasks} tasks)" if tasks > 1 else "")
        + f"; this report has {current:,} per model per condition"
    )
    return PowerStatement(
        **base,
        rate_a=a,
        rate_b=b,
        effect_size=result.effect_size,
        runs_per_condition=per_condition,
        runs_per_model=per_model,
        runs_per_model_task=per_task,
        text=text,
    )


def comparisons(table: RunTable, reference: str, alpha: float = 0.05) -> list[Comparison]:
    """``reference`` against every other condition with judged runs; Holm-adjusted p-values."""
    if reference not in table.conditions:
        return []
    others = [c for c in table.conditions if c != reference]
    judged_conditions = set(table.condition[table.judged].tolist())
    if table.conditions.index(reference) not in judged_conditions:
        return []
    results = [
        compare(table, reference, other, alpha)
        for other in others
        if table.conditions.index(other) in judged_conditions
    ]
    tested = [(i, c.stratified.p) for i, c in enumerate(results) if c.stratified.p is not None]
    for (index, _), adjusted in zip(tested, holm([p for _, p in tested]), strict=True):
        results[index].p_holm = adjusted
    return results
