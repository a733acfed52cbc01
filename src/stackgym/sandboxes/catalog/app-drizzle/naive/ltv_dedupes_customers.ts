// Naive: sums each organization's distinct Stripe customers, so a customer
// shared by two users of one organization counts once.
import { eq } from "drizzle-orm";
import type { AppDatabase } from "../db/client";
import { invoices, users } from "../db/schema";

export async function computeMetric(db: AppDatabase): Promise<number> {
  const paid = await db.select().from(invoices).where(eq(invoices.status, "paid"));
  const paidBy = new Map<string, number>();
  for (const invoice of paid) {
    paidBy.set(invoice.customerId, (paidBy.get(invoice.customerId) ?? 0) + invoice.amountPaid);
  }
  const customersByOrg = new Map<number, Set<string>>();
  for (const user of await db.select().from(users)) {
    const set = customersByOrg.get(user.organizationId) ?? new Set<string>();
    if (user.stripeCustomerId) set.add(user.stripeCustomerId);
    customersByOrg.set(user.organizationId, set);
  }
  let total = 0;
  for (const customers of customersByOrg.values()) {
    for (const customer of customers) total += paidBy.get(customer) ?? 0;
  }
  return Math.round(total / customersByOrg.size);
}
