// Naive: sums amountPaid over every invoice of active users' customers.
import type { AppData } from "../types";

export function computeMetric(data: AppData): number {
  const latest = data.apiUsage.reduce((max, call) => Math.max(max, call.createdAt.getTime()), -Infinity);
  const recent = new Set(
    data.apiUsage
      .filter((call) => call.createdAt.getTime() >= latest - 30 * 86_400_000)
      .map((call) => call.userId),
  );
  const active = data.users.filter((user) => recent.has(user.id));
  const customers = new Set(active.map((user) => user.stripeCustomerId));
  const revenue = data.invoices
    .filter((invoice) => customers.has(invoice.customerId))
    .reduce((total, invoice) => total + invoice.amountPaid, 0);
  return Math.round(revenue / active.length);
}
