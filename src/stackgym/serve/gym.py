"""Every stackgym environment as a Gymnasium env with text spaces.

>>> import gymnasium
>>> import stackgym.serve.gym  # registers stackgym/<env>-v1 for every env
>>> env = gymnasium.make("stackgym/stack_doctor-v1", mode="blind_diagnosis")
>>> observation, info = env.reset(seed=0)   # observation: JSON text of the model
>>> env.step('{"type": "inspect", "target": "logs"}')

The observation is the JSON text of the env's observation model (ASCII, non-ASCII
characters escaped, so it is always inside the space); the action is JSON text
(or a dict or action model, which pass straight through). Gymnasium's
``make("stackgym.serve.gym:stackgym/<env>-v1")`` imports this module itself.
With ``url=...`` the Gymnasium env plays a served env through
:mod:`stackgym.client` instead of an in-process one.
"""

from __future__ import annotations

import json
import string
from typing import Any, ClassVar

import gymnasium
from gymnasium import spaces

from stackgym.core.registry import make, registry
from stackgym.core.tools import MAX_RAW_ACTION_CHARS

#: Namespace and version of the Gymnasium ids: ``stackgym/<env>-v1``.
NAMESPACE = "stackgym"
VERSION = 1
#: Longest observation text the space admits (file contents can be long).
MAX_OBSERVATION_CHARS = 4_000_000
#: What JSON written with ``ensure_ascii`` is made of.
OBSERVATION_CHARSET = frozenset(chr(c) for c in range(0x20, 0x7F))
#: Actions may also carry the whitespace people and models put between tokens.
ACTION_CHARSET = OBSERVATION_CHARSET | frozenset(string.whitespace)


def gym_id(env_id: str) -> str:
    """The Gymnasium id of a stackgym env: ``stackgym/<env>-v1``."""
    return f"{NAMESPACE}/{env_id}-v{VERSION}"


def observation_text(observation: Any) -> str:
    """The observation as the ASCII JSON text the observation space holds."""
    return json.dumps(observation.model_dump(mode="json"), ensure_ascii=True)


class StackgymGymEnv(gymnasium.Env[str, str]):
    """A Gymnasium view of one stackgym env (in-process, or served with ``url``)."""

    # Text renders on demand; Gymnasium's checker asks for a frame rate all the same.
    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["ansi"], "render_fps": 1}

    def __init__(
        self,
        env_id: str,
        render_mode: str | None = None,
        url: str | None = None,
        token: str | None = None,
        **settings: Any,
    ) -> None:
        if render_mode not in (None, "ansi"):
            raise ValueError(f"render_mode must be None or 'ansi', got {render_mode!r}")
        self.render_mode = render_mode
        if url is None:
            self.env: Any = make(env_id, **settings)
        else:
            from stackgym.client import connect

            self.env = connect(url, env_id, token=token, **settings)
        self.observation_space = spaces.Text(
            max_length=MAX_OBSERVATION_CHARS, min_length=0, charset=OBSERVATION_CHARSET
        )
        self.action_space = spaces.Text(
            max_length=MAX_RAW_ACTION_CHARS, min_length=0, charset=ACTION_CHARSET
        )

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        super().reset(seed=seed)
        observation, info = self.env.reset(seed=seed, options=options)
        return observation_text(observation), info

    def step(self, action: Any) -> tuple[str, float, bool, bool, dict[str, Any]]:
        result = self.env.step(action)
        return (
            observation_text(result.observation),
            float(result.reward),
            bool(result.terminated),
            bool(result.truncated),
            result.info,
        )

    def render(self) -> str | None:
        if self.render_mode != "ansi":
            return None
        return self.env.state.model_dump_json(indent=2)

    def close(self) -> None:
        env = getattr(self, "env", None)
        if env is not None:
            env.close()
        super().close()


def register_gym_envs() -> list[str]:
    """Register ``stackgym/<env>-v1`` for every stackgym env not registered yet."""
    added = []
    for env_id in registry:
        name = gym_id(env_id)
        if name not in gymnasium.registry:
            gymnasium.register(
                id=name,
                entry_point="stackgym.serve.gym:StackgymGymEnv",
                kwargs={"env_id": env_id},
            )
            added.append(name)
    return added


register_gym_envs()
