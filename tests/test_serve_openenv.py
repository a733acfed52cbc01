"""The real openenv-core client drives every registered env on our server."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from openenv.core.env_server.types import Action as OpenEnvAction
from openenv.core.generic_client import GenericEnvClient

from serve_harness import (
    ALL_ENV_IDS,
    all_envs_config,
    play_in_process,
    running_server,
    scripted_actions,
)
from stackgym.serve import ServeConfig

pytestmark = pytest.mark.xdist_group("serve-openenv")


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    with running_server(all_envs_config()) as url:
        yield url


def _play_with_openenv(base_url: str, seed: int, actions: list[dict]) -> list[dict]:
    with GenericEnvClient(base_url=base_url).sync() as client:
        first = client.reset(seed=seed)
        transcript = [{"observation": first.observation, "reward": None, "done": first.done}]
        for action in actions:
            result = client.step(action)
            transcript.append(
                {"observation": result.observation, "reward": result.reward, "done": result.done}
            )
            if result.done:
                break
        return transcript


@pytest.mark.parametrize("env_id", ALL_ENV_IDS)
def test_openenv_client_plays_the_same_episode_as_in_process(server_url: str, env_id: str) -> None:
    for seed in (0, 7):
        actions = scripted_actions(env_id, seed)
        expected = play_in_process(env_id, seed, actions)
        played = _play_with_openenv(f"{server_url}/envs/{env_id}", seed, actions)
        assert played == expected
        assert played[-1]["done"], "the scripted episode should end within its budget"


@pytest.mark.parametrize("env_id", ALL_ENV_IDS)
def test_openenv_client_reads_state_after_steps(server_url: str, env_id: str) -> None:
    actions = scripted_actions(env_id, 3, count=1)
    with GenericEnvClient(base_url=f"{server_url}/envs/{env_id}").sync() as client:
        client.reset(seed=3, episode_id="my-episode")
        client.step(actions[0])
        state = client.state()
    assert state["env_id"] == env_id
    assert state["seed"] == 3
    assert state["step_count"] == 1
    assert state["episode_id"] == "my-episode"


def test_openenv_async_client_at_the_root_of_a_one_env_server() -> None:
    async def play(url: str) -> tuple[dict, dict]:
        async with GenericEnvClient(base_url=url) as client:
            first = await client.reset(seed=11)
            second = await client.step({"type": "reveal", "position": 2})
            return first.observation, second.observation

    with running_server(ServeConfig.for_env("lockbox")) as url:
        first, second = asyncio.run(play(url))
    code = play_in_process("lockbox", 11, [])[0]["observation"]
    assert first == code
    assert second["revealed"] == {"2": second["revealed"]["2"]}
    assert second["text"] == f"digit 2 is {second['revealed']['2']}"


def test_openenv_client_sees_error_codes_and_keeps_its_session(server_url: str) -> None:
    with GenericEnvClient(base_url=f"{server_url}/envs/lockbox").sync() as client:
        with pytest.raises(RuntimeError, match="VALIDATION_ERROR"):
            client.reset(seed=-1)
        with pytest.raises(RuntimeError, match=r"no such option|unknown reset field 'colour'"):
            client.reset(seed=1, colour="red")
        with pytest.raises(RuntimeError, match="SESSION_ERROR"):
            client.step({"type": "reveal", "position": 0})
        assert client.reset(seed=1, guesses=1).observation["guesses_left"] == 1
        result = client.step({"type": "guess", "code": "nope"})
        assert result.reward == -0.5
        assert "invalid 'guess' action" in result.observation["error"]


def test_openenv_client_is_refused_past_the_session_limit() -> None:
    with running_server(ServeConfig.for_env("lockbox", max_sessions=2)) as url:
        first = GenericEnvClient(base_url=url).sync()
        second = GenericEnvClient(base_url=url).sync()
        third = GenericEnvClient(base_url=url).sync()
        with first, second:
            first.reset(seed=0)
            second.reset(seed=0)
            with pytest.raises(RuntimeError, match="CAPACITY_REACHED"), third:
                third.reset(seed=0)
        # Closing frees the slots.
        with GenericEnvClient(base_url=url).sync() as again:
            assert again.reset(seed=0).observation["guesses_left"] == 3


class OpenEnvReveal(OpenEnvAction):
    """An action written against openenv-core's own Action base class."""

    type: str = "reveal"
    position: int


def test_typed_openenv_actions_with_their_metadata_field_are_accepted(server_url: str) -> None:
    with GenericEnvClient(base_url=f"{server_url}/envs/lockbox").sync() as client:
        client.reset(seed=5)
        result = client.step(OpenEnvReveal(position=1))
    assert result.reward == -0.1
    assert result.observation["error"] is None
    assert "1" in result.observation["revealed"]
