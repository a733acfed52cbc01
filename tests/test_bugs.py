"""Injected pipeline bugs: the data really has the bug the diagnosis describes."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import duckdb
import pyarrow.compute as pc
import pytest

from stackgym.core import DataError
from stackgym.data import BUG_TYPES, Dataset, DatasetSpec, dataset_for, metric_tasks
from test_truth import SQL


def pair(bug: str, seed: int = 0):
    bugged = dataset_for(DatasetSpec(seed=seed, bug=bug))
    clean = dataset_for(DatasetSpec(seed=seed, bug=bug).clean())
    return bugged, clean


def sql_values(dataset: Dataset) -> dict[str, float]:
    con = duckdb.connect()
    for name in ("users", "api_usage", "invoices", "subscriptions", "organizations"):
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{dataset.path(name)}')")
    return {task: float(con.execute(sql).fetchone()[0]) for task, sql in SQL.items()}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_idempotency_duplicates_every_invoice_of_one_three_day_window(seed):
    bugged, clean = pair("idempotency", seed)
    diagnosis = bugged.diagnosis
    before, after = clean.table("invoices"), bugged.table("invoices")
    assert diagnosis.table == "invoices"
    assert after.num_rows - before.num_rows == diagnosis.affected_rows > 20
    assert diagnosis.window_end - diagnosis.window_start == timedelta(days=3, seconds=-1)
    key = ("customer_id", "subscription_id", "amount_due", "amount_paid", "status", "created_at")
    rows_before = Counter(zip(*(before[c].to_pylist() for c in key), strict=True))
    rows_after = Counter(zip(*(after[c].to_pylist() for c in key), strict=True))
    extra = rows_after - rows_before
    assert sum(extra.values()) == diagnosis.affected_rows
    created = [row[-1] for row in extra]
    assert all(diagnosis.window_start <= t <= diagnosis.window_end for t in created)
    in_window = sum(
        1
        for t in before["created_at"].to_pylist()
        if diagnosis.window_start <= t <= diagnosis.window_end
    )
    assert in_window == diagnosis.affected_rows  # every invoice of the window, not some
    assert len(set(after["id"].to_pylist())) == after.num_rows  # new ids
    assert set(diagnosis.affected_metrics) == {"active_user_arpu", "avg_org_ltv"}


def test_missing_mapping_empties_the_customer_of_users_created_in_the_window():
    bugged, clean = pair("missing_mapping", 1)
    diagnosis = bugged.diagnosis
    before, after = clean.table("users"), bugged.table("users")
    lost = [
        i
        for i, (a, b) in enumerate(
            zip(
                before["stripe_customer_id"].to_pylist(),
                after["stripe_customer_id"].to_pylist(),
                strict=True,
            )
        )
        if a is not None and b is None
    ]
    assert len(lost) == diagnosis.affected_rows >= 3
    created = before["created_at"].to_pylist()
    assert all(diagnosis.window_start <= created[i] <= diagnosis.window_end for i in lost)
    assert diagnosis.column == "stripe_customer_id"


def test_schema_drift_nulls_amount_paid_from_the_drift_day_on():
    bugged, clean = pair("schema_drift", 2)
    diagnosis = bugged.diagnosis
    invoices = bugged.table("invoices")
    nulls = pc.is_null(invoices["amount_paid"]).to_pylist()
    created = invoices["created_at"].to_pylist()
    assert sum(nulls) == diagnosis.affected_rows > 50
    assert all(
        null == (t >= diagnosis.window_start) for null, t in zip(nulls, created, strict=True)
    )
    assert clean.table("invoices")["amount_paid"].null_count == 0


def test_stale_status_keeps_cancelled_subscriptions_active():
    bugged, clean = pair("stale_status", 0)
    diagnosis = bugged.diagnosis
    before, after = clean.table("subscriptions"), bugged.table("subscriptions")
    changed = [
        (a, b, end)
        for a, b, end in zip(
            before["status"].to_pylist(),
            after["status"].to_pylist(),
            before["current_period_end"].to_pylist(),
            strict=True,
        )
        if a != b
    ]
    assert len(changed) == diagnosis.affected_rows >= 5
    assert all(a == "canceled" and b == "active" for a, b, _ in changed)
    assert all(diagnosis.window_start <= end <= diagnosis.window_end for _, _, end in changed)
    assert diagnosis.affected_metrics == ["org_churn_rate"]


@pytest.mark.parametrize("bug", BUG_TYPES)
def test_affected_metrics_and_inflation_agree_with_independent_sql(bug):
    bugged, clean = pair(bug, 3)
    tasks = metric_tasks()
    sql_bugged, sql_clean = sql_values(bugged), sql_values(clean)
    moved = [t for t in SQL if not tasks[t].accepts(sql_clean[t], sql_bugged[t])]
    assert sorted(moved) == sorted(bugged.diagnosis.affected_metrics)
    for task in moved:
        ratio = sql_bugged[task] / sql_clean[task]
        assert bugged.diagnosis.inflation[task] == pytest.approx(ratio, rel=1e-3)


def test_bug_window_and_size_vary_with_the_seed():
    windows = {
        dataset_for(DatasetSpec(seed=s, bug="idempotency")).diagnosis.window_start for s in range(4)
    }
    assert len(windows) >= 3


def test_clean_spec_is_the_source_of_truth_and_a_different_snapshot():
    spec = DatasetSpec(seed=0, bug="idempotency")
    assert spec.clean().bug == "none"
    bugged, clean = pair("idempotency")
    assert bugged.snapshot != clean.snapshot and clean.diagnosis is None
    assert clean.table("users") == bugged.table("users")


def test_etl_log_shows_a_rerun_over_rows_already_loaded():
    bugged, _ = pair("idempotency", 1)
    diagnosis = bugged.diagnosis
    runs = [r for r in bugged.etl_log() if r.job == "invoices_sync" and r.status == "success"]
    [rerun] = [
        r
        for r in runs
        if r.cursor_start == diagnosis.window_start and r.cursor_end > diagnosis.window_end
    ]
    assert rerun.rows_loaded == diagnosis.affected_rows
    earlier = [
        r
        for r in runs
        if r.started_at < rerun.started_at
        and r.cursor_start < rerun.cursor_end
        and r.cursor_end > rerun.cursor_start
    ]
    assert sum(r.rows_loaded for r in earlier) >= diagnosis.affected_rows  # loaded before


@pytest.mark.parametrize(
    ("bug", "job", "fragment"),
    [
        ("missing_mapping", "users_mapping_sync", "lookup timed out"),
        ("schema_drift", "invoices_sync", "amount_paid_cents"),
        ("stale_status", "subscriptions_sync", "0 changed rows"),
    ],
)
def test_etl_log_carries_the_traces_of_the_bug_inside_its_window(bug, job, fragment):
    bugged, clean = pair(bug, 0)
    diagnosis = bugged.diagnosis
    traced = [r for r in bugged.etl_log() if r.job == job and fragment in r.message]
    assert traced
    assert all(
        diagnosis.window_start - timedelta(days=1) <= r.cursor_start <= diagnosis.window_end
        for r in traced
    )
    assert not any(fragment in r.message for r in clean.etl_log())


def test_etl_log_is_deterministic_and_tamper_evident(tmp_path):
    from stackgym.data import generate_dataset

    a = generate_dataset(DatasetSpec(seed=5, scale=0.2, bug="stale_status"), tmp_path / "a")
    b = generate_dataset(DatasetSpec(seed=5, scale=0.2, bug="stale_status"), tmp_path / "b")
    assert a.etl_log() == b.etl_log() and a.snapshot == b.snapshot
    assert Dataset.open(tmp_path / "a").diagnosis == a.diagnosis
    with open(tmp_path / "a" / "etl_log.jsonl", "a") as handle:
        handle.write("{}\n")
    with pytest.raises(DataError, match="etl_log"):
        Dataset.open(tmp_path / "a").verify()
