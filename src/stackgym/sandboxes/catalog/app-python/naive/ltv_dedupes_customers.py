"""Naive: counts each organization's distinct Stripe customers once."""

from collections import defaultdict

from app.models import AppData


def compute_metric(data: AppData) -> float:
    paid_by: dict[str, int] = defaultdict(int)
    for invoice in data.invoices:
        if invoice.status == "paid":
            paid_by[invoice.customer_id] += invoice.amount_paid
    customers: dict[int, set[str]] = defaultdict(set)
    for user in data.users:
        customers[user.organization_id].add(user.stripe_customer_id or "")
    total = sum(paid_by.get(c, 0) for found in customers.values() for c in found)
    return round(total / len(customers))
