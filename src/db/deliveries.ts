/**
 * The delivery consumer's storage: one read and one write per consumer batch, whatever its size,
 * each a few set-based statements over the batch (bound as JSON lists). A delivery is read from its
 * row if it has one, else from its message's compact record (./delivery-record.ts); a first attempt
 * that delivers is written to the record (one row per message per batch), anything else to a row.
 */
import { rowsOf } from "./d1";
import { deliveredEntry, type RecordEntry, readEntry } from "./delivery-record";
import { MARK_DISPATCHED } from "./messages";
import type { DeliveryState, HttpMethod, RecordingMode, SubscriberRow } from "./schema";

/** What storage says of one delivery. */
export interface StoredDelivery {
  state: DeliveryState;
  attempts: number;
  /** When it was opened: a subscriber deactivated at or after this time cancels it. */
  openedAt: number | null;
  /** Whether it is an entry of its message's record rather than a row of its own. */
  inRecord: boolean;
}

export interface DeliveryContext {
  subscribers: Map<string, SubscriberRow>;
  /** The recording of each topic of the batch that exists. */
  recordings: Map<string, RecordingMode>;
  /** Deliveries as stored so far, by `messageId subscriberId`. */
  states: Map<string, StoredDelivery>;
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
  deactivated_at AS deactivatedAt, version, created_at AS createdAt, updated_at AS updatedAt
FROM subscribers WHERE id IN (SELECT value FROM json_each(?1))`;
// Exact (message, subscriber) pairs: a message fanned out to n subscribers must not read all n of
// its deliveries for every batch of its tasks, which would be O(n²) over the fan-out. The pairs
// are the outer loop (a LEFT JOIN keeps them there); the record's entry is picked out in SQL, so a
// large record is not sent to the Worker once per delivery.
const STATES = `SELECT k.value ->> 0 AS messageId, k.value ->> 1 AS subscriberId,
  d.state AS rowState, d.attempts AS rowAttempts, d.created_at AS rowOpenedAt,
  m.delivery_record -> (k.value ->> 1) AS entry, m.opened_at AS recordOpenedAt
FROM json_each(?1) AS k
LEFT JOIN deliveries AS d ON d.message_id = k.value ->> 0 AND d.subscriber_id = k.value ->> 1
LEFT JOIN messages AS m ON m.id = k.value ->> 0`;

interface StateRow extends DeliveryRef {
  rowState: DeliveryState | null;
  rowAttempts: number | null;
  rowOpenedAt: number | null;
  entry: string | null;
  recordOpenedAt: number | null;
}

/** One delivery as stored: a delivered entry wins, then a row, then a pending entry. */
function storedDelivery(row: StateRow): StoredDelivery | undefined {
  const entry =
    row.entry === null ? undefined : readEntry(JSON.parse(row.entry), row.recordOpenedAt);
  if (entry?.state !== "delivered" && row.rowState !== null) {
    return {
      state: row.rowState,
      attempts: row.rowAttempts ?? 0,
      openedAt: row.rowOpenedAt,
      inRecord: false,
    };
  }
  if (!entry) return undefined;
  return {
    state: entry.state,
    attempts: entry.attempts,
    openedAt: row.recordOpenedAt,
    inRecord: true,
  };
}
const RECORDINGS = `SELECT name, recording FROM topics
WHERE name IN (SELECT value FROM json_each(?1))`;
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
  input: {
    deliveries: readonly (DeliveryRef & { topic: string })[];
    storedMessageIds: readonly string[];
  },
): Promise<DeliveryContext> {
  const subscriberIds = [...new Set(input.deliveries.map((ref) => ref.subscriberId))];
  const pairs = input.deliveries.map((ref) => [ref.messageId, ref.subscriberId]);
  const topics = [...new Set(input.deliveries.map((ref) => ref.topic))];
  const [subscriberRows, stateRows, payloadRows, recordingRows] = await d1.batch([
    d1.prepare(SUBSCRIBERS).bind(JSON.stringify(subscriberIds)),
    d1.prepare(STATES).bind(JSON.stringify(pairs)),
    d1.prepare(PAYLOADS).bind(JSON.stringify(input.storedMessageIds)),
    d1.prepare(RECORDINGS).bind(JSON.stringify(topics)),
  ]);
  return {
    subscribers: new Map(
      rowsOf<StoredSubscriber>(subscriberRows).map((row) => [row.id, subscriberFromRow(row)]),
    ),
    states: new Map(
      rowsOf<StateRow>(stateRows).flatMap((row) => {
        const stored = storedDelivery(row);
        return stored ? [[deliveryKey(row.messageId, row.subscriberId), stored] as const] : [];
      }),
    ),
    recordings: new Map(
      rowsOf<{ name: string; recording: RecordingMode }>(recordingRows).map((row) => [
        row.name,
        row.recording,
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
  /** Its message's topic, kept on a row it creates (absent where it is not known). */
  topic?: string;
  state: DeliveryState;
  attempts: number;
  lastStatus: number | null;
  lastError: string | null;
  lastAttemptAt: number | null;
  nextAttemptAt: number | null;
  /**
   * Whether it is written to its message's record: a delivered first attempt of a delivery that is
   * an entry there. Everything else is written to a row.
   */
  inRecord?: boolean;
  /**
   * Set for a delivery of a topic that records failures only: it is counted in that topic's
   * per-minute counts, and, when `unrecorded`, written nowhere else.
   */
  countIn?: string;
  /** A delivered first attempt of such a topic: nothing records it but the count. */
  unrecorded?: boolean;
  /** When the delivery was opened, for a row it creates. */
  openedAt?: number | null;
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
// outcome without an attempt (dead before sending) keeps what the last attempt saw unless it has
// an error of its own, and a cancellation keeps it whatever. Attempts never go down, except over a
// dead delivery: the only attempt made for one is a replay, which counts from 1 again even when it
// is recorded before the replay call reset the count. An attempt that failed while its subscriber
// was deleted or deactivated is cancelled, as the subscriber's mark made it (see `cancellation` in
// ./delivery-record.ts): it neither dies into a dead letter that could be replayed nor waits for
// a retry. A 410 deactivates its subscriber after this statement, and stays dead.
const CANCELLED_MEANWHILE = `o.value ->> 'state' IN ('dead', 'retrying') AND NOT EXISTS (
  SELECT 1 FROM subscribers AS s WHERE s.id = o.value ->> 'subscriberId' AND s.active = 1
    AND (s.deactivated_at IS NULL OR s.deactivated_at < coalesce(o.value ->> 'openedAt', ?2)))`;
const UPSERT_OUTCOMES = `INSERT INTO deliveries (message_id, subscriber_id, state, attempts,
  last_status, last_error, last_attempt_at, next_attempt_at, created_at, topic)
SELECT o.value ->> 'messageId', o.value ->> 'subscriberId',
  CASE WHEN ${CANCELLED_MEANWHILE} THEN 'cancelled' ELSE o.value ->> 'state' END,
  o.value ->> 'attempts', o.value ->> 'lastStatus', o.value ->> 'lastError',
  o.value ->> 'lastAttemptAt',
  CASE WHEN ${CANCELLED_MEANWHILE} THEN NULL ELSE o.value ->> 'nextAttemptAt' END,
  coalesce(o.value ->> 'openedAt', ?2), o.value ->> 'topic'
FROM json_each(?1) AS o
WHERE true
ON CONFLICT (message_id, subscriber_id) DO UPDATE SET
  state = excluded.state,
  attempts = CASE WHEN deliveries.state = 'dead' THEN excluded.attempts
    ELSE max(deliveries.attempts, excluded.attempts) END,
  last_status = coalesce(excluded.last_status, deliveries.last_status),
  last_error = CASE WHEN excluded.last_attempt_at IS NOT NULL THEN excluded.last_error
    WHEN excluded.state = 'cancelled' THEN coalesce(deliveries.last_error, excluded.last_error)
    ELSE coalesce(excluded.last_error, deliveries.last_error) END,
  last_attempt_at = coalesce(excluded.last_attempt_at, deliveries.last_attempt_at),
  next_attempt_at = excluded.next_attempt_at,
  topic = coalesce(deliveries.topic, excluded.topic)
WHERE deliveries.state NOT IN ('delivered', 'cancelled')`;

// Only if the upsert above left the delivery dead: one cancelled meanwhile (its subscriber deleted
// or deactivated during the attempt) or already delivered (in its row or its message's record)
// gets no dead letter. One statement per
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
  AND NOT EXISTS (SELECT 1 FROM messages
    WHERE id = ?2 AND json_type(delivery_record -> ?4) = 'array')
  AND (?11 IS NULL OR NOT EXISTS (SELECT 1 FROM dead_letters
    WHERE message_id = ?2 AND subscriber_id = ?4 AND dead_at >= ?11))
ON CONFLICT (id) DO NOTHING`;

// ?1 JSON: [{ id, entries: { subscriberId: entry } }]. Only a pending entry changes: one that says
// delivered already stays as the first outcome left it (a late duplicate cannot reopen it).
const RECORD_DELIVERED = `UPDATE messages SET state = 'dispatched',
  delivery_record = json_patch(messages.delivery_record, (
    SELECT json_group_object(e.key, json(e.value))
    FROM json_each(u.value -> 'entries') AS e
    WHERE messages.delivery_record ->> e.key = 0))
FROM json_each(?1) AS u
WHERE messages.id = u.value ->> 'id'`;

// ?1 JSON: [{ topic, delivered, retried, dead }], ?2 the minute. One row per topic per batch.
const ADD_COUNTS = `INSERT INTO topic_counts (minute, topic, delivered, retried, dead)
SELECT ?2, c.value ->> 'topic', c.value ->> 'delivered', c.value ->> 'retried', c.value ->> 'dead'
FROM json_each(?1) AS c
WHERE true
ON CONFLICT (minute, topic) DO UPDATE SET
  delivered = topic_counts.delivered + excluded.delivered,
  retried = topic_counts.retried + excluded.retried,
  dead = topic_counts.dead + excluded.dead`;

/** A batch's outcomes on topics that record failures only, summed per topic for its minute. */
class TopicCounts {
  readonly minute: number;
  private readonly byTopic = new Map<
    string,
    { delivered: number; retried: number; dead: number }
  >();

  constructor(now: number) {
    this.minute = now - (now % 60_000);
  }

  add(topic: string, state: DeliveryState): void {
    const counts = this.byTopic.get(topic) ?? { delivered: 0, retried: 0, dead: 0 };
    if (state === "delivered") counts.delivered += 1;
    else if (state === "retrying") counts.retried += 1;
    else if (state === "dead") counts.dead += 1;
    else return;
    this.byTopic.set(topic, counts);
  }

  empty(): boolean {
    return this.byTopic.size === 0;
  }

  toJson(): string {
    return JSON.stringify([...this.byTopic].map(([topic, counts]) => ({ topic, ...counts })));
  }
}

// Its open deliveries are cancelled by the mark: every reader compares it with their opening time.
const DEACTIVATE = `UPDATE subscribers
SET active = 0, deactivated_at = ?2, version = version + 1, updated_at = ?2
WHERE id IN (SELECT value FROM json_each(?1))`;

/**
 * Writes a batch's outcomes in one transaction: each delivered first attempt in its message's
 * record (one row per message), every other outcome in a row of its own, each dead letter, its
 * message dispatched if it was fanned out at publish, and the deactivation of subscribers that
 * answered 410, which cancels their other open deliveries.
 */
export async function recordOutcomes(
  d1: D1Database,
  outcomes: readonly DeliveryOutcome[],
  goneSubscriberIds: readonly string[],
  now: number,
): Promise<void> {
  if (outcomes.length === 0 && goneSubscriberIds.length === 0) return;
  const entriesByMessage = new Map<string, Record<string, RecordEntry>>();
  const rows: Omit<DeliveryOutcome, "deadLetter" | "inRecord" | "countIn" | "unrecorded">[] = [];
  const counts = new TopicCounts(now);
  for (const { deadLetter: _deadLetter, inRecord, countIn, unrecorded, ...row } of outcomes) {
    if (countIn !== undefined) counts.add(countIn, row.state);
    if (unrecorded) continue;
    if (inRecord && row.state === "delivered" && row.lastAttemptAt !== null) {
      const entries = entriesByMessage.get(row.messageId) ?? {};
      entries[row.subscriberId] = deliveredEntry(row.attempts, row.lastStatus, row.lastAttemptAt);
      entriesByMessage.set(row.messageId, entries);
    } else rows.push(row);
  }
  // A message fanned out at publish is dispatched by its first outcome; any other message with a
  // delivery is dispatched already, and this changes nothing.
  const statements: D1PreparedStatement[] = [];
  if (entriesByMessage.size > 0) {
    const updates = [...entriesByMessage].map(([id, entries]) => ({ id, entries }));
    statements.push(d1.prepare(RECORD_DELIVERED).bind(JSON.stringify(updates)));
  }
  if (rows.length > 0) {
    const messageIds = [...new Set(rows.map((row) => row.messageId))];
    statements.push(
      d1.prepare(UPSERT_OUTCOMES).bind(JSON.stringify(rows), now),
      d1.prepare(MARK_DISPATCHED).bind(JSON.stringify(messageIds)),
    );
  }
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
    statements.push(d1.prepare(DEACTIVATE).bind(JSON.stringify(goneSubscriberIds), now));
  }
  if (!counts.empty()) {
    statements.push(d1.prepare(ADD_COUNTS).bind(counts.toJson(), counts.minute));
  }
  if (statements.length > 0) await d1.batch(statements);
}
