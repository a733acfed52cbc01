"""Oracle: share of organizations (with users) with no recently active user
and no user whose Stripe customer has an active subscription."""

from datetime import timedelta

from app.models import AppData


def compute_metric(data: AppData) -> float:
    latest = max(call.created_at for call in data.api_usage)
    since = latest - timedelta(days=30)
    recent = {call.user_id for call in data.api_usage if call.created_at >= since}
    paying = {sub.customer_id for sub in data.subscriptions if sub.status == "active"}
    org_ids = {org.id for org in data.organizations}
    retained: dict[int, bool] = {}
    for user in data.users:
        if user.organization_id not in org_ids:
            continue
        keeps = user.id in recent or user.stripe_customer_id in paying
        retained[user.organization_id] = retained.get(user.organization_id, False) or keeps
    if not retained:
        return 0.0
    churned = sum(1 for kept in retained.values() if not kept)
    return round(churned / len(retained), 4)
