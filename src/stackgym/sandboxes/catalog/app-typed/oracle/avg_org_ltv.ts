// Oracle: mean over organizations (with users) of the sum over their users of
// the user's Stripe customer's paid invoices (shared customers count per user).
import type { AppData } from "../types";

export function computeMetric(data: AppData): number {
  const paidBy = new Map<string, number>();
  for (const invoice of data.invoices) {
    if (invoice.status !== "paid") continue;
    paidBy.set(invoice.customerId, (paidBy.get(invoice.customerId) ?? 0) + invoice.amountPaid);
  }
  const orgIds = new Set(data.organizations.map((org) => org.id));
  const perOrg = new Map<number, number>();
  for (const user of data.users) {
    if (!orgIds.has(user.organizationId)) continue;
    const paid = user.stripeCustomerId === null ? 0 : (paidBy.get(user.stripeCustomerId) ?? 0);
    perOrg.set(user.organizationId, (perOrg.get(user.organizationId) ?? 0) + paid);
  }
  if (perOrg.size === 0) return 0;
  let total = 0;
  for (const value of perOrg.values()) total += value;
  return Math.round(total / perOrg.size);
}
