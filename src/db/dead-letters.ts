/** Dead letters: listing, replay bookkeeping, deletion. */
import { and, asc, eq, gt, inArray, lte, sql } from "drizzle-orm";
import type { BatchItem } from "drizzle-orm/batch";
import { chunk } from "./chunk";
import type { Database } from "./client";
import { type DeadLetterRow, deadLetters, deliveries, messages, subscribers } from "./schema";

export interface DeadLetterFilter {
  topic?: string | undefined;
  subscriberId?: string | undefined;
}

/** A dead letter with whether its subscriber can take a replay now. */
export type ReplayCandidate = DeadLetterRow & { subscriberActive: boolean | null };

/** A dead letter without its (possibly large) payload. */
const listedColumns = {
  id: deadLetters.id,
  messageId: deadLetters.messageId,
  topic: deadLetters.topic,
  subscriberId: deadLetters.subscriberId,
  attempts: deadLetters.attempts,
  lastStatus: deadLetters.lastStatus,
  lastError: deadLetters.lastError,
  publishedAt: deadLetters.publishedAt,
  deadAt: deadLetters.deadAt,
};

/** `limit` dead letters after the id `after`, oldest first, optionally for a topic or subscriber. */
export async function listDeadLetters(
  db: Database,
  filter: DeadLetterFilter,
  options: { after: string | undefined; limit: number },
): Promise<Omit<DeadLetterRow, "payload">[]> {
  return db
    .select(listedColumns)
    .from(deadLetters)
    .where(
      and(...conditions(filter), options.after ? gt(deadLetters.id, options.after) : undefined),
    )
    .orderBy(asc(deadLetters.id))
    .limit(options.limit);
}

/**
 * Dead letters to replay, with their subscriber's state (null when it is gone); with `deadBy`,
 * only those recorded at or before that time.
 */
export async function findReplayCandidates(
  db: Database,
  filter: DeadLetterFilter & { id?: string },
  options: { after: string | undefined; limit: number; deadBy?: number },
): Promise<ReplayCandidate[]> {
  return db
    .select({
      ...listedColumns,
      payload: deadLetters.payload,
      subscriberActive: subscribers.active,
    })
    .from(deadLetters)
    .leftJoin(subscribers, eq(subscribers.id, deadLetters.subscriberId))
    .where(
      and(
        ...conditions(filter),
        filter.id ? eq(deadLetters.id, filter.id) : undefined,
        options.after ? gt(deadLetters.id, options.after) : undefined,
        options.deadBy === undefined ? undefined : lte(deadLetters.deadAt, options.deadBy),
      ),
    )
    .orderBy(asc(deadLetters.id))
    .limit(options.limit);
}

/**
 * Puts large replayed contents back into their message rows (which retention may have removed),
 * so that the delivery tasks can carry a reference instead of the content.
 */
export async function storeReplayPayloads(
  db: Database,
  rows: readonly { messageId: string; topic: string; publishedAt: number; payload: string }[],
): Promise<void> {
  const statements: BatchItem<"sqlite">[] = rows.map((row) =>
    db
      .insert(messages)
      .values({
        id: row.messageId,
        topic: row.topic,
        state: "dispatched",
        payload: row.payload,
        publishedAt: row.publishedAt,
      })
      .onConflictDoUpdate({ target: messages.id, set: { payload: row.payload } }),
  );
  const [first, ...rest] = statements;
  if (first) await db.batch([first, ...rest]);
}

/**
 * After a replay was queued: the dead letters go and their deliveries are pending again, with
 * attempts from 0. The replay may already have been consumed and its outcome recorded (delivered,
 * retrying, cancelled, or dead again with a newer dead letter of its own), so only a delivery still
 * dead as the replay found it is reset: anything else is newer than this.
 */
export async function markReplayed(
  db: Database,
  rows: readonly { id: string; messageId: string; subscriberId: string; topic: string }[],
  now: number,
): Promise<void> {
  const statements: BatchItem<"sqlite">[] = chunk(rows, 90).map((part) =>
    db.delete(deadLetters).where(
      inArray(
        deadLetters.id,
        part.map((row) => row.id),
      ),
    ),
  );
  for (const row of rows) {
    statements.push(
      db
        .insert(deliveries)
        .values({
          messageId: row.messageId,
          subscriberId: row.subscriberId,
          state: "pending",
          attempts: 0,
          nextAttemptAt: now,
          createdAt: now,
          topic: row.topic,
        })
        .onConflictDoUpdate({
          target: [deliveries.messageId, deliveries.subscriberId],
          set: {
            state: "pending",
            attempts: 0,
            nextAttemptAt: now,
            createdAt: now,
            lastError: sql`null`,
            lastStatus: sql`null`,
          },
          // A dead letter newer than the replayed one is the replay dying again. An older one is
          // a replay whose bookkeeping failed before, and does not make this one finished.
          setWhere: sql`${deliveries.state} = 'dead' AND NOT EXISTS (SELECT 1 FROM ${deadLetters}
            WHERE ${deadLetters.messageId} = ${deliveries.messageId}
              AND ${deadLetters.subscriberId} = ${deliveries.subscriberId}
              AND ${deadLetters.id} > ${row.id})`,
        }),
    );
  }
  const [first, ...rest] = statements;
  if (first) await db.batch([first, ...rest]);
}

/** Deletes one dead letter; false when there was none. */
export async function deleteDeadLetter(db: Database, id: string): Promise<boolean> {
  const removed = await db
    .delete(deadLetters)
    .where(eq(deadLetters.id, id))
    .returning({ id: deadLetters.id });
  return removed.length === 1;
}

function conditions(filter: DeadLetterFilter) {
  return [
    filter.topic ? eq(deadLetters.topic, filter.topic) : undefined,
    filter.subscriberId ? eq(deadLetters.subscriberId, filter.subscriberId) : undefined,
  ];
}
