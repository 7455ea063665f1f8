/**
 * The publish path's storage: one D1 batch (one round trip, one transaction) that checks the topic,
 * claims each idempotency key, and records each message, whatever the number of subscribers. The
 * statements are set-based over the batch's messages (bound as one JSON list), so a batch of 100
 * messages is the same statements as a single one.
 *
 * Inline fan-out: when the topic's active subscribers are few enough and none has a filter, the
 * same batch also opens the messages' deliveries and reads who they go to, so that the publish
 * can queue the delivery tasks itself and skip the fan-out queue. The rule is one SQL condition
 * ({@link INLINE_TOPIC}), evaluated in the batch's own transaction by every statement that needs it.
 */
import { rowsOf } from "./d1";

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
  /** Whether it may be fanned out at publish: not delayed, and its content travels inline. */
  inlineCandidate: boolean;
}

/** Who owns an idempotency key after the batch: this message, or an earlier one. */
export interface KeyOwner {
  messageId: string;
  payloadHash: string;
  /** The owner's state; "queued" means it has not been fanned out (yet, or ever). */
  state: "queued" | "dispatched" | null;
  publishedAt: number | null;
  availableAt: number | null;
  /**
   * Whether the owner's content is stored with it. When it is not (it travelled inline), a task
   * that queues the owner again must carry the content, or the fan-out finds none anywhere.
   */
  contentStored: boolean;
}

export interface RecordResult {
  topicExists: boolean;
  /** For each message with a key, the key's owner; undefined for messages without one. */
  owners: (KeyOwner | undefined)[];
  /**
   * When the topic qualified for inline fan-out, its active subscribers: each new candidate
   * message has a pending delivery to each of them. Undefined when it did not.
   */
  inlineSubscriberIds: string[] | undefined;
}

// ?1 topic, ?2 the batch as JSON: [{ id, key, hash, publishedAt, availableAt, inline }], ?3 now,
// ?4 the oldest key creation time still inside the window, ?5 the most active subscribers a topic
// may have for inline fan-out (-1: none at all, the switch is off).
const TOPIC_EXISTS = "SELECT 1 AS found FROM topics WHERE name = ?1";

/**
 * The topic ?1 qualifies for inline fan-out: at most ?5 active subscribers, none with a filter. It
 * reads at most ?5 + 1 of them, so that a publish to a topic of thousands stays as cheap as one to
 * a topic of one; it has no column of the statement's tables, so SQLite evaluates it once.
 */
const ACTIVE_UP_TO_LIMIT =
  "SELECT filter FROM subscribers WHERE topic = ?1 AND active = 1 LIMIT ?5 + 1";
/** The topic's active subscribers, counted up to ?5 + 1: exact whenever the topic qualifies. */
const ACTIVE_COUNT = `(SELECT count(*) FROM (${ACTIVE_UP_TO_LIMIT}))`;
const INLINE_TOPIC = `(?5 >= 0
  AND ${ACTIVE_COUNT} <= ?5
  AND NOT EXISTS (SELECT 1 FROM (${ACTIVE_UP_TO_LIMIT}) WHERE filter IS NOT NULL))`;
/** Message `m` of the batch is fanned out inline. */
const INLINE_MESSAGE = `(m.value ->> 'inline' = 1 AND ${INLINE_TOPIC})`;

// A key older than the window is taken over as if it were free; a key claimed earlier in the
// same statement (the publish deduplicates keys within a request first) is left to its owner.
const CLAIM_KEYS = `INSERT INTO idempotency_keys (topic, key, message_id, payload_hash, created_at)
SELECT ?1, m.value ->> 'key', m.value ->> 'id', m.value ->> 'hash', ?3
FROM json_each(?2) AS m
WHERE m.value ->> 'key' IS NOT NULL AND EXISTS (SELECT 1 FROM topics WHERE name = ?1)
ON CONFLICT (topic, key) DO UPDATE SET
  message_id = excluded.message_id, payload_hash = excluded.payload_hash, created_at = excluded.created_at
WHERE idempotency_keys.created_at < ?4`;

// A message goes in only if its topic exists and, when it has a key, only if the key is its own.
// One fanned out inline has its counts at once, and stays queued until its delivery tasks are
// sent (`markDispatched` in ./messages), so that a retried publish whose send failed re-queues
// it, as it would any message not fanned out yet. With no subscriber at all, nothing is left to do.
const INSERT_MESSAGES = `INSERT INTO messages
  (id, topic, state, matched, filtered, payload, published_at, available_at)
SELECT m.value ->> 'id', ?1,
  CASE WHEN ${INLINE_MESSAGE} AND ${ACTIVE_COUNT} = 0 THEN 'dispatched' ELSE 'queued' END,
  CASE WHEN ${INLINE_MESSAGE} THEN ${ACTIVE_COUNT} END,
  CASE WHEN ${INLINE_MESSAGE} THEN 0 END,
  NULL, m.value ->> 'publishedAt', m.value ->> 'availableAt'
FROM json_each(?2) AS m
WHERE EXISTS (SELECT 1 FROM topics WHERE name = ?1)
  AND (m.value ->> 'key' IS NULL OR EXISTS (SELECT 1 FROM idempotency_keys AS k
    WHERE k.topic = ?1 AND k.key = m.value ->> 'key' AND k.message_id = m.value ->> 'id'))`;

// The deliveries of the messages inserted above (a duplicate was not) that are fanned out inline.
const OPEN_INLINE_DELIVERIES = `INSERT INTO deliveries (message_id, subscriber_id, state, attempts,
  last_status, last_error, last_attempt_at, next_attempt_at, created_at)
SELECT m.value ->> 'id', s.id, 'pending', 0, NULL, NULL, NULL, ?3, ?3
FROM json_each(?2) AS m
CROSS JOIN messages AS msg ON msg.id = m.value ->> 'id'
CROSS JOIN subscribers AS s ON s.topic = ?1 AND s.active = 1
WHERE ${INLINE_MESSAGE}
ON CONFLICT DO NOTHING`;

// Who the inline deliveries go to, read from at most ?5 + 1 rows like the condition; no row when
// the topic does not qualify (an aggregate of nothing would still give one).
const INLINE_SUBSCRIBERS = `SELECT json_group_array(id) AS ids
FROM (SELECT id FROM subscribers WHERE topic = ?1 AND active = 1 LIMIT ?5 + 1)
HAVING ${INLINE_TOPIC}`;

// A message whose key a later publish of the same payload answers for (as a duplicate) is from
// then on accepted whatever its own publish does: should that publish's send fail, its rollback
// leaves the message (see FORGET_*), which stays queued for the duplicate's task or a further
// retry to fan out. Marked in the duplicate's own transaction, so that it is either before the
// rollback (which then keeps the message) or after it (when the key is free and taken anew).
const ADOPT_OWNERS = `UPDATE messages SET adopted = 1
WHERE adopted = 0 AND id IN (SELECT k.message_id
  FROM json_each(?2) AS m
  CROSS JOIN idempotency_keys AS k ON k.topic = ?1 AND k.key = m.value ->> 'key'
  WHERE k.message_id <> m.value ->> 'id' AND k.payload_hash = m.value ->> 'hash')`;

// Large content is bound on its own: a JSON list of several would approach D1's 2 MB per value.
const STORE_PAYLOAD = "UPDATE messages SET payload = ?2 WHERE id = ?1";

// CROSS JOIN keeps the batch the outer loop: otherwise SQLite may scan all of the topic's keys.
const KEY_OWNERS = `SELECT m.key AS position, k.message_id AS messageId, k.payload_hash AS payloadHash,
  msg.state AS state, msg.published_at AS publishedAt, msg.available_at AS availableAt,
  msg.payload IS NOT NULL AS contentStored
FROM json_each(?2) AS m
CROSS JOIN idempotency_keys AS k ON k.topic = ?1 AND k.key = m.value ->> 'key'
LEFT JOIN messages AS msg ON msg.id = k.message_id`;

/**
 * Records messages of one topic. A message is inserted only if the topic exists and, when it has an
 * idempotency key, only if that key was free (or expired) and is now its own.
 */
export async function recordMessages(
  d1: D1Database,
  topic: string,
  batch: readonly MessageToRecord[],
  now: number,
  /**
   * The most active subscribers the topic may have for this call's candidates to be fanned out
   * inline; undefined when none is a candidate or inline fan-out is off.
   */
  inlineMaxSubscribers?: number,
): Promise<RecordResult> {
  const list = JSON.stringify(
    batch.map((message) => ({
      id: message.id,
      key: message.idempotencyKey ?? null,
      hash: message.payloadHash,
      publishedAt: message.publishedAt,
      availableAt: message.availableAt,
      inline: message.inlineCandidate ? 1 : 0,
    })),
  );
  const keyed = batch.some((message) => message.idempotencyKey !== undefined);
  const inline = inlineMaxSubscribers !== undefined;
  const max = inlineMaxSubscribers ?? -1;
  // ?1 to ?5 mean the same in every statement; each binds up to the highest one it reads.
  const params = [topic, list, now, now - IDEMPOTENCY_WINDOW_MS, max];
  const statement = (sql: string, highest: number) =>
    d1.prepare(sql).bind(...params.slice(0, highest));
  const statements = [
    statement(TOPIC_EXISTS, 1),
    ...(keyed ? [statement(CLAIM_KEYS, 4), statement(ADOPT_OWNERS, 2)] : []),
    statement(INSERT_MESSAGES, 5),
    ...(inline ? [statement(OPEN_INLINE_DELIVERIES, 5)] : []),
    ...batch.flatMap((message) =>
      message.storedPayload === null
        ? []
        : [d1.prepare(STORE_PAYLOAD).bind(message.id, message.storedPayload)],
    ),
  ];
  // The reads come last, after every write of the transaction; where each one's rows will be.
  const ownersAt = keyed ? statements.push(statement(KEY_OWNERS, 2)) - 1 : undefined;
  const inlineAt = inline ? statements.push(statement(INLINE_SUBSCRIBERS, 5)) - 1 : undefined;
  const results = await d1.batch(statements);
  const owners: (KeyOwner | undefined)[] = batch.map(() => undefined);
  if (ownersAt !== undefined) {
    type OwnerRow = Omit<KeyOwner, "contentStored"> & { position: number; contentStored: number };
    for (const { position, contentStored, ...owner } of rowsOf<OwnerRow>(results[ownersAt])) {
      owners[position] = { ...owner, contentStored: contentStored === 1 };
    }
  }
  const [inlineRow] = inlineAt === undefined ? [] : rowsOf<{ ids: string }>(results[inlineAt]);
  return {
    topicExists: rowsOf(results[0]).length > 0,
    owners,
    inlineSubscriberIds: inlineRow ? (JSON.parse(inlineRow.ids) as string[]) : undefined,
  };
}

// An adopted message (ADOPT_OWNERS) keeps its row, its key and any deliveries opened inline.
const ADOPTED =
  "SELECT id FROM messages WHERE adopted = 1 AND id IN (SELECT value FROM json_each(?1))";
const FORGET_MESSAGES =
  "DELETE FROM messages WHERE id IN (SELECT value FROM json_each(?1)) AND adopted = 0";
const FORGET_DELIVERIES = `DELETE FROM deliveries
WHERE message_id IN (SELECT value FROM json_each(?1)) AND message_id NOT IN (${ADOPTED})`;
const FORGET_KEYS = `DELETE FROM idempotency_keys
WHERE topic = ?2 AND message_id IN (SELECT value FROM json_each(?1))
  AND message_id NOT IN (${ADOPTED})`;

/**
 * Undoes `recordMessages` for messages that could not be queued, so that a failed publish leaves
 * nothing behind and its idempotency keys are free for the retry. A message that another publish
 * has meanwhile answered for (adopted) stays: that publish may have answered 202 for it.
 */
export async function forgetMessages(
  d1: D1Database,
  topic: string,
  batch: readonly MessageToRecord[],
): Promise<void> {
  if (batch.length === 0) return;
  const ids = JSON.stringify(batch.map((message) => message.id));
  await d1.batch([
    d1.prepare(FORGET_DELIVERIES).bind(ids),
    d1.prepare(FORGET_MESSAGES).bind(ids),
    d1.prepare(FORGET_KEYS).bind(ids, topic),
  ]);
}
