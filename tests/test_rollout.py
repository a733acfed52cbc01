"""Rollouts: an agent plays an env, the episode is recorded in the trace store."""

from __future__ import annotations

import asyncio

from stackgym.core import Agent, AgentTurn, InfraError, TraceStore, Usage, arun_episode, run_episode
from toy_env import Lockbox, Reveal


class RevealThenGuess(Agent):
    """Reveals all three digits, then guesses the code it saw."""

    name = "reveal-then-guess"

    def act(self, observation):
        if len(observation.revealed) < 3:
            return AgentTurn(
                action=Reveal(position=len(observation.revealed)),
                reasoning="look first",
                usage=Usage(prompt_tokens=5, completion_tokens=1, calls=1),
            )
        code = "".join(str(observation.revealed[str(i)]) for i in range(3))
        return {"type": "guess", "code": code}


class BrokenProvider(Agent):
    name = "openai:down"

    def act(self, observation):
        raise InfraError("provider answered 401 Unauthorized")


class Stubborn(Agent):
    name = "stubborn"

    def act(self, observation):
        return Reveal(position=0)


def test_episode_is_recorded_with_every_step_and_written_to_the_store(tmp_path):
    store = TraceStore(tmp_path)
    record = run_episode(Lockbox(), RevealThenGuess(), seed=11, run_id="run-1", traces=store)
    assert record.passed is True
    assert len(record.steps) == 4
    assert record.total_reward == sum(s.reward for s in record.steps)
    assert record.steps[0].reasoning == "look first"
    assert record.usage.prompt_tokens == 15 and record.usage.calls == 3
    assert record.seed == 11 and record.run_id == "run-1"
    assert record.settings == {"guesses": 3}
    assert list(TraceStore(tmp_path).episodes()) == [record]


def test_same_seed_same_agent_gives_the_same_trace():
    first = run_episode(Lockbox(), RevealThenGuess(), seed=5)
    second = run_episode(Lockbox(), RevealThenGuess(), seed=5)
    strip = ["episode_id", "started_at", "duration_s", "steps"]
    assert first.model_dump(exclude=set(strip)) == second.model_dump(exclude=set(strip))
    assert [s.observation for s in first.steps] == [s.observation for s in second.steps]


def test_infra_error_ends_the_episode_as_infra_not_as_a_failure():
    record = run_episode(Lockbox(), BrokenProvider(), seed=1)
    assert record.error == "provider answered 401 Unauthorized"
    assert record.outcome == {"passed": None, "infra_error": True}
    assert record.passed is None and record.steps == []


def test_step_cap_truncates_an_endless_episode():
    record = run_episode(Lockbox(), Stubborn(), seed=1, max_steps=25)
    assert len(record.steps) == 25 and record.truncated and not record.terminated


def test_async_rollouts_overlap_and_match_sync():
    async def many():
        return await asyncio.gather(
            *(arun_episode(Lockbox(), RevealThenGuess(), seed=s) for s in range(8))
        )

    records = asyncio.run(many())
    assert all(r.passed for r in records)
    assert [r.steps[-1].action for r in records] == [
        run_episode(Lockbox(), RevealThenGuess(), seed=s).steps[-1].action for s in range(8)
    ]
