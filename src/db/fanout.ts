/**
 * The fan-out consumer's storage: one read and one write per consumer batch, each a handful of
 * set-based statements over the batch's messages (bound as JSON lists), whatever its size.
 */
import { jsonChunks, rowsOf } from "./d1";

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

const CLAIM = `UPDATE messages SET state = 'dispatched'
WHERE id IN (SELECT value FROM json_each(?1)) AND state = 'queued'
RETURNING id`;
const ACTIVE_SUBSCRIBERS = `SELECT id, topic, filter, version FROM subscribers
WHERE topic IN (SELECT value FROM json_each(?1)) AND active = 1`;
const MESSAGES = "SELECT id, payload FROM messages WHERE id IN (SELECT value FROM json_each(?1))";

/**
 * The active subscribers of the batch's topics and its messages, in one round trip. Messages in
 * `claimIds` are claimed on the way: each moves from queued to dispatched once, so that of two
 * tasks for one message (a publish retried while its first task was still queued) only one fans
 * it out.
 */
export async function loadFanoutContext(
  d1: D1Database,
  input: { topics: string[]; messageIds: string[]; claimIds: string[] },
): Promise<FanoutContext> {
  const [claimed, subscriberRows, messageRows] = await d1.batch([
    d1.prepare(CLAIM).bind(JSON.stringify(input.claimIds)),
    d1.prepare(ACTIVE_SUBSCRIBERS).bind(JSON.stringify(input.topics)),
    d1.prepare(MESSAGES).bind(JSON.stringify(input.messageIds)),
  ]);
  const subscribersByTopic = new Map<string, FanoutSubscriber[]>();
  for (const row of rowsOf<FanoutSubscriber>(subscriberRows)) {
    const list = subscribersByTopic.get(row.topic) ?? [];
    list.push(row);
    subscribersByTopic.set(row.topic, list);
  }
  return {
    subscribersByTopic,
    claimed: new Set(rowsOf<{ id: string }>(claimed).map((row) => row.id)),
    messages: new Map(
      rowsOf<{ id: string; payload: string | null }>(messageRows).map((row) => [
        row.id,
        { payload: row.payload },
      ]),
    ),
  };
}

export interface FanoutResult {
  messageId: string;
  matchedSubscriberIds: string[];
  filtered: number;
}

// ?1 JSON: [{ id, matched, filtered }].
const RECORD_COUNTS = `UPDATE messages
SET state = 'dispatched', matched = r.value ->> 'matched', filtered = r.value ->> 'filtered'
FROM json_each(?1) AS r
WHERE messages.id = r.value ->> 'id'`;
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

/**
 * Marks each message dispatched with its counts and opens one pending delivery per match, in one
 * transaction. Re-running it for the same message (an at-least-once redelivery) changes nothing
 * that was already there.
 */
export async function recordFanout(
  d1: D1Database,
  results: readonly FanoutResult[],
  now: number,
): Promise<void> {
  if (results.length === 0) return;
  const counts = results.map((result) => ({
    id: result.messageId,
    matched: result.matchedSubscriberIds.length,
    filtered: result.filtered,
  }));
  const pairs = results.flatMap((result) =>
    result.matchedSubscriberIds.map((id): [string, string] => [result.messageId, id]),
  );
  // A fan-out to many thousands of subscribers is split across statements.
  const opens = jsonChunks(pairs, pairChars);
  await d1.batch([
    d1.prepare(RECORD_COUNTS).bind(JSON.stringify(counts)),
    ...opens.map((part) => d1.prepare(OPEN_DELIVERIES).bind(JSON.stringify(part), now)),
  ]);
}
