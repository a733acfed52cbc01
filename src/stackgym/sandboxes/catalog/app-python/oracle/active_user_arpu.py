"""Oracle: active-user ARPU in cents."""

from datetime import timedelta

from app.models import AppData


def compute_metric(data: AppData) -> float:
    latest = max(call.created_at for call in data.api_usage)
    since = latest - timedelta(days=30)
    recent = {call.user_id for call in data.api_usage if call.created_at >= since}
    active = [user for user in data.users if user.id in recent]
    if not active:
        return 0
    customers = {user.stripe_customer_id for user in active if user.stripe_customer_id}
    revenue = sum(
        invoice.amount_paid
        for invoice in data.invoices
        if invoice.status == "paid" and invoice.customer_id in customers
    )
    return round(revenue / len(active))
