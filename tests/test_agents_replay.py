"""replay:PATH plays recorded episodes back, step for step."""

from __future__ import annotations

import pytest

from stackgym.core import ConfigError, TraceStore, make_agent, run_episode
from test_rollout import RevealThenGuess, Stubborn
from toy_env import Lockbox


@pytest.fixture
def recorded(tmp_path):
    store = TraceStore(tmp_path / "traces")
    for seed in (3, 4):
        run_episode(Lockbox(), RevealThenGuess(), seed=seed, traces=store)
    run_episode(Lockbox(guesses=1), Stubborn(), seed=3, max_steps=2, traces=store)
    store.close()
    return tmp_path / "traces"


def test_replay_reproduces_the_recorded_actions_and_rewards(recorded):
    originals = {e.seed: e for e in TraceStore(recorded).episodes() if e.settings == {"guesses": 3}}
    for seed, original in originals.items():
        agent = make_agent(f"replay:{recorded}", "lockbox")
        replayed = run_episode(Lockbox(), agent, seed=seed)
        assert [s.action for s in replayed.steps] == [s.action for s in original.steps]
        assert [s.reward for s in replayed.steps] == [s.reward for s in original.steps]
        assert [s.reasoning for s in replayed.steps] == [s.reasoning for s in original.steps]
        assert replayed.passed is original.passed is True
        assert replayed.agent.params["episode_id"] == original.episode_id


def test_replay_prefers_the_episode_recorded_with_the_same_settings(recorded):
    agent = make_agent(f"replay:{recorded / 'traces.jsonl'}", "lockbox")
    replayed = run_episode(Lockbox(guesses=1), agent, seed=3, max_steps=2)
    assert [s.action for s in replayed.steps] == [{"type": "reveal", "position": 0}] * 2


def test_replay_of_a_seed_never_recorded_names_the_recorded_seeds(recorded):
    agent = make_agent(f"replay:{recorded}", "lockbox")
    with pytest.raises(ConfigError) as caught:
        run_episode(Lockbox(), agent, seed=99)
    assert "no recorded 'lockbox' episode has seed 99" in caught.value.message
    assert caught.value.hint == "recorded seeds: 3, 4"


def test_replay_that_runs_out_of_actions_ends_as_infra_error(recorded):
    agent = make_agent(f"replay:{recorded}", "lockbox")
    replayed = run_episode(Lockbox(guesses=1), agent, seed=3)  # recorded cut at 2 steps
    assert len(replayed.steps) == 2
    assert replayed.error is not None and "has no more actions" in replayed.error


@pytest.mark.parametrize(
    ("where", "fragment"),
    [("missing", "does not exist"), ("empty", "holds no episode of 'lockbox'")],
)
def test_replay_of_a_bad_path_is_a_config_error(tmp_path, where, fragment):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError) as caught:
        make_agent(f"replay:{tmp_path / where}", "lockbox")
    assert fragment in caught.value.message
