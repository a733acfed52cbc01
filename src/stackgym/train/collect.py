"""Record exploratory episodes for training: ``stackgym train collect``.

Plays an :class:`~stackgym.train.agent.ExploringAgent` over seeds
``seed .. seed+episodes-1``, each ``repeats`` times with its own exploration
stream, and writes every episode through a :class:`TraceStore`. Repeating a
seed is what gives the scorer comparable states: the same incident, the same
history, different actions, different returns.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stackgym.core.agents import make_agent
from stackgym.core.errors import ConfigError
from stackgym.core.registry import make
from stackgym.core.rollout import run_episode
from stackgym.core.traces import TraceStore
from stackgym.train.agent import ExploringAgent
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
) -> dict[str, Any]:
    """Play and record ``episodes × repeats`` exploratory episodes; return a summary."""
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
    try:
        for repeat in range(repeats):
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
        "mean_reward": total / played if played else None,
        "pass_rate": passed / played if played else None,
        "traces": str(traces.path),
    }
