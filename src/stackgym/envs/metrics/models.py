"""Typed config, actions (tools) and observation of the metrics environment."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from stackgym.core.models import Action, Observation

#: The metric tasks (definitions, tolerances: ``stackgym/data/tasks.yaml``).
TASKS: tuple[str, ...] = ("active_user_arpu", "org_churn_rate", "avg_org_ltv")
DRIFTS: tuple[str, ...] = ("none", "stripe-lag", "missing-mapping")
LINT_POLICIES: tuple[str, ...] = ("none", "lint")
DEFAULT_SANDBOX = "warehouse-dbt-fair"
#: Turns the ``lint`` policy's fix window grants after a ``done`` that fails lint.
FIX_WINDOW_TURNS = 3

Task = Literal["active_user_arpu", "org_churn_rate", "avg_org_ltv"]
Drift = Literal["none", "stripe-lag", "missing-mapping"]
ExtraTool = Literal["run_sql", "lint"]

# Options a reset may override for one episode (the rest fix the tool budget).
EPISODE_OPTIONS = ("sandbox", "task", "data_seed", "scale", "drift", "anchor")


class MetricsConfig(BaseModel):
    """Every option of ``stackgym.make("metrics", ...)``, validated once."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sandbox: str = DEFAULT_SANDBOX
    task: Task = "active_user_arpu"
    #: The data snapshot: seed, scale, drift and anchor of the dataset (not the episode seed).
    data_seed: Annotated[int, Field(ge=0)] = 0
    scale: Annotated[float, Field(gt=0, le=100)] = 1.0
    drift: Drift = "none"
    anchor: datetime | None = None
    max_turns: Annotated[int, Field(ge=1, le=200)] = 10
    #: Extra tools on top of read_file, write_file, list_files, done.
    tools: tuple[ExtraTool, ...] = ()
    lint: Literal["none", "lint"] = "none"

    @field_validator("tools", mode="before")
    @classmethod
    def _tools(cls, value: object) -> object:
        if value is None:
            return ()
        if isinstance(value, str):  # from the command line: "run_sql,lint"
            return tuple(t.strip() for t in value.split(",") if t.strip() and t.strip() != "none")
        return value

    @field_validator("tools")
    @classmethod
    def _unique(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(value))


class ReadFile(Action):
    """Read a text file of the sandbox. Paths are relative to the sandbox root."""

    type: Literal["read_file"] = "read_file"
    path: str = Field(description="file path relative to the sandbox root, e.g. README.md")


class WriteFile(Action):
    """Create or overwrite a text file of the sandbox (folders are created)."""

    type: Literal["write_file"] = "write_file"
    path: str = Field(description="file path relative to the sandbox root")
    content: str = Field(description="the complete new content of the file")


class ListFiles(Action):
    """List every file under a folder of the sandbox (recursively)."""

    type: Literal["list_files"] = "list_files"
    path: str = Field(default=".", description="folder relative to the sandbox root")


class Done(Action):
    """Finish: your answer file is run and graded. Call it once the answer is written."""

    type: Literal["done"] = "done"


class RunSql(Action):
    """Run one read-only SELECT on a database of the sandbox and see up to 50 rows."""

    type: Literal["run_sql"] = "run_sql"
    sql: str = Field(description="one SELECT statement")
    database: str | None = Field(
        default=None, description="which database (default: the one your answer runs on)"
    )


class Lint(Action):
    """Check your answer file without running it (SQL: sqlfluff + EXPLAIN; TS: tsc)."""

    type: Literal["lint"] = "lint"


class MetricsObservation(Observation):
    """What the agent sees after each turn; ``text`` is the tool's result."""

    sandbox: str = ""
    task: str = ""
    answer_path: str = ""
    #: The tools of this episode (an experiment keeps them equal across sides).
    tools: list[str] = Field(default_factory=list)
    turn: int = 0
    max_turns: int = 0
    turns_left: int = 0
    #: Turns left in the lint fix window; 0 when none is open.
    fix_window: int = 0
    #: Only on the first observation: the two prompts ``text`` joins.
    system_prompt: str | None = None
    task_prompt: str | None = None
