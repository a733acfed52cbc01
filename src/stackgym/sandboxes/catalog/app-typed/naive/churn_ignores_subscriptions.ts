// Naive: an organization is churned when none of its users was active.
import type { AppData } from "../types";

export function computeMetric(data: AppData): number {
  const latest = data.apiUsage.reduce((max, call) => Math.max(max, call.createdAt.getTime()), -Infinity);
  const recent = new Set(
    data.apiUsage
      .filter((call) => call.createdAt.getTime() >= latest - 30 * 86_400_000)
      .map((call) => call.userId),
  );
  const active = new Map<number, boolean>();
  for (const user of data.users) {
    active.set(user.organizationId, (active.get(user.organizationId) ?? false) || recent.has(user.id));
  }
  const churned = [...active.values()].filter((isActive) => !isActive).length;
  return Math.round((churned / active.size) * 10_000) / 10_000;
}
