"""Aggregation: a section's runs as columns, pass rates and costs per group.

:class:`RunTable` holds one row per run (the final record of each run id) as
numpy columns, so every grouping (per model, per condition, per task and
their combinations) is a handful of ``bincount`` calls, whatever the number
of runs. Infrastructure errors are counted per group and left out of every
rate and mean.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from stackgym.analysis.load import Section
from stackgym.analysis.stats import wilson_many
from stackgym.analysis.summary import EnvMetrics, GroupRow, Rate
from stackgym.analysis.taxonomy import Taxonomy
from stackgym.core.results import RunOutcome

#: What a run without a task (or a condition) is listed as.
NONE = "-"
DIMENSIONS = ("model", "condition", "task")


def _levels(declared: Sequence[str], seen: Sequence[str]) -> list[str]:
    """Declared levels in their order, then any others seen in the runs, sorted."""
    levels = list(dict.fromkeys(declared))
    extra = sorted(set(seen) - set(levels))
    return levels + extra


@dataclass
class RunTable:
    """A section's runs as columns (see the module docstring)."""

    runs: list[RunOutcome]
    experiments: list[str]
    conditions: list[str]
    models: list[str]
    tasks: list[str]
    categories: list[str]
    experiment: np.ndarray
    condition: np.ndarray
    model: np.ndarray
    task: np.ndarray
    repeat: np.ndarray
    infra: np.ndarray
    judged: np.ndarray
    passed: np.ndarray
    truncated: np.ndarray
    tokens: np.ndarray
    #: Dollars; NaN where unknown.
    cost: np.ndarray
    turns: np.ndarray
    seconds: np.ndarray
    #: Index into ``categories`` for failed runs; -1 for runs that passed or were not judged.
    category: np.ndarray
    #: The rule that labelled each failed run (None: passed, or the fallback).
    rules: list[str | None]
    #: Planned runs per (condition, task, model) index triple; None without a plan.
    planned: np.ndarray | None
    _metrics: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    _metric_dicts: list[dict] | None = field(default=None, repr=False)

    @classmethod
    def build(cls, section: Section, taxonomy: Taxonomy) -> RunTable:
        runs = [run for e in section.experiments for run in e.runs]
        experiment_of = [i for i, e in enumerate(section.experiments) for _ in e.runs]
        declared_conditions: list[str] = []
        declared_models: list[str] = []
        declared_tasks: list[str] = []
        for record in section.records:
            declared_conditions += [c.name for c in record.spec.conditions]
            declared_models += record.spec.models
            declared_tasks += record.spec.tasks or [NONE]
        conditions = _levels(declared_conditions, {r.condition or NONE for r in runs})
        models = _levels(declared_models, {r.model for r in runs})
        tasks = _levels(declared_tasks, {r.task or NONE for r in runs})
        condition_index = {name: i for i, name in enumerate(conditions)}
        model_index = {name: i for i, name in enumerate(models)}
        task_index = {name: i for i, name in enumerate(tasks)}
        category_index = {name: i for i, name in enumerate(taxonomy.order)}
        # Plain lists first, arrays once at the end: item assignment into numpy
        # arrays costs more than the whole loop otherwise.
        condition_codes, model_codes, task_codes, repeats = [], [], [], []
        statuses, outcomes, truncated, tokens, costs, turns, seconds = [], [], [], [], [], [], []
        categories: list[int] = []
        rules: list[str | None] = []
        classify = taxonomy.classify
        nan = math.nan
        for run in runs:
            condition_codes.append(condition_index[run.condition or NONE])
            model_codes.append(model_index[run.model])
            task_codes.append(task_index[run.task or NONE])
            repeats.append(run.repeat)
            statuses.append(run.status == "infra_error")
            outcomes.append(run.passed)
            truncated.append(run.truncated)
            usage = run.usage
            tokens.append(usage.prompt_tokens + usage.completion_tokens)
            costs.append(nan if usage.cost_usd is None else usage.cost_usd)
            turns.append(run.turns)
            seconds.append(run.duration_s)
            label = classify(
                env_id=run.env_id,
                status=run.status,
                passed=run.passed,
                truncated=run.truncated,
                error=run.error,
                metrics=run.metrics,
            )
            categories.append(-1 if label is None else category_index[label.category])
            rules.append(None if label is None else label.rule)
        infra = np.array(statuses, dtype=bool)
        passed_or_none = np.array([2 if p is None else int(p) for p in outcomes], dtype=np.int8)
        columns = {
            "condition": np.array(condition_codes, dtype=np.int64),
            "model": np.array(model_codes, dtype=np.int64),
            "task": np.array(task_codes, dtype=np.int64),
            "repeat": np.array(repeats, dtype=np.int64),
            "infra": infra,
            "judged": ~infra & (passed_or_none != 2),
            "passed": ~infra & (passed_or_none == 1),
            "truncated": np.array(truncated, dtype=bool),
            "tokens": np.array(tokens, dtype=np.float64),
            "cost": np.array(costs, dtype=np.float64),
            "turns": np.array(turns, dtype=np.float64),
            "seconds": np.array(seconds, dtype=np.float64),
            "category": np.array(categories, dtype=np.int64),
        }
        planned = None
        if section.records:
            planned = np.zeros((len(conditions), len(tasks), len(models)), dtype=np.int64)
            for loaded in section.experiments:
                for condition, task, model, _ in loaded.planned or []:
                    planned[
                        condition_index[condition], task_index[task or NONE], model_index[model]
                    ] += 1
        return cls(
            runs=runs,
            experiments=[e.name for e in section.experiments],
            conditions=conditions,
            models=models,
            tasks=tasks,
            categories=list(taxonomy.order),
            experiment=np.asarray(experiment_of, dtype=np.int64),
            rules=rules,
            planned=planned,
            **columns,
        )

    def __len__(self) -> int:
        return len(self.runs)

    def metric_names(self) -> list[str]:
        """Every per-episode metric any completed run reports, sorted."""
        names: set[str] = set()
        runs = self.runs
        for index in np.flatnonzero(self.completed).tolist():
            names.update(runs[index].metrics)
        return sorted(names)

    def metric(self, name: str) -> np.ndarray:
        """One per-episode metric as floats (booleans as 0/1); NaN where absent or not a number."""
        cached = self._metrics.get(name)
        if cached is not None:
            return cached
        if self._metric_dicts is None:
            self._metric_dicts = [run.metrics for run in self.runs]
        values = [metrics.get(name) for metrics in self._metric_dicts]
        try:
            column = np.array(values, dtype=np.float64)
        except (TypeError, ValueError):  # a string somewhere: keep the numbers only
            column = np.array(
                [v if isinstance(v, int | float) else None for v in values], dtype=np.float64
            )
        self._metrics[name] = column
        return column

    def levels(self, dimension: str) -> list[str]:
        return {"model": self.models, "condition": self.conditions, "task": self.tasks}[dimension]

    def codes(self, dimension: str) -> np.ndarray:
        return {"model": self.model, "condition": self.condition, "task": self.task}[dimension]

    @property
    def completed(self) -> np.ndarray:
        return ~self.infra


def group_rows(table: RunTable, dimensions: Sequence[str] = ()) -> list[GroupRow]:
    """One row per combination of ``dimensions`` levels that was planned or recorded.

    Without dimensions: exactly one row, the total. Rows come in level order
    (models, conditions and tasks as the spec lists them), the first dimension
    varying slowest.
    """
    sizes = [len(table.levels(d)) for d in dimensions]
    size = int(np.prod(sizes)) if sizes else 1
    if dimensions:
        flat = np.ravel_multi_index([table.codes(d) for d in dimensions], sizes)
    else:
        flat = np.zeros(len(table), dtype=np.int64)
    completed = table.completed

    def total(mask: np.ndarray | None = None, weights: np.ndarray | None = None) -> np.ndarray:
        index = flat if mask is None else flat[mask]
        w = None if weights is None else (weights if mask is None else weights[mask])
        return np.bincount(index, weights=w, minlength=size)

    runs = total()
    infra = total(table.infra)
    judged = total(table.judged)
    passed = total(table.passed)
    done = runs - infra
    tokens = total(completed, table.tokens)
    known = completed & ~np.isnan(table.cost)
    cost_known = total(known)
    cost = total(known, np.nan_to_num(table.cost))
    passes_known = total(known & table.passed)
    turns = total(completed, table.turns)
    turns_passed = total(table.passed, table.turns)
    seconds = total(completed, table.seconds)
    low, high = wilson_many(passed, judged)
    planned = _planned(table, dimensions, sizes)

    rows: list[GroupRow] = []
    for index in range(size):
        wanted = planned[index] if planned is not None else 0
        if runs[index] == 0 and not wanted and dimensions:
            continue
        keys = np.unravel_index(index, sizes) if dimensions else ()
        labels = {d: table.levels(d)[int(k)] for d, k in zip(dimensions, keys, strict=True)}
        n_done = int(done[index])
        n_judged = int(judged[index])
        n_passed = int(passed[index])
        n_known = int(cost_known[index])
        cost_total = float(cost[index]) if n_known else None
        rows.append(
            GroupRow(
                **labels,
                planned=None if planned is None else int(wanted),
                runs=int(runs[index]),
                infra_errors=int(infra[index]),
                completed=n_done,
                pass_rate=Rate(
                    passed=n_passed,
                    judged=n_judged,
                    rate=n_passed / n_judged if n_judged else None,
                    low=_float(low[index]),
                    high=_float(high[index]),
                ),
                tokens_per_run=float(tokens[index]) / n_done if n_done else None,
                cost_per_run=cost_total / n_known if cost_total is not None else None,
                cost_known_runs=n_known,
                cost_total=cost_total,
                # Over the runs whose cost is known (all of them, normally).
                cost_per_pass=(
                    cost_total / float(passes_known[index])
                    if cost_total is not None and passes_known[index]
                    else None
                ),
                turns_per_run=float(turns[index]) / n_done if n_done else None,
                turns_to_pass=float(turns_passed[index]) / n_passed if n_passed else None,
                seconds_per_run=float(seconds[index]) / n_done if n_done else None,
            )
        )
    return rows


def _planned(table: RunTable, dimensions: Sequence[str], sizes: list[int]) -> np.ndarray | None:
    """Planned runs per group, flattened like the group index."""
    if table.planned is None:
        return None
    axes = {"condition": 0, "task": 1, "model": 2}
    keep = [axes[d] for d in dimensions]
    summed = table.planned.sum(axis=tuple(a for a in range(3) if a not in keep))
    # The kept axes are in (condition, task, model) order; put them in `dimensions` order.
    order = sorted(keep)
    summed = np.transpose(summed, [order.index(a) for a in keep]) if keep else summed
    return np.asarray(summed).reshape(int(np.prod(sizes)) if sizes else 1)


def _float(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def env_metrics(table: RunTable, env_id: str | None) -> EnvMetrics | None:
    """Each condition's per-episode metrics through the env's registered summariser.

    An env that is not registered in this installation (its package is not
    installed) gets every metric averaged, and the report says so.
    """
    if env_id is None:
        return None
    from stackgym.core.errors import StackgymError
    from stackgym.core.metrics import mean_of_metrics, summariser
    from stackgym.core.registry import registry

    fallback = "stackgym.core.metrics:mean_of_metrics"
    note = None
    try:
        summarise = summariser(env_id)
        name = registry[env_id].metrics or fallback
    except StackgymError:
        summarise, name = mean_of_metrics, fallback
        note = f"env {env_id!r} is not registered in this installation; each metric is averaged"
    by_condition: dict[str, dict[str, float | None]] = {}
    order: dict[str, None] = {}
    for c, condition in enumerate(table.conditions):
        indices = np.flatnonzero(table.completed & (table.condition == c)).tolist()
        per_episode = [table.runs[i].metrics for i in indices]
        if not any(per_episode):
            continue
        try:
            figures = summarise(per_episode)
        except Exception as exc:  # an env's summariser bug must not lose the whole report
            figures = mean_of_metrics(per_episode)
            note = f"{name} failed ({type(exc).__name__}: {exc}); each metric is averaged"
        clean: dict[str, float | None] = {}
        for key, value in figures.items():
            if isinstance(value, bool | int | float) or value is None:
                number = None if value is None else float(value)
                clean[key] = None if number is None or not math.isfinite(number) else number
                order.setdefault(key)
        by_condition[condition] = clean
    if not by_condition:
        return None
    return EnvMetrics(
        env_id=env_id, summariser=name, note=note, metrics=list(order), by_condition=by_condition
    )
