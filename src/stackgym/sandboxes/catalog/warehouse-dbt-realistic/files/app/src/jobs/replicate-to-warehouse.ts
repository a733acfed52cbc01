// Hourly replication of the app database into the analytics warehouse.
//
// Every table is copied in full into the warehouse's `raw` schema: the app's
// own tables as raw.app_<table>, the Stripe objects (kept in the app database
// by the billing webhook) as raw.stripe_<table>. Values are sent as JSON, so
// timestamps arrive in the warehouse as ISO-8601 text (e.g.
// "2025-12-01T14:22:05Z"); the dbt staging models decide how to type them.
import { getTableColumns } from "drizzle-orm";
import type { SQLiteTable } from "drizzle-orm/sqlite-core";
import type { AppDatabase } from "../db/client";
import * as schema from "../db/schema";

/** Where each app table lands in the warehouse. */
export const REPLICATED: ReadonlyArray<[SQLiteTable, string]> = [
  [schema.organizations, "raw.app_organizations"],
  [schema.users, "raw.app_users"],
  [schema.apiUsage, "raw.app_api_usage"],
  [schema.chatSessions, "raw.app_chat_sessions"],
  [schema.features, "raw.app_features"],
  [schema.customers, "raw.stripe_customers"],
  [schema.products, "raw.stripe_products"],
  [schema.prices, "raw.stripe_prices"],
  [schema.subscriptions, "raw.stripe_subscriptions"],
  [schema.invoices, "raw.stripe_invoices"],
  [schema.paymentIntents, "raw.stripe_payment_intents"],
];

/** Something that can replace a warehouse table with new rows (the loader's client). */
export interface WarehouseLoader {
  replaceTable(target: string, rows: Record<string, unknown>[]): Promise<void>;
}

/** How a value is serialised for the warehouse: dates become ISO-8601 text, to the second. */
export function toWarehouseValue(value: unknown): unknown {
  if (value instanceof Date) return value.toISOString().replace(/\.\d{3}Z$/, "Z");
  return value;
}

/** Copy every replicated table, keeping the database's column names (snake_case). */
export async function replicate(db: AppDatabase, loader: WarehouseLoader): Promise<void> {
  for (const [table, target] of REPLICATED) {
    const columns = Object.entries(getTableColumns(table));
    const rows = (await db.select().from(table)) as Record<string, unknown>[];
    const serialised = rows.map((row) =>
      Object.fromEntries(columns.map(([key, column]) => [column.name, toWarehouseValue(row[key])])),
    );
    await loader.replaceTable(target, serialised);
  }
}
