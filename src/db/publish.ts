/**
 * The publish path's storage: one D1 batch (one round trip, one transaction) that checks the topic,
 * claims each idempotency key, and records each message, whatever the number of subscribers. The
 * statements are set-based over the batch's messages (bound as one JSON list), so a batch of 100
 * messages is the same four statements as a single one.
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

// ?1 topic, ?2 the batch as JSON: [{ id, key, hash, publishedAt, availableAt }], ?3 now,
// ?4 the oldest key creation time still inside the window.
const TOPIC_EXISTS = "SELECT 1 AS found FROM topics WHERE name = ?1";

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
const INSERT_MESSAGES = `INSERT INTO messages
  (id, topic, state, matched, filtered, payload, published_at, available_at)
SELECT m.value ->> 'id', ?1, 'queued', NULL, NULL, NULL, m.value ->> 'publishedAt', m.value ->> 'availableAt'
FROM json_each(?2) AS m
WHERE EXISTS (SELECT 1 FROM topics WHERE name = ?1)
  AND (m.value ->> 'key' IS NULL OR EXISTS (SELECT 1 FROM idempotency_keys AS k
    WHERE k.topic = ?1 AND k.key = m.value ->> 'key' AND k.message_id = m.value ->> 'id'))`;

// Large content is bound on its own: a JSON list of several would approach D1's 2 MB per value.
const STORE_PAYLOAD = "UPDATE messages SET payload = ?2 WHERE id = ?1";

// CROSS JOIN keeps the batch the outer loop: otherwise SQLite may scan all of the topic's keys.
const KEY_OWNERS = `SELECT m.key AS position, k.message_id AS messageId, k.payload_hash AS payloadHash,
  msg.state AS state, msg.published_at AS publishedAt, msg.available_at AS availableAt
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
): Promise<RecordResult> {
  const list = JSON.stringify(
    batch.map((message) => ({
      id: message.id,
      key: message.idempotencyKey ?? null,
      hash: message.payloadHash,
      publishedAt: message.publishedAt,
      availableAt: message.availableAt,
    })),
  );
  const keyed = batch.some((message) => message.idempotencyKey !== undefined);
  const statements = [
    d1.prepare(TOPIC_EXISTS).bind(topic),
    ...(keyed ? [d1.prepare(CLAIM_KEYS).bind(topic, list, now, now - IDEMPOTENCY_WINDOW_MS)] : []),
    d1.prepare(INSERT_MESSAGES).bind(topic, list),
    ...batch.flatMap((message) =>
      message.storedPayload === null
        ? []
        : [d1.prepare(STORE_PAYLOAD).bind(message.id, message.storedPayload)],
    ),
    ...(keyed ? [d1.prepare(KEY_OWNERS).bind(topic, list)] : []),
  ];
  const results = await d1.batch(statements);
  const owners: (KeyOwner | undefined)[] = batch.map(() => undefined);
  if (keyed) {
    for (const { position, ...owner } of rowsOf<KeyOwner & { position: number }>(results.at(-1))) {
      owners[position] = owner;
    }
  }
  return { topicExists: rowsOf(results[0]).length > 0, owners };
}

const FORGET_MESSAGES = "DELETE FROM messages WHERE id IN (SELECT value FROM json_each(?1))";
const FORGET_KEYS = `DELETE FROM idempotency_keys
WHERE topic = ?2 AND message_id IN (SELECT value FROM json_each(?1))`;

/**
 * Undoes `recordMessages` for messages that could not be queued, so that a failed publish leaves
 * nothing behind and its idempotency keys are free for the retry.
 */
export async function forgetMessages(
  d1: D1Database,
  topic: string,
  batch: readonly MessageToRecord[],
): Promise<void> {
  if (batch.length === 0) return;
  const ids = JSON.stringify(batch.map((message) => message.id));
  await d1.batch([d1.prepare(FORGET_MESSAGES).bind(ids), d1.prepare(FORGET_KEYS).bind(ids, topic)]);
}
