"""Counterfactual rollouts (`collect --branches K`): replayed prefixes, one other action, measured values."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest

from stackgym.core.agents import Agent, make_agent
from stackgym.core.errors import ConfigError
from stackgym.core.registry import make
from stackgym.core.rollout import run_episode
from stackgym.core.traces import TraceStore
from stackgym.train.collect import collect
from stackgym.train.experience import action_key, discover, state_key
from stackgym.train.tier1 import build_items
from train_helpers import small_config

OPTIONS = {"mode": "blind_diagnosis", "split": "train"}


@pytest.fixture(scope="module")
def branched(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    folder = tmp_path_factory.mktemp("branches")
    summary = collect(
        "stack_doctor", OPTIONS, base="heuristic", episodes=6, repeats=1, epsilon=0.0,
        out=folder, config=small_config(folder / "unused"), seed=40, branches=4,
    )  # fmt: skip
    return folder, summary


def _episodes(folder: Path) -> list:
    return list(TraceStore(folder / "traces").episodes())


def test_each_branch_replays_the_base_episode_then_plays_one_other_candidate(branched):
    folder, summary = branched
    episodes = _episodes(folder)
    own = {e.seed: e for e in episodes if e.agent.name == "explore:heuristic"}
    branches = [e for e in episodes if e.agent.name == "branch:heuristic"]
    assert sorted(own) == list(range(40, 46))
    assert summary["branch_episodes"] == len(branches) and len(branches) >= 6 * 4
    for episode in branches:
        base, at = own[episode.seed], episode.agent.params["branch_step"]
        assert [s.action for s in episode.steps[:at]] == [s.action for s in base.steps[:at]]
        taken = episode.steps[at].action
        assert taken == episode.agent.params["alternative"]
        assert action_key(taken, ("justification",)) != action_key(
            base.steps[at].action, ("justification",)
        )
        # The base agent's own pick is flagged apart from the action taken.
        flags = [(c["base_choice"], c["chosen"]) for c in episode.steps[at].candidates]
        assert flags.count((True, False)) == 1 and flags.count((False, True)) == 1


def test_the_branch_is_what_a_fresh_base_agent_plays_from_there(branched):
    """A branch's return is Q_base(s, a): after the alternative, the base agent finishes alone."""
    folder, _ = branched
    episode = next(e for e in _episodes(folder) if e.agent.name == "branch:heuristic")
    at = episode.agent.params["branch_step"]
    env = make("stack_doctor", **OPTIONS)
    agent = make_agent("heuristic", "stack_doctor")
    forced = [s.action for s in episode.steps[: at + 1]]

    class Forced(Agent):
        name = "forced"

        def reset(self, env, observation, info):
            agent.reset(env, observation, info)
            self.step = 0

        def act(self, observation):
            turn = agent.act(observation)
            self.step += 1
            return forced[self.step - 1] if self.step <= len(forced) else turn

        def close(self):
            agent.close()

    replay = run_episode(env, Forced(), seed=episode.seed)
    env.close()
    assert [s.action["type"] for s in replay.steps] == [s.action["type"] for s in episode.steps]
    assert replay.total_reward == episode.total_reward


def test_alternatives_are_spread_over_action_types(branched):
    folder, _ = branched
    first = defaultdict(set)
    for episode in _episodes(folder):
        if episode.agent.name == "branch:heuristic" and episode.agent.params["branch_step"] == 0:
            first[episode.seed].add(episode.agent.params["alternative"]["type"])
    # At the first step every seed offers inspect, ask_specialist, apply_fix and submit.
    assert all(len(kinds) == 4 for kinds in first.values()) and len(first) == 6


def test_alternatives_of_each_type_are_the_base_agents_best_scored_first(branched):
    """Per step and type, the alternatives played are the base agent's top-scored of that type."""
    folder, _ = branched
    episodes = _episodes(folder)
    own = {e.seed: e for e in episodes if e.agent.name == "explore:heuristic"}
    played = defaultdict(list)
    for episode in episodes:
        if episode.agent.name == "branch:heuristic":
            at = episode.agent.params["branch_step"]
            alternative = episode.agent.params["alternative"]
            played[(episode.seed, at, alternative["type"])].append(alternative)
    for (seed, at, kind), alternatives in played.items():
        others = [c for c in own[seed].steps[at].candidates if not c["base_choice"]]
        scores = sorted((c["score"] for c in others if c["action"]["type"] == kind), reverse=True)
        taken = sorted((next(c["score"] for c in others if c["action"] == a) for a in alternatives),
                       reverse=True)  # fmt: skip
        assert taken == scores[: len(taken)]
    # Step 0 offers four types, so each gets exactly its single best.
    assert all(len(v) == 1 for (_, at, _), v in played.items() if at == 0)


def test_experiences_of_a_branch_start_at_the_branch_and_pair_with_the_base_state(branched):
    folder, _ = branched
    config = small_config(folder / "unused")
    corpus = discover(folder, config)
    experiences = corpus.experiences(config)
    by_episode = defaultdict(list)
    for e in experiences:
        by_episode[e.episode_id].append(e)
    for episode in corpus.episodes:
        steps = [e.step for e in by_episode[episode.episode_id]]
        at = (
            episode.agent.params.get("branch_step", 0) if episode.agent.name[:7] == "branch:" else 0
        )
        assert steps == list(range(at, len(episode.steps)))
    # Every branch's first experience shares its state with the base episode's step there.
    groups = defaultdict(set)
    for e in experiences:
        groups[state_key(e, "state")].add(e.agent)
    first = {e.episode_id: e for e in reversed(experiences) if e.agent == "branch:heuristic"}
    assert first and all(
        "explore:heuristic" in groups[state_key(e, "state")] for e in first.values()
    )
    items = build_items(experiences, config)
    assert items.stats["pairs"] > 0


def test_negative_branches_are_refused(tmp_path: Path):
    with pytest.raises(ConfigError, match="branches must be >= 0"):
        collect(
            "stack_doctor", OPTIONS, base="heuristic", episodes=1, repeats=1, epsilon=0.0,
            out=tmp_path, config=small_config(tmp_path / "unused"), branches=-1,
        )  # fmt: skip


def test_repeats_with_branches_are_refused_before_anything_is_written(tmp_path: Path):
    with pytest.raises(ConfigError, match="play each alternative once") as raised:
        collect(
            "stack_doctor", OPTIONS, base="heuristic", episodes=1, repeats=3, epsilon=0.0,
            out=tmp_path, config=small_config(tmp_path / "unused"), branches=2,
        )  # fmt: skip
    assert "drop --repeats" in raised.value.hint
    assert not (tmp_path / "traces").exists()
