"""Expanding an experiment into planned runs, each with a deterministic id.

A run id is ``EXPERIMENT/CONDITION/TASK/MODEL/REPEAT`` (``-`` for an env
without tasks). Experiment, condition and task names hold no ``/``, and the
repeat is the last part, so an id is unambiguous and readable; re-running an
experiment finds the ids already in ``results.jsonl`` and skips them.

Runs are ordered repeat-major (all conditions, models and tasks of repeat 0,
then repeat 1…), so an experiment stopped part-way has balanced, paired data.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from stackgym.agents.llm import LLMSettings, is_llm_agent
from stackgym.harness.parity import ResolvedCondition, resolve_all
from stackgym.harness.spec import ExperimentSpec


def run_id_for(experiment: str, condition: str, task: str | None, model: str, repeat: int) -> str:
    """The id of one run: the same inputs always give the same id."""
    return f"{experiment}/{condition}/{task or '-'}/{model}/{repeat}"


@dataclass(frozen=True)
class PlannedRun:
    """One episode to play, with everything its record needs."""

    run_id: str
    experiment: str
    env_id: str
    #: Env constructor options (factor and task included).
    options: dict[str, Any]
    model: str
    seed: int
    repeat: int = 0
    factor: str | None = None
    condition: str | None = None
    task: str | None = None
    #: What the run record's ``settings`` get, beyond the env's own settings.
    settings: dict[str, Any] = field(default_factory=dict)
    #: LLM call settings (LLM agents only).
    llm: LLMSettings | None = None
    max_steps: int = 1000
    #: Play against the env served at this URL instead of in-process.
    env_url: str | None = None


def llm_settings(spec: ExperimentSpec, resolved: ResolvedCondition) -> LLMSettings:
    """The agent settings of a condition plus the spec's call timeout and retries."""
    return LLMSettings(
        **resolved.agent.model_dump(),
        call_timeout_s=spec.timeouts.call_s,
        max_retries=spec.retries.max_retries,
        backoff_s=spec.retries.backoff_s,
        max_backoff_s=spec.retries.max_backoff_s,
    )


def _design(spec: ExperimentSpec) -> Iterator[tuple[ResolvedCondition, str | None, str, int]]:
    """Every (condition, task, model, repeat) the spec asks for, repeat-major."""
    resolved = resolve_all(spec)
    most = max(r.runs for r in resolved.values())
    for repeat in range(most):
        for condition in resolved.values():
            if repeat >= condition.runs:
                continue
            for task in condition.tasks or [None]:
                for model in condition.models:
                    yield condition, task, model, repeat


def design(spec: ExperimentSpec) -> Iterator[tuple[str, str | None, str, int]]:
    """The cells of the experiment's design: (condition, task, model, repeat) per planned run.

    Cheap (no run settings are built); ``run_id_for`` turns a cell into its run id.
    """
    for condition, task, model, repeat in _design(spec):
        yield condition.name, task, model, repeat


def plan_runs(spec: ExperimentSpec) -> list[PlannedRun]:
    """Every run of the experiment, in execution order (repeat-major)."""
    runs: list[PlannedRun] = []
    llms: dict[str, LLMSettings] = {}
    for condition, task, model, repeat in _design(spec):
        llm = llms.get(condition.name)
        if llm is None:
            llm = llms[condition.name] = llm_settings(spec, condition)
        options = dict(condition.options)
        if task is not None:
            options[spec.task_option] = task
        settings: dict[str, Any] = {
            **options,
            "max_steps": condition.stopping.max_steps,
            "run_timeout_s": spec.timeouts.run_s,
        }
        is_llm = is_llm_agent(model)
        if is_llm:
            settings["agent"] = llm.model_dump(exclude_none=True)
        runs.append(
            PlannedRun(
                run_id=run_id_for(spec.name, condition.name, task, model, repeat),
                experiment=spec.name,
                env_id=spec.env,
                options=options,
                model=model,
                seed=condition.seed + repeat,
                repeat=repeat,
                factor=spec.factor,
                condition=condition.name,
                task=task,
                settings=settings,
                llm=llm if is_llm else None,
                max_steps=condition.stopping.max_steps,
                env_url=spec.env_url,
            )
        )
    return _ordered(runs)


def _ordered(runs: list[PlannedRun]) -> list[PlannedRun]:
    """Repeat, then task, then model, then condition: the conditions of a pair run together."""
    tasks = list(dict.fromkeys(r.task for r in runs))
    models = list(dict.fromkeys(r.model for r in runs))
    conditions = list(dict.fromkeys(r.condition for r in runs))
    return sorted(
        runs,
        key=lambda r: (
            r.repeat,
            tasks.index(r.task),
            models.index(r.model),
            conditions.index(r.condition),
        ),
    )
