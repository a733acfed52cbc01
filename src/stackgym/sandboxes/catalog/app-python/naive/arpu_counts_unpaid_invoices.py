"""Naive: sums amount_paid over every invoice of active users' customers."""

from datetime import timedelta

from app.models import AppData


def compute_metric(data: AppData) -> float:
    latest = max(call.created_at for call in data.api_usage)
    recent = {c.user_id for c in data.api_usage if c.created_at >= latest - timedelta(days=30)}
    active = [user for user in data.users if user.id in recent]
    customers = {user.stripe_customer_id for user in active}
    revenue = sum(i.amount_paid for i in data.invoices if i.customer_id in customers)
    return round(revenue / len(active))
