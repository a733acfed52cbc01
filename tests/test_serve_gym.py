"""Gymnasium: every env under stackgym/<env>-v1 passes Gymnasium's own checker."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import warnings

import gymnasium
import pytest
from gymnasium.utils.env_checker import check_env

from serve_harness import (
    ALL_ENV_IDS,
    play_in_process,
    running_server,
    scripted_actions,
    subprocess_env,
)
from stackgym.serve import ServeConfig
from stackgym.serve.gym import gym_id, register_gym_envs

pytestmark = pytest.mark.xdist_group("serve-gym")

register_gym_envs()


@pytest.mark.parametrize("env_id", ALL_ENV_IDS)
def test_gymnasium_env_checker_passes_without_warnings(env_id: str) -> None:
    gc.collect()  # garbage left by earlier tests must not warn inside the strict block
    env = gymnasium.make(gym_id(env_id))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            check_env(env.unwrapped)
    finally:
        env.close()


@pytest.mark.parametrize("env_id", ALL_ENV_IDS)
def test_gymnasium_episode_is_the_json_of_the_in_process_one(env_id: str) -> None:
    seed = 3
    actions = scripted_actions(env_id, seed)
    expected = play_in_process(env_id, seed, actions)
    env = gymnasium.make(gym_id(env_id))
    try:
        observation, info = env.reset(seed=seed)
        assert env.observation_space.contains(observation)
        played = [{"observation": json.loads(observation), "reward": None, "done": False}]
        assert info["seed"] == seed
        for action in actions:
            text = json.dumps(action)
            assert env.action_space.contains(text)
            observation, reward, terminated, truncated, info = env.step(text)
            assert env.observation_space.contains(observation)
            played.append(
                {
                    "observation": json.loads(observation),
                    "reward": reward,
                    "done": terminated or truncated,
                }
            )
            if terminated or truncated:
                assert "outcome" in info
                break
    finally:
        env.close()
    assert played == expected


def test_gymnasium_env_with_options_and_ansi_render() -> None:
    env = gymnasium.make(gym_id("corridor"), layout="long", render_mode="ansi")
    observation, _ = env.reset(seed=0, options={"start": 5})
    assert json.loads(observation)["position"] == 5
    assert len(json.loads(observation)["cells"]) == 8
    assert json.loads(env.render())["seed"] == 0
    env.close()


def test_non_ascii_observations_stay_inside_the_space() -> None:
    env = gymnasium.make(gym_id("lockbox"))
    env.reset(seed=0)
    observation, *_ = env.step('{"type": "été"}')
    assert env.observation_space.contains(observation)
    assert "\\u00e9" in observation
    env.close()


def test_gymnasium_env_can_play_a_served_env() -> None:
    with running_server(ServeConfig.for_env("lockbox")) as url:
        remote = gymnasium.make(gym_id("lockbox"), url=url)
        local = gymnasium.make(gym_id("lockbox"))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                check_env(remote.unwrapped)
            remote = gymnasium.make(gym_id("lockbox"), url=url)
            assert remote.reset(seed=4)[0] == local.reset(seed=4)[0]
            action = '{"type": "reveal", "position": 1}'
            assert remote.step(action)[:4] == local.step(action)[:4]
        finally:
            remote.close()
            local.close()


def test_module_path_make_registers_on_import() -> None:
    code = (
        "import serve_envs, gymnasium, json\n"
        "env = gymnasium.make('stackgym.serve.gym:stackgym/lockbox-v1')\n"
        "obs, info = env.reset(seed=2)\n"
        "print(json.loads(obs)['guesses_left'], info['seed'])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=subprocess_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.split() == ["3", "2"]
