"""Vault: a small real environment with the option shape of the metrics env.

A 3-digit code is drawn from (seed, task). The agent may reveal one digit per
step and must guess the code. Options mirror what experiments vary: ``room``
(the factor; ``drifty`` serves a different data snapshot), ``task``,
``max_turns``, ``data_seed``, plus knobs for tests: ``step_delay`` (seconds a
step sleeps, to make runs slow), ``crash_seed`` (a step of that seed raises).
Observations record the thread a step ran on.
"""

from __future__ import annotations

import random
import threading
import time
from typing import Any, Literal

from pydantic import Field

from stackgym.core import Action, ActionSet, Agent, Env, Observation, StepResult, register_agent
from stackgym.core.registry import register, registry

ROOMS = ("north", "south", "drifty")
TASKS = ("open", "peek")


class Reveal(Action):
    """Reveal the digit at one position of the code."""

    type: Literal["reveal"] = "reveal"
    position: int = Field(ge=0, le=2, description="0, 1 or 2")


class Guess(Action):
    """Guess the whole code."""

    type: Literal["guess"] = "guess"
    code: str = Field(pattern=r"^[0-9]{3}$", description="three digits")


class VaultObservation(Observation):
    revealed: dict[str, int] = Field(default_factory=dict)


class Vault(Env):
    env_id = "vault"
    observation_type = VaultObservation

    def __init__(
        self,
        room: str = "north",
        task: str = "open",
        max_turns: int = 8,
        data_seed: int = 0,
        step_delay: float = 0.0,
        crash_seed: int | None = None,
    ) -> None:
        super().__init__(
            room=room,
            task=task,
            max_turns=max_turns,
            data_seed=data_seed,
            step_delay=step_delay,
            crash_seed=crash_seed,
        )
        self.room, self.task, self.max_turns = room, task, max_turns
        self.data_seed, self.step_delay, self.crash_seed = data_seed, step_delay, crash_seed
        self._actions = ActionSet([Reveal, Guess])
        self.code = ""
        self.revealed: dict[str, int] = {}
        self.turns = 0

    @property
    def action_set(self) -> ActionSet:
        return self._actions

    @property
    def data_snapshot(self) -> str:
        return f"vault-data-{self.data_seed}" + ("-drifted" if self.room == "drifty" else "")

    def _observe(self, text: str, reward: float | None, done: bool, error: str | None = None):
        return VaultObservation(
            text=text,
            reward=reward,
            done=done,
            error=error,
            revealed=dict(self.revealed),
            metadata={"thread": threading.current_thread().name},
        )

    def _reset(self, seed: int, options: dict[str, Any]):
        rng = random.Random(f"{seed}-{self.task}")
        self.code = "".join(str(rng.randrange(10)) for _ in range(3))
        self.revealed, self.turns = {}, 0
        return self._observe(
            f"Find the 3-digit code ({self.task}, room {self.room}).", None, False
        ), {}

    def _end_of_turn(
        self, obs: VaultObservation, reward: float, done: bool, info: dict
    ) -> StepResult:
        self.turns += 1
        truncated = not done and self.turns >= self.max_turns
        if truncated:
            info = {"outcome": {"passed": False, "metrics": {"turns": self.turns}}}
        return StepResult(obs, reward, done, truncated, info)

    def _step(self, action: Action) -> StepResult:
        if self.step_delay:
            time.sleep(self.step_delay)
        if self.crash_seed is not None and self._seed == self.crash_seed:
            raise RuntimeError("the vault's lock jammed")
        if isinstance(action, Reveal):
            self.revealed[str(action.position)] = int(self.code[action.position])
            obs = self._observe(
                f"digit {action.position} is {self.code[action.position]}", -0.1, False
            )
            return self._end_of_turn(obs, -0.1, False, {})
        assert isinstance(action, Guess)
        if action.code == self.code:
            outcome = {"outcome": {"passed": True, "metrics": {"turns": self.turns + 1}}}
            return self._end_of_turn(self._observe("open!", 1.0, True), 1.0, True, outcome)
        return self._end_of_turn(self._observe("wrong code", 0.0, False), 0.0, False, {})

    def _invalid(self, message: str) -> StepResult:
        obs = self._observe("invalid action", -0.5, self._done, error=message)
        if self._done:
            return StepResult(obs, -0.5, True, False, {})
        return self._end_of_turn(obs, -0.5, False, {})


class Oracle(Agent):
    """Reads the code from the env and guesses it."""

    name = "oracle"

    def reset(self, env, observation, info):
        self.code = env.code

    def act(self, observation):
        return Guess(code=self.code)


class Solver(Agent):
    """Reveals the three digits, then guesses."""

    name = "solver"

    def act(self, observation):
        if len(observation.revealed) < 3:
            return Reveal(position=len(observation.revealed))
        return Guess(code="".join(str(observation.revealed[str(i)]) for i in range(3)))


class Wrong(Agent):
    """Always guesses 000 (fails unless the code is 000)."""

    name = "wrong"

    def act(self, observation):
        return Guess(code="000")


def register_vault() -> str:
    """Register the env and its baselines (idempotent)."""
    if "vault" not in registry:
        register("vault", "harness_env:Vault", choices={"room": ROOMS, "task": TASKS})
    for name, cls in (("oracle", "Oracle"), ("solver", "Solver"), ("wrong", "Wrong")):
        register_agent("vault", name, f"harness_env:{cls}")
    return "vault"
