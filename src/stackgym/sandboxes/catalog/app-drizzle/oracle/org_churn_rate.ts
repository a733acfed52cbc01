// Oracle: share of organizations (with users) with no recently active user
// and no user whose Stripe customer has an active subscription.
import { eq, gte, max } from "drizzle-orm";
import type { AppDatabase } from "../db/client";
import { apiUsage, organizations, subscriptions, users } from "../db/schema";

const WINDOW_MS = 30 * 24 * 60 * 60 * 1000;

export async function computeMetric(db: AppDatabase): Promise<number> {
  const [{ latest }] = await db.select({ latest: max(apiUsage.createdAt) }).from(apiUsage);
  const recent =
    latest === null
      ? []
      : await db
          .selectDistinct({ userId: apiUsage.userId })
          .from(apiUsage)
          .where(gte(apiUsage.createdAt, new Date(latest.getTime() - WINDOW_MS)));
  const recentUsers = new Set(recent.map((row) => row.userId));
  const activeSubs = await db
    .selectDistinct({ customerId: subscriptions.customerId })
    .from(subscriptions)
    .where(eq(subscriptions.status, "active"));
  const paying = new Set(activeSubs.map((row) => row.customerId));
  const members = await db
    .select({ orgId: users.organizationId, userId: users.id, customerId: users.stripeCustomerId })
    .from(users)
    .innerJoin(organizations, eq(organizations.id, users.organizationId));
  const retained = new Map<number, boolean>();
  for (const member of members) {
    const keeps =
      recentUsers.has(member.userId) ||
      (member.customerId !== null && paying.has(member.customerId));
    retained.set(member.orgId, (retained.get(member.orgId) ?? false) || keeps);
  }
  if (retained.size === 0) return 0;
  const churned = [...retained.values()].filter((kept) => !kept).length;
  return Math.round((churned / retained.size) * 10_000) / 10_000;
}
