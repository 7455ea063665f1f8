/** A message's state: reading its status, and marking it dispatched. */
import { asc, eq } from "drizzle-orm";
import type { Database } from "./client";
import { type DeliveryRow, deliveries, type MessageRow, messages } from "./schema";

/** A message row without its (possibly large) stored payload. */
export type MessageSummary = Omit<MessageRow, "payload" | "availableAt" | "adopted">;

/** A message with all its deliveries, in one round trip; undefined if there is no such message. */
export async function findMessageStatus(
  db: Database,
  id: string,
): Promise<{ message: MessageSummary; deliveries: DeliveryRow[] } | undefined> {
  const [found, rows] = await db.batch([
    db
      .select({
        id: messages.id,
        topic: messages.topic,
        state: messages.state,
        matched: messages.matched,
        filtered: messages.filtered,
        publishedAt: messages.publishedAt,
      })
      .from(messages)
      .where(eq(messages.id, id))
      .limit(1),
    db
      .select()
      .from(deliveries)
      .where(eq(deliveries.messageId, id))
      .orderBy(asc(deliveries.subscriberId)),
  ]);
  const message = found[0];
  return message ? { message, deliveries: rows } : undefined;
}

/** Moves queued messages to dispatched; ?1 is a JSON list of their ids. */
export const MARK_DISPATCHED = `UPDATE messages SET state = 'dispatched'
WHERE id IN (SELECT value FROM json_each(?1)) AND state = 'queued'`;

/**
 * Marks messages fanned out inline as dispatched once their delivery tasks were sent: from then
 * on, a repeated publish with the same key answers for them without queueing them again. Should
 * this write fail, their first recorded delivery outcome does the same (src/db/deliveries.ts).
 */
export async function markDispatched(d1: D1Database, messageIds: readonly string[]): Promise<void> {
  if (messageIds.length === 0) return;
  await d1.batch([d1.prepare(MARK_DISPATCHED).bind(JSON.stringify(messageIds))]);
}
