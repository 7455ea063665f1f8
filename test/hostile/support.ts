/**
 * What every hostile request is checked against: it is answered with a clean problem, and it left
 * no trace. "No trace" means every table of the broker holds exactly the rows it held before, no
 * queue saw a send, and no prototype gained a property.
 *
 * @example
 * const before = await snapshotTables();
 * const { res, queues } = await hostileCall("POST", "/v1/topics", { json: { name: 42 } });
 * await expectRefusedCleanly(res, 400, "validation_failed", { before, queues });
 */
import { env } from "cloudflare:workers";
import { expect } from "vitest";
import { type CallOptions, call, expectProblem, type Problem } from "../harness";
import { type RecordingQueue, recordingQueue } from "../pipeline/support";

/** Every table the broker writes, in the order the migrations create them. */
export const TABLES = [
  "topics",
  "subscribers",
  "messages",
  "deliveries",
  "dead_letters",
  "idempotency_claims",
  "topic_counts",
] as const;

export type Table = (typeof TABLES)[number];
export type TableSnapshot = Record<Table, unknown[]>;

/** How each table's rows are ordered in a snapshot: its primary key. */
const ORDER: Record<Table, string> = {
  topics: "name",
  subscribers: "id",
  messages: "id",
  deliveries: "message_id, subscriber_id",
  dead_letters: "id",
  idempotency_claims: "day, topic, key",
  topic_counts: "minute, topic",
};

/** Every row of every table, read in one round trip, in primary key order. */
export async function snapshotTables(): Promise<TableSnapshot> {
  const results = await env.DB.batch(
    TABLES.map((table) => env.DB.prepare(`select * from ${table} order by ${ORDER[table]}`)),
  );
  const snapshot: Partial<TableSnapshot> = {};
  TABLES.forEach((table, index) => {
    snapshot[table] = results[index]?.results ?? [];
  });
  return snapshot as TableSnapshot;
}

/** The row count of every table, for a failure message that says where the change is. */
export function rowCounts(snapshot: TableSnapshot): Record<Table, number> {
  const counts: Partial<Record<Table, number>> = {};
  for (const table of TABLES) counts[table] = snapshot[table].length;
  return counts as Record<Table, number>;
}

/** Recording stand-ins for the Worker's three queues. */
export interface Queues {
  fanout: RecordingQueue;
  deliveries: RecordingQueue;
  deadLetters: RecordingQueue;
}

export function recordingQueues(): Queues {
  return { fanout: recordingQueue(), deliveries: recordingQueue(), deadLetters: recordingQueue() };
}

/** Every send any of the queues saw. */
export function queuedCalls(queues: Queues): RecordingQueue["calls"] {
  return [...queues.fanout.calls, ...queues.deliveries.calls, ...queues.deadLetters.calls];
}

/**
 * One request with recording queues in place of the real ones and the public URL policy, whatever
 * a local .dev.vars says: these requests must not reach a queue, and SSRF is judged as deployed.
 */
export async function hostileCall(
  method: string,
  path: string,
  options: CallOptions = {},
): Promise<{ res: Response; queues: Queues }> {
  const queues = recordingQueues();
  const res = await call(method, path, {
    ...options,
    env: {
      ALLOW_PRIVATE_URLS: "false",
      FANOUT_QUEUE: queues.fanout.queue,
      DELIVERY_QUEUE: queues.deliveries.queue,
      DEAD_LETTER_QUEUE: queues.deadLetters.queue,
      ...options.env,
    },
  });
  return { res, queues };
}

// Taken when the suite loads, before any hostile input: what a clean prototype holds.
const CLEAN_PROTOTYPES = new Map<object, string[]>(
  [Object.prototype, Array.prototype, Function.prototype, String.prototype].map((proto) => [
    proto,
    Reflect.ownKeys(proto).map(String).sort(),
  ]),
);

/** No prototype gained (or lost) a property, and a fresh object inherits nothing called `polluted`. */
export function expectNoPollution(): void {
  for (const [proto, keys] of CLEAN_PROTOTYPES) {
    expect(Reflect.ownKeys(proto).map(String).sort()).toEqual(keys);
  }
  const fresh: Record<string, unknown> = {};
  expect(fresh.polluted).toBeUndefined();
  expect(Reflect.get([], "polluted")).toBeUndefined();
  expect(Object.getPrototypeOf(fresh)).toBe(Object.prototype);
}

/** A refusal should not amplify its input: the problem is short whatever was sent. */
const MAX_PROBLEM_BYTES = 16 * 1024;

/**
 * Asserts a clean refusal: the problem (status, code, problem+json, no stack trace, see
 * `expectProblem`), a short body, no queue send, every table exactly as `before`, no pollution.
 */
export async function expectRefusedCleanly(
  res: Response,
  status: number,
  code: string,
  trace: { before: TableSnapshot; queues: Queues },
): Promise<Problem> {
  const size = Number(res.headers.get("content-length") ?? Number.NaN);
  const problem = await expectProblem(res.clone(), status, code);
  const text = await res.text();
  expect(Number.isNaN(size) ? text.length : size).toBeLessThan(MAX_PROBLEM_BYTES);
  expect(queuedCalls(trace.queues)).toEqual([]);
  const after = await snapshotTables();
  expect(rowCounts(after)).toEqual(rowCounts(trace.before));
  expect(after).toEqual(trace.before);
  expectNoPollution();
  return problem;
}

/** A JSON text nested `depth` levels deep: `[[[…1…]]]` or `{"a":{"a":…1…}}`. */
export function nested(depth: number, kind: "array" | "object"): string {
  const [open, close] = kind === "array" ? ["[", "]"] : ['{"a":', "}"];
  return `${open.repeat(depth)}1${close.repeat(depth)}`;
}

/** A JSON request body, sent as written (so that it can hold what `JSON.stringify` never makes). */
export function rawJson(text: string): CallOptions {
  return { body: text, contentType: "application/json" };
}
