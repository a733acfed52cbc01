"""The OpenEnv wire protocol: frames in, payloads out.

A WebSocket frame is a JSON object ``{"type": ..., "data": ...}``. Clients send
``reset`` (data: seed, episode_id, options, env options), ``step`` (data: the
action), ``state``, ``tools`` (a stackgym addition) and ``close``. The server
answers ``observation`` (data: observation, reward, done), ``state``, ``tools``
or ``error`` (data: code, message). HTTP bodies carry the same payloads.

Beyond OpenEnv, observation payloads also carry ``terminated``, ``truncated``
and ``info`` (Gymnasium's step result, with the episode ``outcome``), and the
observation dict is the complete observation model (``reward``, ``done`` and
``metadata`` included), so a client can rebuild exactly what the env returned
in-process. OpenEnv clients read only the keys they know.
"""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import BaseModel

from stackgym.core.models import Observation, StepResult
from stackgym.serve.sessions import invalid_json, validation_error

#: Keys of a reset's ``data`` that are not env options.
RESET_KEYS = frozenset({"seed", "episode_id", "options"})
#: Longest episode id a client may choose (OpenEnv's limit).
MAX_EPISODE_ID = 255


def _fallback(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)


def dumps(payload: Any) -> bytes:
    """JSON bytes of a payload; values JSON cannot hold are written as text."""
    return orjson.dumps(
        payload, default=_fallback, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
    )


def loads(raw: str | bytes) -> Any:
    """Parse a frame or body, or raise INVALID_JSON saying where it broke."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise invalid_json(str(exc)) from None


def frame(kind: str, data: Any) -> bytes:
    return dumps({"type": kind, "data": data})


def reset_payload(observation: Observation, info: dict[str, Any]) -> dict[str, Any]:
    """What a reset answers (OpenEnv's ResetResponse plus Gymnasium's extras)."""
    return {
        "observation": observation.model_dump(mode="json"),
        "reward": observation.reward,
        "done": observation.done,
        "terminated": False,
        "truncated": False,
        "info": info,
    }


def step_payload(result: StepResult) -> dict[str, Any]:
    """What a step answers: the step's reward, done = terminated or truncated."""
    return {
        "observation": result.observation.model_dump(mode="json"),
        "reward": result.reward,
        "done": result.terminated or result.truncated,
        "terminated": result.terminated,
        "truncated": result.truncated,
        "info": result.info,
    }


def parse_reset(
    data: Any, choices: dict[str, tuple[str, ...]]
) -> tuple[int | None, str | None, dict[str, Any] | None, dict[str, Any]]:
    """Split reset data into (seed, episode_id, options, env option overrides).

    Clients may set only the env options the registry lists under ``choices``,
    and only to a listed value: other settings (paths, budgets) belong to
    whoever runs the server.
    """
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise validation_error(
            f"reset data must be a JSON object, got {type(data).__name__}",
            'e.g. {"seed": 0} or {}',
        )
    seed = data.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise validation_error(
            f"seed must be a non-negative integer, got {seed!r}", "e.g. 0, or leave it out"
        )
    episode_id = data.get("episode_id")
    if episode_id is not None and (
        not isinstance(episode_id, str) or not 0 < len(episode_id) <= MAX_EPISODE_ID
    ):
        raise validation_error(
            f"episode_id must be a string of 1 to {MAX_EPISODE_ID} characters",
            "leave it out to get a fresh id",
        )
    options = data.get("options")
    if options is not None and not isinstance(options, dict):
        raise validation_error(
            f"options must be a JSON object, got {type(options).__name__}",
            "these are the episode options of env.reset(options=...)",
        )
    overrides = {k: v for k, v in data.items() if k not in RESET_KEYS}
    for name, value in overrides.items():
        allowed = choices.get(name)
        if allowed is None:
            settable = ", ".join(sorted(choices)) or "none"
            raise validation_error(
                f"unknown reset field {name!r}",
                f"reset takes seed, episode_id, options and the env options a client may set "
                f"({settable}); other settings are the server's (stackgym serve ENV --{name} ...)",
            )
        if value not in allowed:
            raise validation_error(
                f"env option {name}={value!r} is not one of {', '.join(map(str, allowed))}"
            )
    return seed, episode_id, options, overrides
