"""Play one episode of an agent in an environment and record it as a trace."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import Executor
from datetime import UTC, datetime
from functools import partial
from typing import Any, TypeVar

from pydantic import BaseModel

from stackgym.core.agents import Agent, AgentTurn
from stackgym.core.env import Env
from stackgym.core.errors import InfraError
from stackgym.core.models import EnvState, Observation, StepResult
from stackgym.core.traces import EpisodeRecord, StepRecord, TraceStore, Usage
from stackgym.version import __version__

#: Hard cap on steps per episode, whatever the env's own budget, so a buggy
#: env or agent can never loop forever.
DEFAULT_MAX_STEPS = 1_000

_T = TypeVar("_T")


def _as_turn(decision: Any) -> AgentTurn:
    return decision if isinstance(decision, AgentTurn) else AgentTurn(action=decision)


def _recordable(action: Any) -> dict[str, Any] | str | None:
    if isinstance(action, BaseModel):
        return action.model_dump(mode="json")
    if isinstance(action, dict):
        return action
    if action is None:
        return None
    return action if isinstance(action, str) else repr(action)


class _Recorder:
    """Builds the :class:`EpisodeRecord` step by step (shared by sync and async)."""

    def __init__(
        self,
        env: Env,
        agent: Agent,
        *,
        options: dict[str, Any] | None,
        run_id: str | None,
    ) -> None:
        self.env = env
        self.agent = agent
        self.options = dict(options or {})
        self.run_id = run_id
        self.started_at = datetime.now(UTC)
        self.clock = time.perf_counter()
        self.steps: list[StepRecord] = []
        self.usage = Usage()
        self.error: str | None = None
        self.last: StepResult | None = None

    def begin(self, observation: Observation, reset_info: dict[str, Any]) -> None:
        """Take the reset's observation and info, and reset the agent."""
        self.observation, self.reset_info = observation, reset_info
        self.reset_observation = observation.model_dump(mode="json")
        self.agent.reset(self.env, observation, reset_info)

    def apply(self, turn: AgentTurn, agent_seconds: float) -> bool:
        """Step the env with ``turn``; return True when the episode ended."""
        started = time.perf_counter()
        result = self.env.step(turn.action)
        return self.record(turn, result, agent_seconds, time.perf_counter() - started)

    def record(
        self, turn: AgentTurn, result: StepResult, agent_seconds: float, env_seconds: float
    ) -> bool:
        """Record one step already taken; return True when the episode ended."""
        if turn.usage is not None:
            self.usage = self.usage + turn.usage
        self.steps.append(
            StepRecord(
                index=len(self.steps),
                action=_recordable(turn.action),
                observation=result.observation.model_dump(mode="json"),
                reward=result.reward,
                terminated=result.terminated,
                truncated=result.truncated,
                info=result.info,
                tool_calls=turn.tool_calls,
                usage=turn.usage,
                reasoning=turn.reasoning,
                candidates=turn.candidates,
                agent_seconds=agent_seconds,
                env_seconds=env_seconds,
            )
        )
        self.observation = result.observation
        self.last = result
        return result.terminated or result.truncated

    def finish(self, state: EnvState, *, truncated_by_cap: bool = False) -> EpisodeRecord:
        last = self.last
        outcome = dict(last.info.get("outcome", {})) if last is not None else {}
        if self.error is not None:
            outcome.setdefault("passed", None)
            outcome["infra_error"] = True
        return EpisodeRecord(
            episode_id=state.episode_id or "",
            run_id=self.run_id,
            env_id=self.env.env_id,
            settings=self.env.settings,
            options=self.options,
            seed=state.seed if state.seed is not None else -1,
            data_snapshot=state.data_snapshot,
            agent=self.agent.info(),
            reset_observation=self.reset_observation,
            reset_info={k: v for k, v in self.reset_info.items() if k != "episode_id"},
            steps=self.steps,
            total_reward=sum(s.reward for s in self.steps),
            terminated=bool(last and last.terminated),
            truncated=bool(last and last.truncated) or truncated_by_cap,
            outcome=outcome,
            usage=self.usage,
            error=self.error,
            started_at=self.started_at,
            duration_s=time.perf_counter() - self.clock,
            stackgym_version=__version__,
        )


def run_episode(
    env: Env,
    agent: Agent,
    *,
    seed: int | None = None,
    options: dict[str, Any] | None = None,
    run_id: str | None = None,
    max_steps: int = DEFAULT_MAX_STEPS,
    traces: TraceStore | None = None,
) -> EpisodeRecord:
    """Play one episode; an :class:`InfraError` from the agent ends it as an infra error."""
    recorder = _Recorder(env, agent, options=options, run_id=run_id)
    recorder.begin(*env.reset(seed=seed, options=recorder.options))
    ended = False
    while not ended and len(recorder.steps) < max_steps:
        started = time.perf_counter()
        try:
            turn = _as_turn(agent.act(recorder.observation))
        except InfraError as exc:
            recorder.error = str(exc)
            break
        ended = recorder.apply(turn, time.perf_counter() - started)
    episode = recorder.finish(env.state, truncated_by_cap=not ended and recorder.error is None)
    if traces is not None:
        traces.write(episode)
    return episode


async def arun_episode(
    env: Env,
    agent: Agent,
    *,
    seed: int | None = None,
    options: dict[str, Any] | None = None,
    run_id: str | None = None,
    max_steps: int = DEFAULT_MAX_STEPS,
    traces: TraceStore | None = None,
    env_executor: Executor | None = None,
    timeout_s: float | None = None,
) -> EpisodeRecord:
    """Async :func:`run_episode`: awaits ``agent.aact`` so many episodes can overlap.

    ``env_executor``, when given, runs the env's reset, steps and state there
    (one thread per env keeps thread-bound handles such as SQLite valid), so a
    slow env does not stall every other episode on the event loop.
    ``timeout_s`` bounds the whole episode's agent time: when it runs out the
    episode ends as an infrastructure error, with the steps taken so far.
    """
    loop = asyncio.get_running_loop()

    async def in_env(function: Callable[[], _T]) -> _T:
        if env_executor is None:
            return function()
        return await loop.run_in_executor(env_executor, function)

    deadline = None if timeout_s is None else loop.time() + timeout_s
    recorder = _Recorder(env, agent, options=options, run_id=run_id)
    recorder.begin(*await in_env(partial(env.reset, seed=seed, options=recorder.options)))
    ended = False
    while not ended and len(recorder.steps) < max_steps:
        started = time.perf_counter()
        try:
            if deadline is None:
                decision = await agent.aact(recorder.observation)
            else:
                async with asyncio.timeout_at(deadline):
                    decision = await agent.aact(recorder.observation)
            turn = _as_turn(decision)
        except InfraError as exc:
            recorder.error = str(exc)
            break
        except TimeoutError:
            recorder.error = f"the run exceeded its time limit of {timeout_s:g} s"
            break
        agent_seconds = time.perf_counter() - started
        started = time.perf_counter()
        result = await in_env(partial(env.step, turn.action))
        ended = recorder.record(turn, result, agent_seconds, time.perf_counter() - started)
    state = await in_env(lambda: env.state)
    episode = recorder.finish(state, truncated_by_cap=not ended and recorder.error is None)
    if traces is not None:
        traces.write(episode)
    return episode
