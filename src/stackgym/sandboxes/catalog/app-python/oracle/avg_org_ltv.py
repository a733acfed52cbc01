"""Oracle: mean over organizations (with users) of the sum over their users of
the user's Stripe customer's paid invoices (shared customers count per user)."""

from collections import defaultdict

from app.models import AppData


def compute_metric(data: AppData) -> float:
    paid_by: dict[str, int] = defaultdict(int)
    for invoice in data.invoices:
        if invoice.status == "paid":
            paid_by[invoice.customer_id] += invoice.amount_paid
    org_ids = {org.id for org in data.organizations}
    per_org: dict[int, int] = defaultdict(int)
    for user in data.users:
        if user.organization_id in org_ids:
            per_org[user.organization_id] += paid_by.get(user.stripe_customer_id or "", 0)
    if not per_org:
        return 0
    return round(sum(per_org.values()) / len(per_org))
