// Naive: divides total paid revenue of users' customers by every organization,
// including organizations without users.
import type { AppData } from "../types";

export function computeMetric(data: AppData): number {
  const paidBy = new Map<string, number>();
  for (const invoice of data.invoices) {
    if (invoice.status === "paid") {
      paidBy.set(invoice.customerId, (paidBy.get(invoice.customerId) ?? 0) + invoice.amountPaid);
    }
  }
  let total = 0;
  for (const user of data.users) {
    if (user.stripeCustomerId) total += paidBy.get(user.stripeCustomerId) ?? 0;
  }
  return Math.round(total / data.organizations.length);
}
