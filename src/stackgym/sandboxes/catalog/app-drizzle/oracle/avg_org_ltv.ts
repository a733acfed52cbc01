// Oracle: mean over organizations (with users) of the sum over their users of
// the user's Stripe customer's paid invoices (shared customers count per user).
import { eq, sum } from "drizzle-orm";
import type { AppDatabase } from "../db/client";
import { invoices, organizations, users } from "../db/schema";

export async function computeMetric(db: AppDatabase): Promise<number> {
  const totals = await db
    .select({ customerId: invoices.customerId, paid: sum(invoices.amountPaid) })
    .from(invoices)
    .where(eq(invoices.status, "paid"))
    .groupBy(invoices.customerId);
  const paidBy = new Map(totals.map((row) => [row.customerId, Number(row.paid ?? 0)]));
  const members = await db
    .select({ orgId: users.organizationId, customerId: users.stripeCustomerId })
    .from(users)
    .innerJoin(organizations, eq(organizations.id, users.organizationId));
  const perOrg = new Map<number, number>();
  for (const member of members) {
    const paid = member.customerId === null ? 0 : (paidBy.get(member.customerId) ?? 0);
    perOrg.set(member.orgId, (perOrg.get(member.orgId) ?? 0) + paid);
  }
  if (perOrg.size === 0) return 0;
  const total = [...perOrg.values()].reduce((a, b) => a + b, 0);
  return Math.round(total / perOrg.size);
}
