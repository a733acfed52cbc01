"""Pipeline bugs injected into the app data, each with its ground-truth diagnosis.

The troubleshooting gym (SPEC section 4) gives agents a database that a broken
pipeline loaded, next to a clean source of truth. Each injector takes the clean
tables and returns the bugged tables plus a :class:`BugDiagnosis`: the table,
the time window, the rows affected, which metrics moved and by how much, and
the pipeline step at fault. The window, its size and the affected rows vary
with the seed.

* ``idempotency``: a sync job partially re-ran, so every invoice created in one
  3-day window was inserted again with a new id but the same customer,
  amounts, status and ``created_at``. ARPU and LTV inflate.
* ``missing_mapping``: the user-to-Stripe mapping job failed for users created
  in a 10-day window, leaving their ``stripe_customer_id`` empty. Revenue per
  user drops.
* ``schema_drift``: Stripe renamed ``amount_paid`` to ``amount_paid_cents``
  mid-pipeline; from that day on the loader wrote NULL. Revenue drops.
* ``stale_status``: cancellations in a 14-day window were not propagated, so
  those subscriptions still read ``active``. Churn drops.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict

from stackgym.data.generate import stripe_ids
from stackgym.data.spec import DatasetSpec
from stackgym.data.truth import compute_truth, metric_tasks

Tables = dict[str, pa.Table]

#: Random stream of the injectors, separate from the generator's streams.
_BUG_STREAM = 0xB06


class BugDiagnosis(BaseModel):
    """The ground truth a diagnosis is graded against."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    bug: str
    #: The table whose rows are wrong in the app database.
    table: str
    #: The column at fault, where the bug is about one column.
    column: str | None = None
    #: First and last moment of the affected time window (inclusive).
    window_start: datetime
    window_end: datetime
    #: Which timestamp the window refers to (e.g. ``invoices.created_at``).
    window_column: str
    affected_rows: int
    #: A few ids of affected rows, for people and oracles checking the data.
    sample_ids: list[str]
    #: Metrics that moved by more than their tolerance, and bugged / clean ratio.
    affected_metrics: list[str]
    inflation: dict[str, float]
    #: The pipeline job at fault, as named in the ETL log.
    etl_job: str
    #: One sentence stating the cause, in the words an engineer would use.
    summary: str


def _rng(spec: DatasetSpec) -> np.random.Generator:
    return np.random.default_rng([spec.seed, _BUG_STREAM])


def _micros(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    return column.to_numpy().astype("datetime64[us]").astype(np.int64)


def _moment(micros: int) -> datetime:
    return datetime(1970, 1, 1) + timedelta(microseconds=int(micros))


def _midnight_days_ago(anchor: datetime, days: int) -> datetime:
    return (anchor - timedelta(days=days)).replace(hour=0, minute=0, second=0)


def _set_column(table: pa.Table, name: str, values: pa.Array) -> pa.Table:
    return table.set_column(table.schema.get_field_index(name), name, values)


def _idempotency(tables: Tables, spec: DatasetSpec, rng: np.random.Generator) -> tuple:
    invoices = tables["invoices"]
    start = _midnight_days_ago(spec.anchor, int(rng.integers(20, 90)))
    end = start + timedelta(days=3) - timedelta(seconds=1)
    stamps = _micros(invoices["created_at"])
    start_us = int((start - datetime(1970, 1, 1)).total_seconds() * 1e6)
    end_us = int((end - datetime(1970, 1, 1)).total_seconds() * 1e6)
    rows = np.flatnonzero((stamps >= start_us) & (stamps <= end_us))
    copies = invoices.take(pa.array(rows))
    copies = _set_column(copies, "id", stripe_ids(rng, "in_", len(rows)))
    bugged = pa.concat_tables([invoices, copies])
    return (
        {**tables, "invoices": bugged},
        dict(
            table="invoices",
            column=None,
            window_start=start,
            window_end=end,
            window_column="invoices.created_at",
            affected_rows=len(rows),
            sample_ids=copies["id"].to_pylist()[:5],
            etl_job="invoices_sync",
            summary=(
                "A partial re-run of the invoices sync reloaded every invoice created in "
                f"{start:%Y-%m-%d}..{end:%Y-%m-%d} without an idempotency key, inserting "
                f"{len(rows)} duplicate invoices (new ids, same customer, amount and timestamp)."
            ),
        ),
    )


def _missing_mapping(tables: Tables, spec: DatasetSpec, rng: np.random.Generator) -> tuple:
    users = tables["users"]
    created = _micros(users["created_at"])
    mapped = pc.is_valid(users["stripe_customer_id"]).to_numpy(zero_copy_only=False)
    for _ in range(100):
        start = _midnight_days_ago(spec.anchor, int(rng.integers(25, 200)))
        end = start + timedelta(days=10) - timedelta(seconds=1)
        lo = int((start - datetime(1970, 1, 1)).total_seconds() * 1e6)
        hi = int((end - datetime(1970, 1, 1)).total_seconds() * 1e6)
        rows = np.flatnonzero((created >= lo) & (created <= hi) & mapped)
        if len(rows) >= max(3, round(5 * spec.scale)):
            break
    column = users["stripe_customer_id"].to_pylist()
    ids = users["id"].to_pylist()
    for row in rows:
        column[row] = None
    bugged = _set_column(users, "stripe_customer_id", pa.array(column, type=pa.string()))
    return (
        {**tables, "users": bugged},
        dict(
            table="users",
            column="stripe_customer_id",
            window_start=start,
            window_end=end,
            window_column="users.created_at",
            affected_rows=len(rows),
            sample_ids=[str(ids[r]) for r in rows[:5]],
            etl_job="users_mapping_sync",
            summary=(
                "The user-to-Stripe mapping job failed for users created in "
                f"{start:%Y-%m-%d}..{end:%Y-%m-%d}, leaving stripe_customer_id empty for "
                f"{len(rows)} users whose Stripe customers exist."
            ),
        ),
    )


def _schema_drift(tables: Tables, spec: DatasetSpec, rng: np.random.Generator) -> tuple:
    invoices = tables["invoices"]
    start = _midnight_days_ago(spec.anchor, int(rng.integers(10, 45)))
    stamps = _micros(invoices["created_at"])
    start_us = int((start - datetime(1970, 1, 1)).total_seconds() * 1e6)
    affected = stamps >= start_us
    end = _moment(stamps[affected].max()) if affected.any() else start
    paid = invoices["amount_paid"].to_numpy()
    bugged_paid = pa.array(paid, mask=affected, type=pa.int64())
    rows = np.flatnonzero(affected)
    return (
        {**tables, "invoices": _set_column(invoices, "amount_paid", bugged_paid)},
        dict(
            table="invoices",
            column="amount_paid",
            window_start=start,
            window_end=end,
            window_column="invoices.created_at",
            affected_rows=len(rows),
            sample_ids=invoices["id"].take(pa.array(rows[:5])).to_pylist(),
            etl_job="invoices_sync",
            summary=(
                f"From {start:%Y-%m-%d} Stripe sends amount_paid as amount_paid_cents; the "
                "invoices loader did not map the renamed field and wrote NULL amount_paid "
                f"for {len(rows)} invoices."
            ),
        ),
    )


def _stale_status(tables: Tables, spec: DatasetSpec, rng: np.random.Generator) -> tuple:
    subs = tables["subscriptions"]
    status = np.asarray(subs["status"].to_pylist(), dtype=object)
    ended = _micros(subs["current_period_end"])
    canceled = status == "canceled"
    for _ in range(100):
        start = _midnight_days_ago(spec.anchor, int(rng.integers(20, 150)))
        end = start + timedelta(days=14) - timedelta(seconds=1)
        lo = int((start - datetime(1970, 1, 1)).total_seconds() * 1e6)
        hi = int((end - datetime(1970, 1, 1)).total_seconds() * 1e6)
        rows = np.flatnonzero(canceled & (ended >= lo) & (ended <= hi))
        if len(rows) >= max(5, round(10 * spec.scale)):
            break
    status[rows] = "active"
    bugged = _set_column(subs, "status", pa.array(status.tolist(), type=pa.string()))
    return (
        {**tables, "subscriptions": bugged},
        dict(
            table="subscriptions",
            column="status",
            window_start=start,
            window_end=end,
            window_column="subscriptions.current_period_end",
            affected_rows=len(rows),
            sample_ids=subs["id"].take(pa.array(rows[:5])).to_pylist(),
            etl_job="subscriptions_sync",
            summary=(
                "The subscriptions sync's incremental cursor stalled, so "
                f"{len(rows)} cancellations effective {start:%Y-%m-%d}..{end:%Y-%m-%d} were "
                "never propagated and those subscriptions still read 'active'."
            ),
        ),
    )


INJECTORS: dict[str, Callable[[Tables, DatasetSpec, np.random.Generator], tuple]] = {
    "idempotency": _idempotency,
    "missing_mapping": _missing_mapping,
    "schema_drift": _schema_drift,
    "stale_status": _stale_status,
}


def inject_bug(tables: Tables, spec: DatasetSpec) -> tuple[Tables, BugDiagnosis]:
    """Apply ``spec.bug`` to clean ``tables``; return the bugged tables and the diagnosis."""
    bugged, facts = INJECTORS[spec.bug](tables, spec, _rng(spec))
    clean_truth = compute_truth(tables).model_dump()
    bugged_truth = compute_truth(bugged).model_dump()
    tasks = metric_tasks()
    inflation = {
        name: (bugged_truth[name] / clean_truth[name]) if clean_truth[name] else float("inf")
        for name in clean_truth
    }
    affected = [
        name
        for name in clean_truth
        if not tasks[name].accepts(clean_truth[name], bugged_truth[name])
    ]
    diagnosis = BugDiagnosis(
        bug=spec.bug,
        affected_metrics=affected,
        inflation={k: round(v, 6) for k, v in inflation.items()},
        **facts,
    )
    return bugged, diagnosis
