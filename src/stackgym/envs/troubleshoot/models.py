"""Typed config, actions (tools), observation and sandbox catalog of the troubleshooting gym."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from stackgym.core.errors import UnknownNameError
from stackgym.core.models import Action, Observation
from stackgym.data.spec import BUG_TYPES
from stackgym.sandboxes.catalog import BUILTIN_CATALOG, MANIFEST_FILE, Catalog, Sandbox

#: This environment's catalog root; its sandboxes extend the built-in ones.
CATALOG_ROOT = Path(__file__).resolve().parent / "sandboxes"
DEFAULT_SANDBOX = "troubleshoot-orm"
DEFAULT_MAX_TURNS = 20
BUGS: tuple[str, ...] = BUG_TYPES
Bug = Literal["idempotency", "missing_mapping", "schema_drift", "stale_status"]

#: Options a reset may override for one episode (max_turns fixes the budget).
EPISODE_OPTIONS = ("sandbox", "bug", "data_seed", "scale", "anchor")
#: Rows of a query result shown to the agent, and fetched at most.
ROWS_SHOWN = 50
ROWS_FETCHED = 1_000
SQL_TIMEOUT_S = 10.0


def sandbox_ids() -> tuple[str, ...]:
    """The troubleshooting sandboxes (folders of :data:`CATALOG_ROOT`), sorted."""
    return tuple(
        sorted(
            p.parent.name
            for p in CATALOG_ROOT.glob(f"*/{MANIFEST_FILE}")
            if p.parent.name[0] != "_"
        )
    )


@cache
def catalog() -> Catalog:
    """This environment's catalog, backed by the built-in one for ``extends`` and overlays."""
    return Catalog([CATALOG_ROOT, BUILTIN_CATALOG])


def get_sandbox(sandbox_id: str) -> Sandbox:
    """A troubleshooting sandbox by id (the metrics sandboxes are not among them)."""
    if sandbox_id not in sandbox_ids():
        raise UnknownNameError("troubleshoot sandbox", sandbox_id, list(sandbox_ids()))
    return catalog().get(sandbox_id)


def parse_time(value: object) -> datetime:
    """A moment an agent wrote: Unix seconds or an ISO date/time (naive UTC).

    Raises ``ValueError`` with a message an agent can act on.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"{value!r} is not a time; use a Unix time or a date like 2025-10-01")
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value.strip())
    if isinstance(value, (int, float)):
        if not -1e11 < value < 1e11:
            raise ValueError(f"{value} is not a Unix time in seconds")
        return datetime(1970, 1, 1) + timedelta(seconds=int(value))
    text = value.strip().replace("/", "-")
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"{value!r} is not a date or time; use YYYY-MM-DD, YYYY-MM-DDTHH:MM:SS or a Unix time"
        ) from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


class TroubleshootConfig(BaseModel):
    """Every option of ``stackgym.make("troubleshoot", ...)``, validated once."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sandbox: str = DEFAULT_SANDBOX
    bug: Bug = "idempotency"
    #: The data snapshot: seed, scale and anchor of the dataset (not the episode seed).
    data_seed: Annotated[int, Field(ge=0)] = 0
    scale: Annotated[float, Field(gt=0, le=100)] = 1.0
    anchor: datetime | None = None
    max_turns: Annotated[int, Field(ge=1, le=200)] = DEFAULT_MAX_TURNS


class QueryDb(Action):
    """Run one read-only SELECT on a database of the stack and see up to 50 rows.

    Databases: `app` (the product's SQLite database; timestamps are Unix
    seconds) and, where the stack has one, `warehouse` (DuckDB; schemas raw,
    staging, marts).
    """

    type: Literal["query_db"] = "query_db"
    sql: str = Field(description="one SELECT statement")
    database: str = Field(default="app", description="app or warehouse")


class CheckApi(Action):
    """List objects from the billing provider's API, the source of truth (clean data).

    Works like Stripe's list endpoints: newest first, filters such as
    customer, status or created[gte]/created[lt] (Unix time or ISO date),
    limit 1-100, starting_after for the next page; the answer carries
    has_more and total_count. Resources: customers, products, prices,
    subscriptions, invoices, payment_intents.
    """

    type: Literal["check_api"] = "check_api"
    resource: str = Field(description="e.g. invoices, subscriptions, customers")
    filters: dict[str, Any] = Field(
        default_factory=dict,
        description=(
            'e.g. {"status": "paid", "created[gte]": "2025-10-01", "created[lt]": 1759449600}'
        ),
    )
    limit: int = Field(default=10, ge=1, le=100, description="objects per page, 1-100")
    starting_after: str | None = Field(
        default=None, description="id of the last object of the previous page"
    )


class InspectEtlLog(Action):
    """Read the run history of the nightly sync jobs that load the app database (newest first).

    Each run shows its job, the table it loads, start time, status, the cursor
    window it processed, rows extracted and loaded, and its message.
    """

    type: Literal["inspect_etl_log"] = "inspect_etl_log"
    job: str | None = Field(default=None, description="only this job, e.g. invoices_sync")
    since: str | None = Field(default=None, description="runs started on or after this date")
    until: str | None = Field(default=None, description="runs started on or before this date")
    status: Literal["success", "failed"] | None = Field(
        default=None, description="only this status"
    )
    limit: int = Field(default=50, ge=1, le=200, description="runs to show, 1-200")
    offset: int = Field(default=0, ge=0, description="runs to skip (paging)")


class ReadFile(Action):
    """Read a text file of the stack. Paths are relative to the sandbox root."""

    type: Literal["read_file"] = "read_file"
    path: str = Field(description="file path relative to the sandbox root, e.g. README.md")


class ListFiles(Action):
    """List every file under a folder of the stack (recursively)."""

    type: Literal["list_files"] = "list_files"
    path: str = Field(default=".", description="folder relative to the sandbox root")


class SubmitDiagnosis(Action):
    """Submit your diagnosis. This ends the episode; it is graded at once.

    Name the one table whose rows are wrong, the time window of the affected
    rows (dates), what went wrong and where in the pipeline it comes from.
    """

    type: Literal["submit_diagnosis"] = "submit_diagnosis"
    diagnosis: str = Field(
        max_length=4_000, description="what went wrong and the evidence, in your words"
    )
    table: str = Field(
        max_length=200, description="the one table whose rows are wrong, e.g. invoices"
    )
    window_start: str = Field(
        max_length=40, description="first day of the affected rows' time window, YYYY-MM-DD"
    )
    window_end: str = Field(
        default="",
        max_length=40,
        description="last day of the window, YYYY-MM-DD (empty if it is still going on)",
    )
    source: str = Field(
        max_length=1_000,
        description="where in the pipeline it comes from: the job or step, and what happened",
    )


TOOLS: tuple[type[Action], ...] = (
    QueryDb,
    CheckApi,
    InspectEtlLog,
    ReadFile,
    ListFiles,
    SubmitDiagnosis,
)


class TroubleshootObservation(Observation):
    """What the agent sees after each turn; ``text`` is the tool's result."""

    sandbox: str = ""
    #: The wrong metric, as reported and as the source data implies it.
    symptom: str = ""
    tools: list[str] = Field(default_factory=list)
    #: Databases ``query_db`` accepts in this sandbox.
    databases: list[str] = Field(default_factory=list)
    turn: int = 0
    max_turns: int = 0
    turns_left: int = 0
    #: The last tool's result as data (rows, the API's list object, runs), for programs.
    result: Any = None
    #: Only on the first observation: the two prompts ``text`` joins.
    system_prompt: str | None = None
    task_prompt: str | None = None
