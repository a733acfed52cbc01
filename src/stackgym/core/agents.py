"""The agent protocol and the agent registry.

An agent sees observations and returns actions. Baselines are registered per
environment (``oracle`` for Stack Doctor is not ``oracle`` for metrics);
families such as ``openai:MODEL`` or ``scorer:BASE`` are registered by prefix
and work on every environment.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from stackgym.core.errors import UnknownNameError
from stackgym.core.registry import load_object
from stackgym.core.traces import AgentInfo, ToolCall, Usage

if TYPE_CHECKING:
    from stackgym.core.env import Env
    from stackgym.core.models import Observation
    from stackgym.core.tools import ActionLike


@dataclass
class AgentTurn:
    """An action plus what it cost and why, for the trace."""

    action: ActionLike
    reasoning: str | None = None
    usage: Usage | None = None
    tool_calls: list[ToolCall] = field(default_factory=list)
    candidates: list[dict[str, Any]] | None = None


class Agent(ABC):
    """A policy. Subclasses implement :meth:`act` (or :meth:`aact` for I/O-bound ones)."""

    name: str = "agent"
    model: str | None = None

    def info(self) -> AgentInfo:
        """How traces name this agent."""
        return AgentInfo(name=self.name, model=self.model, params=self.params())

    def params(self) -> dict[str, Any]:
        """Settings worth recording (temperature, base agent…)."""
        return {}

    def reset(self, env: Env, observation: Observation, info: dict[str, Any]) -> None:
        """Called at the start of every episode. Scripted baselines may read ``env``."""

    @abstractmethod
    def act(self, observation: Observation) -> ActionLike | AgentTurn:
        """Choose the next action."""

    async def aact(self, observation: Observation) -> ActionLike | AgentTurn:
        """Async variant; LLM agents override it. Defaults to :meth:`act`."""
        return self.act(observation)

    def close(self) -> None:
        """Release clients and connections."""


_AGENTS: dict[tuple[str, str], tuple[str, str]] = {}
_FAMILIES: dict[str, tuple[str, str]] = {}
_builtins_loaded = False


def register_agent(env_id: str, name: str, factory: str, description: str = "") -> None:
    """Register a baseline ``name`` for ``env_id``; ``factory`` is ``"module:callable"``."""
    _AGENTS[(env_id, name)] = (factory, description)


def unregister_agent(env_id: str, name: str) -> None:
    """Forget agent ``name`` of ``env_id`` (tests and plugins that clean up)."""
    _AGENTS.pop((env_id, name), None)


def register_agent_family(prefix: str, factory: str, description: str = "") -> None:
    """Register ``prefix:ARG`` agents; the factory is called as ``factory(ARG, env_id, **kw)``."""
    _FAMILIES[prefix] = (factory, description)


def _load_builtins() -> None:
    global _builtins_loaded
    if not _builtins_loaded:
        _builtins_loaded = True
        importlib.import_module("stackgym.envs")
        importlib.import_module("stackgym.agents")


def agent_names(env_id: str) -> dict[str, str]:
    """Names usable with ``make_agent`` for ``env_id``, with descriptions."""
    _load_builtins()
    names = {name: desc for (env, name), (_, desc) in _AGENTS.items() if env == env_id}
    names.update({f"{prefix}:…": desc for prefix, (_, desc) in _FAMILIES.items()})
    return dict(sorted(names.items()))


def make_agent(name: str, env_id: str, **kwargs: Any) -> Agent:
    """Build an agent by name: ``oracle``, ``heuristic``, ``openai:gpt-4o-mini``…"""
    _load_builtins()
    prefix, sep, argument = name.partition(":")
    if sep and prefix in _FAMILIES:
        return load_object(_FAMILIES[prefix][0])(argument, env_id, **kwargs)
    entry = _AGENTS.get((env_id, name))
    if entry is None:
        raise UnknownNameError(f"agent for {env_id!r}", name, list(agent_names(env_id)))
    return load_object(entry[0])(**kwargs)
