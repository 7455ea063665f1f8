/** Reading a message's status. */
import { asc, eq } from "drizzle-orm";
import type { Database } from "./client";
import { type DeliveryRow, deliveries, type MessageRow, messages } from "./schema";

/** A message row without its (possibly large) stored payload. */
export type MessageSummary = Omit<MessageRow, "payload" | "availableAt">;

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
