"""Checking an experiment's names against the registries, at load time.

An env id, a factor value (a sandbox…), a task or an agent that does not
exist is reported with the valid choices before anything runs. Option values
are checked against the env's registered ``choices``; options without
registered choices are checked when the env is first made (preflight).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from stackgym.core.agents import agent_names
from stackgym.core.errors import UnknownNameError
from stackgym.core.registry import registry
from stackgym.harness.spec import OPTION_LABELS, ExperimentSpec, _override_options


def _unknown(
    option: str, value: str, known: Iterable[str], env_id: str, where: str
) -> UnknownNameError:
    known = sorted(known)
    error = UnknownNameError(option, value, known)
    error.message = f"unknown {option} {value!r} for env {env_id!r} ({where})"
    error.hint = f"valid {option} values: {', '.join(known)}"
    return error


def _check_option(
    env_id: str, choices: dict[str, tuple[str, ...]], option: str, value: Any, where: str
) -> None:
    if option not in choices:
        return
    for item in value if isinstance(value, list | tuple) else [value]:
        if str(item) not in choices[option]:
            raise _unknown(option, str(item), choices[option], env_id, where)


def check_agent(name: str, env_id: str) -> None:
    """Raise :class:`UnknownNameError` unless ``name`` is an agent usable on ``env_id``."""
    names = agent_names(env_id)
    prefix, sep, _ = name.partition(":")
    if (sep and f"{prefix}:…" in names) or (not sep and name in names):
        return
    raise UnknownNameError(f"agent for {env_id!r}", name, list(names))


def check_names(spec: ExperimentSpec) -> None:
    """Check env, factor values, tasks, option values, gate conditions and agents."""
    env = registry[spec.env]  # UnknownNameError lists the registered envs
    choices = {k: tuple(v) for k, v in env.choices.items()}
    for option, value in spec.shared_options().items():
        _check_option(
            spec.env, choices, option, value, OPTION_LABELS.get(option, f"options.{option}")
        )
    for condition in spec.conditions:
        _check_option(
            spec.env, choices, spec.factor, condition.level, f"condition {condition.name!r}"
        )
        if condition.overrides is not None:
            for option, value in _override_options(condition.overrides).items():
                _check_option(spec.env, choices, option, value, f"overrides of {condition.name!r}")
    for task in spec.tasks:
        _check_option(spec.env, choices, spec.task_option, task, "tasks")
    if spec.gate is not None:
        names = {c.name for c in spec.conditions}
        for field in ("orm", "dbt_fair", "dbt_realistic"):
            value = getattr(spec.gate, field)
            # A gate may name a condition run by a companion experiment.
            if value is not None and value not in names:
                _check_option(spec.env, choices, spec.factor, value, f"gate.{field}")
    for model in spec.models:
        check_agent(model, spec.env)
