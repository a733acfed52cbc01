// Oracle: share of organizations (with users) with no recently active user
// and no user whose Stripe customer has an active subscription.
import type { AppData } from "../types";

const WINDOW_MS = 30 * 24 * 60 * 60 * 1000;

export function computeMetric(data: AppData): number {
  let latest = -Infinity;
  for (const call of data.apiUsage) latest = Math.max(latest, call.createdAt.getTime());
  const recent = new Set<number>();
  for (const call of data.apiUsage) {
    if (call.createdAt.getTime() >= latest - WINDOW_MS) recent.add(call.userId);
  }
  const paying = new Set(
    data.subscriptions.filter((sub) => sub.status === "active").map((sub) => sub.customerId),
  );
  const orgIds = new Set(data.organizations.map((org) => org.id));
  const retained = new Map<number, boolean>();
  for (const user of data.users) {
    if (!orgIds.has(user.organizationId)) continue;
    const keeps =
      recent.has(user.id) || (user.stripeCustomerId !== null && paying.has(user.stripeCustomerId));
    retained.set(user.organizationId, (retained.get(user.organizationId) ?? false) || keeps);
  }
  if (retained.size === 0) return 0;
  const churned = [...retained.values()].filter((kept) => !kept).length;
  return Math.round((churned / retained.size) * 10_000) / 10_000;
}
