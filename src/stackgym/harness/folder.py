"""The experiment folder: what a run leaves behind, and the one class that reads it.

::

    OUT/
      experiment.json      ExperimentRecord: resolved spec, parity, data snapshots,
                           version, times, counts, sessions
      results.jsonl        one RunRecord per finished run (ResultStore)
      traces/traces.jsonl  one EpisodeRecord per finished episode (TraceStore)
      run.log              what happened, with tracebacks of crashed runs

A suite writes ``OUT/suite.json`` and one such folder per experiment,
``OUT/<experiment name>/``. Analysis reads folders through
:class:`ExperimentFolder`, never by re-running anything.

Results rule: ``results.jsonl`` is append-only. A run id normally has one
line; a run retried with ``--retry-errors`` after an infrastructure error has
a later line too, and the *last* line of a run id is its result
(:meth:`ExperimentFolder.final_records`).
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar, overload

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from stackgym.core.errors import DataError
from stackgym.core.jsonl import CorruptLine
from stackgym.core.results import ResultStore, RunOutcome, RunRecord
from stackgym.core.traces import TraceStore
from stackgym.harness.parity import ParityReport
from stackgym.harness.spec import ExperimentSpec
from stackgym.version import __version__

EXPERIMENT_FILE = "experiment.json"
SUITE_FILE = "suite.json"
LOG_FILE = "run.log"
TRACES_DIR = "traces"
RESULTS_RULE = (
    "results.jsonl is append-only; the last line of a run_id is that run's result "
    "(a run retried after an infra error has an earlier infra_error line)"
)

Status = Literal["running", "finished", "interrupted", "failed"]


def _now() -> datetime:
    return datetime.now(UTC)


class Counts(BaseModel):
    """Final state of the planned runs (from the last record of each run id)."""

    planned: int = 0
    recorded: int = 0
    completed: int = 0
    infra_error: int = 0
    passed: int = 0
    failed: int = 0
    #: Passed over completed runs judged pass/fail; infra errors are not counted.
    pass_rate: float | None = None


class Session(BaseModel):
    """One invocation of ``stackgym experiment run`` on this folder."""

    started_at: datetime = Field(default_factory=_now)
    finished_at: datetime | None = None
    status: Status = "running"
    ran: int = 0
    skipped: int = 0
    #: Runs whose episode was in the traces but whose record was not (killed in between).
    recovered: int = 0
    #: Infra-error runs played again (``--retry-errors``).
    retried: int = 0
    concurrency: int = 1
    stackgym_version: str = __version__


class ExperimentRecord(BaseModel):
    """``experiment.json``: everything needed to read the folder without the spec file."""

    model_config = ConfigDict(extra="forbid")

    schema_version: Literal[1] = 1
    kind: Literal["stackgym.experiment"] = "stackgym.experiment"
    name: str
    #: Where the spec came from: a path, or ``preset:NAME``.
    source: str
    #: The validated spec with every default filled in.
    spec: ExperimentSpec
    #: Hash of the settings that define the experiment (execution knobs such as
    #: concurrency and timeouts are not part of it, so a resume may change them).
    spec_hash: str
    parity: ParityReport
    #: Condition -> its resolved settings (as the parity check compared them).
    conditions: dict[str, dict[str, Any]]
    #: Condition -> task (``-`` without tasks) -> data snapshot hash the env served.
    data_snapshots: dict[str, dict[str, str | None]] = Field(default_factory=dict)
    #: The one snapshot every run used, when there is exactly one.
    data_snapshot: str | None = None
    planned_runs: int
    counts: Counts = Field(default_factory=Counts)
    status: Status = "running"
    started_at: datetime = Field(default_factory=_now)
    finished_at: datetime | None = None
    stackgym_version: str = __version__
    python_version: str = Field(default_factory=lambda: sys.version.split()[0])
    platform: str = Field(default_factory=platform.platform)
    sessions: list[Session] = Field(default_factory=list)
    files: dict[str, str] = Field(
        default_factory=lambda: {
            "results": "results.jsonl",
            "traces": f"{TRACES_DIR}/traces.jsonl",
            "log": LOG_FILE,
        }
    )
    results_rule: str = RESULTS_RULE


class SuiteRecord(BaseModel):
    """``suite.json``: the experiments of a suite and their folders."""

    model_config = ConfigDict(extra="forbid")

    schema_version: Literal[1] = 1
    kind: Literal["stackgym.suite"] = "stackgym.suite"
    name: str
    source: str
    description: str = ""
    #: Experiment name -> its folder, relative to the suite folder.
    experiments: dict[str, str]
    status: Status = "running"
    started_at: datetime = Field(default_factory=_now)
    finished_at: datetime | None = None
    stackgym_version: str = __version__


#: What a results line is read as: the whole record, or the lighter outcome view.
Line = TypeVar("Line", RunRecord, RunOutcome)


@dataclass
class Results(Generic[Line]):
    """What ``results.jsonl`` holds, read once."""

    #: The result of each run (the last line of its run id), in first-seen order.
    final: list[Line] = field(default_factory=list)
    #: Lines that could not be read (file, line number, reason); they were skipped.
    problems: list[CorruptLine] = field(default_factory=list)
    #: Valid lines read, earlier lines of retried runs included.
    lines: int = 0

    @property
    def superseded(self) -> int:
        """Earlier lines of retried runs (replaced by a later line of the same run id)."""
        return self.lines - len(self.final)


def write_json_atomic(path: Path, model: BaseModel) -> None:
    """Write a JSON document so a reader sees the old or the new file, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(model.model_dump_json(indent=2) + "\n")
    os.replace(temporary, path)


class ExperimentFolder:
    """Reads (and, for the runner, writes) one experiment folder."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    @property
    def record_path(self) -> Path:
        return self.root / EXPERIMENT_FILE

    @property
    def log_path(self) -> Path:
        return self.root / LOG_FILE

    def exists(self) -> bool:
        return self.record_path.is_file()

    def read(self) -> ExperimentRecord:
        """The folder's ``experiment.json``; :class:`DataError` when missing or invalid."""
        if not self.record_path.is_file():
            raise DataError(
                f"{self.root} is not an experiment folder ({EXPERIMENT_FILE} is missing)",
                "run `stackgym experiment run SPEC --out DIR` to make one",
            )
        try:
            return ExperimentRecord.model_validate_json(self.record_path.read_bytes())
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            where = ".".join(str(p) for p in first["loc"])
            raise DataError(
                f"{self.record_path} is not a valid experiment record ({where}: {first['msg']})"
            ) from None

    def write(self, record: ExperimentRecord) -> None:
        write_json_atomic(self.record_path, record)

    def results(self) -> ResultStore:
        return ResultStore(self.root)

    def traces(self) -> TraceStore:
        return TraceStore(self.root / TRACES_DIR)

    def records(self) -> Iterator[RunRecord]:
        """Every line of ``results.jsonl`` in file order."""
        return self.results().records()

    def final_records(self) -> list[RunRecord]:
        """The result of each run: the last line of every run id, in first-seen order."""
        return self.read_results().final

    @overload
    def read_results(self, view: None = None) -> Results[RunRecord]: ...

    @overload
    def read_results(self, view: type[RunOutcome]) -> Results[RunOutcome]: ...

    def read_results(self, view: type[RunOutcome] | None = None) -> Results[Any]:
        """The final record of each run, and every line that had to be skipped (and why).

        ``view=RunOutcome`` reads only the fields aggregation needs (faster, smaller).
        """
        store = self.results()
        final: dict[str, Any] = {}
        lines = 0
        for record in store.records(view):
            final[record.run_id] = record
            lines += 1
        return Results(final=list(final.values()), problems=list(store.problems), lines=lines)

    @staticmethod
    def discover(root: str | os.PathLike[str]) -> list[ExperimentFolder]:
        """Every experiment folder at or below ``root`` (a suite's included)."""
        root = Path(root)
        if (root / EXPERIMENT_FILE).is_file():
            return [ExperimentFolder(root)]
        return [ExperimentFolder(p.parent) for p in sorted(root.rglob(EXPERIMENT_FILE))]


def read_suite(root: str | os.PathLike[str]) -> SuiteRecord:
    """A suite folder's ``suite.json``; :class:`DataError` when missing or invalid."""
    path = Path(root) / SUITE_FILE
    if not path.is_file():
        raise DataError(f"{root} is not a suite folder ({SUITE_FILE} is missing)")
    try:
        return SuiteRecord.model_validate_json(path.read_bytes())
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        raise DataError(f"{path} is not a valid suite record ({where}: {first['msg']})") from None


def count(records: list[RunRecord], planned: int) -> Counts:
    """Counts over the final record of each run."""
    completed = [r for r in records if r.status == "completed"]
    passed = sum(r.passed is True for r in completed)
    failed = sum(r.passed is False for r in completed)
    return Counts(
        planned=planned,
        recorded=len(records),
        completed=len(completed),
        infra_error=len(records) - len(completed),
        passed=passed,
        failed=failed,
        pass_rate=passed / (passed + failed) if passed + failed else None,
    )
