"""``stackgym.train.lift``: the paired comparison behind the scorer-lift measurement.

The expected figures are recomputed here independently: scipy's own one-sample
t interval, and each agent's episodes replayed seed by seed with the env and
``run_episode``, their actions compared step by step in the test.
"""

from __future__ import annotations

import random

import pytest
from scipy import stats

from stackgym.core.agents import make_agent
from stackgym.core.registry import make
from stackgym.core.rollout import run_episode
from stackgym.train.lift import compare, describe, excludes_zero, first_difference, interval

ENV = "stack_doctor"
OPTIONS = {"mode": "blind_diagnosis", "split": "eval"}
FREE = ("justification", "reasoning", "message")


def _replay(agent_name: str, seeds: range) -> list[dict]:
    """Each seed's reward, fix and actions (free text dropped), played here."""
    env = make(ENV, **OPTIONS)
    agent = make_agent(agent_name, ENV)
    out = []
    try:
        for seed in seeds:
            episode = run_episode(env, agent, seed=seed)
            actions = [
                {k: v for k, v in step.action.items() if k not in FREE} for step in episode.steps
            ]
            fix = bool(episode.outcome["metrics"]["fix_correct"])
            out.append({"reward": episode.total_reward, "fix": fix, "actions": actions})
    finally:
        env.close()
    return out


def test_interval_is_scipys_one_sample_t_interval():
    rng = random.Random(7)
    differences = [rng.gauss(0.4, 2.0) for _ in range(200)]
    ours = interval(differences)
    theirs = stats.ttest_1samp(differences, 0.0).confidence_interval(0.95)
    assert ours["n"] == 200
    assert ours["mean"] == pytest.approx(sum(differences) / 200)
    assert ours["low"] == pytest.approx(theirs.low)
    assert ours["high"] == pytest.approx(theirs.high)
    assert interval([1.5, 1.5, 1.5]) == {"mean": 1.5, "low": 1.5, "high": 1.5, "n": 3}
    assert interval([2.0]) == {"mean": 2.0, "low": None, "high": None, "n": 1}
    assert excludes_zero({"low": 0.1, "high": 0.5}) and excludes_zero({"low": -3, "high": -1})
    assert not excludes_zero({"low": -0.1, "high": 0.5})
    assert not excludes_zero({"low": None, "high": None})


def test_first_difference_finds_the_first_step_that_differs():
    assert first_difference(["a", "b", "c"], ["a", "b", "c"]) is None
    assert first_difference(["a", "b", "c"], ["a", "x", "c"]) == 1
    assert first_difference(["a", "b"], ["a", "b", "c"]) == 2  # one stopped earlier
    assert first_difference([], ["a"]) == 0


def test_the_base_policy_against_itself_shows_no_lift_and_no_deviation():
    seeds = range(10, 40)
    result = compare(
        ENV, OPTIONS, base="heuristic", candidate=make_agent("heuristic", ENV), episodes=30, seed=10
    )
    replayed = _replay("heuristic", seeds)
    assert result["seeds"] == [10, 39]
    assert result["base_mean_reward"] == pytest.approx(sum(r["reward"] for r in replayed) / 30)
    assert result["base_fix_accuracy"] == pytest.approx(sum(r["fix"] for r in replayed) / 30)
    assert result["reward_lift"] == {"mean": 0.0, "low": 0.0, "high": 0.0, "n": 30}
    assert result["seeds_better"] == result["seeds_worse"] == result["seeds_deviated"] == 0
    assert result["deviations"] == []
    text = describe(result)
    assert "lift +0.000 (95 % CI +0.000 to +0.000) [includes zero]" in text
    assert "never left the base agent's path" in text


def test_oracle_against_heuristic_every_changed_seed_is_in_one_deviation_group():
    seeds = range(0, 80)
    result = compare(
        ENV, OPTIONS, base="heuristic", candidate=make_agent("oracle", ENV), episodes=80
    )
    base, oracle = _replay("heuristic", seeds), _replay("oracle", seeds)

    differences = [o["reward"] - b["reward"] for b, o in zip(base, oracle, strict=True)]
    fixes = [int(o["fix"]) - int(b["fix"]) for b, o in zip(base, oracle, strict=True)]
    assert result["reward_lift"]["mean"] == pytest.approx(sum(differences) / 80)
    assert result["fix_accuracy_lift"]["mean"] == pytest.approx(sum(fixes) / 80)
    assert result["candidate_fix_accuracy"] == 1.0  # the oracle always fixes
    assert result["seeds_better"] == sum(1 for d in differences if d > 0)
    assert excludes_zero(result["fix_accuracy_lift"])  # the heuristic misses some incidents
    assert "[excludes zero]" in describe(result).splitlines()[2]

    # Where each seed first left the heuristic's path, found here step by step.
    expected: dict[tuple[int, str, str], list[float]] = {}
    for b, o, change in zip(base, oracle, differences, strict=True):
        if b["actions"] == o["actions"]:
            continue
        step = 0
        while b["actions"][step] == o["actions"][step]:
            step += 1  # both episodes end with a submission, so neither is a prefix
        key = (step, b["actions"][step]["type"], o["actions"][step]["type"])
        expected.setdefault(key, []).append(change)
    groups = {(g["step"], g["base_action"], g["candidate_action"]): g for g in result["deviations"]}
    assert set(groups) == set(expected)
    for key, changes in expected.items():
        assert groups[key]["seeds"] == len(changes)
        assert groups[key]["total_change"] == pytest.approx(sum(changes))
        assert groups[key]["better"] == sum(1 for c in changes if c > 0)
    assert result["seeds_deviated"] == sum(len(c) for c in expected.values())
    assert sum(g["fixes_gained"] for g in groups.values()) == sum(1 for f in fixes if f > 0)
    assert sum(g["fixes_lost"] for g in groups.values()) == 0
    totals = [abs(g["total_change"]) for g in result["deviations"]]
    assert totals == sorted(totals, reverse=True)  # the decisions that matter most first
    text = describe(result, top=1)
    first = result["deviations"][0]
    assert (
        f"step {first['step']}: {first['base_action']} -> {first['candidate_action']}: "
        f"{first['seeds']} seeds" in text
    )
    if len(result["deviations"]) > 1:
        assert f"{len(result['deviations']) - 1} more group(s)" in text
