"""The environment protocol, registry, checker, agents, rollouts and stores."""

from stackgym.core.agents import Agent, AgentTurn, make_agent, register_agent, register_agent_family
from stackgym.core.checker import CheckReport, check_env
from stackgym.core.env import Env, ResetNeeded
from stackgym.core.errors import (
    ActionError,
    ConfigError,
    DataError,
    InfraError,
    StackgymError,
    TraceSchemaError,
    UnknownNameError,
)
from stackgym.core.models import Action, EnvState, Observation, StepResult
from stackgym.core.registry import EnvSpec, make, register, registry
from stackgym.core.results import ResultStore, RunRecord
from stackgym.core.rollout import arun_episode, run_episode
from stackgym.core.tools import ActionSet, tool_spec
from stackgym.core.traces import AgentInfo, EpisodeRecord, StepRecord, TraceStore, Usage

__all__ = [
    "Action",
    "ActionError",
    "ActionSet",
    "Agent",
    "AgentInfo",
    "AgentTurn",
    "CheckReport",
    "ConfigError",
    "DataError",
    "Env",
    "EnvSpec",
    "EnvState",
    "EpisodeRecord",
    "InfraError",
    "Observation",
    "ResetNeeded",
    "ResultStore",
    "RunRecord",
    "StackgymError",
    "StepRecord",
    "StepResult",
    "TraceSchemaError",
    "TraceStore",
    "UnknownNameError",
    "Usage",
    "arun_episode",
    "check_env",
    "make",
    "make_agent",
    "register",
    "register_agent",
    "register_agent_family",
    "registry",
    "run_episode",
    "tool_spec",
]
