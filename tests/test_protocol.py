"""The environment protocol: reset/step/state, parsing of untrusted actions, tools."""

from __future__ import annotations

import json

import pytest

from stackgym.core import ActionSet, ResetNeeded, StackgymError, tool_spec
from toy_env import Guess, Lockbox, LockboxObservation, Reveal


def test_reset_with_same_seed_gives_same_observation_and_episode():
    a, b = Lockbox(), Lockbox()
    obs_a, info_a = a.reset(seed=7)
    obs_b, info_b = b.reset(seed=7)
    assert obs_a == obs_b and a.code == b.code
    assert info_a["seed"] == info_b["seed"] == 7
    assert info_a["episode_id"] != info_b["episode_id"]


def test_unseeded_resets_follow_the_last_explicit_seed():
    a, b = Lockbox(), Lockbox()
    a.reset(seed=3)
    b.reset(seed=3)
    codes_a = [(a.reset(), a.code)[1] for _ in range(5)]
    codes_b = [(b.reset(), b.code)[1] for _ in range(5)]
    assert codes_a == codes_b
    assert len(set(codes_a)) > 1


def test_step_returns_gymnasium_five_tuple_and_observation_carries_done_and_reward():
    env = Lockbox()
    env.reset(seed=1)
    obs, reward, terminated, truncated, info = env.step(Guess(code=env.code))
    assert isinstance(obs, LockboxObservation)
    assert (reward, terminated, truncated) == (1.0, True, False)
    assert obs.done and obs.reward == 1.0
    assert info["outcome"]["passed"] is True


@pytest.mark.parametrize(
    "raw",
    [
        {"type": "reveal", "position": 1},
        '{"type": "reveal", "position": 1}',
        {"name": "reveal", "arguments": '{"position": 1}'},
        {"name": "reveal", "arguments": {"position": 1}},
        Reveal(position=1),
    ],
)
def test_every_action_form_is_accepted(raw):
    env = Lockbox()
    env.reset(seed=1)
    result = env.step(raw)
    assert "invalid_action" not in result.info
    assert result.observation.revealed == {"1": int(env.code[1])}


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ("not json", "not valid JSON"),
        ({"type": "open_sesame"}, "unknown action type 'open_sesame'"),
        ({"position": 1}, "no 'type' field"),
        ({"type": "reveal"}, "position: Field required"),
        ({"type": "reveal", "position": 9}, "position"),
        ({"type": "reveal", "position": 1, "extra": True}, "extra"),
        ({"type": "guess", "code": 123}, "code"),
        ([1, 2], "must be a JSON object"),
        ("x" * 250_000, "limit is 200,000"),
        ({"name": "guess", "arguments": "{oops"}, "not valid JSON"),
    ],
)
def test_malformed_actions_are_answered_with_the_reason_and_valid_actions(raw, fragment):
    env = Lockbox()
    env.reset(seed=1)
    result = env.step(raw)
    assert fragment in result.observation.error
    assert result.info["invalid_action"] == result.observation.error
    assert result.reward == -0.5
    assert not result.terminated
    assert env.state.step_count == 1


def test_unknown_action_message_lists_the_valid_tools():
    env = Lockbox()
    env.reset(seed=1)
    error = env.step({"type": "nope"}).observation.error
    assert '"type": "reveal"' in error and '"type": "guess"' in error


def test_actions_after_the_end_are_refused_and_keep_the_episode_ended():
    env = Lockbox()
    env.reset(seed=2)
    env.step(Guess(code=env.code))
    result = env.step(Reveal(position=0))
    assert "episode is over" in result.observation.error
    assert result.terminated and result.observation.done


def test_step_before_reset_raises_reset_needed():
    with pytest.raises(ResetNeeded, match="reset"):
        Lockbox().step({"type": "reveal", "position": 0})


def test_negative_seed_is_refused_with_a_message():
    with pytest.raises(StackgymError, match="non-negative integer"):
        Lockbox().reset(seed=-1)


def test_state_tracks_episode_bookkeeping():
    env = Lockbox()
    env.reset(seed=4)
    env.step(Reveal(position=0))
    env.step({"type": "guess", "code": "xyz"})
    state = env.state
    assert state.seed == 4 and state.step_count == 2 and not state.done
    assert state.total_reward == pytest.approx(-0.1 - 0.5)
    assert json.loads(state.model_dump_json())["env_id"] == "lockbox"


def test_tool_specs_are_openai_function_schemas_generated_from_the_action_models():
    tools = Lockbox().tools()
    assert [t["function"]["name"] for t in tools] == ["reveal", "guess"]
    reveal = tool_spec(Reveal)
    assert reveal["type"] == "function"
    params = reveal["function"]["parameters"]
    assert params["required"] == ["position"]
    assert params["properties"]["position"] == {
        "type": "integer",
        "minimum": 0,
        "maximum": 2,
        "description": "0, 1 or 2",
    }
    assert params["additionalProperties"] is False
    assert "type" not in params["properties"]
    assert reveal["function"]["description"] == "Reveal the digit at one position of the code."


def test_action_set_refuses_two_tools_with_one_name():
    with pytest.raises(TypeError, match="share the tool name"):
        ActionSet([Reveal, Reveal])


def test_observation_serialises_to_json_and_back():
    env = Lockbox()
    env.reset(seed=5)
    obs = env.step(Reveal(position=2)).observation
    assert LockboxObservation.model_validate_json(obs.model_dump_json()) == obs
