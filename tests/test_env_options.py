"""The sandbox environments refuse bad options at construction with a message naming them."""

from __future__ import annotations

import pytest

import stackgym
from stackgym.core.errors import ConfigError


@pytest.mark.parametrize("env_id", ["metrics", "troubleshoot"])
def test_a_seed_option_is_refused_with_a_pointer_to_data_seed_and_reset(env_id: str) -> None:
    with pytest.raises(ConfigError) as caught:
        stackgym.make(env_id, seed=3)
    assert f"{env_id} has no `seed` option" in str(caught.value)
    assert "data_seed" in caught.value.hint and "reset(seed=" in caught.value.hint


@pytest.mark.parametrize("env_id", ["metrics", "troubleshoot"])
def test_an_unknown_or_mistyped_option_is_named(env_id: str) -> None:
    with pytest.raises(ConfigError) as caught:
        stackgym.make(env_id, max_turns="many", colour="blue")
    message = str(caught.value)
    assert message.startswith(f"invalid {env_id} options:")
    assert "max_turns" in message and "colour" in message
    assert "stackgym envs" in caught.value.hint


@pytest.mark.parametrize("env_id", ["metrics", "troubleshoot"])
def test_reset_refuses_options_that_cannot_change_per_episode(env_id: str) -> None:
    env = stackgym.make(env_id)
    try:
        with pytest.raises(ConfigError, match=r"reset\(\) options \['max_turns'\] cannot change"):
            env.reset(seed=0, options={"max_turns": 3})
    finally:
        env.close()
