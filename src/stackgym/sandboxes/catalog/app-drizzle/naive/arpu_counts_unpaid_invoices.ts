// Naive: sums amountPaid over every invoice of active users' customers,
// open invoices included.
import { eq, gte, inArray, max } from "drizzle-orm";
import type { AppDatabase } from "../db/client";
import { apiUsage, invoices, users } from "../db/schema";

export async function computeMetric(db: AppDatabase): Promise<number> {
  const [{ latest }] = await db.select({ latest: max(apiUsage.createdAt) }).from(apiUsage);
  const since = new Date((latest ?? new Date()).getTime() - 30 * 86_400_000);
  const active = await db
    .selectDistinct({ id: users.id, customerId: users.stripeCustomerId })
    .from(users)
    .innerJoin(apiUsage, eq(apiUsage.userId, users.id))
    .where(gte(apiUsage.createdAt, since));
  const customers = active.flatMap((user) => (user.customerId ? [user.customerId] : []));
  const rows = await db
    .select({ amount: invoices.amountPaid })
    .from(invoices)
    .where(inArray(invoices.customerId, [...new Set(customers)]));
  return Math.round(rows.reduce((total, row) => total + row.amount, 0) / active.length);
}
