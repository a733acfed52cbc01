"""Ground truth: the reference implementation of the three metric tasks.

It is written with Arrow compute and NumPy on purpose, so that it shares no
SQL with the answers agents (or the oracle) write; tests cross-check it
against an independent DuckDB SQL implementation.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from importlib import resources

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import yaml
from pydantic import BaseModel, ConfigDict, RootModel

ACTIVE_WINDOW_US = 30 * 86_400_000_000


class MetricTask(BaseModel):
    """One metric task: what it asks, its unit, rounding and tolerance."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    title: str
    unit: str
    decimals: int
    tolerance: float
    definition: str

    def round(self, value: float) -> float | int:
        """Round half away from zero to the task's decimals (SQL's ROUND)."""
        quantum = Decimal(1).scaleb(-self.decimals)
        rounded = Decimal(repr(float(value))).quantize(quantum, rounding=ROUND_HALF_UP)
        return int(rounded) if self.decimals == 0 else float(rounded)

    def accepts(self, expected: float, actual: float) -> bool:
        """True when ``actual`` is within tolerance of ``expected``."""
        # a hair of slack so a tolerance of exactly 0.001 is not lost to binary floats
        return abs(float(actual) - float(expected)) <= self.tolerance * (1 + 1e-9)


class _Tasks(RootModel[dict[str, MetricTask]]):
    pass


@cache
def metric_tasks() -> dict[str, MetricTask]:
    """The metric tasks, by name, from ``tasks.yaml``."""
    text = resources.files("stackgym.data").joinpath("tasks.yaml").read_text()
    return _Tasks.model_validate(yaml.safe_load(text)).root


class Truth(BaseModel):
    """The expected value of every metric task on one snapshot."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    active_user_arpu: int
    org_churn_rate: float
    avg_org_ltv: int


class TruthDetails(BaseModel):
    """Intermediate counts, for people checking the numbers."""

    active_users: int
    users: int
    orgs_with_users: int
    churned_orgs: int
    active_revenue_cents: int
    latest_usage_at: str


def _paid_totals(invoices: pa.Table) -> pa.Table:
    """Total paid amount per customer; NULL amounts add nothing (as SQL's SUM)."""
    paid = invoices.filter(pc.equal(invoices["status"], "paid"))
    paid = paid.set_column(
        paid.schema.get_field_index("amount_paid"),
        "amount_paid",
        pc.fill_null(paid["amount_paid"], 0),
    )
    return paid.group_by("customer_id").aggregate([("amount_paid", "sum")])


def _lookup(keys: pa.ChunkedArray | pa.Array, table: pa.Table, key: str, value: str) -> np.ndarray:
    """``table[value]`` for each of ``keys`` matched on ``table[key]``; 0 where absent."""
    index = pc.index_in(keys, value_set=table[key].combine_chunks())
    values = table[value].to_numpy()
    found = pc.is_valid(index).to_numpy(zero_copy_only=False)
    out = np.zeros(len(keys), dtype=np.int64)
    out[found] = values[pc.drop_null(index).to_numpy()]
    return out


def compute_truth_details(tables: dict[str, pa.Table]) -> tuple[Truth, TruthDetails]:
    """Compute the three metrics and their intermediate counts."""
    tasks = metric_tasks()
    users, usage = tables["users"], tables["api_usage"]
    user_ids = users["id"].to_numpy()
    user_org = users["organization_id"].to_numpy()
    user_customer = users["stripe_customer_id"]

    stamps = usage["created_at"].to_numpy().astype("datetime64[us]").astype(np.int64)
    latest = int(stamps.max())
    recent_users = np.unique(usage["user_id"].to_numpy()[stamps >= latest - ACTIVE_WINDOW_US])
    active = np.isin(user_ids, recent_users)

    totals = _paid_totals(tables["invoices"])
    per_user_paid = _lookup(user_customer, totals, "customer_id", "amount_paid_sum")

    # ARPU: each active customer's invoices once, over all active users
    active_customers = pc.unique(pc.drop_null(pc.filter(user_customer, pa.array(active))))
    revenue = int(_lookup(active_customers, totals, "customer_id", "amount_paid_sum").sum())
    n_active = int(active.sum())
    arpu = revenue / n_active if n_active else 0.0

    # churn and LTV are over organizations that exist and have a user
    org_ids = tables["organizations"]["id"].to_numpy()
    in_org = np.isin(user_org, org_ids)
    orgs = np.unique(user_org[in_org])
    subs = tables["subscriptions"]
    active_sub_customers = pc.filter(subs["customer_id"], pc.equal(subs["status"], "active"))
    has_active_sub = pc.fill_null(
        pc.is_in(user_customer, value_set=pc.unique(active_sub_customers)), False
    ).to_numpy(zero_copy_only=False)
    retained = np.unique(user_org[in_org & (active | has_active_sub)])
    churned = orgs.size - retained.size
    churn = churned / orgs.size if orgs.size else 0.0

    org_position = np.searchsorted(orgs, user_org[in_org])
    org_totals = np.bincount(org_position, weights=per_user_paid[in_org], minlength=orgs.size)
    ltv = float(org_totals.mean()) if orgs.size else 0.0

    truth = Truth(
        active_user_arpu=tasks["active_user_arpu"].round(arpu),
        org_churn_rate=tasks["org_churn_rate"].round(churn),
        avg_org_ltv=tasks["avg_org_ltv"].round(ltv),
    )
    details = TruthDetails(
        active_users=n_active,
        users=int(user_ids.size),
        orgs_with_users=int(orgs.size),
        churned_orgs=int(churned),
        active_revenue_cents=revenue,
        latest_usage_at=str(np.datetime64(latest, "us")),
    )
    return truth, details


def compute_truth(tables: dict[str, pa.Table]) -> Truth:
    """The expected value of every metric task."""
    return compute_truth_details(tables)[0]
