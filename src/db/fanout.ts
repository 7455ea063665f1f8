/** The fan-out consumer's storage: one read and one write per consumer batch. */
import { and, eq, inArray, sql } from "drizzle-orm";
import type { BatchItem } from "drizzle-orm/batch";
import type { Database } from "./client";
import { deliveries, messages, subscribers } from "./schema";

export interface FanoutSubscriber {
  id: string;
  topic: string;
  filter: string | null;
  version: number;
}

export interface FanoutContext {
  /** Active subscribers by topic. */
  subscribersByTopic: Map<string, FanoutSubscriber[]>;
  /** The messages this batch claimed: moved from queued to dispatched by this read. */
  claimed: Set<string>;
  /** Messages that exist (were accepted and not yet expired), with their stored payload if any. */
  messages: Map<string, { payload: string | null }>;
}

/**
 * The active subscribers of the batch's topics and its messages, in one round trip. Messages in
 * `claimIds` are claimed on the way: each moves from queued to dispatched once, so that of two
 * tasks for one message (a publish retried while its first task was still queued) only one fans
 * it out.
 */
export async function loadFanoutContext(
  db: Database,
  input: { topics: string[]; messageIds: string[]; claimIds: string[]; storedMessageIds: string[] },
): Promise<FanoutContext> {
  const [claimedRows, subscriberRows, messageRows, payloadRows] = await db.batch([
    db
      .update(messages)
      .set({ state: "dispatched" })
      .where(and(inArray(messages.id, input.claimIds), eq(messages.state, "queued")))
      .returning({ id: messages.id }),
    db
      .select({
        id: subscribers.id,
        topic: subscribers.topic,
        filter: subscribers.filter,
        version: subscribers.version,
      })
      .from(subscribers)
      .where(and(inArray(subscribers.topic, input.topics), eq(subscribers.active, true))),
    db.select({ id: messages.id }).from(messages).where(inArray(messages.id, input.messageIds)),
    db
      .select({ id: messages.id, payload: messages.payload })
      .from(messages)
      .where(inArray(messages.id, input.storedMessageIds)),
  ]);
  const subscribersByTopic = new Map<string, FanoutSubscriber[]>();
  for (const row of subscriberRows) {
    const list = subscribersByTopic.get(row.topic) ?? [];
    list.push(row);
    subscribersByTopic.set(row.topic, list);
  }
  const payloads = new Map(payloadRows.map((row) => [row.id, row.payload]));
  return {
    subscribersByTopic,
    claimed: new Set(claimedRows.map((row) => row.id)),
    messages: new Map(
      messageRows.map((row) => [row.id, { payload: payloads.get(row.id) ?? null }]),
    ),
  };
}

export interface FanoutResult {
  messageId: string;
  matchedSubscriberIds: string[];
  filtered: number;
}

/**
 * Marks each message dispatched with its counts and opens one pending delivery per match, in one
 * transaction. The matches of a message go in as one JSON array, so a fan-out to 10,000
 * subscribers is still one statement. Re-running it for the same message (an at-least-once
 * redelivery) changes nothing that was already there.
 */
export async function recordFanout(
  db: Database,
  results: readonly FanoutResult[],
  now: number,
): Promise<void> {
  const statements: BatchItem<"sqlite">[] = results.flatMap((result) => [
    db
      .update(messages)
      .set({
        state: "dispatched",
        matched: result.matchedSubscriberIds.length,
        filtered: result.filtered,
      })
      .where(eq(messages.id, result.messageId)),
    // Every column in schema order; the builder, because drizzle cannot batch a raw `db.run`
    // with parameters on D1. `where true` keeps SQLite from reading the upsert as a join's `on`.
    db
      .insert(deliveries)
      .select(
        sql`select ${result.messageId}, value, 'pending', 0, null, null, null, ${now}, ${now}
          from json_each(${JSON.stringify(result.matchedSubscriberIds)}) where true`,
      )
      .onConflictDoNothing(),
  ]);
  const [first, ...rest] = statements;
  if (first) await db.batch([first, ...rest]);
}
