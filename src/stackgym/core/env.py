"""The environment protocol every stackgym environment implements.

The contract, in Gymnasium's shape:

* ``reset(seed=None, options=None) -> (observation, info)``
* ``step(action) -> StepResult(observation, reward, terminated, truncated, info)``
* ``state`` -> :class:`~stackgym.core.models.EnvState`
* ``tools()`` -> the actions as OpenAI function-calling specs

and, for OpenEnv, the observation itself carries ``done`` and ``reward``.
A refused action's ``info`` carries ``"invalid_action"`` with the reason.

Subclasses implement ``_reset``, ``_step`` and ``_invalid``; the base class
does seeding, parsing of untrusted actions, refusal of actions after the end,
and bookkeeping. ``step`` never raises for anything an agent sends.

When an episode ends, the last ``info`` carries ``"outcome"``: a dict with at
least ``passed`` (bool, or None where the env has no pass/fail notion) and
``metrics`` (the env's per-episode metrics: a flat dict of numbers, booleans
or None), and optionally ``error`` (the error that decided the outcome, e.g.
the database error an answer raised). Harness and analysis read it.
"""

from __future__ import annotations

import random
import secrets
from abc import ABC, abstractmethod
from typing import Any, ClassVar

from stackgym.core.errors import ActionError, StackgymError
from stackgym.core.models import Action, EnvState, Observation, StepResult
from stackgym.core.tools import ActionLike, ActionSet, example_action


class ResetNeeded(StackgymError):
    """``step`` was called before the first ``reset``."""


class Env(ABC):
    """Base class of stackgym environments."""

    #: Registry id, e.g. ``"stack_doctor"``; set by the subclass.
    env_id: ClassVar[str] = ""
    #: The observation model this environment returns.
    observation_type: ClassVar[type[Observation]] = Observation

    def __init__(self, **settings: Any) -> None:
        #: The settings this env was made with; every trace records them.
        self.settings: dict[str, Any] = dict(settings)
        self._seed_source: random.Random | None = None
        #: The last explicit seed; its generator is built only if a seedless reset needs it.
        self._seed_origin: int | None = None
        self._episode_id: str | None = None
        self._seed: int | None = None
        self._step_count = 0
        self._total_reward = 0.0
        self._done = False
        self._started = False

    # -- what subclasses provide -------------------------------------------------

    @property
    @abstractmethod
    def action_set(self) -> ActionSet:
        """The actions enabled in this environment instance."""

    @abstractmethod
    def _reset(self, seed: int, options: dict[str, Any]) -> tuple[Observation, dict[str, Any]]:
        """Start an episode from ``seed``; return the first observation and info."""

    @abstractmethod
    def _step(self, action: Action) -> StepResult:
        """Apply one valid action."""

    @abstractmethod
    def _invalid(self, message: str) -> StepResult:
        """Answer an action that was refused (malformed, unknown, after the end).

        ``message`` already says what was wrong and what is valid. The
        observation must carry it in ``error``.
        """

    def example_actions(self, rng: random.Random) -> list[Action]:
        """One valid action per enabled tool, for the env checker and random baselines.

        The default builds them from each tool's JSON schema; override it where
        placeholder values would be meaningless (file paths, SQL).
        """
        return [example_action(t, rng) for t in self.action_set.types]

    def _extra_state(self) -> dict[str, Any]:
        """Environment-specific fields added to :attr:`state`."""
        return {}

    @property
    def data_snapshot(self) -> str | None:
        """Content hash of the dataset this env serves, where it has one."""
        return None

    # -- the protocol ---------------------------------------------------------

    def reset(
        self,
        seed: int | None = None,
        options: dict[str, Any] | None = None,
        *,
        episode_id: str | None = None,
    ) -> tuple[Observation, dict[str, Any]]:
        """Start a new episode.

        The same ``seed`` (and options) gives the same episode. Without a seed,
        the next seed is drawn from the generator seeded by the last explicit
        seed (Gymnasium's rule), so a sequence of resets is reproducible too.
        ``episode_id`` names the episode (a served env takes it from the
        client, as OpenEnv does); without it a fresh id is drawn.
        """
        if seed is not None:
            if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
                raise StackgymError(
                    f"seed must be a non-negative integer, got {seed!r}",
                    "pass e.g. seed=0, or leave it out for a random episode",
                )
            # Seeding a generator costs ~5 µs; most callers always pass a seed,
            # so the generator for later seedless resets is built on first use.
            self._seed_source = None
            self._seed_origin = seed
            episode_seed = seed
        else:
            if self._seed_source is None:
                origin = self._seed_origin
                self._seed_source = random.Random(
                    origin if origin is not None else secrets.randbits(64)
                )
            episode_seed = self._seed_source.getrandbits(31)
        self._seed = episode_seed
        # 32 random hex digits, like uuid4().hex but a third of the cost.
        self._episode_id = episode_id or secrets.token_hex(16)
        self._step_count = 0
        self._total_reward = 0.0
        self._done = False
        self._started = True
        observation, info = self._reset(episode_seed, dict(options or {}))
        info = {**info, "seed": episode_seed, "episode_id": self._episode_id}
        return observation, info

    def step(self, action: ActionLike) -> StepResult:
        """Apply ``action``; anything malformed is answered, never raised."""
        if not self._started:
            raise ResetNeeded("step() was called before reset()", "call env.reset() first")
        refusal: str | None = None
        if self._done:
            refusal = (
                "the episode is over; no more actions are accepted. "
                "Call reset() to start a new episode."
            )
        else:
            try:
                parsed = self.action_set.parse(action)
            except ActionError as exc:
                refusal = str(exc)
        if refusal is None:
            result = self._step(parsed)
        else:
            result = self._invalid(refusal)
            result = result._replace(info={**result.info, "invalid_action": refusal})
        self._step_count += 1
        self._total_reward += result.reward
        self._done = self._done or result.terminated or result.truncated
        return result

    @property
    def state(self) -> EnvState:
        """Episode bookkeeping plus environment-specific fields."""
        return EnvState(
            env_id=self.env_id,
            episode_id=self._episode_id,
            seed=self._seed,
            step_count=self._step_count,
            done=self._done,
            total_reward=self._total_reward,
            data_snapshot=self.data_snapshot,
            **self._extra_state(),
        )

    def tools(self) -> list[dict[str, Any]]:
        """The enabled actions as OpenAI function-calling tool specs."""
        return self.action_set.tools()

    def render(self) -> str:
        """A plain-text rendering of the state, for people."""
        return self.state.model_dump_json(indent=2)

    def close(self) -> None:
        """Release resources (temporary files, database handles)."""

    def __enter__(self) -> Env:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
