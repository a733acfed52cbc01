"""Record exploratory episodes for training: ``stackgym train collect``.

Plays an :class:`~stackgym.train.agent.ExploringAgent` over seeds
``seed .. seed+episodes-1``, each ``repeats`` times with its own exploration
stream, and writes every episode through a :class:`TraceStore`. Repeating a
seed is what gives the scorer comparable states: the same incident, the same
history, different actions, different returns.

With ``branches=K`` it records counterfactual rollouts instead: for each seed,
the base agent's own episode, then for every step of it up to ``K`` other
candidates (spread over action types, the base agent's best-scored of each
type first), each played once at that step with the base agent replayed before and finishing after
(:class:`~stackgym.train.agent.BranchingAgent`). Every recorded return is then
the value of one action under the base policy, measured, not sampled through
ε-noise in later steps: the data a one-step policy improvement learns from.
"""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any

from stackgym.core.agents import make_agent
from stackgym.core.errors import ConfigError
from stackgym.core.registry import make
from stackgym.core.rollout import run_episode
from stackgym.core.traces import TraceStore
from stackgym.train.agent import BranchingAgent, ExploringAgent
from stackgym.train.config import TrainConfig


def collect(
    env_id: str,
    options: dict[str, Any],
    *,
    base: str,
    episodes: int,
    repeats: int,
    epsilon: float,
    out: Path,
    config: TrainConfig,
    seed: int = 0,
    branches: int = 0,
) -> dict[str, Any]:
    """Play and record ``episodes × repeats`` exploratory episodes; return a summary.

    With ``branches > 0``, up to ``branches`` alternatives per step are played
    once each as counterfactual rollouts (see the module docstring); ``epsilon``
    is not used and ``repeats`` must be 1 (the env is deterministic given seed
    and actions, so a second play would record the same episode).
    """
    if branches < 0:
        raise ConfigError(f"branches must be >= 0, got {branches}", "use 0 for ε-exploration")
    if branches and repeats != 1:
        raise ConfigError(
            f"repeats={repeats} with branches={branches}: counterfactual rollouts play each "
            "alternative once (the env is deterministic given seed and actions)",
            "drop --repeats, or use --branches 0 for ε-exploration with repeats",
        )
    if options.get("split") in config.exclude_splits:
        raise ConfigError(
            f"refusing to collect training traces on split {options['split']!r}",
            f"it is held out for evaluation (exclude_splits: {list(config.exclude_splits)}); "
            "collect on --split train",
        )
    env = make(env_id, **options)
    traces = TraceStore(Path(out) / "traces")
    played = 0
    total = 0.0
    passed = 0
    branched = 0
    try:
        if branches:
            for episode_seed in range(seed, seed + episodes):
                for episode in _branch_episodes(
                    env, env_id, base, config, episode_seed, branches, traces
                ):
                    played += 1
                    branched += episode.agent.name.startswith("branch:")
                    total += episode.total_reward
                    passed += bool(episode.passed)
        for repeat in range(0 if branches else repeats):
            agent = ExploringAgent(make_agent(base, env_id), config, base, epsilon, stream=repeat)
            for episode_seed in range(seed, seed + episodes):
                episode = run_episode(
                    env, agent, seed=episode_seed, run_id=f"collect-{episode_seed}-r{repeat}",
                    traces=traces,
                )  # fmt: skip
                played += 1
                total += episode.total_reward
                passed += bool(episode.passed)
            agent.close()
    finally:
        env.close()
        traces.close()
    return {
        "env_id": env_id,
        "options": options,
        "episodes": played,
        "branch_episodes": branched,
        "mean_reward": total / played if played else None,
        "pass_rate": passed / played if played else None,
        "traces": str(traces.path),
    }


def _alternatives(candidates: Any, rng: random.Random, count: int) -> list[Any]:
    """Up to ``count`` candidates other than the base agent's pick, spread over action types.

    Types take turns (in a seeded order); within a type the base agent's
    best-scored candidates come first (unscored ones in a seeded random order).
    The base agent's runner-up of each kind is the alternative a re-ranker
    that sees action types and base scores can learn to prefer, so its value
    is the one worth measuring; a random fix out of ten almost never is.
    """
    by_type: dict[Any, list[tuple[float, float, Any]]] = {}
    for candidate in candidates if isinstance(candidates, list) else ():
        if not isinstance(candidate, dict) or "action" not in candidate:
            continue
        if candidate.get("base_choice", candidate.get("chosen")):
            continue
        action = candidate["action"]
        kind = action.get("type") if isinstance(action, dict) else None
        score = candidate.get("score")
        value = float(score) if isinstance(score, int | float) else -math.inf
        by_type.setdefault(kind, []).append((value, rng.random(), action))
    queues = {kind: sorted(items, key=lambda item: item[:2]) for kind, items in by_type.items()}
    kinds = sorted(queues, key=str)
    rng.shuffle(kinds)
    picked: list[Any] = []
    while len(picked) < count and any(queues.values()):
        for kind in kinds:
            if queues[kind] and len(picked) < count:
                picked.append(queues[kind].pop()[2])
    return picked


def _branch_episodes(
    env: Any,
    env_id: str,
    base: str,
    config: TrainConfig,
    seed: int,
    branches: int,
    traces: TraceStore,
) -> list[Any]:
    """The base agent's episode on ``seed`` and its counterfactual branches, recorded."""
    agent = ExploringAgent(make_agent(base, env_id), config, base, 0.0)
    try:
        own = run_episode(env, agent, seed=seed, run_id=f"branch-{seed}-base", traces=traces)
    finally:
        agent.close()
    out = [own]
    for step in own.steps:
        rng = random.Random(f"{seed}/{step.index}")
        for number, alternative in enumerate(_alternatives(step.candidates, rng, branches)):
            brancher = BranchingAgent(
                make_agent(base, env_id), config, base, step.index, alternative
            )
            run_id = f"branch-{seed}-s{step.index}-{number}"
            try:
                out.append(run_episode(env, brancher, seed=seed, traces=traces, run_id=run_id))
            finally:
                brancher.close()
    return out
