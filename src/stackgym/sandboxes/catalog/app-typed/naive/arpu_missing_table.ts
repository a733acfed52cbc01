// Naive: reads a table that does not exist (data.invoice).
import type { AppData } from "../types";

export function computeMetric(data: AppData): number {
  const tables = data as unknown as Record<string, { amountPaid: number }[]>;
  const revenue = tables.invoice.reduce((total, invoice) => total + invoice.amountPaid, 0);
  return Math.round(revenue / data.users.length);
}
