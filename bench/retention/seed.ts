/**
 * Old rows as the broker leaves them behind a stretch of deliveries that succeeded at once, written
 * straight into the Worker's D1 (`POST /__cost/sql`), many rows per statement, so that retention
 * has something the size of real traffic to delete.
 *
 * For each delivery, on a topic that records everything, with one subscriber:
 * - one `messages` row, dispatched, with the compact record of its delivery (delivered at the first
 *   attempt) and, for every {@link SeedMix.keyedEvery}th, an idempotency key (and so an entry in the
 *   key's partial index) and its payload hash;
 * - every {@link SeedMix.retriedEvery}th also has a `deliveries` row (it was retried, then
 *   delivered), and every {@link SeedMix.deadEvery}th of those died instead and has a dead letter;
 * - every {@link SeedMix.claimEvery}th comes with an `idempotency_claims` row (a keyed publish to a
 *   topic that records failures only, whose message has no row);
 * - `topic_counts` holds one row per minute for each of {@link SeedMix.topics} such topics.
 *
 * Ids are made with the broker's own `newId("msg", time)`, at times spread over the stretch at
 * {@link SeedMix.perSecond} deliveries a second: the id's time is what retention compares.
 */
import { newId } from "../../src/db/ids";
import type { HttpClient } from "../lib/http";
import { runSql } from "./sql";

export interface SeedMix {
  /** Deliveries per second the stretch was published at. */
  perSecond: number;
  keyedEvery: number;
  retriedEvery: number;
  /** A multiple of `retriedEvery`: a dead delivery is one of the retried ones. */
  deadEvery: number;
  claimEvery: number;
  topics: number;
}

export const SEED_MIX: SeedMix = {
  perSecond: 2_000,
  keyedEvery: 2,
  retriedEvery: 50,
  deadEvery: 1_000,
  claimEvery: 10,
  topics: 100,
};

/** Rows bound per statement, as one JSON list of `[id, ms after the start]`: about 85 KB. */
const ROWS_PER_STATEMENT = 2_000;
/** Statements per request to the Worker (one D1 batch, one transaction). */
const STATEMENTS_PER_REQUEST = 20;
/** A UTC day, as `CLAIM_DAY_MS` in src/db/publish.ts keys idempotency claims. */
const DAY_MS = 24 * 60 * 60 * 1000;
/** Retried deliveries are last attempted this long after their message was published. */
const RETRY_AFTER_MS = 60_000;

// Every statement binds ?1 the JSON list, ?2 the stretch's start, ?3 the first row's number,
// ?4 the number of topics, ?5 and ?6 what the statement picks rows by.
const ROWS = `WITH r AS (SELECT ?3 + m.key AS i, m.value ->> 0 AS id,
  CAST(?2 AS INTEGER) + (m.value ->> 1) AS t FROM json_each(?1) AS m)`;
const TOPIC = "'bench-retention-' || (r.i % ?4)";
const LEAN_TOPIC = "'bench-lean-' || (r.i % ?4)";
const SUBSCRIBER = "printf('sub_%026d', r.i % ?4)";

const MESSAGES = `${ROWS}
INSERT INTO messages (id, topic, state, matched, filtered, payload, published_at, available_at,
  adopted, idempotency_key, payload_hash, opened_at, delivery_record)
SELECT r.id, ${TOPIC}, 'dispatched', 1, 0, NULL, r.t, NULL, 0,
  CASE WHEN r.i % ?5 = 0 THEN 'order-' || r.i END,
  CASE WHEN r.i % ?5 = 0 THEN lower(hex(randomblob(32))) END,
  r.t, json_object(${SUBSCRIBER}, json_array(1, 200, r.t + 25))
FROM r`;

const DELIVERIES = `${ROWS}
INSERT INTO deliveries (message_id, subscriber_id, state, attempts, last_status, last_error,
  last_attempt_at, next_attempt_at, created_at, topic)
SELECT r.id, ${SUBSCRIBER},
  CASE WHEN r.i % ?6 = 0 THEN 'dead' ELSE 'delivered' END,
  CASE WHEN r.i % ?6 = 0 THEN 15 ELSE 2 END,
  CASE WHEN r.i % ?6 = 0 THEN 500 ELSE 200 END,
  CASE WHEN r.i % ?6 = 0 THEN 'HTTP 500' END,
  r.t + ${RETRY_AFTER_MS}, NULL, r.t, ${TOPIC}
FROM r WHERE r.i % ?5 = 0`;

const DEAD_LETTERS = `${ROWS}
INSERT INTO dead_letters (id, message_id, topic, subscriber_id, attempts, last_status, last_error,
  published_at, payload, dead_at)
SELECT 'dlq_' || substr(r.id, 5), r.id, ${TOPIC}, ${SUBSCRIBER}, 15, 500, 'HTTP 500', r.t,
  json_object('kind', 'json', 'value', json_object('orderId', r.i, 'category', 'food',
    'total', 12.5, 'currency', 'EUR')), r.t + ${RETRY_AFTER_MS}
FROM r WHERE r.i % ?5 = 0`;

const CLAIMS = `${ROWS}
INSERT INTO idempotency_claims (day, topic, key, message_id, payload_hash, created_at, adopted)
SELECT r.t / ${DAY_MS}, ${LEAN_TOPIC}, 'order-' || r.i, r.id, lower(hex(randomblob(32))), r.t, 0
FROM r WHERE r.i % ?5 = ?6`;

// ?1 the first minute, ?2 minutes, ?3 topics.
const TOPIC_COUNTS = `WITH RECURSIVE
  minutes(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM minutes WHERE k + 1 < ?2),
  topics(j) AS (SELECT 0 UNION ALL SELECT j + 1 FROM topics WHERE j + 1 < ?3)
INSERT INTO topic_counts (minute, topic, delivered, retried, dead)
SELECT CAST(?1 AS INTEGER) + k * 60000, 'bench-lean-' || j, 1000, 20, 1 FROM minutes, topics`;

export type SeededTable =
  | "messages"
  | "deliveries"
  | "idempotency_claims"
  | "topic_counts"
  | "dead_letters";

export interface Seeded {
  deliveries: number;
  /** Rows written to each table. */
  rows: Record<SeededTable, number>;
  /** The stretch's first and last delivery times. */
  from: number;
  to: number;
  ms: number;
}

/**
 * Seeds `deliveries` deliveries' worth of rows at times from `from` on, `mix.perSecond` a second.
 * `firstIndex` numbers them on from an earlier seeding, so that keys stay distinct.
 */
export async function seedDeliveries(
  http: HttpClient,
  deliveries: number,
  from: number,
  mix: SeedMix = SEED_MIX,
  firstIndex = 0,
): Promise<Seeded> {
  if (mix.deadEvery % mix.retriedEvery !== 0) throw new Error("deadEvery: a multiple of retried");
  const started = performance.now();
  const rows: Record<SeededTable, number> = {
    messages: 0,
    deliveries: 0,
    idempotency_claims: 0,
    topic_counts: 0,
    dead_letters: 0,
  };
  const spanMs = Math.max(1, Math.floor((deliveries / mix.perSecond) * 1000));
  let pending: { sql: string; params: unknown[]; table: SeededTable }[] = [];
  const flush = async () => {
    if (pending.length === 0) return;
    const result = await runSql(http, {
      statements: pending.map(({ sql, params }) => ({ sql, params })),
    });
    if (result.changes <= 0) throw new Error("seeding wrote nothing");
    pending = [];
  };
  for (let first = 0; first < deliveries; first += ROWS_PER_STATEMENT) {
    const count = Math.min(ROWS_PER_STATEMENT, deliveries - first);
    const list: [string, number][] = [];
    for (let k = 0; k < count; k++) {
      const offset = Math.floor(((first + k) * spanMs) / deliveries);
      list.push([newId("msg", from + offset), offset]);
    }
    const json = JSON.stringify(list);
    const index = firstIndex + first;
    const params = (every: number, other: number | null = null) => [
      json,
      from,
      index,
      mix.topics,
      every,
      ...(other === null ? [] : [other]),
    ];
    const picked = (every: number, remainder = 0) =>
      Array.from({ length: count }, (_, k) => index + k).filter((i) => i % every === remainder)
        .length;
    pending.push({ sql: MESSAGES, params: params(mix.keyedEvery), table: "messages" });
    pending.push({
      sql: DELIVERIES,
      params: params(mix.retriedEvery, mix.deadEvery),
      table: "deliveries",
    });
    pending.push({ sql: DEAD_LETTERS, params: params(mix.deadEvery), table: "dead_letters" });
    const claimRemainder = Math.floor(mix.claimEvery / 2);
    pending.push({
      sql: CLAIMS,
      params: params(mix.claimEvery, claimRemainder),
      table: "idempotency_claims",
    });
    rows.messages += count;
    rows.deliveries += picked(mix.retriedEvery);
    rows.dead_letters += picked(mix.deadEvery);
    rows.idempotency_claims += picked(mix.claimEvery, claimRemainder);
    if (pending.length >= STATEMENTS_PER_REQUEST) await flush();
  }
  const firstMinute = from - (from % 60_000);
  const minutes = Math.floor((from + spanMs - firstMinute) / 60_000) + 1;
  pending.push({
    sql: TOPIC_COUNTS,
    params: [firstMinute, minutes, mix.topics],
    table: "topic_counts",
  });
  rows.topic_counts += minutes * mix.topics;
  await flush();
  return { deliveries, rows, from, to: from + spanMs, ms: performance.now() - started };
}

/** Rows of each seeded table still there. */
export async function countSeeded(http: HttpClient): Promise<Record<SeededTable, number>> {
  const result = await runSql(http, {
    statements: [
      { sql: "SELECT count(*) AS n FROM messages WHERE topic LIKE 'bench-retention-%'" },
      { sql: "SELECT count(*) AS n FROM deliveries WHERE topic LIKE 'bench-retention-%'" },
      { sql: "SELECT count(*) AS n FROM idempotency_claims WHERE topic LIKE 'bench-lean-%'" },
      { sql: "SELECT count(*) AS n FROM topic_counts WHERE topic LIKE 'bench-lean-%'" },
      { sql: "SELECT count(*) AS n FROM dead_letters WHERE topic LIKE 'bench-retention-%'" },
    ],
  });
  const n = (i: number) => Number((result.rows[i]?.[0] as { n?: number } | undefined)?.n ?? NaN);
  return {
    messages: n(0),
    deliveries: n(1),
    idempotency_claims: n(2),
    topic_counts: n(3),
    dead_letters: n(4),
  };
}
