"""The synthetic dataset: deterministic, scaled, drifted as specified, written with a manifest."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pyarrow.compute as pc
import pytest

from stackgym.core import DataError
from stackgym.data import (
    TABLE_NAMES,
    Dataset,
    DatasetSpec,
    dataset_for,
    generate_dataset,
    generate_tables,
    table_schemas,
)

SPEC_COUNTS = {
    "products": 6,
    "prices": 12,
    "customers": 1000,
    "organizations": 220,
    "users": 1200,
    "subscriptions": 2000,
    "invoices": 10000,
    "payment_intents": 5000,
    "features": 12,
    "api_usage": 100000,
    "chat_sessions": 15000,
}


def test_scale_one_has_the_spec_row_counts_and_columns():
    tables = generate_tables(DatasetSpec(seed=0))
    assert {name: t.num_rows for name, t in tables.items()} == SPEC_COUNTS
    assert tables["prices"].column_names == [
        "id", "product_id", "nickname", "unit_amount", "currency", "billing_interval", "created_at"
    ]  # fmt: skip
    assert set(tables["prices"]["unit_amount"].to_pylist()) == {2000, 5000, 15000, 50000}
    assert set(tables["prices"]["nickname"].to_pylist()) == {
        "starter",
        "growth",
        "team",
        "enterprise",
    }
    assert set(tables["subscriptions"]["status"].to_pylist()) == {
        "active", "trialing", "canceled", "past_due"
    }  # fmt: skip


def test_row_counts_scale_linearly():
    tables = generate_tables(DatasetSpec(seed=0, scale=2.5))
    assert tables["api_usage"].num_rows == 250_000
    assert tables["organizations"].num_rows == 550


def test_invoice_shape_matches_the_original_facts():
    invoices = generate_tables(DatasetSpec(seed=1))["invoices"]
    paid_share = pc.mean(pc.cast(pc.equal(invoices["status"], "paid"), "int8")).as_py()
    zero_share = pc.mean(pc.cast(pc.equal(invoices["amount_paid"], 0), "int8")).as_py()
    assert 0.87 < paid_share < 0.93
    assert 0.06 < zero_share < 0.10
    span = pc.max(invoices["created_at"]).as_py() - pc.min(invoices["created_at"]).as_py()
    assert timedelta(days=350) < span <= timedelta(days=365)


def test_same_spec_gives_byte_identical_files_and_snapshot(tmp_path):
    a = generate_dataset(DatasetSpec(seed=4), tmp_path / "a")
    b = generate_dataset(DatasetSpec(seed=4), tmp_path / "b")
    assert a.snapshot == b.snapshot
    for name in TABLE_NAMES:
        assert a.path(name).read_bytes() == b.path(name).read_bytes()


@pytest.mark.parametrize(
    "change", [{"seed": 5}, {"scale": 1.5}, {"anchor": "2025-06-01"}, {"drift": "stripe-lag"}]
)
def test_any_spec_change_gives_another_snapshot(tmp_path, change):
    base = generate_dataset(DatasetSpec(seed=4), tmp_path / "base")
    other = generate_dataset(DatasetSpec(**{"seed": 4, **change}), tmp_path / "other")
    assert other.snapshot != base.snapshot


def test_timestamps_never_pass_the_anchor_and_follow_it():
    spec = DatasetSpec(seed=2, anchor="2025-03-15T12:00:00Z")
    tables = generate_tables(spec)
    for name, table in tables.items():
        for column, kind in table_schemas()[name].columns.items():
            if kind == "timestamp" and column not in ("current_period_end",):
                latest = pc.max(table[column]).as_py()
                assert latest <= datetime(2025, 3, 15, 12), (name, column)
    latest_usage = pc.max(tables["api_usage"]["created_at"]).as_py()
    assert datetime(2025, 3, 14) < latest_usage


def test_stripe_lag_drops_the_last_week_of_invoices_and_subscriptions():
    clean = generate_tables(DatasetSpec(seed=3))
    lagged = generate_tables(DatasetSpec(seed=3, drift="stripe-lag"))
    for name in ("invoices", "subscriptions"):
        latest = pc.max(clean[name]["created_at"]).as_py()
        cutoff = latest - timedelta(days=7)
        kept = clean[name].filter(pc.less_equal(clean[name]["created_at"], cutoff))
        assert lagged[name].num_rows == kept.num_rows < clean[name].num_rows
        assert pc.max(lagged[name]["created_at"]).as_py() <= cutoff
    assert lagged["users"] == clean["users"]


def test_missing_mapping_breaks_every_20th_users_customer_link():
    clean = generate_tables(DatasetSpec(seed=3))
    drifted = generate_tables(DatasetSpec(seed=3, drift="missing-mapping"))
    customers = set(clean["customers"]["id"].to_pylist())
    before = clean["users"]["stripe_customer_id"].to_pylist()
    after = drifted["users"]["stripe_customer_id"].to_pylist()
    changed = [i for i, (a, b) in enumerate(zip(before, after, strict=True)) if a != b]
    assert all((i + 1) % 20 == 0 for i in changed)
    assert len(changed) >= 55  # 60 users are every-20th; a few had no customer and still change
    assert all(after[i] not in customers for i in range(19, len(after), 20))


def test_manifest_records_spec_counts_hashes_and_snapshot(tmp_path):
    dataset = generate_dataset(DatasetSpec(seed=0, scale=0.5), tmp_path / "d")
    manifest = json.loads((tmp_path / "d" / "dataset.json").read_text())
    assert manifest["spec"]["seed"] == 0 and manifest["spec"]["scale"] == 0.5
    assert manifest["tables"]["api_usage"]["rows"] == 50_000
    assert len(manifest["snapshot"]) == 64 and manifest["snapshot"] == dataset.snapshot
    dataset.verify()


def test_verify_names_a_modified_file(tmp_path):
    dataset = generate_dataset(DatasetSpec(seed=0, scale=0.1), tmp_path / "d")
    with open(dataset.path("invoices"), "ab") as handle:
        handle.write(b"tampered")
    with pytest.raises(DataError, match=r"invoices\.parquet does not match"):
        Dataset.open(tmp_path / "d").verify()


def test_open_names_a_missing_table_file(tmp_path):
    generate_dataset(DatasetSpec(seed=0, scale=0.1), tmp_path / "d")
    (tmp_path / "d" / "users.parquet").unlink()
    with pytest.raises(DataError, match=r"missing users\.parquet"):
        Dataset.open(tmp_path / "d")


def test_open_refuses_a_folder_that_is_not_a_dataset(tmp_path):
    with pytest.raises(DataError, match=r"dataset\.json is missing"):
        Dataset.open(tmp_path)


def test_generate_refuses_to_overwrite_a_folder_of_other_files(tmp_path):
    (tmp_path / "keep.txt").write_text("precious")
    with pytest.raises(DataError, match="refusing to overwrite"):
        generate_dataset(DatasetSpec(seed=0, scale=0.1), tmp_path)
    assert (tmp_path / "keep.txt").read_text() == "precious"


def test_cache_generates_once_and_reopens(tmp_path, monkeypatch):
    monkeypatch.setenv("STACKGYM_CACHE", str(tmp_path))
    spec = DatasetSpec(seed=9, scale=0.1)
    first = dataset_for(spec)
    assert first.root.parent == tmp_path / "datasets"
    assert Dataset.open(first.root).snapshot == first.snapshot
    assert dataset_for(spec) is first
