"""Drift modes: the ways replicated data goes wrong in real pipelines (SPEC section 2)."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from stackgym.core.errors import ConfigError
from stackgym.data.spec import DRIFT_MODES

Tables = dict[str, pa.Table]

LAG_DAYS = 7
MAPPING_EVERY = 20


def stripe_lag(tables: Tables) -> Tables:
    """Drop invoices and subscriptions created in the 7 days up to each table's latest row.

    Billing data replicated with a lag: the warehouse has not yet seen the
    most recent week of Stripe objects.
    """
    out = dict(tables)
    for name in ("invoices", "subscriptions"):
        table = tables[name]
        latest = pc.max(table["created_at"])
        cutoff = pc.subtract(latest, pa.scalar(LAG_DAYS * 86_400_000_000, pa.duration("us")))
        out[name] = table.filter(pc.less_equal(table["created_at"], cutoff))
    return out


def missing_mapping(tables: Tables) -> Tables:
    """Replace every 20th user's ``stripe_customer_id`` with an id that matches no customer."""
    users = tables["users"]
    ids = users["id"].to_pylist()
    current = users["stripe_customer_id"].to_pylist()
    replaced = [
        f"cus_missing_{user_id:07d}" if (row + 1) % MAPPING_EVERY == 0 else value
        for row, (user_id, value) in enumerate(zip(ids, current, strict=True))
    ]
    index = users.schema.get_field_index("stripe_customer_id")
    column = pa.array(replaced, type=pa.string())
    return {**tables, "users": users.set_column(index, "stripe_customer_id", column)}


def apply_drift(tables: Tables, drift: str) -> Tables:
    """Apply drift mode ``drift`` (``none`` returns the tables unchanged)."""
    if drift == "none":
        return tables
    if drift == "stripe-lag":
        return stripe_lag(tables)
    if drift == "missing-mapping":
        return missing_mapping(tables)
    raise ConfigError(f"unknown drift mode {drift!r}", f"choose one of: {', '.join(DRIFT_MODES)}")
