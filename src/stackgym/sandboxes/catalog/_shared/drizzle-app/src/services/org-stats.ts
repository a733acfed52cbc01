import { count, desc, eq } from "drizzle-orm";
import type { AppDatabase } from "../db/client";
import { invoices, organizations, users } from "../db/schema";

/** Users per organization, largest first (admin dashboard). */
export async function usersPerOrganization(db: AppDatabase) {
  return db
    .select({ orgId: organizations.id, name: organizations.name, users: count(users.id) })
    .from(organizations)
    .leftJoin(users, eq(users.organizationId, organizations.id))
    .groupBy(organizations.id)
    .orderBy(desc(count(users.id)));
}

/** The latest invoices of one Stripe customer (billing page). */
export async function recentInvoices(db: AppDatabase, customerId: string, limit = 10) {
  return db.query.invoices.findMany({
    where: eq(invoices.customerId, customerId),
    orderBy: desc(invoices.createdAt),
    limit,
  });
}

/** An organization with its users and their Stripe customers (support tool). */
export async function organizationWithUsers(db: AppDatabase, orgId: number) {
  return db.query.organizations.findFirst({
    where: eq(organizations.id, orgId),
    with: { users: { with: { stripeCustomer: true } } },
  });
}
