/**
 * The delivery consumer's storage: one read and one write per consumer batch, whatever its size.
 */
import { and, inArray, sql } from "drizzle-orm";
import type { BatchItem } from "drizzle-orm/batch";
import { chunk, rowsPerStatement } from "./chunk";
import type { Database } from "./client";
import {
  type DeliveryState,
  deadLetters,
  deliveries,
  messages,
  type SubscriberRow,
  subscribers,
} from "./schema";

export interface DeliveryContext {
  subscribers: Map<string, SubscriberRow>;
  /** Delivery states and attempts so far, by `messageId subscriberId`. */
  states: Map<string, { state: DeliveryState; attempts: number }>;
  /** Stored message content (JSON) by message id, for messages that travel by reference. */
  payloads: Map<string, string | null>;
}

/** The key of a delivery in `DeliveryContext.states`. */
export const deliveryKey = (messageId: string, subscriberId: string) =>
  `${messageId} ${subscriberId}`;

/** Everything a batch of deliveries needs from storage, in one round trip. */
export async function loadDeliveryContext(
  db: Database,
  input: { subscriberIds: string[]; messageIds: string[]; storedMessageIds: string[] },
): Promise<DeliveryContext> {
  const [subscriberRows, stateRows, payloadRows] = await db.batch([
    db.select().from(subscribers).where(inArray(subscribers.id, input.subscriberIds)),
    db
      .select({
        messageId: deliveries.messageId,
        subscriberId: deliveries.subscriberId,
        state: deliveries.state,
        attempts: deliveries.attempts,
      })
      .from(deliveries)
      // Both keys, not the message alone: a message fanned out to n subscribers would otherwise
      // read all n of its deliveries for every batch of its tasks, O(n²) over the fan-out. With
      // the consumers' batch sizes (24 deliveries, 50 dead letters) the two lists together stay
      // within D1's 100 parameters per statement.
      .where(
        and(
          inArray(deliveries.messageId, input.messageIds),
          inArray(deliveries.subscriberId, input.subscriberIds),
        ),
      ),
    db
      .select({ id: messages.id, payload: messages.payload })
      .from(messages)
      .where(inArray(messages.id, input.storedMessageIds)),
  ]);
  return {
    subscribers: new Map(subscriberRows.map((row) => [row.id, row])),
    states: new Map(
      stateRows.map((row) => [
        deliveryKey(row.messageId, row.subscriberId),
        { state: row.state, attempts: row.attempts },
      ]),
    ),
    payloads: new Map(payloadRows.map((row) => [row.id, row.payload])),
  };
}

/** What one attempt (or the decision not to attempt) leaves in storage. */
export interface DeliveryOutcome {
  messageId: string;
  subscriberId: string;
  state: DeliveryState;
  attempts: number;
  lastStatus: number | null;
  lastError: string | null;
  lastAttemptAt: number | null;
  nextAttemptAt: number | null;
  /** Set when the delivery died: what the dead letter records. */
  deadLetter?: {
    id: string;
    topic: string;
    publishedAt: number;
    /** The content JSON when it travelled inline; null copies it from the stored message. */
    payload: string | null;
  };
}

const OUTCOME_COLUMNS = 9;

/**
 * Writes a batch's outcomes in one transaction: each delivery's state (a delivered or cancelled
 * delivery is never reopened by a late duplicate), its dead letter if it died, and the
 * deactivation of subscribers that answered 410, whose other open deliveries are cancelled.
 */
export async function recordOutcomes(
  db: Database,
  outcomes: readonly DeliveryOutcome[],
  goneSubscriberIds: readonly string[],
  now: number,
): Promise<void> {
  const statements: BatchItem<"sqlite">[] = chunk(outcomes, rowsPerStatement(OUTCOME_COLUMNS)).map(
    (rows) =>
      db
        .insert(deliveries)
        .values(
          rows.map((row) => ({
            messageId: row.messageId,
            subscriberId: row.subscriberId,
            state: row.state,
            attempts: row.attempts,
            lastStatus: row.lastStatus,
            lastError: row.lastError,
            lastAttemptAt: row.lastAttemptAt,
            nextAttemptAt: row.nextAttemptAt,
            createdAt: now,
          })),
        )
        .onConflictDoUpdate({
          target: [deliveries.messageId, deliveries.subscriberId],
          set: {
            state: sql`excluded.state`,
            attempts: sql`max(${deliveries.attempts}, excluded.attempts)`,
            lastStatus: sql`coalesce(excluded.last_status, ${deliveries.lastStatus})`,
            // An attempt's own error (none when it delivered) replaces the last one; an outcome
            // without an attempt (cancelled, or dead before sending) keeps what the last attempt saw.
            lastError: sql`case when excluded.last_attempt_at is not null then excluded.last_error else coalesce(excluded.last_error, ${deliveries.lastError}) end`,
            lastAttemptAt: sql`coalesce(excluded.last_attempt_at, ${deliveries.lastAttemptAt})`,
            nextAttemptAt: sql`excluded.next_attempt_at`,
          },
          setWhere: sql`${deliveries.state} not in ('delivered', 'cancelled')`,
        }),
  );
  for (const outcome of outcomes) {
    const dead = outcome.deadLetter;
    if (!dead) continue;
    // Only if the upsert above left the delivery dead: one cancelled meanwhile (its subscriber
    // deleted or deactivated during the attempt) or already delivered gets no dead letter.
    // Every column in schema order, as an insert-select needs.
    statements.push(
      db.insert(deadLetters).select(
        sql`select ${dead.id}, ${outcome.messageId}, ${dead.topic}, ${outcome.subscriberId},
          ${outcome.attempts}, ${outcome.lastStatus}, ${outcome.lastError}, ${dead.publishedAt},
          coalesce(${dead.payload}, (select ${messages.payload} from ${messages} where ${messages.id} = ${outcome.messageId})),
          ${now}
          where exists (select 1 from ${deliveries} where ${deliveries.messageId} = ${outcome.messageId}
            and ${deliveries.subscriberId} = ${outcome.subscriberId} and ${deliveries.state} = 'dead')`,
      ),
    );
  }
  for (const ids of chunk(goneSubscriberIds, 90)) {
    statements.push(
      db
        .update(subscribers)
        .set({ active: false, version: sql`${subscribers.version} + 1`, updatedAt: now })
        .where(inArray(subscribers.id, ids)),
      db
        .update(deliveries)
        .set({ state: "cancelled", nextAttemptAt: null })
        .where(
          and(
            inArray(deliveries.subscriberId, ids),
            inArray(deliveries.state, ["pending", "retrying"]),
          ),
        ),
    );
  }
  const [first, ...rest] = statements;
  if (first) await db.batch([first, ...rest]);
}
