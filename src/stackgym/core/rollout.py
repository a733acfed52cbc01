"""Play one episode of an agent in an environment and record it as a trace."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel

from stackgym.core.agents import Agent, AgentTurn
from stackgym.core.env import Env
from stackgym.core.errors import InfraError
from stackgym.core.models import StepResult
from stackgym.core.traces import EpisodeRecord, StepRecord, TraceStore, Usage
from stackgym.version import __version__

#: Hard cap on steps per episode, whatever the env's own budget, so a buggy
#: env or agent can never loop forever.
DEFAULT_MAX_STEPS = 1_000


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
        seed: int | None,
        options: dict[str, Any] | None,
        run_id: str | None,
    ) -> None:
        self.env = env
        self.agent = agent
        self.options = dict(options or {})
        self.run_id = run_id
        self.started_at = datetime.now(UTC)
        self.clock = time.perf_counter()
        self.observation, self.reset_info = env.reset(seed=seed, options=self.options)
        agent.reset(env, self.observation, self.reset_info)
        self.steps: list[StepRecord] = []
        self.usage = Usage()
        self.error: str | None = None
        self.reset_observation = self.observation.model_dump(mode="json")
        self.last: StepResult | None = None

    def apply(self, turn: AgentTurn, agent_seconds: float) -> bool:
        """Step the env with ``turn``; return True when the episode ended."""
        started = time.perf_counter()
        action = turn.action
        result = self.env.step(action)
        env_seconds = time.perf_counter() - started
        if turn.usage is not None:
            self.usage = self.usage + turn.usage
        self.steps.append(
            StepRecord(
                index=len(self.steps),
                action=_recordable(action),
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

    def finish(self, *, truncated_by_cap: bool = False) -> EpisodeRecord:
        state = self.env.state
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
    recorder = _Recorder(env, agent, seed=seed, options=options, run_id=run_id)
    ended = False
    while not ended and len(recorder.steps) < max_steps:
        started = time.perf_counter()
        try:
            turn = _as_turn(agent.act(recorder.observation))
        except InfraError as exc:
            recorder.error = str(exc)
            break
        ended = recorder.apply(turn, time.perf_counter() - started)
    episode = recorder.finish(truncated_by_cap=not ended and recorder.error is None)
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
) -> EpisodeRecord:
    """Async :func:`run_episode`: awaits ``agent.aact`` so many episodes can overlap."""
    recorder = _Recorder(env, agent, seed=seed, options=options, run_id=run_id)
    ended = False
    while not ended and len(recorder.steps) < max_steps:
        started = time.perf_counter()
        try:
            turn = _as_turn(await agent.aact(recorder.observation))
        except InfraError as exc:
            recorder.error = str(exc)
            break
        ended = recorder.apply(turn, time.perf_counter() - started)
    episode = recorder.finish(truncated_by_cap=not ended and recorder.error is None)
    if traces is not None:
        traces.write(episode)
    return episode
