/**
 * The publish path's storage: one D1 batch (one round trip, one transaction) that checks the topic,
 * claims each idempotency key, and records each message, whatever the number of subscribers.
 */
import { and, eq, inArray, lt, sql } from "drizzle-orm";
import type { BatchItem } from "drizzle-orm/batch";
import { chunk, PARAMETERS_PER_STATEMENT } from "./chunk";
import type { Database } from "./client";
import { idempotencyKeys, messages, topics } from "./schema";

/** Idempotency keys answer for 24 hours. */
export const IDEMPOTENCY_WINDOW_MS = 24 * 60 * 60 * 1000;

export interface MessageToRecord {
  id: string;
  topic: string;
  publishedAt: number;
  availableAt: number;
  /** JSON of the content when it is too large to ride in queue messages; otherwise null. */
  storedPayload: string | null;
  idempotencyKey: string | undefined;
  payloadHash: string;
}

/** Who owns an idempotency key after the batch: this message, or an earlier one. */
export interface KeyOwner {
  messageId: string;
  payloadHash: string;
  /** The owner's state; "queued" means it has not been fanned out (yet, or ever). */
  state: "queued" | "dispatched" | null;
  publishedAt: number | null;
  availableAt: number | null;
}

export interface RecordResult {
  topicExists: boolean;
  /** For each message with a key, the key's owner; undefined for messages without one. */
  owners: (KeyOwner | undefined)[];
}

/**
 * Records messages of one topic. A message is inserted only if the topic exists and, when it has an
 * idempotency key, only if that key was free (or expired) and is now its own.
 */
export async function recordMessages(
  db: Database,
  topic: string,
  batch: readonly MessageToRecord[],
  now: number,
): Promise<RecordResult> {
  const topicExists = sql`exists (select 1 from ${topics} where ${topics.name} = ${topic})`;
  const statements: BatchItem<"sqlite">[] = [
    db.select({ name: topics.name }).from(topics).where(eq(topics.name, topic)),
  ];
  const ownerLookups = new Map<number, number>();

  batch.forEach((message, index) => {
    const key = message.idempotencyKey;
    // Insert-selects list every column in schema order. Raw `db.run` statements cannot go in a
    // D1 batch through drizzle (it fails to bind their parameters), so these use the builder.
    if (key !== undefined) {
      // A key older than the window is taken over as if it were free.
      statements.push(
        db
          .insert(idempotencyKeys)
          .select(
            sql`select ${topic}, ${key}, ${message.id}, ${message.payloadHash}, ${now} where ${topicExists}`,
          )
          .onConflictDoUpdate({
            target: [idempotencyKeys.topic, idempotencyKeys.key],
            set: {
              messageId: sql`excluded.message_id`,
              payloadHash: sql`excluded.payload_hash`,
              createdAt: sql`excluded.created_at`,
            },
            setWhere: lt(idempotencyKeys.createdAt, now - IDEMPOTENCY_WINDOW_MS),
          }),
      );
    }
    const ownsKey =
      key === undefined
        ? sql`1`
        : sql`exists (select 1 from ${idempotencyKeys} where ${idempotencyKeys.topic} = ${topic}
            and ${idempotencyKeys.key} = ${key} and ${idempotencyKeys.messageId} = ${message.id})`;
    statements.push(
      db.insert(messages).select(
        sql`select ${message.id}, ${topic}, 'queued', null, null, ${message.storedPayload},
            ${message.publishedAt}, ${message.availableAt} where ${topicExists} and ${ownsKey}`,
      ),
    );
    if (key !== undefined) {
      ownerLookups.set(index, statements.length);
      statements.push(
        db
          .select({
            messageId: idempotencyKeys.messageId,
            payloadHash: idempotencyKeys.payloadHash,
            state: messages.state,
            publishedAt: messages.publishedAt,
            availableAt: messages.availableAt,
          })
          .from(idempotencyKeys)
          .leftJoin(messages, eq(messages.id, idempotencyKeys.messageId))
          .where(and(eq(idempotencyKeys.topic, topic), eq(idempotencyKeys.key, key))),
      );
    }
  });

  const results = (await db.batch(
    statements as [BatchItem<"sqlite">, ...BatchItem<"sqlite">[]],
  )) as unknown[];
  const rowsAt = (position: number) => (results[position] ?? []) as KeyOwner[];
  return {
    topicExists: rowsAt(0).length > 0,
    owners: batch.map((_message, index) => {
      const position = ownerLookups.get(index);
      return position === undefined ? undefined : rowsAt(position)[0];
    }),
  };
}

/**
 * Undoes `recordMessages` for messages that could not be queued, so that a failed publish leaves
 * nothing behind and its idempotency keys are free for the retry.
 */
export async function forgetMessages(
  db: Database,
  topic: string,
  batch: readonly MessageToRecord[],
): Promise<void> {
  const statements = chunk(
    batch.map((message) => message.id),
    PARAMETERS_PER_STATEMENT - 1,
  ).flatMap((ids) => [
    db.delete(messages).where(inArray(messages.id, ids)),
    db
      .delete(idempotencyKeys)
      .where(and(eq(idempotencyKeys.topic, topic), inArray(idempotencyKeys.messageId, ids))),
  ]);
  const [first, ...rest] = statements;
  if (first) await db.batch([first, ...rest]);
}
