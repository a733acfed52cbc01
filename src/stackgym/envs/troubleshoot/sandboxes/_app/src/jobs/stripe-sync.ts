// Nightly sync of billing objects from Stripe into the app database.
//
// Each job pulls the objects whose cursor column lies in the job's cursor
// window (the previous day, for the scheduled run) and writes them into
// app.db. The scheduler records every run (cursor window, rows extracted and
// loaded, status, message) in the ETL run history. A failed run is retried
// from the saved cursor; an operator can also re-run a job by hand with a
// cursor of their choice.
import { eq, sql } from "drizzle-orm";
import type { AppDatabase } from "../db/client";
import { customers, invoices, subscriptions, users } from "../db/schema";

export interface CursorWindow {
  start: Date;
  end: Date;
}

/** The slice of the Stripe client the jobs use. */
export interface StripeSource {
  list(resource: string, params: Record<string, unknown>): AsyncIterable<Record<string, any>>;
  findCustomerByAppUser(userId: number, timeoutMs: number): Promise<string | null>;
}

const seconds = (date: Date) => Math.floor(date.getTime() / 1000);
const window = (field: string, cursor: CursorWindow) => ({
  [field]: { gte: seconds(cursor.start), lt: seconds(cursor.end) },
});

/** customers_sync: new Stripe customers (cursor: created). Upserts by id. */
export async function customersSync(db: AppDatabase, stripe: StripeSource, cursor: CursorWindow) {
  let loaded = 0;
  for await (const c of stripe.list("customers", window("created", cursor))) {
    const row = {
      id: c.id,
      name: c.name,
      email: c.email,
      metadata: JSON.stringify(c.metadata),
      createdAt: new Date(c.created * 1000),
    };
    await db.insert(customers).values(row).onConflictDoUpdate({ target: customers.id, set: row });
    loaded++;
  }
  return loaded;
}

/**
 * subscriptions_sync: subscriptions that changed (incremental, cursor:
 * updated_at). Status changes such as cancellations arrive this way.
 * Upserts by id.
 */
export async function subscriptionsSync(
  db: AppDatabase,
  stripe: StripeSource,
  cursor: CursorWindow,
) {
  let loaded = 0;
  for await (const s of stripe.list("subscriptions", { ...window("updated", cursor), status: "all" })) {
    const row = {
      id: s.id,
      customerId: s.customer,
      priceId: s.items.data[0].price.id,
      status: s.status,
      currentPeriodStart: new Date(s.current_period_start * 1000),
      currentPeriodEnd: new Date(s.current_period_end * 1000),
      cancelAtPeriodEnd: s.cancel_at_period_end,
      createdAt: new Date(s.created * 1000),
    };
    await db.insert(subscriptions).values(row).onConflictDoUpdate({ target: subscriptions.id, set: row });
    loaded++;
  }
  return loaded;
}

/**
 * invoices_sync: invoices created in the cursor window (cursor: created).
 * Invoices never change once final, so rows are appended in bulk: the job
 * relies on each cursor window being loaded once.
 */
export async function invoicesSync(db: AppDatabase, stripe: StripeSource, cursor: CursorWindow) {
  const batch = [];
  for await (const i of stripe.list("invoices", window("created", cursor))) {
    batch.push({
      id: i.id,
      customerId: i.customer,
      subscriptionId: i.subscription,
      amountDue: i.amount_due,
      amountPaid: i.amount_paid,
      status: i.status,
      createdAt: new Date(i.created * 1000),
    });
  }
  // write mode: append (bulk insert, no upsert)
  if (batch.length > 0) await db.insert(invoices).values(batch);
  return batch.length;
}

/**
 * users_mapping_sync: link users created in the cursor window to their Stripe
 * customer (found by the app user id Stripe keeps in the customer's
 * metadata). A lookup that times out leaves the user unlinked; the job goes
 * on with the next user.
 */
export async function usersMappingSync(
  db: AppDatabase,
  stripe: StripeSource,
  cursor: CursorWindow,
) {
  const created = await db
    .select({ id: users.id })
    .from(users)
    .where(sql`${users.createdAt} >= ${seconds(cursor.start)} and ${users.createdAt} < ${seconds(cursor.end)}`);
  let linked = 0;
  for (const user of created) {
    const customerId = await stripe.findCustomerByAppUser(user.id, 2_000).catch(() => null);
    if (customerId === null) continue; // non-fatal: mapping skipped
    await db.update(users).set({ stripeCustomerId: customerId }).where(eq(users.id, user.id));
    linked++;
  }
  return linked;
}

export const JOBS = {
  customers_sync: { table: "customers", cursor: "created", run: customersSync },
  subscriptions_sync: { table: "subscriptions", cursor: "updated_at", run: subscriptionsSync },
  invoices_sync: { table: "invoices", cursor: "created", run: invoicesSync },
  users_mapping_sync: { table: "users", cursor: "created_at", run: usersMappingSync },
} as const;
