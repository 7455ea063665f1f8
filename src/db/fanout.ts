/**
 * The fan-out consumer's storage: one read and one write per consumer batch, each a handful of
 * set-based statements over the batch's messages (bound as JSON lists), whatever its size. The
 * write that records a message's fan-out is also its claim, so that the message's row is written
 * once.
 */
import { jsonChunks, rowsOf } from "./d1";
import { recordCapacity } from "./delivery-record";

export interface FanoutSubscriber {
  id: string;
  topic: string;
  filter: string | null;
  version: number;
}

export interface FanoutContext {
  /** Active subscribers by topic. */
  subscribersByTopic: Map<string, FanoutSubscriber[]>;
  /**
   * Messages to fan out: those that exist (were accepted and not yet expired) and were published to
   * their topic as it is now, with their state and stored payload. One published before its topic
   * was deleted and made anew is not there: it belongs to a topic that is gone.
   */
  messages: Map<string, { state: "queued" | "dispatched"; payload: string | null }>;
  /** When each of the batch's topics was created, if it exists. */
  topicsCreatedAt: Map<string, number>;
}

const ACTIVE_SUBSCRIBERS = `SELECT id, topic, filter, version FROM subscribers
WHERE topic IN (SELECT value FROM json_each(?1)) AND active = 1`;
const TOPICS = `SELECT name, created_at AS createdAt FROM topics
WHERE name IN (SELECT value FROM json_each(?1))`;
const MESSAGES = `SELECT m.id, m.state, m.payload FROM messages AS m
WHERE m.id IN (SELECT value FROM json_each(?1))
  AND m.published_at >= (SELECT created_at FROM topics WHERE name = m.topic)`;

/** The active subscribers of the batch's topics and its messages, in one round trip. */
export async function loadFanoutContext(
  d1: D1Database,
  input: { topics: string[]; messageIds: string[] },
): Promise<FanoutContext> {
  const [subscriberRows, messageRows, topicRows] = await d1.batch([
    d1.prepare(ACTIVE_SUBSCRIBERS).bind(JSON.stringify(input.topics)),
    d1.prepare(MESSAGES).bind(JSON.stringify(input.messageIds)),
    d1.prepare(TOPICS).bind(JSON.stringify(input.topics)),
  ]);
  const subscribersByTopic = new Map<string, FanoutSubscriber[]>();
  for (const row of rowsOf<FanoutSubscriber>(subscriberRows)) {
    const list = subscribersByTopic.get(row.topic) ?? [];
    list.push(row);
    subscribersByTopic.set(row.topic, list);
  }
  return {
    subscribersByTopic,
    messages: new Map(
      rowsOf<{ id: string; state: "queued" | "dispatched"; payload: string | null }>(
        messageRows,
      ).map(({ id, ...message }) => [id, message]),
    ),
    topicsCreatedAt: new Map(
      rowsOf<{ name: string; createdAt: number }>(topicRows).map((row) => [
        row.name,
        row.createdAt,
      ]),
    ),
  };
}

export interface FanoutResult {
  messageId: string;
  matchedSubscriberIds: string[];
  filtered: number;
  /** The characters of the message's stored payload, which share its row with the record. */
  payloadChars: number;
  /**
   * Whether recording it claims it: only if it is still queued, so that of two tasks for one
   * message (a publish retried while its first task was still queued) only one fans it out. A
   * retry, a redrive or a deferral of a task that claimed it goes on whatever the state.
   */
  claim: boolean;
}

// ?1 JSON: [{ id, matched, filtered, record, claim }], ?2 now. A message fanned out before (a task
// delivered twice, or one fanned out at publish and queued again by a retried publish) keeps the
// record it has, whose entries may say delivered.
const RECORD_COUNTS = `UPDATE messages
SET state = 'dispatched', matched = r.value ->> 'matched', filtered = r.value ->> 'filtered',
  opened_at = coalesce(messages.opened_at, ?2),
  delivery_record = coalesce(messages.delivery_record, r.value -> 'record')
FROM json_each(?1) AS r
WHERE messages.id = r.value ->> 'id' AND (r.value ->> 'claim' = 0 OR messages.state = 'queued')
RETURNING id`;
// ?1 JSON: [messageId, ...]: claimed, to be fanned out by a later invocation.
const CLAIM = `UPDATE messages SET state = 'dispatched'
WHERE id IN (SELECT value FROM json_each(?1)) AND state = 'queued'
RETURNING id`;
// ?1 JSON: [[messageId, subscriberId], ...], ?2 now. Flat pairs: with a message's ids nested in
// one element, SQLite would read that whole element again for each of its rows. `WHERE true`
// keeps SQLite from reading the upsert's ON as a join's.
const OPEN_DELIVERIES = `INSERT INTO deliveries (message_id, subscriber_id, state, attempts,
  last_status, last_error, last_attempt_at, next_attempt_at, created_at)
SELECT p.value ->> 0, p.value ->> 1, 'pending', 0, NULL, NULL, NULL, ?2, ?2
FROM json_each(?1) AS p
WHERE true
ON CONFLICT DO NOTHING`;

/** A pair's characters in the JSON list: both ids quoted, brackets and commas. Ids are ASCII. */
const pairChars = ([messageId, subscriberId]: [string, string]) =>
  messageId.length + subscriberId.length + 8;

interface CountsAndRecord {
  id: string;
  matched: number;
  filtered: number;
  record: Record<string, 0>;
  claim: 0 | 1;
}

/** A message's counts in the JSON list: its ids, numbers and a record entry per subscriber. */
const countsChars = (counts: CountsAndRecord) =>
  counts.id.length + 64 + Object.keys(counts.record).length * 40;

/**
 * Marks each message dispatched with its counts and opens one pending delivery per match, in one
 * transaction: in the message's own record as far as its row has room (./delivery-record.ts), in
 * rows of their own beyond that. Re-running it for the same message (an at-least-once redelivery)
 * changes nothing that was already there. `claimOnly` messages are claimed for a later invocation
 * to fan out. Returns the messages recorded or claimed: a claim another task won is neither.
 */
export async function recordFanout(
  d1: D1Database,
  results: readonly FanoutResult[],
  claimOnly: readonly string[],
  now: number,
): Promise<Set<string>> {
  if (results.length === 0 && claimOnly.length === 0) return new Set();
  const counts: CountsAndRecord[] = [];
  const pairs: [string, string][] = [];
  for (const result of results) {
    const capacity = recordCapacity(result.payloadChars);
    const inRecord = result.matchedSubscriberIds.slice(0, capacity);
    counts.push({
      id: result.messageId,
      matched: result.matchedSubscriberIds.length,
      filtered: result.filtered,
      record: Object.fromEntries(inRecord.map((id) => [id, 0 as const])),
      claim: result.claim ? 1 : 0,
    });
    for (const id of result.matchedSubscriberIds.slice(capacity))
      pairs.push([result.messageId, id]);
  }
  // A fan-out to many thousands of subscribers is split across statements. Rows opened for a
  // message whose claim another task won are those it opens too (ON CONFLICT DO NOTHING).
  const written = await d1.batch([
    ...jsonChunks(counts, countsChars).map((part) =>
      d1.prepare(RECORD_COUNTS).bind(JSON.stringify(part), now),
    ),
    ...(claimOnly.length > 0 ? [d1.prepare(CLAIM).bind(JSON.stringify(claimOnly))] : []),
    ...jsonChunks(pairs, pairChars).map((part) =>
      d1.prepare(OPEN_DELIVERIES).bind(JSON.stringify(part), now),
    ),
  ]);
  return new Set(written.flatMap((result) => rowsOf<{ id: string }>(result).map((row) => row.id)));
}
