// Oracle: active-user ARPU in cents.
import type { AppData } from "../types";

const WINDOW_MS = 30 * 24 * 60 * 60 * 1000;

export function computeMetric(data: AppData): number {
  let latest = -Infinity;
  for (const call of data.apiUsage) latest = Math.max(latest, call.createdAt.getTime());
  const recent = new Set<number>();
  for (const call of data.apiUsage) {
    if (call.createdAt.getTime() >= latest - WINDOW_MS) recent.add(call.userId);
  }
  const active = data.users.filter((user) => recent.has(user.id));
  if (active.length === 0) return 0;
  const customers = new Set(active.flatMap((user) => (user.stripeCustomerId ? [user.stripeCustomerId] : [])));
  let revenue = 0;
  for (const invoice of data.invoices) {
    if (invoice.status === "paid" && customers.has(invoice.customerId)) revenue += invoice.amountPaid;
  }
  return Math.round(revenue / active.length);
}
