"""Does the trained scorer beat its base agent? A paired comparison by seed.

Both agents play the same seeds of the same environment (usually the held-out
split); per seed the difference of episode reward and of ``passed`` is taken,
and a t interval (scipy) over those differences says whether the lift is
distinguishable from zero. Pairing by seed removes the incident-to-incident
variance that dominates unpaired comparisons.

Where the lift comes from is reported too: per seed, the first step at which
the candidate's action differs from the base agent's (free-text fields such
as the justification aside), grouped by that step and the two action types.
A re-ranker's gains and losses are usually concentrated in a few such
decisions; this is the table to read before trusting, or distrusting, a lift.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from stackgym.core.agents import Agent, make_agent
from stackgym.core.registry import make
from stackgym.core.rollout import run_episode
from stackgym.train.config import FeatureConfig
from stackgym.train.experience import action_key

#: Action fields left out when two actions are compared (the justification…).
FREE_TEXT = FeatureConfig().free_text_fields


class Played(NamedTuple):
    """One seed's episode, as the paired comparison needs it."""

    reward: float
    #: 1.0 when the env's ``fix_correct`` metric (else ``passed``) is true.
    fix: float
    #: Each step's action, canonical JSON without free-text fields.
    actions: tuple[str, ...]


def _play(env_id: str, options: dict[str, Any], agent: Agent, seeds: Iterable[int]) -> list[Played]:
    env = make(env_id, **options)
    out = []
    try:
        for seed in seeds:
            episode = run_episode(env, agent, seed=seed)
            metrics = episode.outcome.get("metrics", {})
            fix = metrics.get("fix_correct", episode.passed)
            actions = tuple(action_key(step.action, FREE_TEXT) for step in episode.steps)
            out.append(Played(episode.total_reward, float(bool(fix)), actions))
    finally:
        env.close()
        agent.close()
    return out


def _kind(key: str | None) -> str:
    if key is None:
        return "(episode over)"
    try:
        action = json.loads(key)
    except ValueError:
        return "(text)"
    if isinstance(action, dict):
        return str(action.get("type") or action.get("name") or "(untyped)")
    return "(text)"


def first_difference(base: Sequence[str], other: Sequence[str]) -> int | None:
    """Index of the first step where two action sequences differ; None when equal."""
    for index, (a, b) in enumerate(zip(base, other, strict=False)):
        if a != b:
            return index
    return None if len(base) == len(other) else min(len(base), len(other))


def deviations(base: Sequence[Played], candidate: Sequence[Played]) -> list[dict[str, Any]]:
    """Seeds grouped by where the candidate first left the base agent's path.

    A group is (step, base action type, candidate action type); each has its
    seed count, how many gained or lost reward, the mean and total reward
    change and how many fixes were gained or lost. Largest total change first.
    """
    groups: dict[tuple[int, str, str], list[tuple[float, float]]] = {}
    for b, c in zip(base, candidate, strict=True):
        step = first_difference(b.actions, c.actions)
        if step is None:
            continue
        key = (
            step,
            _kind(b.actions[step] if step < len(b.actions) else None),
            _kind(c.actions[step] if step < len(c.actions) else None),
        )
        groups.setdefault(key, []).append((c.reward - b.reward, c.fix - b.fix))
    rows = []
    for (step, was, became), changes in groups.items():
        total = sum(r for r, _ in changes)
        rows.append(
            {
                "step": step,
                "base_action": was,
                "candidate_action": became,
                "seeds": len(changes),
                "better": sum(1 for r, _ in changes if r > 0),
                "worse": sum(1 for r, _ in changes if r < 0),
                "mean_change": total / len(changes),
                "total_change": total,
                "fixes_gained": sum(1 for _, f in changes if f > 0),
                "fixes_lost": sum(1 for _, f in changes if f < 0),
            }
        )
    return sorted(rows, key=lambda r: (-abs(r["total_change"]), r["step"], r["base_action"]))


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
    reward = [n.reward - b.reward for b, n in zip(base_runs, new_runs, strict=True)]
    fix = [n.fix - b.fix for b, n in zip(base_runs, new_runs, strict=True)]
    groups = deviations(base_runs, new_runs)
    return {
        "env_id": env_id,
        "options": options,
        "episodes": episodes,
        "seeds": [seed, seed + episodes - 1],
        "base": base,
        "candidate": candidate.name,
        "base_mean_reward": sum(b.reward for b in base_runs) / episodes,
        "candidate_mean_reward": sum(n.reward for n in new_runs) / episodes,
        "base_fix_accuracy": sum(b.fix for b in base_runs) / episodes,
        "candidate_fix_accuracy": sum(n.fix for n in new_runs) / episodes,
        "reward_lift": interval(reward),
        "fix_accuracy_lift": interval(fix),
        "seeds_better": sum(1 for d in reward if d > 0),
        "seeds_worse": sum(1 for d in reward if d < 0),
        "seeds_deviated": sum(g["seeds"] for g in groups),
        "deviations": groups,
    }


def excludes_zero(lift: dict[str, Any]) -> bool:
    """Whether a lift's interval lies wholly above or wholly below zero."""
    return lift["low"] is not None and (lift["low"] > 0 or lift["high"] < 0)


def describe(result: dict[str, Any], top: int = 6) -> str:
    """The comparison in a few lines of text, with the ``top`` largest deviation groups."""

    def span(lift: dict[str, Any], scale: float = 1.0, unit: str = "") -> str:
        if lift["low"] is None:
            return f"{lift['mean'] * scale:+.3f}{unit}"
        return (
            f"{lift['mean'] * scale:+.3f}{unit} "
            f"(95 % CI {lift['low'] * scale:+.3f} to {lift['high'] * scale:+.3f}{unit})"
        )

    def verdict(lift: dict[str, Any]) -> str:
        return "excludes zero" if excludes_zero(lift) else "includes zero"

    reward, fix = result["reward_lift"], result["fix_accuracy_lift"]
    lines = [
        f"{result['candidate']} vs {result['base']} on {result['env_id']} {result['options']}, "
        f"seeds {result['seeds'][0]}..{result['seeds'][1]} (paired, n={result['episodes']})",
        f"mean reward: {result['base_mean_reward']:.3f} -> "
        f"{result['candidate_mean_reward']:.3f}; "
        f"lift {span(reward)} [{verdict(reward)}]",
        f"fix accuracy: {100 * result['base_fix_accuracy']:.1f} % -> "
        f"{100 * result['candidate_fix_accuracy']:.1f} %; "
        f"lift {span(fix, 100, ' pp')} [{verdict(fix)}]",
        f"seeds better / worse / same: {result['seeds_better']} / {result['seeds_worse']} / "
        f"{result['episodes'] - result['seeds_better'] - result['seeds_worse']}",
    ]
    groups = result.get("deviations", [])
    if not groups:
        lines.append("the candidate never left the base agent's path")
        return "\n".join(lines)
    lines.append(
        f"where it left the base agent's path ({result['seeds_deviated']} seeds; "
        "step: base action -> candidate action):"
    )
    for g in groups[:top]:
        lines.append(
            f"  step {g['step']}: {g['base_action']} -> {g['candidate_action']}: "
            f"{g['seeds']} seeds, {g['better']} better / {g['worse']} worse, "
            f"{g['mean_change']:+.2f} each, {g['total_change']:+.1f} in all; "
            f"fixes +{g['fixes_gained']} / -{g['fixes_lost']}"
        )
    if len(groups) > top:
        rest = groups[top:]
        lines.append(
            f"  {len(rest)} more group(s): {sum(g['seeds'] for g in rest)} seeds, "
            f"{sum(g['total_change'] for g in rest):+.1f} in all"
        )
    return "\n".join(lines)
