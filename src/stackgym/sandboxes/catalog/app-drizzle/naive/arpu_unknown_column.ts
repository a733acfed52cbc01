// Naive: raw SQL against a column that does not exist (invoices.amount).
import { sql } from "drizzle-orm";
import type { AppDatabase } from "../db/client";

export async function computeMetric(db: AppDatabase): Promise<number> {
  const [row] = await db.all<{ total: number }>(
    sql`select sum(amount) as total from invoices where status = 'paid'`,
  );
  return row.total;
}
