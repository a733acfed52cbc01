"""A small real environment used to test the protocol, checker and rollouts.

Lockbox: a 3-digit code is drawn from the seed. The agent may ask for the
digit at a position (costs 0.1) and must guess the code; a right guess ends
the episode with +1, three wrong guesses end it with -1.
"""

from __future__ import annotations

import random
from typing import Any, Literal

from pydantic import Field

from stackgym.core import Action, ActionSet, Env, Observation, StepResult


class Reveal(Action):
    """Reveal the digit at one position of the code."""

    type: Literal["reveal"] = "reveal"
    position: int = Field(ge=0, le=2, description="0, 1 or 2")


class Guess(Action):
    """Guess the whole code."""

    type: Literal["guess"] = "guess"
    code: str = Field(pattern=r"^[0-9]{3}$", description="three digits")


class LockboxObservation(Observation):
    revealed: dict[str, int] = Field(default_factory=dict)
    guesses_left: int = 3


class Lockbox(Env):
    env_id = "lockbox"
    observation_type = LockboxObservation

    def __init__(self, guesses: int = 3) -> None:
        super().__init__(guesses=guesses)
        self.guesses = guesses
        self._actions = ActionSet([Reveal, Guess])
        self.code = ""
        self.revealed: dict[str, int] = {}
        self.left = guesses

    @property
    def action_set(self) -> ActionSet:
        return self._actions

    def _observe(self, text: str, reward: float | None, done: bool, error: str | None = None):
        return LockboxObservation(
            text=text,
            reward=reward,
            done=done,
            error=error,
            revealed=dict(self.revealed),
            guesses_left=self.left,
        )

    def _reset(self, seed: int, options: dict[str, Any]):
        rng = random.Random(seed)
        self.code = "".join(str(rng.randrange(10)) for _ in range(3))
        self.revealed = {}
        self.left = self.guesses
        return self._observe("Find the 3-digit code.", None, False), {}

    def _step(self, action: Action) -> StepResult:
        if isinstance(action, Reveal):
            self.revealed[str(action.position)] = int(self.code[action.position])
            obs = self._observe(
                f"digit {action.position} is {self.code[action.position]}", -0.1, False
            )
            return StepResult(obs, -0.1, False, False, {})
        assert isinstance(action, Guess)
        if action.code == self.code:
            obs = self._observe("open!", 1.0, True)
            return StepResult(obs, 1.0, True, False, {"outcome": {"passed": True, "metrics": {}}})
        self.left -= 1
        done = self.left == 0
        reward = -1.0 if done else 0.0
        outcome = {"outcome": {"passed": False, "metrics": {}}} if done else {}
        return StepResult(self._observe("wrong code", reward, done), reward, done, False, outcome)

    def _invalid(self, message: str) -> StepResult:
        done = self._done
        obs = self._observe("invalid action", -0.5, done, error=message)
        return StepResult(obs, -0.5, done, False, {})

    def example_actions(self, rng: random.Random) -> list[Action]:
        return [Reveal(position=rng.randrange(3)), Guess(code=f"{rng.randrange(1000):03d}")]
