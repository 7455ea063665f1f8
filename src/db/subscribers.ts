/** Queries on subscribers. Each answers in one D1 round trip. */
import { and, asc, eq, gt, sql } from "drizzle-orm";
import type { Database } from "./client";
import { type SubscriberRow, subscribers } from "./schema";

export type NewSubscriber = typeof subscribers.$inferInsert;
export type SubscriberChanges = Partial<
  Omit<NewSubscriber, "id" | "topic" | "createdAt" | "version">
>;

/** Creates a subscriber; false when its topic does not exist (or was deleted meanwhile). */
export async function insertSubscriber(db: Database, subscriber: NewSubscriber): Promise<boolean> {
  try {
    await db.insert(subscribers).values(subscriber);
    return true;
  } catch (error) {
    if (isForeignKeyFailure(error)) return false;
    throw error;
  }
}

export async function findSubscriber(db: Database, id: string): Promise<SubscriberRow | undefined> {
  const [row] = await db.select().from(subscribers).where(eq(subscribers.id, id)).limit(1);
  return row;
}

/** `limit` subscribers of a topic after the id `after`, in creation order. */
export async function listSubscribers(
  db: Database,
  options: { topic: string; after: string | undefined; limit: number },
): Promise<SubscriberRow[]> {
  return db
    .select()
    .from(subscribers)
    .where(
      and(
        eq(subscribers.topic, options.topic),
        options.after === undefined ? undefined : gt(subscribers.id, options.after),
      ),
    )
    .orderBy(asc(subscribers.id))
    .limit(options.limit);
}

/**
 * Applies changes and bumps the version. Making the subscriber inactive marks the time, which
 * cancels every delivery to it opened until then (see `cancellation` in ./delivery-record.ts), now
 * and after it is made active again. Returns the updated row, or undefined if it is gone.
 */
export async function updateSubscriber(
  db: Database,
  id: string,
  changes: SubscriberChanges,
): Promise<SubscriberRow | undefined> {
  const deactivation =
    changes.active === false ? { deactivatedAt: changes.updatedAt ?? Date.now() } : {};
  const [row] = await db
    .update(subscribers)
    .set({ ...changes, ...deactivation, version: sql`${subscribers.version} + 1` })
    .where(eq(subscribers.id, id))
    .returning();
  return row;
}

/**
 * Makes `secret` the subscriber's signing secret and the one it replaces the previous one, which
 * keeps signing until `previousExpiresAt`. One statement: two rotations at once each move the
 * secret the other left, so every secret a rotation returned signs until the next one replaces
 * it. False when there is no such subscriber.
 */
export async function rotateSubscriberSecret(
  db: Database,
  id: string,
  rotation: { secret: string; previousExpiresAt: number; now: number },
): Promise<boolean> {
  const rotated = await db
    .update(subscribers)
    .set({
      previousSecret: sql`${subscribers.secret}`,
      previousSecretExpiresAt: rotation.previousExpiresAt,
      secret: rotation.secret,
      updatedAt: sql`max(${rotation.now}, ${subscribers.updatedAt})`,
      version: sql`${subscribers.version} + 1`,
    })
    .where(eq(subscribers.id, id))
    .returning({ id: subscribers.id });
  return rotated.length === 1;
}

/**
 * Deletes a subscriber; false when there was none. Its open deliveries are cancelled by its
 * absence, which every reader of them checks.
 */
export async function deleteSubscriber(db: Database, id: string): Promise<boolean> {
  const removed = await db
    .delete(subscribers)
    .where(eq(subscribers.id, id))
    .returning({ id: subscribers.id });
  return removed.length === 1;
}

function isForeignKeyFailure(error: unknown): boolean {
  const text = error instanceof Error ? `${error.message} ${String(error.cause ?? "")}` : "";
  return text.includes("FOREIGN KEY constraint failed");
}
