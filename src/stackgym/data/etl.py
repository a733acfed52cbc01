"""The ETL log of the pipeline that loaded the app database from Stripe.

Every dataset comes with the log of its nightly sync jobs: one run per job per
day over the last 120 days (longer if a bug window reaches further), with the
cursor range each run processed, row counts, status and message. Routine noise
(failed runs that retried correctly) is part of it. When a bug is injected,
its traces appear where an engineer would find them: a retry whose cursor was
rewound over rows already loaded, mapping lookups that timed out, warnings
about an unknown field, a cursor that stopped moving. The log states facts,
never the diagnosis.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Literal

import numpy as np
import pyarrow as pa
from pydantic import BaseModel, ConfigDict

from stackgym.data.bugs import BugDiagnosis
from stackgym.data.spec import DatasetSpec

_ETL_STREAM = 0xE71
JOBS = ("customers_sync", "subscriptions_sync", "invoices_sync", "users_mapping_sync")
#: Which table each job loads and the timestamp its cursor follows.
JOB_CURSORS = {
    "customers_sync": ("customers", "created_at"),
    "subscriptions_sync": ("subscriptions", "created_at"),
    "invoices_sync": ("invoices", "created_at"),
    "users_mapping_sync": ("users", "created_at"),
}


class EtlRun(BaseModel):
    """One run of one sync job."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    run_id: str
    job: str
    started_at: datetime
    finished_at: datetime
    status: Literal["success", "failed"]
    cursor_start: datetime
    cursor_end: datetime
    rows_extracted: int
    rows_loaded: int
    message: str


def _count_between(stamps: np.ndarray, start: datetime, end: datetime) -> int:
    lo = np.datetime64(start, "us").astype(np.int64)
    hi = np.datetime64(end, "us").astype(np.int64)
    return int(((stamps >= lo) & (stamps < hi)).sum())


class _Log:
    def __init__(self, spec: DatasetSpec, tables: dict[str, pa.Table]) -> None:
        self.rng = np.random.default_rng([spec.seed, _ETL_STREAM])
        self.stamps = {
            job: tables[table][column].to_numpy().astype("datetime64[us]").astype(np.int64)
            for job, (table, column) in JOB_CURSORS.items()
        }
        self.runs: list[EtlRun] = []

    def add(
        self,
        job: str,
        started: datetime,
        cursor: tuple[datetime, datetime],
        *,
        status: Literal["success", "failed"] = "success",
        loaded: int | None = None,
        extracted: int | None = None,
        message: str = "ok",
    ) -> None:
        rows = _count_between(self.stamps[job], *cursor) if extracted is None else extracted
        seconds = 20 + int(self.rng.integers(0, 200)) + rows // 50
        self.runs.append(
            EtlRun(
                run_id=f"{job}-{started:%Y%m%dT%H%M%S}",
                job=job,
                started_at=started,
                finished_at=started + timedelta(seconds=seconds),
                status=status,
                cursor_start=cursor[0],
                cursor_end=cursor[1],
                rows_extracted=rows,
                rows_loaded=rows if loaded is None else loaded,
                message=message,
            )
        )


def generate_etl_log(
    spec: DatasetSpec, tables: dict[str, pa.Table], diagnosis: BugDiagnosis | None
) -> list[EtlRun]:
    """The nightly sync runs for ``spec``, with the traces of ``diagnosis`` if any."""
    log = _Log(spec, tables)
    today = spec.anchor.replace(hour=0, minute=0, second=0, microsecond=0)
    days = 120
    if diagnosis is not None:
        days = max(days, (today - diagnosis.window_start).days + 10)
    for back in range(days, 0, -1):
        day = today - timedelta(days=back)
        cursor = (day - timedelta(days=1), day)
        for offset, job in enumerate(JOBS):
            started = day + timedelta(hours=2, minutes=15 * offset + int(log.rng.integers(0, 10)))
            if log.rng.random() < 0.03:
                # routine failure, retried from the saved cursor: no harm done
                failed = f"{job}-{started:%Y%m%dT%H%M%S}"
                log.add(
                    job,
                    started,
                    cursor,
                    status="failed",
                    loaded=0,
                    message="connection reset by peer after 0 of 1 batches; retry scheduled",
                )
                log.add(
                    job,
                    started + timedelta(minutes=40),
                    cursor,
                    message=f"retry of {failed}: resumed at saved cursor",
                )
            else:
                log.add(job, started, cursor)
    if diagnosis is not None:
        _BUG_TRACES[diagnosis.bug](log, diagnosis)
    log.runs.sort(key=lambda run: (run.started_at, run.job))
    return log.runs


def _idempotency_traces(log: _Log, diagnosis: BugDiagnosis) -> None:
    day_after = diagnosis.window_end.replace(hour=0, minute=0, second=0) + timedelta(days=1)
    started = day_after + timedelta(hours=9, minutes=12)
    window = (diagnosis.window_start, diagnosis.window_end + timedelta(seconds=1))
    log.add(
        "invoices_sync",
        started,
        window,
        message=(
            "manual re-run requested after partial failure alert; "
            f"cursor reset to {diagnosis.window_start:%Y-%m-%dT%H:%M:%S}; "
            "write mode: append"
        ),
    )


def _missing_mapping_traces(log: _Log, diagnosis: BugDiagnosis) -> None:
    runs = []
    for run in log.runs:
        in_window = diagnosis.window_start <= run.cursor_start <= diagnosis.window_end
        if run.job == "users_mapping_sync" and in_window and run.status == "success":
            unmapped = run.rows_extracted
            run = run.model_copy(
                update={
                    "rows_loaded": 0,
                    "message": (
                        f"stripe customer lookup timed out for {unmapped} of {unmapped} users; "
                        "mapping skipped (non-fatal)"
                    ),
                }
            )
        runs.append(run)
    log.runs = runs


def _schema_drift_traces(log: _Log, diagnosis: BugDiagnosis) -> None:
    runs = []
    for run in log.runs:
        if run.job == "invoices_sync" and run.cursor_start >= diagnosis.window_start - timedelta(
            days=1
        ):
            run = run.model_copy(
                update={
                    "message": (
                        "warning: source field 'amount_paid' not found in "
                        f"{run.rows_extracted} records, loaded as NULL; "
                        "unmapped source field: 'amount_paid_cents'"
                    )
                }
            )
        runs.append(run)
    log.runs = runs


def _stale_status_traces(log: _Log, diagnosis: BugDiagnosis) -> None:
    runs = []
    stuck = diagnosis.window_start.replace(hour=0, minute=0, second=0)
    for run in log.runs:
        if run.job == "subscriptions_sync" and stuck <= run.cursor_start <= diagnosis.window_end:
            run = run.model_copy(
                update={
                    "cursor_start": stuck,
                    "cursor_end": stuck,
                    "rows_extracted": 0,
                    "rows_loaded": 0,
                    "message": "incremental sync on updated_at: 0 changed rows since cursor",
                }
            )
        runs.append(run)
    log.runs = runs


_BUG_TRACES = {
    "idempotency": _idempotency_traces,
    "missing_mapping": _missing_mapping_traces,
    "schema_drift": _schema_drift_traces,
    "stale_status": _stale_status_traces,
}


def etl_log_jsonl(runs: list[EtlRun]) -> str:
    """The log as JSON lines (one run per line), the form sandboxes expose."""
    return "".join(json.dumps(run.model_dump(mode="json")) + "\n" for run in runs)
