"""stackgym.client: a served env behaves like the in-process one, sync and async."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator

import pytest

import stackgym
from serve_harness import ALL_ENV_IDS, all_envs_config, running_server, scripted_actions
from stackgym.client import (
    RemoteError,
    RemoteObservation,
    aconnect,
    connect,
    endpoints,
    observation_type_for,
    remote_env,
)
from stackgym.core import Agent, AgentTurn, arun_episode, run_episode
from stackgym.serve import ServeConfig
from toy_env import Guess, LockboxObservation, Reveal

pytestmark = pytest.mark.xdist_group("serve-client")


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with running_server(all_envs_config()) as base:
        yield base


class Scripted(Agent):
    """Plays a fixed list of actions (the same list in-process and remote)."""

    def __init__(self, actions: list[dict]) -> None:
        self.actions = actions
        self.index = 0

    def reset(self, env, observation, info) -> None:
        self.index = 0
        self.tools = [t["function"]["name"] for t in env.tools()]

    def act(self, observation) -> AgentTurn:
        action = self.actions[self.index]
        self.index += 1
        return AgentTurn(action=action)

    async def aact(self, observation) -> AgentTurn:
        return self.act(observation)


def _comparable(record) -> dict:
    data = record.model_dump(mode="json")
    for key in ("episode_id", "started_at", "duration_s"):
        data.pop(key)
    data["reset_info"].pop("episode_id", None)
    for step in data["steps"]:
        step.pop("agent_seconds")
        step.pop("env_seconds")
    return data


@pytest.mark.parametrize("env_id", ALL_ENV_IDS)
def test_run_episode_on_a_remote_env_records_the_same_episode(url: str, env_id: str) -> None:
    seed = 2
    actions = scripted_actions(env_id, seed)
    local = stackgym.make(env_id)
    try:
        expected = run_episode(local, Scripted(actions), seed=seed)
    finally:
        local.close()
    with connect(url, env_id) as remote:
        played = run_episode(remote, Scripted(actions), seed=seed)
        assert type(remote.reset(seed=seed)[0]) is type(local.reset(seed=seed)[0])
    assert _comparable(played) == _comparable(expected)
    assert played.total_reward == expected.total_reward
    assert played.outcome == expected.outcome


@pytest.mark.parametrize("env_id", ALL_ENV_IDS)
def test_arun_episode_on_an_async_remote_env(url: str, env_id: str) -> None:
    """The async client, driven by the same agent, gives the in-process rewards."""
    seed = 4
    actions = scripted_actions(env_id, seed)
    local = stackgym.make(env_id)
    try:
        expected = run_episode(local, Scripted(actions), seed=seed)
    finally:
        local.close()

    async def play() -> list[float]:
        async with await aconnect(url, env_id) as env:
            _, info = await env.reset(seed=seed)
            assert info["seed"] == seed
            assert await env.tools() == local.tools()
            rewards = []
            for action in actions:
                result = await env.step(action)
                rewards.append(result.reward)
                if result.terminated or result.truncated:
                    break
            state = await env.state()
            assert state.step_count == len(rewards)
            return rewards

    assert asyncio.run(play()) == [s.reward for s in expected.steps]


def test_async_episodes_overlap_on_one_server(url: str) -> None:
    async def one(seed: int) -> float:
        async with await aconnect(url, "lockbox") as env:
            await env.reset(seed=seed)
            result = await env.step(Reveal(position=seed % 3))
            return result.reward

    async def many() -> list[float]:
        return await asyncio.gather(*(one(seed) for seed in range(20)))

    assert asyncio.run(many()) == [-0.1] * 20


def test_remote_env_takes_models_json_text_and_tool_calls(url: str) -> None:
    with remote_env(url, "lockbox", guesses=2) as env:
        observation, _ = env.reset(seed=8)
        assert isinstance(observation, LockboxObservation)
        assert observation.guesses_left == 2
        code = "".join(
            str(env.step(Reveal(position=i)).observation.revealed[str(i)]) for i in range(3)
        )
        assert env.step('{"type": "reveal", "position": 0}').reward == -0.1
        result = env.step({"name": "guess", "arguments": f'{{"code": "{code}"}}'})
        assert result.terminated and result.reward == 1.0
        assert result.info["outcome"]["passed"] is True
        assert env.settings == {"guesses": 2}
        assert env.state.done


def test_arun_episode_plays_a_remote_env_to_a_pass(url: str) -> None:
    class Solver(Agent):
        def act(self, observation) -> AgentTurn:
            revealed = observation.revealed
            if len(revealed) < 3:
                return AgentTurn(action=Reveal(position=len(revealed)))
            return AgentTurn(action=Guess(code="".join(str(revealed[str(i)]) for i in range(3))))

    local = stackgym.make("lockbox")
    expected = run_episode(local, Solver(), seed=1)
    with connect(url, "lockbox") as env:
        record = asyncio.run(arun_episode(env, Solver(), seed=1))
    assert record.passed is True
    assert record.total_reward == expected.total_reward == pytest.approx(0.7)
    assert record.reset_observation == expected.reset_observation


def test_server_refusals_raise_remote_errors_with_the_code(url: str) -> None:
    with connect(url, "lockbox", guesses=7) as env, pytest.raises(RemoteError) as refused:
        env.reset()
    assert refused.value.code == "VALIDATION_ERROR"
    assert "guesses=7" in str(refused.value)
    with connect(url, "corridor") as env, pytest.raises(RemoteError, match="SESSION_ERROR"):
        env.step({"type": "look"})
    with pytest.raises(RemoteError) as unknown:
        connect(url, "chess").reset()
    assert "does not serve env 'chess'" in str(unknown.value)


def test_token_goes_with_every_connection() -> None:
    with running_server(ServeConfig.for_env("lockbox", token="abc")) as base:
        with pytest.raises(RemoteError, match="HTTP 401"):
            connect(base, "lockbox")
        with connect(base, "lockbox", token="abc") as env:
            assert env.reset(seed=0)[1]["seed"] == 0


def test_seedless_resets_follow_the_gymnasium_rule_remotely(url: str) -> None:
    local = stackgym.make("corridor")
    local.reset(seed=3)
    expected = [local.reset()[1]["seed"] for _ in range(3)]
    with connect(url, "corridor") as env:
        env.reset(seed=3)
        assert [env.reset()[1]["seed"] for _ in range(3)] == expected


def test_endpoints_accept_ws_http_and_env_paths() -> None:
    assert endpoints("http://h:1", "x") == ("http://h:1/envs/x", "ws://h:1/envs/x/ws")
    assert endpoints("ws://h:1/", "x") == ("http://h:1/envs/x", "ws://h:1/envs/x/ws")
    assert endpoints("https://h/envs/x", "x") == ("https://h/envs/x", "wss://h/envs/x/ws")
    assert endpoints("h:2", "x")[1] == "ws://h:2/envs/x/ws"
    with pytest.raises(stackgym.core.StackgymError, match="scheme"):
        endpoints("ftp://h", "x")


def test_unknown_env_classes_keep_every_observation_field() -> None:
    assert observation_type_for("lockbox") is LockboxObservation
    assert observation_type_for("not-registered-here") is RemoteObservation
    observation = RemoteObservation.model_validate({"text": "t", "novel": [1, 2]})
    assert observation.model_dump()["novel"] == [1, 2]


def test_many_episodes_through_one_connection_match_in_process(url: str) -> None:
    rng = random.Random(0)
    local = stackgym.make("corridor", layout="long")
    with connect(url, "corridor", layout="long") as env:
        for seed in range(10):
            assert env.reset(seed=seed)[0] == local.reset(seed=seed)[0]
            for _ in range(4):
                action = rng.choice(local.example_actions(rng))
                assert env.step(action) == local.step(action)
