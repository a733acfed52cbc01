"""Parity: every condition shares every setting except the declared factor.

Each condition's settings are resolved (shared settings plus its overrides)
and flattened to named fields (``max_turns``, ``data.seed``,
``agent.temperature``, ``options.X``, ``models``…). Any field whose value is
not the same in every condition breaks parity, and the experiment is refused
with those fields and their values named. The data snapshot each condition
actually serves is checked the same way once the envs are made.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from stackgym.harness.spec import (
    OPTION_LABELS,
    AgentOptions,
    Condition,
    ExperimentSpec,
    Stopping,
    _override_options,
)


class ResolvedCondition(BaseModel):
    """Everything one condition runs with."""

    model_config = ConfigDict(frozen=True)

    name: str
    level: Any
    #: Env options, including the factor (not the task).
    options: dict[str, Any]
    tasks: list[str]
    models: list[str]
    runs: int
    seed: int
    agent: AgentOptions
    stopping: Stopping

    def flat(self, factor: str) -> dict[str, Any]:
        """Named fields for the parity check (the factor left out)."""
        fields: dict[str, Any] = {
            "tasks": self.tasks,
            "models": self.models,
            "runs": self.runs,
            "seed": self.seed,
        }
        for option, value in self.options.items():
            if option != factor:
                fields[OPTION_LABELS.get(option, f"options.{option}")] = value
        for key, value in self.agent.model_dump().items():
            fields[f"agent.{key}"] = value
        for key, value in self.stopping.model_dump().items():
            fields[f"stopping.{key}"] = value
        return dict(sorted(fields.items()))


class Difference(BaseModel):
    """A setting that is not the same in every condition."""

    field: str
    #: Condition name -> its value (absent: not set in that condition).
    values: dict[str, Any]

    def describe(self) -> str:
        shown = ", ".join(f"{k}: {_show(v)}" for k, v in self.values.items())
        return f"{self.field} ({shown})"


class ParityReport(BaseModel):
    """The parity check's verdict, recorded in ``experiment.json``."""

    ok: bool
    factor: str
    conditions: dict[str, Any] = Field(description="condition name -> factor value")
    #: Fields equal in every condition, with their value.
    shared: dict[str, Any] = Field(default_factory=dict)
    differences: list[Difference] = Field(default_factory=list)

    def describe(self) -> str:
        if self.ok:
            return (
                f"parity ok: {len(self.conditions)} condition(s) differ only in "
                f"{self.factor!r}; {len(self.shared)} shared settings"
            )
        return "parity broken: " + "; ".join(d.describe() for d in self.differences)


def _show(value: Any) -> str:
    return json.dumps(value, default=str)


#: A field one condition has and another has not (shown as null).
_MISSING: Any = object()


def resolve(spec: ExperimentSpec, condition: Condition) -> ResolvedCondition:
    """A condition's settings: the shared ones with its overrides applied."""
    options = dict(spec.shared_options())
    tasks, models, runs, seed = list(spec.tasks), list(spec.models), spec.runs, spec.seed
    agent, stopping = spec.agent, spec.stopping
    overrides = condition.overrides
    if overrides is not None:
        options.update(_override_options(overrides))
        tasks = list(overrides.tasks) if overrides.tasks is not None else tasks
        models = list(overrides.models) if overrides.models is not None else models
        runs = overrides.runs if overrides.runs is not None else runs
        seed = overrides.seed if overrides.seed is not None else seed
        if overrides.agent is not None:
            agent = agent.model_copy(update=overrides.agent.model_dump(exclude_unset=True))
        stopping = overrides.stopping or stopping
    options[spec.factor] = condition.level
    return ResolvedCondition(
        name=condition.name,
        level=condition.level,
        options=options,
        tasks=tasks,
        models=models,
        runs=runs,
        seed=seed,
        agent=agent,
        stopping=stopping,
    )


def resolve_all(spec: ExperimentSpec) -> dict[str, ResolvedCondition]:
    return {c.name: resolve(spec, c) for c in spec.conditions}


def check_parity(spec: ExperimentSpec) -> ParityReport:
    """Compare every condition's resolved settings; name each field that differs."""
    resolved = resolve_all(spec)
    flats = {name: r.flat(spec.factor) for name, r in resolved.items()}
    fields = sorted({f for flat in flats.values() for f in flat})
    shared: dict[str, Any] = {}
    differences: list[Difference] = []
    for field in fields:
        values = {name: flat.get(field, _MISSING) for name, flat in flats.items()}
        encoded = {
            json.dumps(v, sort_keys=True, default=str) if v is not _MISSING else None
            for v in values.values()
        }
        if len(encoded) == 1 and None not in encoded:
            shared[field] = next(iter(values.values()))
        else:
            differences.append(
                Difference(
                    field=field,
                    values={k: (None if v is _MISSING else v) for k, v in values.items()},
                )
            )
    return ParityReport(
        ok=not differences,
        factor=spec.factor,
        conditions={name: r.level for name, r in resolved.items()},
        shared=shared,
        differences=differences,
    )


def snapshot_differences(snapshots: dict[str, dict[str, str | None]]) -> list[Difference]:
    """Conditions serving different data snapshots for the same task.

    ``snapshots`` maps condition -> task (or ``"-"``) -> snapshot hash.
    """
    tasks = sorted({t for per_task in snapshots.values() for t in per_task})
    differences = []
    for task in tasks:
        values = {c: per_task.get(task) for c, per_task in snapshots.items() if task in per_task}
        if len(set(values.values())) > 1:
            label = "data_snapshot" if task == "-" else f"data_snapshot[{task}]"
            differences.append(Difference(field=label, values=values))
    return differences
