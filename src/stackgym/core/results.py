"""Run results: one line per run in ``results.jsonl``, written and read by one class.

A *run* is one episode of one agent on one (condition, task, repeat) of an
experiment. The harness writes a :class:`RunRecord` per finished run; analysis
reads them without re-running anything. Episodes themselves live in the trace
store, linked by ``episode_id``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, overload

from pydantic import BaseModel, ConfigDict, Field

from stackgym.core.jsonl import CorruptLine, JsonlLog
from stackgym.core.traces import EpisodeRecord, Usage

SCHEMA_VERSION = 1
RESULTS_FILE = "results.jsonl"

RunStatus = Literal["completed", "infra_error"]


class RunRecord(BaseModel):
    """The outcome of one run, with everything needed to aggregate it."""

    model_config = ConfigDict(extra="forbid")

    schema_version: Literal[1] = SCHEMA_VERSION
    run_id: str
    experiment: str
    env_id: str
    #: Name of the experiment's factor (e.g. ``"sandbox"``) and this run's level of it.
    factor: str | None = None
    condition: str | None = None
    task: str | None = None
    #: The agent as named on the command line (``oracle``, ``openai:gpt-4o``…).
    model: str
    repeat: int = 0
    seed: int
    status: RunStatus = "completed"
    #: None for infra errors and for envs without a pass/fail notion.
    passed: bool | None = None
    reward: float = 0.0
    turns: int = 0
    #: The episode hit its turn/step budget instead of ending on its own.
    truncated: bool = False
    usage: Usage = Field(default_factory=Usage)
    duration_s: float = 0.0
    #: Infra error message, or the last error the env reported to the agent.
    error: str | None = None
    #: The env's per-episode metrics (``info["outcome"]["metrics"]``).
    metrics: dict[str, Any] = Field(default_factory=dict)
    #: Every setting of the run (env options, max turns, tool budget, lint…).
    settings: dict[str, Any] = Field(default_factory=dict)
    data_snapshot: str | None = None
    episode_id: str | None = None
    finished_at: datetime = Field(default_factory=lambda: datetime.now(UTC))


class RunOutcome(BaseModel):
    """The fields of a :class:`RunRecord` that aggregation reads: a lighter view of a line.

    Reading ``results.jsonl`` as outcomes (``ResultStore.records(view=RunOutcome)``)
    validates these fields exactly as :class:`RunRecord` does and skips the
    others (``settings``, ``finished_at``…), which makes reading 10^5 runs
    about a fifth faster and the records smaller in memory.
    """

    model_config = ConfigDict(extra="ignore")

    schema_version: Literal[1] = SCHEMA_VERSION
    run_id: str
    experiment: str
    env_id: str
    factor: str | None = None
    condition: str | None = None
    task: str | None = None
    model: str
    repeat: int = 0
    status: RunStatus = "completed"
    passed: bool | None = None
    turns: int = 0
    truncated: bool = False
    usage: Usage = Field(default_factory=Usage)
    duration_s: float = 0.0
    error: str | None = None
    metrics: dict[str, Any] = Field(default_factory=dict)
    data_snapshot: str | None = None


class ResultStore:
    """Appends and reads :class:`RunRecord` lines in ``DIR/results.jsonl``."""

    def __init__(self, root: str | os.PathLike[str], *, durable: bool = True) -> None:
        root = Path(root)
        if root.name == RESULTS_FILE:
            root = root.parent
        self.root = root
        self._log: JsonlLog[RunRecord] = JsonlLog(
            root / RESULTS_FILE,
            RunRecord,
            kind="results",
            schema_version=SCHEMA_VERSION,
            durable=durable,
        )

    @property
    def path(self) -> Path:
        return self._log.path

    @property
    def problems(self) -> list[CorruptLine]:
        return self._log.problems

    def write(self, record: RunRecord) -> None:
        self._log.append(record)

    def write_many(self, records: Iterable[RunRecord]) -> None:
        self._log.append_many(records)

    @overload
    def records(self, view: None = None) -> Iterator[RunRecord]: ...

    @overload
    def records(self, view: type[RunOutcome]) -> Iterator[RunOutcome]: ...

    def records(self, view: type[RunOutcome] | None = None) -> Iterator[RunRecord | RunOutcome]:
        """Every valid record in file order (as ``view`` objects when given)."""
        return self._log.read(view)

    def completed_ids(self) -> set[str]:
        """Run ids already recorded (what a resumed experiment skips)."""
        return {record.run_id for record in self.records()}

    def exists(self) -> bool:
        return self.path.is_file()

    def close(self) -> None:
        self._log.close()

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def run_record_from_episode(
    episode: EpisodeRecord,
    *,
    run_id: str,
    experiment: str,
    model: str,
    factor: str | None = None,
    condition: str | None = None,
    task: str | None = None,
    repeat: int = 0,
    settings: dict[str, Any] | None = None,
) -> RunRecord:
    """The run record of a finished episode (infra errors keep ``passed=None``)."""
    infra = episode.error is not None
    last_error = next(
        (s.observation.get("error") for s in reversed(episode.steps) if s.observation.get("error")),
        None,
    )
    return RunRecord(
        run_id=run_id,
        experiment=experiment,
        env_id=episode.env_id,
        factor=factor,
        condition=condition,
        task=task,
        model=model,
        repeat=repeat,
        seed=episode.seed,
        status="infra_error" if infra else "completed",
        passed=None if infra else episode.passed,
        reward=episode.total_reward,
        turns=len(episode.steps),
        truncated=episode.truncated,
        usage=episode.usage,
        duration_s=episode.duration_s,
        error=episode.error if infra else (episode.outcome.get("error") or last_error),
        metrics=dict(episode.outcome.get("metrics") or {}),
        settings={**episode.settings, **(settings or {})},
        data_snapshot=episode.data_snapshot,
        episode_id=episode.episode_id,
    )
