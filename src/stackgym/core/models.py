"""Typed actions, observations and state shared by every environment.

The shapes map one-to-one onto OpenEnv (``Action``/``Observation`` with
``done`` and ``reward``, ``State`` with ``episode_id`` and ``step_count``) and
onto Gymnasium (``StepResult`` unpacks as ``obs, reward, terminated,
truncated, info``).
"""

from __future__ import annotations

from typing import Any, ClassVar, NamedTuple

from pydantic import BaseModel, ConfigDict, Field


class Action(BaseModel):
    """Base class of every action an agent can take.

    Each concrete action is one *tool*: its ``type`` literal is the tool name,
    its other fields are the tool's parameters and its docstring the tool's
    description. Unknown fields are refused so a typo never passes silently.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str

    #: The tool name; set automatically from the ``type`` literal.
    tool_name: ClassVar[str] = ""

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        field = cls.model_fields.get("type")
        default = field.default if field is not None else None
        if isinstance(default, str) and default:
            cls.tool_name = default

    def arguments(self) -> dict[str, Any]:
        """The tool-call arguments of this action (every field but ``type``)."""
        data = self.model_dump(mode="json")
        data.pop("type", None)
        return data


class Observation(BaseModel):
    """Base class of every observation.

    ``text`` is what an LLM agent reads; the typed fields of subclasses are
    what programs read. ``error`` is set when the last action was refused and
    says what was wrong and what is valid.
    """

    model_config = ConfigDict(extra="forbid")

    text: str = ""
    done: bool = False
    reward: float | None = None
    error: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class EnvState(BaseModel):
    """Episode bookkeeping every environment exposes through ``env.state``."""

    model_config = ConfigDict(extra="allow")

    env_id: str
    episode_id: str | None = None
    seed: int | None = None
    step_count: int = 0
    done: bool = False
    total_reward: float = 0.0
    data_snapshot: str | None = None


class StepResult(NamedTuple):
    """What ``step`` returns; unpacks like Gymnasium's 5-tuple."""

    observation: Observation
    reward: float
    terminated: bool
    truncated: bool
    info: dict[str, Any]
