"""The registry: stackgym.make, stackgym.registry, and the agent registry."""

from __future__ import annotations

import pytest

import stackgym
from stackgym.core import ConfigError, UnknownNameError, make_agent
from stackgym.core.registry import register, registry


@pytest.fixture
def lockbox_registered():
    register("lockbox-test", "toy_env:Lockbox", description="test lockbox")
    yield "lockbox-test"
    registry.remove("lockbox-test")


def test_make_builds_a_registered_env_with_kwargs(lockbox_registered):
    env = stackgym.make(lockbox_registered, guesses=5)
    env.reset(seed=0)
    assert env.left == 5
    assert env.settings == {"guesses": 5}
    assert lockbox_registered in stackgym.registry


def test_unknown_env_id_error_lists_known_ids(lockbox_registered):
    with pytest.raises(UnknownNameError) as info:
        stackgym.make("no-such-env")
    assert "no-such-env" in str(info.value)
    assert lockbox_registered in info.value.hint


def test_unknown_env_option_is_a_config_error_naming_it(lockbox_registered):
    with pytest.raises(ConfigError, match="colour"):
        stackgym.make(lockbox_registered, colour="blue")


def test_unknown_agent_error_lists_the_agents_of_that_env(lockbox_registered):
    with pytest.raises(UnknownNameError, match="agent for 'lockbox-test'"):
        make_agent("telepath", lockbox_registered)
