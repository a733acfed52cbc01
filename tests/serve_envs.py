"""Environments the serving tests register beside the built-in ones.

Lockbox (``toy_env``) and Corridor, a second small env with what Lockbox
lacks: a string option with choices, episode options in ``reset``, a step
budget that *truncates*, and a nested observation. ``stackgym serve --import
serve_envs`` (with ``tests/`` on the path) serves them from a subprocess.
"""

from __future__ import annotations

import random
from typing import Any, Literal

from pydantic import Field

from stackgym.core import Action, ActionSet, Env, Observation, StepResult
from stackgym.core.registry import register, registry

LAYOUTS = {"short": 4, "long": 8}


class Move(Action):
    """Move one cell left or right."""

    type: Literal["move"] = "move"
    direction: Literal["left", "right"]


class Look(Action):
    """Look around (costs a step, reveals the distance to the exit)."""

    type: Literal["look"] = "look"


class CorridorObservation(Observation):
    position: int = 0
    cells: list[str] = Field(default_factory=list)
    budget_left: int = 0
    distance: float | None = None


class Corridor(Env):
    env_id = "corridor"
    observation_type = CorridorObservation

    def __init__(self, layout: str = "short", budget: int = 6) -> None:
        super().__init__(layout=layout, budget=budget)
        self.length = LAYOUTS[layout]
        self.budget = budget
        self._actions = ActionSet([Move, Look])
        self.position = 0
        self.exit = 0
        self.left = budget

    @property
    def action_set(self) -> ActionSet:
        return self._actions

    def _observe(self, text: str, reward: float | None, done: bool, error: str | None = None):
        cells = ["." for _ in range(self.length)]
        cells[self.position] = "@"
        return CorridorObservation(
            text=text,
            reward=reward,
            done=done,
            error=error,
            position=self.position,
            cells=cells,
            budget_left=self.left,
            metadata={"layout": self.settings["layout"]},
        )

    def _reset(self, seed: int, options: dict[str, Any]):
        rng = random.Random(seed)
        self.position = int(options.get("start", 0)) % self.length
        self.exit = rng.randrange(self.length)
        self.left = self.budget
        return self._observe(f"A corridor of {self.length} cells.", None, False), {
            "length": self.length
        }

    def _spend(self) -> bool:
        self.left -= 1
        return self.left <= 0

    def _step(self, action: Action) -> StepResult:
        if isinstance(action, Look):
            out = self._spend()
            obs = self._observe("you look around", -0.05, out)
            obs.distance = float(abs(self.exit - self.position))
            return StepResult(obs, -0.05, False, out, self._outcome(out, False))
        assert isinstance(action, Move)
        step = 1 if action.direction == "right" else -1
        self.position = max(0, min(self.length - 1, self.position + step))
        if self.position == self.exit:
            return StepResult(
                self._observe("exit!", 1.0, True), 1.0, True, False, self._outcome(True, True)
            )
        out = self._spend()
        return StepResult(
            self._observe("a wall", -0.1, out), -0.1, False, out, self._outcome(out, False)
        )

    def _outcome(self, ended: bool, passed: bool) -> dict[str, Any]:
        if not ended:
            return {}
        return {"outcome": {"passed": passed, "metrics": {"budget_left": self.left}}}

    def _invalid(self, message: str) -> StepResult:
        obs = self._observe("invalid action", -0.5, self._done, error=message)
        return StepResult(obs, -0.5, False, False, {})

    def example_actions(self, rng: random.Random) -> list[Action]:
        return [Move(direction=rng.choice(["left", "right"])), Look()]


def register_test_envs() -> None:
    """Register the test envs once (importing this module does it)."""
    if "lockbox" not in registry:
        register(
            "lockbox",
            "toy_env:Lockbox",
            description="Find a 3-digit code (test env)",
            choices={"guesses": (1, 2, 3)},
        )
    if "corridor" not in registry:
        register(
            "corridor",
            "serve_envs:Corridor",
            description="Walk to the exit before the budget runs out (test env)",
            choices={"layout": ("short", "long")},
        )


#: Test envs and the policy a test plays in them: a few actions, ending the episode.
TEST_ENV_IDS = ("lockbox", "corridor")

register_test_envs()
