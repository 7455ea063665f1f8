/**
 * The delivery consumer's storage: one read and one write per consumer batch, whatever its size,
 * each a few set-based statements over the batch (bound as JSON lists).
 */
import { rowsOf } from "./d1";
import { MARK_DISPATCHED } from "./messages";
import type { DeliveryState, HttpMethod, SubscriberRow } from "./schema";

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

/** One delivery: a message to one of its subscribers. */
export interface DeliveryRef {
  messageId: string;
  subscriberId: string;
}

const SUBSCRIBERS = `SELECT id, topic, url, filter, method, headers, query, timeout_ms AS timeoutMs,
  max_attempts AS maxAttempts, base_delay_seconds AS baseDelaySeconds,
  max_delay_seconds AS maxDelaySeconds, active, description, secret,
  previous_secret AS previousSecret, previous_secret_expires_at AS previousSecretExpiresAt,
  version, created_at AS createdAt, updated_at AS updatedAt
FROM subscribers WHERE id IN (SELECT value FROM json_each(?1))`;
// Exact (message, subscriber) pairs: a message fanned out to n subscribers must not read all n of
// its deliveries for every batch of its tasks, which would be O(n²) over the fan-out. CROSS JOIN
// keeps the pairs the outer loop.
const STATES = `SELECT d.message_id AS messageId, d.subscriber_id AS subscriberId, d.state, d.attempts
FROM json_each(?1) AS k
CROSS JOIN deliveries AS d ON d.message_id = k.value ->> 0 AND d.subscriber_id = k.value ->> 1`;
const PAYLOADS = "SELECT id, payload FROM messages WHERE id IN (SELECT value FROM json_each(?1))";

type StoredSubscriber = Omit<SubscriberRow, "headers" | "query" | "active" | "method"> & {
  method: string;
  headers: string;
  query: string;
  active: number;
};

/** Everything a batch of deliveries needs from storage, in one round trip. */
export async function loadDeliveryContext(
  d1: D1Database,
  input: { deliveries: readonly DeliveryRef[]; storedMessageIds: readonly string[] },
): Promise<DeliveryContext> {
  const subscriberIds = [...new Set(input.deliveries.map((ref) => ref.subscriberId))];
  const pairs = input.deliveries.map((ref) => [ref.messageId, ref.subscriberId]);
  const [subscriberRows, stateRows, payloadRows] = await d1.batch([
    d1.prepare(SUBSCRIBERS).bind(JSON.stringify(subscriberIds)),
    d1.prepare(STATES).bind(JSON.stringify(pairs)),
    d1.prepare(PAYLOADS).bind(JSON.stringify(input.storedMessageIds)),
  ]);
  return {
    subscribers: new Map(
      rowsOf<StoredSubscriber>(subscriberRows).map((row) => [row.id, subscriberFromRow(row)]),
    ),
    states: new Map(
      rowsOf<DeliveryRef & { state: DeliveryState; attempts: number }>(stateRows).map((row) => [
        deliveryKey(row.messageId, row.subscriberId),
        { state: row.state, attempts: row.attempts },
      ]),
    ),
    payloads: new Map(
      rowsOf<{ id: string; payload: string | null }>(payloadRows).map((row) => [
        row.id,
        row.payload,
      ]),
    ),
  };
}

/** A subscriber as drizzle's schema would read it: JSON columns parsed, `active` a boolean. */
function subscriberFromRow(row: StoredSubscriber): SubscriberRow {
  return {
    ...row,
    method: row.method as HttpMethod,
    headers: JSON.parse(row.headers) as SubscriberRow["headers"],
    query: JSON.parse(row.query) as SubscriberRow["query"],
    active: row.active !== 0,
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
    /**
     * Records it only if the delivery has no dead letter from this time on: a queue message that
     * may arrive more than once (at least once delivery) records its dead letter once.
     */
    unlessDeadSince?: number;
  };
}

// ?1 JSON: [DeliveryOutcome], ?2 now. A delivered or cancelled delivery is never reopened by a
// late duplicate. An attempt's own error (none when it delivered) replaces the last one; an
// outcome without an attempt (cancelled, or dead before sending) keeps what the last attempt saw.
// Attempts never go down, except over a dead delivery: the only attempt made for one is a replay,
// which counts from 1 again even when it is recorded before the replay call reset the count.
const UPSERT_OUTCOMES = `INSERT INTO deliveries (message_id, subscriber_id, state, attempts,
  last_status, last_error, last_attempt_at, next_attempt_at, created_at)
SELECT o.value ->> 'messageId', o.value ->> 'subscriberId', o.value ->> 'state',
  o.value ->> 'attempts', o.value ->> 'lastStatus', o.value ->> 'lastError',
  o.value ->> 'lastAttemptAt', o.value ->> 'nextAttemptAt', ?2
FROM json_each(?1) AS o
WHERE true
ON CONFLICT (message_id, subscriber_id) DO UPDATE SET
  state = excluded.state,
  attempts = CASE WHEN deliveries.state = 'dead' THEN excluded.attempts
    ELSE max(deliveries.attempts, excluded.attempts) END,
  last_status = coalesce(excluded.last_status, deliveries.last_status),
  last_error = CASE WHEN excluded.last_attempt_at IS NOT NULL THEN excluded.last_error
    ELSE coalesce(excluded.last_error, deliveries.last_error) END,
  last_attempt_at = coalesce(excluded.last_attempt_at, deliveries.last_attempt_at),
  next_attempt_at = excluded.next_attempt_at
WHERE deliveries.state NOT IN ('delivered', 'cancelled')`;

// Only if the upsert above left the delivery dead: one cancelled meanwhile (its subscriber deleted
// or deactivated during the attempt) or already delivered gets no dead letter. One statement per
// dead letter: its content may be large, and several in one JSON list could pass D1's 2 MB. The
// content comes with the outcome, else from the message, else from an earlier dead letter of the
// same delivery still there (a replay whose bookkeeping failed, and whose message expired since),
// so that a dead letter that could be replayed does not die again as one that cannot. A dead letter
// already recorded under the same id (a dead record recorded twice) is left as it is, and so is
// one the delivery already has from ?11 on, when ?11 is given (a task recorded twice).
const INSERT_DEAD_LETTER = `INSERT INTO dead_letters (id, message_id, topic, subscriber_id, attempts,
  last_status, last_error, published_at, payload, dead_at)
SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8,
  coalesce(?9, (SELECT payload FROM messages WHERE id = ?2),
    (SELECT payload FROM dead_letters WHERE subscriber_id = ?4 AND message_id = ?2
      AND payload IS NOT NULL LIMIT 1)), ?10
WHERE EXISTS (SELECT 1 FROM deliveries
  WHERE message_id = ?2 AND subscriber_id = ?4 AND state = 'dead')
  AND (?11 IS NULL OR NOT EXISTS (SELECT 1 FROM dead_letters
    WHERE message_id = ?2 AND subscriber_id = ?4 AND dead_at >= ?11))
ON CONFLICT (id) DO NOTHING`;

const DEACTIVATE = `UPDATE subscribers SET active = 0, version = version + 1, updated_at = ?2
WHERE id IN (SELECT value FROM json_each(?1))`;
const CANCEL_OPEN = `UPDATE deliveries SET state = 'cancelled', next_attempt_at = NULL
WHERE subscriber_id IN (SELECT value FROM json_each(?1)) AND state IN ('pending', 'retrying')`;

/**
 * Writes a batch's outcomes in one transaction: each delivery's state, its dead letter if it died,
 * its message dispatched if it was fanned out at publish, and the deactivation of subscribers that
 * answered 410, whose other open deliveries are cancelled.
 */
export async function recordOutcomes(
  d1: D1Database,
  outcomes: readonly DeliveryOutcome[],
  goneSubscriberIds: readonly string[],
  now: number,
): Promise<void> {
  if (outcomes.length === 0 && goneSubscriberIds.length === 0) return;
  const rows = outcomes.map(({ deadLetter: _deadLetter, ...row }) => row);
  // A message fanned out at publish whose marking failed there is dispatched by its first outcome;
  // any other message with a delivery is dispatched already, and this changes nothing.
  const messageIds = [...new Set(outcomes.map((outcome) => outcome.messageId))];
  const statements = [
    d1.prepare(UPSERT_OUTCOMES).bind(JSON.stringify(rows), now),
    d1.prepare(MARK_DISPATCHED).bind(JSON.stringify(messageIds)),
  ];
  for (const outcome of outcomes) {
    const dead = outcome.deadLetter;
    if (!dead) continue;
    statements.push(
      d1
        .prepare(INSERT_DEAD_LETTER)
        .bind(
          dead.id,
          outcome.messageId,
          dead.topic,
          outcome.subscriberId,
          outcome.attempts,
          outcome.lastStatus,
          outcome.lastError,
          dead.publishedAt,
          dead.payload,
          now,
          dead.unlessDeadSince ?? null,
        ),
    );
  }
  if (goneSubscriberIds.length > 0) {
    const ids = JSON.stringify(goneSubscriberIds);
    statements.push(d1.prepare(DEACTIVATE).bind(ids, now), d1.prepare(CANCEL_OPEN).bind(ids));
  }
  await d1.batch(statements);
}
