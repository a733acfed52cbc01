"""The trace store: one schema for episodes and steps, written and read by one class.

A trace folder holds a single file, ``traces.jsonl`` (:data:`TRACE_FILE`),
one episode per line. :class:`TraceStore` is the only code that knows this
layout: the harness writes through it, analysis and training read through it,
so a writer and a reader can never disagree about where traces live.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from stackgym.core.jsonl import CorruptLine, JsonlLog

SCHEMA_VERSION = 1
TRACE_FILE = "traces.jsonl"


class Usage(BaseModel):
    """Token usage and cost of one or more LLM calls."""

    model_config = ConfigDict(extra="forbid")

    prompt_tokens: int = 0
    completion_tokens: int = 0
    calls: int = 0
    #: Dollars; None when neither the provider nor the price table knew.
    cost_usd: float | None = None

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        cost = (
            None
            if self.cost_usd is None and other.cost_usd is None
            else (self.cost_usd or 0.0) + (other.cost_usd or 0.0)
        )
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            calls=self.calls + other.calls,
            cost_usd=cost,
        )


class ToolCall(BaseModel):
    """One tool call as the model emitted it (before the env parsed it)."""

    model_config = ConfigDict(extra="forbid")

    id: str | None = None
    name: str
    arguments: str


class AgentInfo(BaseModel):
    """Which policy produced an episode."""

    model_config = ConfigDict(extra="forbid")

    name: str
    model: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)


class StepRecord(BaseModel):
    """One agent action and what the environment answered."""

    model_config = ConfigDict(extra="forbid")

    # Free-form JSON fields are typed ``Any`` rather than ``dict[str, Any]``:
    # validating their insides on every read halves trace read speed and buys
    # nothing, since they are written from pydantic models.
    index: int
    #: The action as the agent sent it: a dict, or raw text if it was not JSON.
    action: Any
    #: The observation, as its model's JSON dump.
    observation: Any
    reward: float
    terminated: bool = False
    truncated: bool = False
    info: Any = Field(default_factory=dict)
    tool_calls: list[ToolCall] = Field(default_factory=list)
    usage: Usage | None = None
    #: The agent's reasoning text for this step, where it gave one.
    reasoning: str | None = None
    #: Candidate actions the agent considered, with scores, where it had them.
    candidates: Any = None
    agent_seconds: float = 0.0
    env_seconds: float = 0.0


class EpisodeRecord(BaseModel):
    """One whole episode: settings, data snapshot, agent and every step."""

    model_config = ConfigDict(extra="forbid")

    schema_version: Literal[1] = SCHEMA_VERSION
    episode_id: str
    run_id: str | None = None
    env_id: str
    settings: dict[str, Any] = Field(default_factory=dict)
    options: dict[str, Any] = Field(default_factory=dict)
    seed: int
    data_snapshot: str | None = None
    agent: AgentInfo
    reset_observation: dict[str, Any]
    reset_info: dict[str, Any] = Field(default_factory=dict)
    steps: list[StepRecord] = Field(default_factory=list)
    total_reward: float = 0.0
    terminated: bool = False
    truncated: bool = False
    #: The env's final ``info["outcome"]`` (``passed``, ``metrics``…).
    outcome: dict[str, Any] = Field(default_factory=dict)
    usage: Usage = Field(default_factory=Usage)
    #: Set when the episode was cut short by an error outside the agent's control.
    error: str | None = None
    started_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    duration_s: float = 0.0
    stackgym_version: str = ""

    @property
    def passed(self) -> bool | None:
        value = self.outcome.get("passed")
        return value if isinstance(value, bool) else None


class TraceStore:
    """Writes and reads episode traces in one folder.

    >>> store = TraceStore("runs/demo/traces")
    >>> store.write(episode)            # appends one line, flushed
    >>> for episode in store.episodes():  # corrupt lines -> store.problems
    ...     ...
    """

    def __init__(self, root: str | os.PathLike[str], *, durable: bool = False) -> None:
        root = Path(root)
        if root.name == TRACE_FILE:
            root = root.parent
        self.root = root
        self._log: JsonlLog[EpisodeRecord] = JsonlLog(
            root / TRACE_FILE,
            EpisodeRecord,
            kind="trace",
            schema_version=SCHEMA_VERSION,
            durable=durable,
        )

    @property
    def path(self) -> Path:
        return self._log.path

    @property
    def problems(self) -> list[CorruptLine]:
        """Lines skipped by the last read, with file, line number and reason."""
        return self._log.problems

    def write(self, episode: EpisodeRecord) -> None:
        """Append one episode (one line, flushed)."""
        self._log.append(episode)

    def write_many(self, episodes: Iterable[EpisodeRecord]) -> None:
        self._log.append_many(episodes)

    def episodes(self) -> Iterator[EpisodeRecord]:
        """Every readable episode in file order."""
        return self._log.read()

    def exists(self) -> bool:
        return self.path.is_file()

    def close(self) -> None:
        self._log.close()

    def __enter__(self) -> TraceStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @classmethod
    def discover(cls, root: str | os.PathLike[str]) -> list[TraceStore]:
        """Every trace store at or below ``root`` (a folder or a traces file)."""
        root = Path(root)
        if root.is_file():
            return [cls(root)]
        if not root.is_dir():
            return []
        return [cls(path.parent) for path in sorted(root.rglob(TRACE_FILE))]
