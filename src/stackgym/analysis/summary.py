"""The typed content of a report: ``summary.json`` is :class:`ReportSummary` dumped.

Every number ``report.md`` shows comes from these models, so a program reading
``summary.json`` sees exactly what a person reads. Rates are fractions (0..1);
differences between conditions are in pass-rate *points* (percentage points,
A − B); intervals are 95 %.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from stackgym.version import __version__


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Rate(_Model):
    """A pass rate with its Wilson 95 % interval (None without judged runs)."""

    passed: int
    judged: int
    rate: float | None = None
    low: float | None = None
    high: float | None = None


class GroupRow(_Model):
    """Runs of one group (all, a model, a condition, a task, or a combination)."""

    model: str | None = None
    condition: str | None = None
    task: str | None = None
    #: Runs the experiment planned for this group (None: no experiment.json).
    planned: int | None = None
    #: Runs recorded (the final record of each run id).
    runs: int
    #: Infrastructure errors: counted here, left out of every rate and mean below.
    infra_errors: int
    completed: int
    pass_rate: Rate
    tokens_per_run: float | None = None
    #: Mean cost of completed runs whose cost is known.
    cost_per_run: float | None = None
    cost_known_runs: int = 0
    cost_total: float | None = None
    #: Cost of the completed runs over their passes (None without a pass or a cost).
    cost_per_pass: float | None = None
    turns_per_run: float | None = None
    #: Mean turns of the runs that passed (turns to completion).
    turns_to_pass: float | None = None
    seconds_per_run: float | None = None


class Paired(_Model):
    """McNemar's exact test on runs paired by (experiment, model, task, repeat)."""

    pairs: int
    both: int
    a_only: int
    b_only: int
    neither: int
    p_value: float


class ComparisonRow(_Model):
    """Condition A against B for one model (or all models pooled when ``model`` is None)."""

    model: str | None = None
    a: Rate
    b: Rate
    #: rate(A) − rate(B) in points, with Newcombe's 95 % interval.
    difference: float | None = None
    difference_low: float | None = None
    difference_high: float | None = None
    fisher_p: float | None = None
    odds_ratio: float | None = None
    paired: Paired | None = None
    #: Runs per condition that would detect this row's difference at 80 % power.
    runs_for_power: int | None = None


class Stratified(_Model):
    """A vs B pooled over models, stratified by model."""

    informative: list[str]
    #: Models whose runs all passed or all failed (no information; left out by name).
    uninformative: list[str]
    mh_odds_ratio: float | None = None
    mh_low: float | None = None
    mh_high: float | None = None
    cmh_statistic: float | None = None
    cmh_p: float | None = None
    exact_p: float | None = None
    exact_note: str | None = None
    #: The p-value the report leads with: exact when computed, else CMH.
    p: float | None = None
    method: str


class PowerStatement(_Model):
    rate_a: float | None = None
    rate_b: float | None = None
    effect_size: float | None = None
    alpha: float
    power: float
    #: Runs per condition (all models) for the target power; None: no difference.
    runs_per_condition: int | None = None
    runs_per_model: int | None = None
    runs_per_model_task: int | None = None
    #: Judged runs per model per condition this report has (the smallest).
    current_runs_per_model: int
    text: str


class LeaveOneOut(_Model):
    repeat: int
    difference: float | None = None


class Comparison(_Model):
    """Condition ``a`` (the reference) against condition ``b``."""

    a: str
    b: str
    pairing: str
    by_model: list[ComparisonRow]
    pooled: ComparisonRow
    stratified: Stratified
    power: PowerStatement
    leave_one_repeat_out: list[LeaveOneOut] = Field(default_factory=list)
    #: The sign of the difference held with each repeat left out (None: fewer than 2 repeats).
    sign_stable: bool | None = None
    #: The stratified p-value adjusted (Holm) over the section's comparisons.
    p_holm: float | None = None


class Category(_Model):
    id: str
    label: str
    description: str = ""


class TaxonomyRow(_Model):
    condition: str | None = None
    model: str | None = None
    failures: int
    #: Category id -> failed runs with that label (zero counts left out).
    counts: dict[str, int]


class TaxonomyExample(_Model):
    """The most frequent error texts of a category."""

    category: str
    rule: str | None = None
    count: int
    error: str


class TaxonomySummary(_Model):
    source: str
    categories: list[Category]
    total: TaxonomyRow
    by_condition: list[TaxonomyRow]
    by_model_condition: list[TaxonomyRow]
    examples: list[TaxonomyExample]


class LayerReads(_Model):
    condition: str
    runs: int
    #: Layer -> mean reads per run.
    mean_reads: dict[str, float]
    #: Layer -> share of runs that read it at least once.
    share_reading: dict[str, float]


class SurfaceRow(_Model):
    condition: str
    model: str | None = None
    runs: int
    app: Rate
    warehouse: Rate
    #: Runs touching both surfaces: the cross-layer traversal rate.
    both: Rate


class SurfaceSummary(_Model):
    layers: list[str]
    reads: list[LayerReads]
    surfaces: list[SurfaceRow]
    #: The realistic comparator named by the gate, if any.
    realistic: str | None = None


class EnvMetrics(_Model):
    """The env's own figures per condition, from its registered summariser."""

    env_id: str
    summariser: str
    note: str | None = None
    metrics: list[str]
    by_condition: dict[str, dict[str, float | None]]


class Criterion(_Model):
    id: Literal[
        "advantage_reproduced", "stable_across_runs", "fair_comparator", "realistic_measured"
    ]
    title: str
    passed: bool
    reason: str


class GateResult(_Model):
    """Seed 000's decision gate (A5), evaluated from the runs."""

    orm: str
    dbt_fair: str
    dbt_realistic: str | None = None
    min_advantage: float
    alpha: float
    require_stable: bool
    passed: bool
    criteria: list[Criterion]
    realistic_interpretation: str | None = None


class MissingCell(_Model):
    condition: str
    task: str | None = None
    model: str
    missing: int


class ExperimentInfo(_Model):
    name: str
    folder: str
    suite: str | None = None
    source: str | None = None
    status: str | None = None
    spec_hash: str | None = None
    stackgym_version: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    planned: int | None = None
    recorded: int
    infra_errors: int = 0
    missing: int
    missing_ids: list[str] = Field(default_factory=list)
    missing_by_cell: list[MissingCell] = Field(default_factory=list)
    unplanned: int = 0
    unplanned_ids: list[str] = Field(default_factory=list)
    superseded: int = 0
    #: Lines of results.jsonl that were skipped: ``file:line: reason``.
    problems: list[str] = Field(default_factory=list)


class SectionSummary(_Model):
    name: str
    slug: str
    env_id: str | None = None
    factor: str | None = None
    #: Condition name -> the factor's value in it.
    conditions: dict[str, Any]
    models: list[str]
    tasks: list[str]
    #: Settings every condition shares (from the parity check).
    settings: dict[str, Any] = Field(default_factory=dict)
    parity_ok: bool | None = None
    data_snapshot: str | None = None
    data_snapshots: list[str] = Field(default_factory=list)
    experiments: list[ExperimentInfo]
    notes: list[str] = Field(default_factory=list)
    overall: GroupRow
    by_condition: list[GroupRow]
    by_model: list[GroupRow]
    by_task: list[GroupRow]
    by_model_condition: list[GroupRow]
    by_condition_task: list[GroupRow]
    by_model_condition_task: list[GroupRow]
    comparisons: list[Comparison]
    taxonomy: TaxonomySummary
    surfaces: SurfaceSummary | None = None
    env_metrics: EnvMetrics | None = None
    gates: list[GateResult] = Field(default_factory=list)
    #: Chart name -> path relative to the report folder.
    charts: dict[str, str] = Field(default_factory=dict)


class ReportSummary(_Model):
    schema_version: Literal[1] = 1
    kind: Literal["stackgym.report"] = "stackgym.report"
    stackgym_version: str = __version__
    sources: list[str]
    notes: list[str] = Field(default_factory=list)
    sections: list[SectionSummary]
