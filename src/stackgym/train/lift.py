"""Does the trained scorer beat its base agent? A paired comparison by seed.

Both agents play the same seeds of the same environment (usually the held-out
split); per seed the difference of episode reward and of ``passed`` is taken,
and a t interval (scipy) over those differences says whether the lift is
distinguishable from zero. Pairing by seed removes the incident-to-incident
variance that dominates unpaired comparisons.
"""

from __future__ import annotations

import math
from typing import Any

from stackgym.core.agents import Agent, make_agent
from stackgym.core.registry import make
from stackgym.core.rollout import run_episode


def _play(
    env_id: str, options: dict[str, Any], agent: Agent, seeds: range
) -> list[tuple[float, float]]:
    env = make(env_id, **options)
    out = []
    try:
        for seed in seeds:
            episode = run_episode(env, agent, seed=seed)
            metrics = episode.outcome.get("metrics", {})
            fix = metrics.get("fix_correct", episode.passed)
            out.append((episode.total_reward, float(bool(fix))))
    finally:
        env.close()
        agent.close()
    return out


def interval(differences: list[float], confidence: float = 0.95) -> dict[str, Any]:
    """Mean of paired differences with a two-sided t interval."""
    from scipy import stats

    n = len(differences)
    mean = sum(differences) / n
    if n < 2:
        return {"mean": mean, "low": None, "high": None, "n": n}
    variance = sum((d - mean) ** 2 for d in differences) / (n - 1)
    sem = math.sqrt(variance / n)
    if sem == 0:
        return {"mean": mean, "low": mean, "high": mean, "n": n}
    low, high = stats.t.interval(confidence, n - 1, loc=mean, scale=sem)
    return {"mean": mean, "low": float(low), "high": float(high), "n": n}


def compare(
    env_id: str,
    options: dict[str, Any],
    *,
    base: str,
    candidate: Agent,
    episodes: int,
    seed: int = 0,
) -> dict[str, Any]:
    """Play ``base`` and ``candidate`` on the same seeds; paired lift with 95 % intervals."""
    seeds = range(seed, seed + episodes)
    base_runs = _play(env_id, options, make_agent(base, env_id), seeds)
    new_runs = _play(env_id, options, candidate, seeds)
    reward = [n[0] - b[0] for b, n in zip(base_runs, new_runs, strict=True)]
    fix = [n[1] - b[1] for b, n in zip(base_runs, new_runs, strict=True)]
    return {
        "env_id": env_id,
        "options": options,
        "episodes": episodes,
        "seeds": [seed, seed + episodes - 1],
        "base": base,
        "candidate": candidate.name,
        "base_mean_reward": sum(b[0] for b in base_runs) / episodes,
        "candidate_mean_reward": sum(n[0] for n in new_runs) / episodes,
        "base_fix_accuracy": sum(b[1] for b in base_runs) / episodes,
        "candidate_fix_accuracy": sum(n[1] for n in new_runs) / episodes,
        "reward_lift": interval(reward),
        "fix_accuracy_lift": interval(fix),
        "seeds_better": sum(1 for d in reward if d > 0),
        "seeds_worse": sum(1 for d in reward if d < 0),
    }


def describe(result: dict[str, Any]) -> str:
    """The comparison in a few lines of text."""

    def span(lift: dict[str, Any], scale: float = 1.0, unit: str = "") -> str:
        if lift["low"] is None:
            return f"{lift['mean'] * scale:+.3f}{unit}"
        return (
            f"{lift['mean'] * scale:+.3f}{unit} "
            f"(95 % CI {lift['low'] * scale:+.3f} to {lift['high'] * scale:+.3f}{unit})"
        )

    reward, fix = result["reward_lift"], result["fix_accuracy_lift"]
    verdict = (
        "excludes zero"
        if reward["low"] is not None and (reward["low"] > 0 or reward["high"] < 0)
        else "includes zero"
    )
    return "\n".join(
        [
            f"{result['candidate']} vs {result['base']} on {result['env_id']} {result['options']}, "
            f"seeds {result['seeds'][0]}..{result['seeds'][1]} (paired, n={result['episodes']})",
            f"mean reward: {result['base_mean_reward']:.3f} -> "
            f"{result['candidate_mean_reward']:.3f}; "
            f"lift {span(reward)} [{verdict}]",
            f"fix accuracy: {100 * result['base_fix_accuracy']:.1f} % -> "
            f"{100 * result['candidate_fix_accuracy']:.1f} %; lift {span(fix, 100, ' pp')}",
            f"seeds better / worse / same: {result['seeds_better']} / {result['seeds_worse']} / "
            f"{result['episodes'] - result['seeds_better'] - result['seeds_worse']}",
        ]
    )
