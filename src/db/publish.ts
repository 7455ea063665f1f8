/**
 * The publish path's storage: one D1 batch (one round trip, one transaction) that checks the topic,
 * claims each idempotency key, and records each message, whatever the number of subscribers. The
 * statements are set-based over the batch's messages (bound as one JSON list), so a batch of 100
 * messages is the same statements as a single one.
 *
 * What is written depends on the topic's recording, read in the same transaction. A topic that
 * records everything ("full") gets a row per message, holding its idempotency key (one partial
 * index row per keyed message). A topic that records failures only writes no row for a message
 * whose content travels in the queue: its key, if it has one, is a row of `idempotency_claims`.
 *
 * Inline fan-out: when the topic's active subscribers are few enough and none has a filter, the
 * same batch also opens the messages' deliveries (in each message's own row, see
 * ./delivery-record.ts) and reads who they go to, so that the publish can queue the delivery tasks
 * itself and skip the fan-out queue. The rule is one SQL condition ({@link INLINE_TOPIC}),
 * evaluated in the batch's own transaction by every statement that needs it.
 */
import { rowsOf } from "./d1";
import type { RecordingMode } from "./schema";

/** Idempotency keys answer for 24 hours. */
export const IDEMPOTENCY_WINDOW_MS = 24 * 60 * 60 * 1000;
/** The days `idempotency_claims` are kept by: a key is looked up in its day and the one before. */
export const CLAIM_DAY_MS = 24 * 60 * 60 * 1000;

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
  /**
   * The owner's state; "queued" means it has not been fanned out (yet, or ever). Null for an owner
   * on a topic that records failures only, which keeps no state: whether it went out is unknown.
   */
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
  /** The topic's recording, or undefined when there is no such topic. */
  recording: RecordingMode | undefined;
  /** When the topic was created; 0 when there is no such topic. */
  topicCreatedAt: number;
  /** For each message with a key, the key's owner; undefined for messages without one. */
  owners: (KeyOwner | undefined)[];
  /**
   * When the topic qualified for inline fan-out, its active subscribers: each new candidate
   * message has a pending delivery to each of them. Undefined when it did not.
   */
  inlineSubscriberIds: string[] | undefined;
}

// ?1 topic, ?2 the batch as JSON: [{ id, key, hash, publishedAt, availableAt, inline, stored }],
// ?3 now, ?4 the oldest publication time whose key still answers, ?5 the most active subscribers a
// topic may have for inline fan-out (-1: none at all, the switch is off), ?6 today (the UTC day).
const TOPIC = "SELECT recording, created_at AS createdAt FROM topics WHERE name = ?1";
const TOPIC_EXISTS = "EXISTS (SELECT 1 FROM topics WHERE name = ?1)";
/** The topic records failures only. */
const LEAN = "((SELECT recording FROM topics WHERE name = ?1) = 'failures')";
/**
 * A time taken before the batch, as recorded: never before the topic was created. The publish's
 * clock may lag the one that created the topic, and what the topic holds is told from what an
 * older topic of the same name left by comparing the two (KEYS_FROM, and the fan-out).
 */
const NOT_BEFORE_TOPIC = (time: string) =>
  `max(${time}, (SELECT created_at FROM topics WHERE name = ?1))`;
/** Keys answer for messages published inside the window and after their topic was created. */
const KEYS_FROM = "max(?4, (SELECT created_at FROM topics WHERE name = ?1))";

/**
 * The topic ?1 qualifies for inline fan-out: at most ?5 active subscribers, none with a filter. It
 * reads at most ?5 + 1 of them, so that a publish to a topic of thousands stays as cheap as one to
 * a topic of one; it has no column of the statement's tables, so SQLite evaluates it once.
 */
const ACTIVE_UP_TO_LIMIT =
  "SELECT id, filter FROM subscribers WHERE topic = ?1 AND active = 1 LIMIT ?5 + 1";
/** The topic's active subscribers, counted up to ?5 + 1: exact whenever the topic qualifies. */
const ACTIVE_COUNT = `(SELECT count(*) FROM (${ACTIVE_UP_TO_LIMIT}))`;
const INLINE_TOPIC = `(?5 >= 0
  AND ${ACTIVE_COUNT} <= ?5
  AND NOT EXISTS (SELECT 1 FROM (${ACTIVE_UP_TO_LIMIT}) WHERE filter IS NOT NULL))`;
/** Message `m` of the batch is fanned out inline, on a topic that records everything. */
const INLINE_MESSAGE = `(m.value ->> 'inline' = 1 AND NOT ${LEAN} AND ${INLINE_TOPIC})`;
/** The compact record of deliveries opened to every active subscriber (src/db/delivery-record.ts). */
const PENDING_RECORD = `(SELECT json_group_object(id, 0) FROM (${ACTIVE_UP_TO_LIMIT}))`;

/**
 * A key answers for the message of this topic that holds it, if that message was published inside
 * the window and after the topic was created: deleting a topic frees its keys for a new topic of
 * the same name. `k` is the message holding the key `m` asks for.
 */
const KEY_HELD = `k.topic = ?1 AND k.idempotency_key = m.value ->> 'key'
  AND k.published_at >= ${KEYS_FROM}`;
/** The same for a key claimed on a topic that records failures only, today or yesterday. */
const CLAIM_HELD = `c.day IN (?6, ?6 - 1) AND c.topic = ?1 AND c.key = m.value ->> 'key'
  AND c.created_at >= ${KEYS_FROM}`;
/** Nobody holds the key `m` asks for, in either place (a topic's recording may have changed). */
const KEY_FREE = `(NOT EXISTS (SELECT 1 FROM messages AS k WHERE ${KEY_HELD})
  AND NOT EXISTS (SELECT 1 FROM idempotency_claims AS c WHERE ${CLAIM_HELD}))`;

// On a topic that records failures only, a key is claimed in a row of its own. A row of today's
// that no longer answers (its topic was made anew since) is taken over.
const CLAIM_KEYS = `INSERT INTO idempotency_claims (day, topic, key, message_id, payload_hash, created_at)
SELECT ?6, ?1, m.value ->> 'key', m.value ->> 'id', m.value ->> 'hash', ${NOT_BEFORE_TOPIC("?3")}
FROM json_each(?2) AS m
WHERE m.value ->> 'key' IS NOT NULL AND ${TOPIC_EXISTS} AND ${LEAN} AND ${KEY_FREE}
ON CONFLICT (day, topic, key) DO UPDATE SET
  message_id = excluded.message_id, payload_hash = excluded.payload_hash, created_at = excluded.created_at`;

// A message goes in only if its topic exists, and on a topic that records failures only only if
// its content is stored (a row that holds the content alone, so it reads as dispatched: nothing of
// its fan-out is recorded); when it has a key, only if the key is its own (the publish deduplicates
// keys within a request first, and the statement's reads do not see its own rows). One fanned out
// inline has its counts and its deliveries' record at once, and stays queued until its first
// outcome is recorded (src/db/deliveries.ts), so that a retried publish whose send failed queues
// it again, as it would any message not fanned out yet. With no subscriber at all, nothing is left
// to do.
const INSERT_MESSAGES = `INSERT INTO messages (id, topic, state, matched, filtered, payload,
  published_at, available_at, idempotency_key, payload_hash, opened_at, delivery_record)
SELECT m.value ->> 'id', ?1,
  CASE WHEN ${LEAN} OR (${INLINE_MESSAGE} AND ${ACTIVE_COUNT} = 0) THEN 'dispatched'
    ELSE 'queued' END,
  CASE WHEN ${INLINE_MESSAGE} THEN ${ACTIVE_COUNT} END,
  CASE WHEN ${INLINE_MESSAGE} THEN 0 END,
  NULL, ${NOT_BEFORE_TOPIC("m.value ->> 'publishedAt'")}, m.value ->> 'availableAt',
  CASE WHEN NOT ${LEAN} THEN m.value ->> 'key' END,
  CASE WHEN NOT ${LEAN} AND m.value ->> 'key' IS NOT NULL THEN m.value ->> 'hash' END,
  CASE WHEN ${INLINE_MESSAGE} THEN ?3 END,
  CASE WHEN ${INLINE_MESSAGE} THEN ${PENDING_RECORD} END
FROM json_each(?2) AS m
WHERE ${TOPIC_EXISTS}
  AND CASE WHEN ${LEAN}
    THEN m.value ->> 'stored' = 1 AND (m.value ->> 'key' IS NULL
      OR EXISTS (SELECT 1 FROM idempotency_claims AS c
        WHERE c.day = ?6 AND c.topic = ?1 AND c.key = m.value ->> 'key'
          AND c.message_id = m.value ->> 'id'))
    ELSE m.value ->> 'key' IS NULL OR ${KEY_FREE} END`;

// Who the inline deliveries go to, read from at most ?5 + 1 rows like the condition; no row when
// the topic does not qualify (an aggregate of nothing would still give one).
const INLINE_SUBSCRIBERS = `SELECT json_group_array(id) AS ids
FROM (SELECT id FROM subscribers WHERE topic = ?1 AND active = 1 LIMIT ?5 + 1)
HAVING ${INLINE_TOPIC}`;

// A message whose key a later publish of the same payload answers for (as a duplicate) is from
// then on accepted whatever its own publish does: should that publish's send fail, its rollback
// leaves the message (see FORGET_MESSAGES), which stays queued for the duplicate's task or a
// further retry to fan out. Marked in the duplicate's own transaction, so that it is either before
// the rollback (which then keeps the message) or after it (when the key is free and taken anew).
// A claim of a topic that records failures only is marked the same way, with the row that holds its
// message's content if it has one.
const ADOPTED_CLAIMS = `SELECT c.day, c.topic, c.key, c.message_id
  FROM json_each(?2) AS m
  CROSS JOIN idempotency_claims AS c ON ${CLAIM_HELD}
  WHERE c.message_id <> m.value ->> 'id' AND c.payload_hash = m.value ->> 'hash'`;
const ADOPT_OWNERS = `UPDATE messages SET adopted = 1
WHERE adopted = 0 AND id IN (SELECT k.id
  FROM json_each(?2) AS m
  CROSS JOIN messages AS k ON ${KEY_HELD}
  WHERE k.id <> m.value ->> 'id' AND k.payload_hash = m.value ->> 'hash'
  UNION ALL SELECT message_id FROM (${ADOPTED_CLAIMS}))`;
const ADOPT_CLAIMS = `UPDATE idempotency_claims SET adopted = 1
WHERE adopted = 0 AND (day, topic, key) IN (SELECT day, topic, key FROM (${ADOPTED_CLAIMS}))`;

// Large content is bound on its own: a JSON list of several would approach D1's 2 MB per value.
const STORE_PAYLOAD = "UPDATE messages SET payload = ?2 WHERE id = ?1";

// CROSS JOIN keeps the batch the outer loop: otherwise SQLite may scan all of the topic's keys.
const KEY_OWNERS = `SELECT m.key AS position, k.id AS messageId, k.payload_hash AS payloadHash,
  k.state AS state, k.published_at AS publishedAt, k.available_at AS availableAt,
  k.payload IS NOT NULL AS contentStored
FROM json_each(?2) AS m
CROSS JOIN messages AS k ON ${KEY_HELD}
UNION ALL
SELECT m.key, c.message_id, c.payload_hash, NULL, c.created_at, NULL,
  EXISTS (SELECT 1 FROM messages WHERE id = c.message_id AND payload IS NOT NULL)
FROM json_each(?2) AS m
CROSS JOIN idempotency_claims AS c ON ${CLAIM_HELD}`;

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
      stored: message.storedPayload === null ? 0 : 1,
    })),
  );
  const keyed = batch.some((message) => message.idempotencyKey !== undefined);
  const inline = inlineMaxSubscribers !== undefined;
  const max = inlineMaxSubscribers ?? -1;
  // ?1 to ?6 mean the same in every statement; each binds up to the highest one it reads.
  const today = Math.floor(now / CLAIM_DAY_MS);
  const params = [topic, list, now, now - IDEMPOTENCY_WINDOW_MS, max, today];
  const statement = (sql: string, highest: number) =>
    d1.prepare(sql).bind(...params.slice(0, highest));
  const statements = [
    statement(TOPIC, 1),
    ...(keyed
      ? [statement(CLAIM_KEYS, 6), statement(ADOPT_OWNERS, 6), statement(ADOPT_CLAIMS, 6)]
      : []),
    statement(INSERT_MESSAGES, 6),
    ...batch.flatMap((message) =>
      message.storedPayload === null
        ? []
        : [d1.prepare(STORE_PAYLOAD).bind(message.id, message.storedPayload)],
    ),
  ];
  // The reads come last, after every write of the transaction; where each one's rows will be.
  const ownersAt = keyed ? statements.push(statement(KEY_OWNERS, 6)) - 1 : undefined;
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
  const [topicRow] = rowsOf<{ recording: RecordingMode; createdAt: number }>(results[0]);
  return {
    recording: topicRow?.recording,
    topicCreatedAt: topicRow?.createdAt ?? 0,
    owners,
    inlineSubscriberIds: inlineRow ? (JSON.parse(inlineRow.ids) as string[]) : undefined,
  };
}

// An adopted message (ADOPT_OWNERS) keeps its row, and with it its key and its deliveries' record.
const FORGET_MESSAGES =
  "DELETE FROM messages WHERE id IN (SELECT value FROM json_each(?1)) AND adopted = 0";
// ?1 JSON: [{ id, key }], ?2 topic, ?3 the day the claims were made.
const FORGET_CLAIMS = `DELETE FROM idempotency_claims
WHERE (day, topic, key) IN (SELECT ?3, ?2, c.value ->> 'key' FROM json_each(?1) AS c)
  AND message_id IN (SELECT c.value ->> 'id' FROM json_each(?1) AS c) AND adopted = 0`;

/**
 * Undoes `recordMessages` for messages that could not be queued, so that a failed publish leaves
 * nothing behind and its idempotency keys are free for the retry. A message that another publish
 * has meanwhile answered for (adopted) stays: that publish may have answered 202 for it.
 */
export async function forgetMessages(
  d1: D1Database,
  topic: string,
  batch: readonly MessageToRecord[],
  now: number,
): Promise<void> {
  if (batch.length === 0) return;
  const ids = JSON.stringify(batch.map((message) => message.id));
  const keys = batch.flatMap((message) =>
    message.idempotencyKey === undefined ? [] : [{ id: message.id, key: message.idempotencyKey }],
  );
  await d1.batch([
    d1.prepare(FORGET_MESSAGES).bind(ids),
    ...(keys.length > 0
      ? [
          d1
            .prepare(FORGET_CLAIMS)
            .bind(JSON.stringify(keys), topic, Math.floor(now / CLAIM_DAY_MS)),
        ]
      : []),
  ]);
}
