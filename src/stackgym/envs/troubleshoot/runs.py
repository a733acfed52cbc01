"""The ETL run history (``inspect_etl_log``): the sync jobs' runs, filtered and paged.

Reads the sandbox's ``etl/runs.db`` (built by :func:`stores.write_etl_store`
from ``dataset.etl_log()``) with parameterized SQL, read-only. Filters are
checked first: an unknown job or a date that does not parse is a
:class:`~stackgym.sandboxes.workspace.ToolError` naming what is valid.
"""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import Any

from stackgym.envs.troubleshoot.models import parse_time
from stackgym.sandboxes.workspace import ToolError

COLUMNS = (
    "run_id",
    "job",
    "target_table",
    "started_at",
    "finished_at",
    "status",
    "cursor_start",
    "cursor_end",
    "rows_extracted",
    "rows_loaded",
    "message",
)
_STAMP = "%Y-%m-%d %H:%M:%S"


def _bound(value: str, name: str, *, end: bool) -> str:
    """A ``since``/``until`` filter as a timestamp; a bare ``until`` date covers its whole day."""
    try:
        moment = parse_time(value)
    except ValueError as exc:
        raise ToolError(f"{name}: {exc}") from None
    text = str(value).strip()
    if end and len(text) <= 10 and moment == moment.replace(hour=0, minute=0, second=0):
        moment += timedelta(days=1) - timedelta(seconds=1)
    return moment.strftime(_STAMP)


class EtlRunHistory:
    """The run history in one store file."""

    def __init__(self, store: Path) -> None:
        # a published build file that nothing writes again: immutable skips locking
        self._db = sqlite3.connect(
            f"{Path(store).resolve().as_uri()}?mode=ro&immutable=1",
            uri=True,
            check_same_thread=False,
        )
        self.jobs = tuple(
            r[0] for r in self._db.execute("SELECT DISTINCT job FROM runs ORDER BY 1")
        )

    def close(self) -> None:
        self._db.close()

    def runs(
        self,
        *,
        job: str | None = None,
        since: str | None = None,
        until: str | None = None,
        status: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[dict[str, Any]], int]:
        """Runs matching the filters, newest first, and how many match in all."""
        where: list[str] = []
        params: list[Any] = []
        if job is not None:
            if job not in self.jobs:
                raise ToolError(f"the ETL log has no job {job!r}", f"jobs: {', '.join(self.jobs)}")
            where.append("job = ?")
            params.append(job)
        if since is not None:
            where.append("started_at >= ?")
            params.append(_bound(since, "since", end=False))
        if until is not None:
            where.append("started_at <= ?")
            params.append(_bound(until, "until", end=True))
        if status is not None:
            where.append("status = ?")
            params.append(status)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        (total,) = self._db.execute(f"SELECT count(*) FROM runs{clause}", params).fetchone()
        rows = self._db.execute(
            f"SELECT {', '.join(COLUMNS)} FROM runs{clause} "
            "ORDER BY started_at DESC, job DESC LIMIT ? OFFSET ?",
            [*params, limit, offset],
        ).fetchall()
        return [dict(zip(COLUMNS, row, strict=True)) for row in rows], int(total)


def render(runs: list[dict[str, Any]], total: int, offset: int, filters: dict[str, Any]) -> str:
    """The runs as a plain-text table (what the agent reads)."""
    described = ", ".join(f"{k}={v}" for k, v in filters.items() if v is not None) or "no filters"
    if not runs:
        return f"No ETL runs match ({described}; {total} match in all)."
    shown = f"{offset + 1}-{offset + len(runs)}"
    head = f"ETL runs {shown} of {total} matching ({described}), newest first"
    header = (
        "started_at",
        "job",
        "table",
        "status",
        "cursor_start",
        "cursor_end",
        "extracted",
        "loaded",
        "message",
    )
    cells = [
        (
            r["started_at"],
            r["job"],
            r["target_table"],
            r["status"],
            r["cursor_start"],
            r["cursor_end"],
            str(r["rows_extracted"]),
            str(r["rows_loaded"]),
            r["message"],
        )
        for r in runs
    ]
    widths = [max(len(header[i]), *(len(c[i]) for c in cells)) for i in range(len(header) - 1)]
    lines = [
        head,
        " | ".join(h.ljust(w) for h, w in zip(header, [*widths, 0], strict=True)).rstrip(),
    ]
    lines += [
        " | ".join([*(c.ljust(w) for c, w in zip(row[:-1], widths, strict=True)), row[-1]])
        for row in cells
    ]
    more = total - offset - len(runs)
    if more > 0:
        lines.append(f"({more} older run(s) not shown; use offset={offset + len(runs)})")
    return "\n".join(lines)
