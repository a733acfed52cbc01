// Oracle: active-user ARPU in cents.
import { and, eq, gte, inArray, max } from "drizzle-orm";
import type { AppDatabase } from "../db/client";
import { apiUsage, invoices, users } from "../db/schema";

const WINDOW_MS = 30 * 24 * 60 * 60 * 1000;

export async function computeMetric(db: AppDatabase): Promise<number> {
  const [{ latest }] = await db.select({ latest: max(apiUsage.createdAt) }).from(apiUsage);
  if (latest === null) return 0;
  const since = new Date(latest.getTime() - WINDOW_MS);
  const active = await db
    .selectDistinct({ id: users.id, customerId: users.stripeCustomerId })
    .from(users)
    .innerJoin(apiUsage, eq(apiUsage.userId, users.id))
    .where(gte(apiUsage.createdAt, since));
  if (active.length === 0) return 0;
  const customers = [
    ...new Set(active.flatMap((user) => (user.customerId === null ? [] : [user.customerId]))),
  ];
  const paid = await db
    .select({ amount: invoices.amountPaid })
    .from(invoices)
    .where(and(eq(invoices.status, "paid"), inArray(invoices.customerId, customers)));
  const revenue = paid.reduce((total, invoice) => total + invoice.amount, 0);
  return Math.round(revenue / active.length);
}
