"""Seed 000's decision gate (A5), evaluated from the runs with the spec's thresholds.

Proceed to the troubleshooting gym only if all four hold:

1. **advantage reproduced**: the ORM condition beats the fair dbt comparator
   by at least ``min_advantage`` pass-rate points, pooled over the model panel,
   and the stratified test (by model) rejects "no difference" at ``alpha``;
2. **stable across runs**: the difference keeps its sign with each repeat
   left out in turn (needs two repeats or more; skipped when
   ``require_stable`` is false);
3. **fair comparator**: the ``dbt_fair`` condition runs a comparator listed
   as fair in ``comparators.yaml``, under the same settings and data as the
   ORM condition (the parity check);
4. **realistic comparator measured and interpreted**: the ``dbt_realistic``
   condition (listed as realistic) has judged runs for every model of the
   panel, and the report states whether the source-app surface materially
   changes the ORM-vs-dbt gap (by ``min_advantage`` points or more).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from stackgym.analysis.aggregate import RunTable
from stackgym.analysis.compare import compare, describe_leave_one_out
from stackgym.analysis.summary import Comparison, Criterion, GateResult, SurfaceSummary
from stackgym.core.errors import ConfigError
from stackgym.harness.spec import Gate

COMPARATORS_FILE = Path(__file__).with_name("comparators.yaml")


class Comparator(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    env: str
    factor: str
    value: Any
    why: str


class Comparators(BaseModel):
    """``comparators.yaml``: the documented fair and realistic comparators."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = 1
    fair: list[Comparator] = Field(default_factory=list)
    realistic: list[Comparator] = Field(default_factory=list)

    def find(self, kind: str, env: str | None, factor: str | None, value: Any) -> Comparator | None:
        for entry in getattr(self, kind):
            if entry.env == env and entry.factor == factor and entry.value == value:
                return entry
        return None

    def listed(self, kind: str, env: str | None, factor: str | None) -> list[str]:
        return [str(e.value) for e in getattr(self, kind) if e.env == env and e.factor == factor]


def load_comparators(path: str | Path | None = None) -> Comparators:
    """Read and validate a comparators file (default: the shipped ``comparators.yaml``)."""
    path = Path(path) if path is not None else COMPARATORS_FILE
    try:
        return Comparators.model_validate(yaml.safe_load(path.read_text()))
    except FileNotFoundError:
        raise ConfigError(f"comparators file {path} does not exist") from None
    except (yaml.YAMLError, ValidationError) as exc:
        raise ConfigError(f"invalid comparators file {path}: {exc}") from None


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _p(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.3f}" if value >= 1e-3 else f"{value:.1e}"


def _judged(table: RunTable, condition: str) -> int:
    if condition not in table.conditions:
        return 0
    return int((table.judged & (table.condition == table.conditions.index(condition))).sum())


class GateContext:
    """What the gate reads about a section besides its runs."""

    def __init__(
        self,
        *,
        env_id: str | None,
        factor: str | None,
        levels: dict[str, Any],
        parity_ok: bool | None,
        surfaces: SurfaceSummary | None,
        comparisons: list[Comparison],
        comparators: Comparators,
    ) -> None:
        self.env_id = env_id
        self.factor = factor
        self.levels = levels
        self.parity_ok = parity_ok
        self.surfaces = surfaces
        self.comparisons = {(c.a, c.b): c for c in comparisons}
        self.comparators = comparators

    def comparison(self, table: RunTable, a: str, b: str, alpha: float) -> Comparison:
        found = self.comparisons.get((a, b))
        if found is None:
            found = self.comparisons[(a, b)] = compare(table, a, b, alpha)
        return found


def evaluate_gate(gate: Gate, table: RunTable, context: GateContext) -> GateResult:
    """PASS/FAIL of each criterion, with its reason (see the module docstring)."""
    missing = [name for name in (gate.orm, gate.dbt_fair) if _judged(table, name) == 0]
    advantage: Comparison | None = None
    if not missing:
        advantage = context.comparison(table, gate.orm, gate.dbt_fair, gate.alpha)
    criteria = [
        _advantage(gate, advantage, missing),
        _stable(gate, advantage, missing),
        _fair(gate, table, context),
    ]
    realistic, interpretation = _realistic(gate, table, context, advantage)
    criteria.append(realistic)
    return GateResult(
        orm=gate.orm,
        dbt_fair=gate.dbt_fair,
        dbt_realistic=gate.dbt_realistic,
        min_advantage=gate.min_advantage,
        alpha=gate.alpha,
        require_stable=gate.require_stable,
        passed=all(c.passed for c in criteria),
        criteria=criteria,
        realistic_interpretation=interpretation,
    )


def _no_runs(missing: list[str]) -> str:
    return (
        "no judged runs of "
        + " and ".join(repr(m) for m in missing)
        + " in this report; the gate compares the runs of both"
    )


def _advantage(gate: Gate, comparison: Comparison | None, missing: list[str]) -> Criterion:
    title = "ORM advantage reproduced under matched settings"
    if comparison is None:
        return Criterion(
            id="advantage_reproduced", title=title, passed=False, reason=_no_runs(missing)
        )
    pooled, test = comparison.pooled, comparison.stratified
    difference = pooled.difference
    big_enough = difference is not None and difference >= gate.min_advantage
    significant = test.p is not None and test.p < gate.alpha
    interval = (
        f" (95% CI {pooled.difference_low:+.1f} to {pooled.difference_high:+.1f})"
        if pooled.difference_low is not None and pooled.difference_high is not None
        else ""
    )
    stated = (
        f"{gate.orm} {pooled.a.passed}/{pooled.a.judged} ({_pct(pooled.a.rate)}) vs "
        f"{gate.dbt_fair} {pooled.b.passed}/{pooled.b.judged} ({_pct(pooled.b.rate)}): "
        f"{difference:+.1f} points{interval}; stratified by model p = {_p(test.p)}"
    )
    if big_enough and significant:
        verdict = f"meets ≥ {gate.min_advantage:g} points and p < {gate.alpha:g}"
    else:
        problems = []
        if not big_enough:
            problems.append(f"below the {gate.min_advantage:g} points required")
        if not significant:
            problems.append(
                f"not significant at α = {gate.alpha:g}"
                if test.p is not None
                else "no stratified test possible (" + (test.exact_note or "no data") + ")"
            )
        verdict = "; ".join(problems)
    return Criterion(
        id="advantage_reproduced",
        title=title,
        passed=big_enough and significant,
        reason=f"{stated} — {verdict}",
    )


def _stable(gate: Gate, comparison: Comparison | None, missing: list[str]) -> Criterion:
    title = "stable across runs (leave one repeat out)"
    if not gate.require_stable:
        return Criterion(
            id="stable_across_runs",
            title=title,
            passed=True,
            reason="not required by the gate (require_stable: false)",
        )
    if comparison is None:
        return Criterion(
            id="stable_across_runs", title=title, passed=False, reason=_no_runs(missing)
        )
    difference = comparison.pooled.difference
    shown = describe_leave_one_out(comparison.leave_one_repeat_out)
    if comparison.sign_stable is None:
        reason = (
            f"only {len(comparison.leave_one_repeat_out)} repeat(s): stability needs two or more "
            "(raise `runs` in the spec)"
        )
        return Criterion(id="stable_across_runs", title=title, passed=False, reason=reason)
    if difference is None or difference <= 0:
        shown_difference = "n/a" if difference is None else f"{difference:+.1f}"
        reason = f"no ORM advantage to hold ({gate.orm} − {gate.dbt_fair} = {shown_difference})"
        return Criterion(id="stable_across_runs", title=title, passed=False, reason=reason)
    if comparison.sign_stable:
        reason = f"the advantage stays positive with each repeat left out ({shown})"
        return Criterion(id="stable_across_runs", title=title, passed=True, reason=reason)
    flipped = [
        str(r.repeat)
        for r in comparison.leave_one_repeat_out
        if r.difference is None or r.difference <= 0
    ]
    named = ", ".join(flipped[:10]) + (
        f" and {len(flipped) - 10} more" if len(flipped) > 10 else ""
    )
    reason = f"the sign does not hold without repeat(s) {named} ({shown})"
    return Criterion(id="stable_across_runs", title=title, passed=False, reason=reason)


def _fair(gate: Gate, table: RunTable, context: GateContext) -> Criterion:
    title = "the dbt comparator is the documented fair one"
    name = gate.dbt_fair
    if name not in context.levels:
        reason = f"{name!r} is not a condition of this experiment ({', '.join(context.levels)})"
        return Criterion(id="fair_comparator", title=title, passed=False, reason=reason)
    value = context.levels[name]
    entry = context.comparators.find("fair", context.env_id, context.factor, value)
    setting = f"{context.factor}={value}"
    if entry is None:
        listed = context.comparators.listed("fair", context.env_id, context.factor)
        known = f" (documented: {', '.join(listed)})" if listed else ""
        reason = (
            f"{name!r} runs {setting} of env {context.env_id!r}, which is not a documented fair "
            f"comparator{known}; see stackgym/analysis/comparators.yaml"
        )
        return Criterion(id="fair_comparator", title=title, passed=False, reason=reason)
    if context.parity_ok is False:
        reason = f"{name!r} is documented as fair, but the experiment's parity check failed"
        return Criterion(id="fair_comparator", title=title, passed=False, reason=reason)
    if _judged(table, name) == 0:
        reason = f"{name!r} ({setting}) is documented as fair but has no judged runs"
        return Criterion(id="fair_comparator", title=title, passed=False, reason=reason)
    reason = (
        f"{name!r} runs {setting}: {' '.join(entry.why.split())}; same settings and data "
        f"snapshot as {gate.orm!r} (parity ok)"
    )
    return Criterion(id="fair_comparator", title=title, passed=True, reason=reason)


def _realistic(
    gate: Gate, table: RunTable, context: GateContext, fair: Comparison | None
) -> tuple[Criterion, str | None]:
    title = "the realistic dbt comparator was measured and interpreted"
    name = gate.dbt_realistic

    def fail(reason: str) -> tuple[Criterion, None]:
        return Criterion(id="realistic_measured", title=title, passed=False, reason=reason), None

    if name is None:
        return fail("the gate names no realistic comparator (gate.dbt_realistic); A4 needs one")
    if _judged(table, name) == 0:
        return fail(
            f"{name!r} has no judged runs in this report; run it (preset "
            "dbt-realistic-pregate) and report both folders together: "
            "`stackgym report RUN_DIR RUN_DIR_REALISTIC`"
        )
    value = context.levels.get(name)
    if context.comparators.find("realistic", context.env_id, context.factor, value) is None:
        listed = context.comparators.listed("realistic", context.env_id, context.factor)
        known = f" (documented: {', '.join(listed)})" if listed else ""
        return fail(
            f"{name!r} runs {context.factor}={value}, which is not a documented realistic "
            f"comparator{known}"
        )
    if _judged(table, gate.orm) == 0:
        return fail(f"no judged runs of {gate.orm!r} to compare {name!r} with")
    comparison = context.comparison(table, gate.orm, name, gate.alpha)
    panel = [r.model for r in comparison.by_model if r.a.judged]
    unmeasured = [r.model for r in comparison.by_model if r.a.judged and not r.b.judged]
    if unmeasured:
        return fail(
            f"{name!r} was measured for {len(panel) - len(unmeasured)} of {len(panel)} models "
            f"(missing: {', '.join(str(m) for m in unmeasured)})"
        )
    interpretation = _interpret(gate, comparison, fair, context.surfaces)
    criterion = Criterion(id="realistic_measured", title=title, passed=True, reason=interpretation)
    return criterion, interpretation


def _interpret(
    gate: Gate,
    realistic: Comparison,
    fair: Comparison | None,
    surfaces: SurfaceSummary | None,
) -> str:
    pooled = realistic.pooled
    gap = pooled.difference
    text = (
        f"{gate.orm} {_pct(pooled.a.rate)} vs {realistic.b} {_pct(pooled.b.rate)}: "
        f"{gap:+.1f} points (stratified p = {_p(realistic.stratified.p)})"
    )
    if fair is not None and fair.pooled.difference is not None and gap is not None:
        change = gap - fair.pooled.difference
        material = abs(change) >= gate.min_advantage
        text += (
            f", against {fair.pooled.difference:+.1f} with the fair comparator: adding the source "
            f"app surface {'materially changes' if material else 'does not materially change'} "
            f"the ORM-vs-dbt result ({change:+.1f} points; material means "
            f"≥ {gate.min_advantage:g})"
        )
    if surfaces is not None:
        row = next(
            (s for s in surfaces.surfaces if s.condition == realistic.b and s.model is None), None
        )
        if row is not None and row.both.rate is not None:
            text += (
                f"; {_pct(row.both.rate)} of its runs touched both the app/ORM and the "
                f"warehouse/dbt surface (cross-layer traversal), {_pct(row.app.rate)} the app, "
                f"{_pct(row.warehouse.rate)} the warehouse"
            )
    return text
