"""Validation of env options shared by the sandbox environments."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from stackgym.core.errors import ConfigError

Config = TypeVar("Config", bound=BaseModel)


def validate_options(env_id: str, model: type[Config], options: dict[str, Any]) -> Config:
    """``options`` as ``model``, or a :class:`ConfigError` naming the bad settings.

    A ``seed`` option is refused with a pointer to ``data_seed``: the episode
    seed belongs to ``reset(seed=...)``, not to the env's construction.
    """
    if "seed" in options:
        raise ConfigError(
            f"{env_id} has no `seed` option",
            "the data snapshot's seed is `data_seed`; the episode seed goes to reset(seed=...) "
            "(or --seed on the command line)",
        )
    try:
        return model.model_validate(options)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'options'}: {e['msg']}"
            for e in exc.errors(include_url=False)[:5]
        )
        raise ConfigError(
            f"invalid {env_id} options: {problems}", "see `stackgym envs` for the options"
        ) from None


def episode_options(
    base: BaseModel, options: dict[str, Any], allowed: tuple[str, ...]
) -> dict[str, Any] | None:
    """``base``'s settings with a ``reset()``'s per-episode ``options`` applied (None: none given).

    Options outside ``allowed`` change what the env was built on, so they are
    refused: making a new env is the way to change them.
    """
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ConfigError(
            f"reset() options {unknown} cannot change per episode",
            f"per-episode options: {', '.join(allowed)}; make a new env for the rest",
        )
    return {**base.model_dump(), **options} if options else None
