"""Scripted baselines for the metrics environment.

* ``oracle`` reads the sandbox's context files (as the turn budget allows,
  keeping two turns), writes the catalog's oracle answer and calls ``done``.
  It proves every (sandbox, task) solvable and scores 1 on every rubric part
  whenever the budget covers the context files.
* ``heuristic`` reads the context files the same way, then writes the
  catalog's *naive* answer marked ``heuristic: true`` for the task - a
  plausible answer with a classic mistake (counting open invoices, ignoring
  subscriptions, averaging a deduplicated mart) - and calls ``done``. It
  shows what diligent tool use without the right join/filter logic scores:
  full tool usage, a running answer, a wrong value.
* ``random`` makes random tool calls (the env's example actions: read a
  context file, list a folder, write a placeholder answer, run a trivial
  query, lint, done) until the episode ends, seeded by the episode seed.

Baselines read the environment at reset (they are scripted, not learned).
"""

from __future__ import annotations

import random
from typing import Any

from stackgym.core.agents import Agent
from stackgym.core.env import Env
from stackgym.core.errors import ConfigError
from stackgym.core.models import Action, Observation
from stackgym.envs.metrics.models import Done, ReadFile, WriteFile


def _metrics_env(env: Env) -> Any:
    from stackgym.envs.metrics.env import MetricsEnv

    if not isinstance(env, MetricsEnv):
        raise ConfigError(f"this baseline plays the metrics environment, not {env.env_id!r}")
    return env


class _Scripted(Agent):
    """Plays a list of actions planned at reset."""

    def __init__(self) -> None:
        self._plan: list[Action] = []

    def _answer(self, env: Any) -> str:
        raise NotImplementedError

    def reset(self, env: Env, observation: Observation, info: dict[str, Any]) -> None:
        metrics_env = _metrics_env(env)
        manifest = metrics_env.sandbox.manifest
        budget = max(0, metrics_env.config.max_turns - 2)
        reads = [ReadFile(path=p) for p in manifest.context_files[:budget]]
        answer = WriteFile(
            path=manifest.answer_path(metrics_env.episode.task), content=self._answer(metrics_env)
        )
        self._plan = [*reads, answer, Done()]

    def act(self, observation: Observation) -> Action:
        return self._plan.pop(0) if self._plan else Done()


class OracleAgent(_Scripted):
    """Writes the oracle answer of the catalog (after reading the context files)."""

    name = "oracle"

    def _answer(self, env: Any) -> str:
        return env.sandbox.oracle_file(env.episode.task).read_text()


class HeuristicAgent(_Scripted):
    """Reads the context files, then writes a plausible but naive answer."""

    name = "heuristic"

    def _answer(self, env: Any) -> str:
        naive = env.sandbox.naive_answers(env.episode.task)
        chosen = [path for entry, path in naive if entry.heuristic] or [path for _e, path in naive]
        if not chosen:
            raise ConfigError(
                f"sandbox {env.sandbox.id!r} has no naive answer for {env.episode.task!r}",
                "add one with `heuristic: true` under `naive` in its sandbox.yaml",
            )
        return chosen[0].read_text()


class RandomAgent(Agent):
    """Random tool calls from the env's example actions, seeded by the episode seed."""

    name = "random"

    def __init__(self) -> None:
        self._env: Any = None
        self._rng = random.Random(0)

    def reset(self, env: Env, observation: Observation, info: dict[str, Any]) -> None:
        self._env = _metrics_env(env)
        self._rng = random.Random(info.get("seed", 0))

    def act(self, observation: Observation) -> Action:
        return self._rng.choice(self._env.example_actions(self._rng))


def oracle() -> OracleAgent:
    return OracleAgent()


def heuristic() -> HeuristicAgent:
    return HeuristicAgent()


def random_agent() -> RandomAgent:
    return RandomAgent()
