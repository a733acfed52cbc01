// Naive: an organization is churned when no user logged in during the last
// 30 days; API usage and subscriptions are ignored.
import type { AppDatabase } from "../db/client";
import { users } from "../db/schema";

export async function computeMetric(db: AppDatabase): Promise<number> {
  const all = await db.select().from(users);
  const latest = all.reduce((max, user) => Math.max(max, user.lastLoginAt?.getTime() ?? 0), 0);
  const active = new Map<number, boolean>();
  for (const user of all) {
    const recent = user.lastLoginAt !== null && user.lastLoginAt.getTime() >= latest - 30 * 86_400_000;
    active.set(user.organizationId, (active.get(user.organizationId) ?? false) || recent);
  }
  const churned = [...active.values()].filter((isActive) => !isActive).length;
  return Math.round((churned / active.size) * 10_000) / 10_000;
}
