"""Naive: an organization is churned when none of its users was active."""

from datetime import timedelta

from app.models import AppData


def compute_metric(data: AppData) -> float:
    latest = max(call.created_at for call in data.api_usage)
    recent = {c.user_id for c in data.api_usage if c.created_at >= latest - timedelta(days=30)}
    active: dict[int, bool] = {}
    for user in data.users:
        active[user.organization_id] = active.get(user.organization_id, False) or user.id in recent
    return round(sum(1 for a in active.values() if not a) / len(active), 4)
