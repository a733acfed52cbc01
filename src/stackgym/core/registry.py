"""Registry of environments: ``stackgym.make(env_id, **kwargs)``.

Entries name their class by import path (``"package.module:Class"``) so that
listing environments imports nothing heavy. Third-party packages register
theirs through the ``stackgym.envs`` entry-point group, whose entries are
callables that call :func:`register`.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from stackgym.core.errors import ConfigError, StackgymError, UnknownNameError

if TYPE_CHECKING:
    from stackgym.core.env import Env


def load_object(path: str) -> Any:
    """Import ``"package.module:attribute"``."""
    module_name, _, attribute = path.partition(":")
    if not attribute:
        raise ValueError(f"import path {path!r} must look like 'package.module:attribute'")
    module = importlib.import_module(module_name)
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise ImportError(f"{module_name} has no attribute {attribute!r}") from None


@dataclass(frozen=True)
class EnvSpec:
    """How to build one registered environment."""

    id: str
    entry_point: str
    description: str = ""
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    #: Option name -> the values a user can choose (shown by ``stackgym envs``).
    choices: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: ``"module:function"`` summarising per-episode metrics (see core.metrics).
    metrics: str | None = None

    def load(self) -> type[Env]:
        return load_object(self.entry_point)

    def make(self, **kwargs: Any) -> Env:
        env_class = self.load()
        merged = {**self.kwargs, **kwargs}
        try:
            env = env_class(**merged)
        except TypeError as exc:
            raise ConfigError(
                f"cannot make {self.id!r} with options {sorted(merged)}: {exc}",
                f"see `stackgym envs` for the options of {self.id!r}",
            ) from None
        return env


class Registry(Mapping[str, EnvSpec]):
    """A read-only mapping of env id to :class:`EnvSpec`, filled by :func:`register`."""

    def __init__(self) -> None:
        self._specs: dict[str, EnvSpec] = {}
        self._plugins_loaded = False

    def _load_plugins(self) -> None:
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        importlib.import_module("stackgym.envs")
        for entry in entry_points(group="stackgym.envs"):
            entry.load()()

    def add(self, spec: EnvSpec) -> None:
        if spec.id in self._specs and self._specs[spec.id] != spec:
            raise StackgymError(f"environment id {spec.id!r} is already registered")
        self._specs[spec.id] = spec

    def remove(self, env_id: str) -> None:
        self._specs.pop(env_id, None)

    def __getitem__(self, env_id: str) -> EnvSpec:
        self._load_plugins()
        try:
            return self._specs[env_id]
        except KeyError:
            raise UnknownNameError("environment", env_id, list(self._specs)) from None

    def __iter__(self) -> Iterator[str]:
        self._load_plugins()
        return iter(sorted(self._specs))

    def __len__(self) -> int:
        self._load_plugins()
        return len(self._specs)


registry = Registry()


def register(
    env_id: str,
    entry_point: str,
    *,
    description: str = "",
    kwargs: Mapping[str, Any] | None = None,
    choices: Mapping[str, tuple[str, ...]] | None = None,
    metrics: str | None = None,
) -> EnvSpec:
    """Register an environment under ``env_id``.

    ``choices`` lists option values users pick from (``stackgym envs`` shows
    them and ``check-env`` checks each); ``metrics`` names the function that
    summarises per-episode metrics (see :mod:`stackgym.core.metrics`).
    """
    spec = EnvSpec(
        id=env_id,
        entry_point=entry_point,
        description=description,
        kwargs=dict(kwargs or {}),
        choices=dict(choices or {}),
        metrics=metrics,
    )
    registry.add(spec)
    return spec


def make(env_id: str, **kwargs: Any) -> Env:
    """Build a registered environment: ``stackgym.make("stack_doctor", mode=...)``."""
    return registry[env_id].make(**kwargs)
