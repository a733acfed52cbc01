// The billing dashboard's figures, computed from the app database.
import { and, eq, gte, inArray, isNotNull, max, sql } from "drizzle-orm";
import type { AppDatabase } from "../db/client";
import { apiUsage, invoices, subscriptions, users } from "../db/schema";

const DAY_MS = 24 * 60 * 60 * 1000;

/** Users with API usage within 30 days of the latest usage. */
async function activeUsers(db: AppDatabase) {
  const [{ latest }] = await db.select({ latest: max(apiUsage.createdAt) }).from(apiUsage);
  const since = new Date((latest as Date).getTime() - 30 * DAY_MS);
  return db
    .selectDistinct({ id: users.id, customerId: users.stripeCustomerId, orgId: users.organizationId })
    .from(users)
    .innerJoin(apiUsage, eq(apiUsage.userId, users.id))
    .where(gte(apiUsage.createdAt, since));
}

/** Active-user ARPU, in cents: paid revenue of active users' customers per active user. */
export async function activeUserArpu(db: AppDatabase): Promise<number> {
  const active = await activeUsers(db);
  const customerIds = [...new Set(active.map((u) => u.customerId).filter((c) => c !== null))] as string[];
  const [{ revenue }] = await db
    .select({ revenue: sql<number>`coalesce(sum(${invoices.amountPaid}), 0)` })
    .from(invoices)
    .where(and(eq(invoices.status, "paid"), inArray(invoices.customerId, customerIds)));
  return Math.round(revenue / active.length);
}

/** Average organization LTV, in cents (a customer shared by two users counts twice). */
export async function averageOrganizationLtv(db: AppDatabase): Promise<number> {
  const rows = await db
    .select({
      orgId: users.organizationId,
      paid: sql<number>`coalesce((select sum(${invoices.amountPaid}) from ${invoices}
        where ${invoices.customerId} = ${users.stripeCustomerId} and ${invoices.status} = 'paid'), 0)`,
    })
    .from(users);
  const perOrg = new Map<number, number>();
  for (const row of rows) perOrg.set(row.orgId, (perOrg.get(row.orgId) ?? 0) + row.paid);
  return Math.round([...perOrg.values()].reduce((a, b) => a + b, 0) / perOrg.size);
}

/** Share of organizations (with users) without active users and without an active subscription. */
export async function organizationChurnRate(db: AppDatabase): Promise<number> {
  const active = new Set((await activeUsers(db)).map((u) => u.orgId));
  const subscribed = await db
    .selectDistinct({ orgId: users.organizationId })
    .from(users)
    .innerJoin(subscriptions, eq(subscriptions.customerId, users.stripeCustomerId))
    .where(and(isNotNull(users.stripeCustomerId), eq(subscriptions.status, "active")));
  const paying = new Set(subscribed.map((s) => s.orgId));
  const orgs = await db.selectDistinct({ id: users.organizationId }).from(users);
  const churned = orgs.filter((o) => !active.has(o.id) && !paying.has(o.id));
  return Number((churned.length / orgs.length).toFixed(4));
}
