/**
 * Test doubles for the pipeline's bindings and a driver that walks one message through it:
 * queues that record what was sent, a D1 proxy that counts round trips (and can fail them), a
 * fetch stub that records each request, and hand-made message batches whose `ack` and `retry`
 * are spies.
 *
 * @example
 * const fanout = recordingQueue();
 * const res = await call("POST", `/v1/topics/${topic}/messages`, { json, env: { FANOUT_QUEUE: fanout.queue } });
 * const deliveries = await fanOut(fanout.bodies());
 */
import { env } from "cloudflare:workers";
import { expect, type Mock, vi } from "vitest";
import { MessageStatus } from "../../src/api/schemas/messages";
import type { SubscriberWithSecret } from "../../src/api/schemas/subscribers";
import { chunk } from "../../src/db/chunk";
import { openDatabase } from "../../src/db/client";
import { newId } from "../../src/db/ids";
import { type SubscriberRow, subscribers } from "../../src/db/schema";
import { handleDeadLetterBatch } from "../../src/deadletters/consumer";
import { type DeliveryDeps, handleDeliveryBatch } from "../../src/delivery/consumer";
import { generateSecret } from "../../src/delivery/signature";
import { handleFanoutBatch } from "../../src/fanout/consumer";
import {
  type DeliveryBundle,
  DeliveryBundleSchema,
  type DeliveryTask,
  DeliveryWorkSchema,
  type FanoutTask,
  FanoutTaskSchema,
  unbundle,
} from "../../src/queues/tasks";
import { call, expectJson, SUBSCRIBER_URL, seedSubscriber, seedTopic } from "../harness";

/** What the D1 binding throws when its storage cannot be reached. */
export const D1_FAILURE = "D1_ERROR: Network connection lost.";

/** The Worker's environment with some bindings replaced. */
export function envWith(overrides: Partial<Env>): Env {
  return Object.assign({}, env, overrides);
}

// ---------------------------------------------------------------------------------------------
// Queues

/** One message as it was handed to a queue. */
export interface SentMessage {
  body: unknown;
  delaySeconds: number | undefined;
}

export interface RecordingQueue {
  queue: Queue<unknown>;
  /** Each `send` and `sendBatch` call in order, as the list of messages it carried. */
  calls: { method: "send" | "sendBatch"; messages: SentMessage[] }[];
  /** Every message sent, in order. */
  sent(): SentMessage[];
  /** The bodies of every message sent, in order. */
  bodies(): unknown[];
  /** Makes every later call reject with `error` (or succeed again with undefined). */
  failWith(error: Error | undefined): void;
}

const sendResponse = { metadata: { metrics: { backlogCount: 0, backlogBytes: 0 } } };

/** A queue binding that records what is sent to it and sends nothing anywhere. */
export function recordingQueue(): RecordingQueue {
  const calls: RecordingQueue["calls"] = [];
  let failure: Error | undefined;
  const queue: Queue<unknown> = {
    async metrics() {
      return { backlogCount: 0, backlogBytes: 0 };
    },
    async send(body, options) {
      if (failure) throw failure;
      calls.push({ method: "send", messages: [{ body, delaySeconds: options?.delaySeconds }] });
      return sendResponse;
    },
    async sendBatch(messages, options) {
      if (failure) throw failure;
      calls.push({
        method: "sendBatch",
        messages: [...messages].map((message) => ({
          body: message.body,
          delaySeconds: message.delaySeconds ?? options?.delaySeconds,
        })),
      });
      return sendResponse;
    },
  };
  return {
    queue,
    calls,
    sent: () => calls.flatMap((entry) => entry.messages),
    bodies: () => calls.flatMap((entry) => entry.messages.map((message) => message.body)),
    failWith(error) {
      failure = error;
    },
  };
}

/** The bytes the queue counts for a message body (JSON content type). */
export function queuedBytes(body: unknown): number {
  return new TextEncoder().encode(JSON.stringify(body)).byteLength;
}

// ---------------------------------------------------------------------------------------------
// D1

/** One round trip to D1: a `batch`, or one statement run on its own. */
export interface D1Call {
  kind: "batch" | "statement";
  sql: string[];
}

export interface CountingD1 {
  db: D1Database;
  calls: D1Call[];
  /** Round trips whose statements all read. */
  reads(): D1Call[];
  /** Round trips with at least one statement that writes. */
  writes(): D1Call[];
  /** Rows D1 reports it read, summed over the batches that went through. */
  rowsRead(): number;
}

const WRITE = /^\s*(?:insert|update|delete|replace)\b/i;

/** Whether a round trip writes. */
export function isWrite(call: D1Call): boolean {
  return call.sql.some((sql) => WRITE.test(sql));
}

/**
 * The real database behind a proxy that records each round trip, and fails those that `fails`
 * picks with the error the binding throws when storage is unreachable.
 */
export function countingD1(
  db: D1Database = env.DB,
  fails: (call: D1Call) => boolean = () => false,
): CountingD1 {
  const calls: D1Call[] = [];
  let rowsRead = 0;
  const realStatements = new WeakMap<object, D1PreparedStatement>();
  const sqlOf = new WeakMap<object, string>();

  const roundTrip = (call: D1Call): Promise<never> | undefined => {
    calls.push(call);
    return fails(call) ? Promise.reject(new Error(D1_FAILURE)) : undefined;
  };

  const wrap = (statement: D1PreparedStatement, sql: string): D1PreparedStatement => {
    const proxy: D1PreparedStatement = new Proxy(statement, {
      get(target, property) {
        if (property === "bind") {
          return (...values: unknown[]) => wrap(target.bind(...values), sql);
        }
        if (
          property === "first" ||
          property === "run" ||
          property === "all" ||
          property === "raw"
        ) {
          return (...args: unknown[]) => {
            const failed = roundTrip({ kind: "statement", sql: [sql] });
            if (failed) return failed;
            const method: unknown = Reflect.get(target, property);
            if (typeof method !== "function") throw new TypeError(`${property} is missing`);
            return method.apply(target, args);
          };
        }
        const value: unknown = Reflect.get(target, property);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    realStatements.set(proxy, statement);
    sqlOf.set(proxy, sql);
    return proxy;
  };

  const proxy = new Proxy(db, {
    get(target, property) {
      if (property === "prepare") return (sql: string) => wrap(target.prepare(sql), sql);
      if (property === "batch") {
        return (statements: D1PreparedStatement[]) => {
          const failed = roundTrip({
            kind: "batch",
            sql: statements.map((statement) => sqlOf.get(statement) ?? "?"),
          });
          if (failed) return failed;
          return target.batch(statements.map((s) => realStatements.get(s) ?? s)).then((results) => {
            for (const result of results) rowsRead += result.meta.rows_read ?? 0;
            return results;
          });
        };
      }
      const value: unknown = Reflect.get(target, property);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  return {
    db: proxy,
    calls,
    reads: () => calls.filter((call) => !isWrite(call)),
    writes: () => calls.filter(isWrite),
    rowsRead: () => rowsRead,
  };
}

/**
 * Rows of a table for one topic, read straight from D1. A message's idempotency key is on its row
 * (`idempotency_key`), so "no message row" also means "no key claimed".
 */
export async function rowsOf(
  table: "messages" | "dead_letters",
  topic: string,
): Promise<Record<string, unknown>[]> {
  const { results } = await env.DB.prepare(`select * from ${table} where topic = ?`)
    .bind(topic)
    .all();
  return results;
}

/** The delivery rows of a message, read straight from D1. */
export async function deliveryRowsOf(messageId: string): Promise<Record<string, unknown>[]> {
  const { results } = await env.DB.prepare("select * from deliveries where message_id = ?")
    .bind(messageId)
    .all();
  return results;
}

/**
 * Adds `count` subscribers to an existing topic straight in D1, for the tests that need hundreds
 * of them; the API makes them one at a time.
 */
export async function insertSubscribers(
  topic: string,
  count: number,
  fields: Partial<SubscriberRow> = {},
): Promise<SubscriberRow[]> {
  const now = Date.now();
  const rows: SubscriberRow[] = Array.from({ length: count }, () => ({
    id: newId("sub", now),
    topic,
    url: SUBSCRIBER_URL,
    filter: null,
    method: "POST",
    headers: {},
    query: {},
    timeoutMs: 15000,
    maxAttempts: 15,
    baseDelaySeconds: 5,
    maxDelaySeconds: 43200,
    active: true,
    description: null,
    secret: generateSecret(),
    previousSecret: null,
    previousSecretExpiresAt: null,
    deactivatedAt: null,
    version: 1,
    createdAt: now,
    updatedAt: now,
    ...fields,
  }));
  const db = openDatabase(env.DB);
  // Five rows of 20 columns stay under D1's 100 bound parameters per statement.
  const [first, ...rest] = chunk(rows, 5).map((part) => db.insert(subscribers).values(part));
  if (first) await db.batch([first, ...rest]);
  return rows;
}

// ---------------------------------------------------------------------------------------------
// Message batches

export interface FakeMessage extends Message<unknown> {
  ack: Mock<() => void>;
  retry: Mock<(options?: QueueRetryOptions) => void>;
  /** The first call on the message, which is the one the platform honours. */
  outcome(): { kind: "ack" } | { kind: "retry"; delaySeconds: number | undefined } | undefined;
}

export interface FakeBatch extends MessageBatch<unknown> {
  messages: readonly FakeMessage[];
  retryAll: Mock<(options?: QueueRetryOptions) => void>;
  ackAll: Mock<() => void>;
}

/** A batch as the runtime hands it to a consumer; `attempts` is each message's (default 1). */
export function messageBatch(
  queue: string,
  bodies: readonly unknown[],
  attempts: number | readonly number[] = 1,
): FakeBatch {
  const messages = bodies.map((body, index): FakeMessage => {
    let outcome: ReturnType<FakeMessage["outcome"]>;
    return {
      id: `qm-${index}-${crypto.randomUUID()}`,
      timestamp: new Date(),
      body,
      attempts: typeof attempts === "number" ? attempts : (attempts[index] ?? 1),
      ack: vi.fn(() => {
        outcome ??= { kind: "ack" };
      }),
      retry: vi.fn((options?: QueueRetryOptions) => {
        outcome ??= { kind: "retry", delaySeconds: options?.delaySeconds };
      }),
      outcome: () => outcome,
    };
  });
  return {
    queue,
    messages,
    metadata: { metrics: { backlogCount: 0, backlogBytes: 0 } },
    retryAll: vi.fn(),
    ackAll: vi.fn(),
  };
}

// ---------------------------------------------------------------------------------------------
// Fetch

/** One request as the subscriber would see it. */
export interface SeenRequest {
  url: string;
  method: string;
  headers: Record<string, string>;
  /** The body as UTF-8 text. */
  body: string | null;
  bytes: Uint8Array | null;
  redirect: string | undefined;
  hasSignal: boolean;
}

export interface FetchStub {
  fetch: typeof fetch;
  requests: SeenRequest[];
  /** The most requests that were in flight at once. */
  maxInFlight(): number;
}

/** A fetch that answers with `respond` and records each request. */
export function stubFetch(
  respond: (request: SeenRequest, signal: AbortSignal | undefined) => Response | Promise<Response>,
): FetchStub {
  const requests: SeenRequest[] = [];
  let inFlight = 0;
  let most = 0;
  const fetcher = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    inFlight += 1;
    most = Math.max(most, inFlight);
    try {
      const request = new Request(input, init);
      const bytes = request.body === null ? null : new Uint8Array(await request.arrayBuffer());
      const seen: SeenRequest = {
        url: request.url,
        method: request.method,
        headers: Object.fromEntries(request.headers),
        body: bytes === null ? null : new TextDecoder().decode(bytes),
        bytes,
        redirect: init?.redirect,
        hasSignal: init?.signal instanceof AbortSignal,
      };
      requests.push(seen);
      return await respond(seen, init?.signal ?? undefined);
    } finally {
      inFlight -= 1;
    }
  };
  return { fetch: fetcher, requests, maxInFlight: () => most };
}

/** Delivery dependencies with a stub fetch, no jitter and the real clock. */
export function deps(fetcher: typeof fetch, random: () => number = () => 0): DeliveryDeps {
  return { fetch: fetcher, random, now: Date.now };
}

// ---------------------------------------------------------------------------------------------
// Walking a message through the pipeline

/** Publishes one envelope with a recording fan-out queue; returns the answer and the queue. */
export async function publish(
  topic: string,
  envelope: Record<string, unknown>,
  options: { idempotencyKey?: string; as?: "admin" | "publisher" } = {},
) {
  const fanout = recordingQueue();
  const res = await call("POST", `/v1/topics/${topic}/messages`, {
    as: options.as,
    json: envelope,
    headers: options.idempotencyKey ? { "idempotency-key": options.idempotencyKey } : {},
    env: { FANOUT_QUEUE: fanout.queue },
  });
  return { res, fanout };
}

/** Publishes and returns the fan-out task that was queued. */
export async function publishTask(
  topic: string,
  envelope: Record<string, unknown>,
): Promise<FanoutTask> {
  const { res, fanout } = await publish(topic, envelope);
  expect(res.status, await res.clone().text()).toBe(202);
  const [body] = fanout.bodies();
  return FanoutTaskSchema.parse(body);
}

/**
 * Every delivery a delivery queue's bodies carry, each as the task it would be on its own: a
 * bundle's deliveries one by one, in order.
 */
export function deliveriesIn(bodies: readonly unknown[]): DeliveryTask[] {
  return bodies.flatMap((body) => {
    const work = DeliveryWorkSchema.parse(body);
    return "kind" in work ? unbundle(work) : [work];
  });
}

/** A delivery queue's bodies as the bundles they must all be. */
export function bundlesIn(bodies: readonly unknown[]): DeliveryBundle[] {
  return bodies.map((body) => DeliveryBundleSchema.parse(body));
}

/** The queue's unit of billing: a bundle of small messages costs the operations of one. */
export const QUEUE_BILLING_UNIT_BYTES = 64 * 1024;

/**
 * Checks what a delivery queue was sent against the platform's limits and the bundles' own: each
 * `sendBatch` at most 100 messages and 256 KB, each message at most 128 KB, each bundle at most
 * ten deliveries and one 64 KB unit, unless it carries a single message too large for one.
 */
export function expectBundlesWithinLimits(queue: RecordingQueue): void {
  for (const { method, messages } of queue.calls) {
    expect(method).toBe("sendBatch");
    expect(messages.length).toBeLessThanOrEqual(100);
    expect(messages.reduce((sum, { body }) => sum + queuedBytes(body), 0)).toBeLessThanOrEqual(
      256_000,
    );
    for (const { body } of messages) {
      const bundle = DeliveryBundleSchema.parse(body);
      expect(bundle.messages.length * bundle.subscriberIds.length).toBeLessThanOrEqual(10);
      expect(queuedBytes(body)).toBeLessThanOrEqual(128_000 - 100);
      if (queuedBytes(body) > QUEUE_BILLING_UNIT_BYTES) {
        const [only, ...others] = bundle.messages;
        expect(others).toEqual([]);
        expect(queuedBytes(only)).toBeGreaterThan(QUEUE_BILLING_UNIT_BYTES - 4 * 1024);
      }
    }
  }
}

/**
 * Runs the fan-out consumer over tasks; returns the batch, the delivery queue, and the deliveries
 * it queued, unbundled (see `deliveriesIn`).
 */
export async function fanOut(tasks: readonly unknown[], db: D1Database = env.DB, attempts = 1) {
  const deliveries = recordingQueue();
  const batch = messageBatch("switchboard-fanout", tasks, attempts);
  await handleFanoutBatch(batch, envWith({ DB: db, DELIVERY_QUEUE: deliveries.queue }));
  return { batch, deliveries, tasks: deliveriesIn(deliveries.bodies()) };
}

/** Publishes one envelope and fans it out; returns the message id and its delivery tasks. */
export async function publishAndFanOut(
  topic: string,
  envelope: Record<string, unknown>,
): Promise<{ messageId: string; tasks: DeliveryTask[] }> {
  const task = await publishTask(topic, envelope);
  const { tasks } = await fanOut([task]);
  return { messageId: task.messageId, tasks };
}

/**
 * Runs the delivery consumer over tasks (or bundles), each at attempt `attempts`. The deliveries of
 * a bundle it puts back on the queue go to `deliveryQueue`, a recording one unless given, never to
 * the Worker's own queue.
 */
export async function deliver(
  tasks: readonly unknown[],
  fetcher: typeof fetch,
  options: {
    attempts?: number | readonly number[];
    db?: D1Database;
    random?: () => number;
    deadLetterQueue?: RecordingQueue;
    deliveryQueue?: RecordingQueue;
  } = {},
) {
  const deadLetterQueue = options.deadLetterQueue ?? recordingQueue();
  const deliveryQueue = options.deliveryQueue ?? recordingQueue();
  const batch = messageBatch("switchboard-deliveries", tasks, options.attempts ?? 1);
  await handleDeliveryBatch(
    batch,
    envWith({
      DB: options.db ?? env.DB,
      DEAD_LETTER_QUEUE: deadLetterQueue.queue,
      DELIVERY_QUEUE: deliveryQueue.queue,
    }),
    deps(fetcher, options.random),
  );
  return { batch, deadLetterQueue, deliveryQueue };
}

/** Runs the dead-letter consumer over bodies. */
export async function consumeDeadLetters(bodies: readonly unknown[], db: D1Database = env.DB) {
  const fanout = recordingQueue();
  const batch = messageBatch("switchboard-dead-letters", bodies);
  await handleDeadLetterBatch(batch, envWith({ DB: db, FANOUT_QUEUE: fanout.queue }));
  return { batch, fanout };
}

/** `GET /v1/messages/{id}`, parsed with the API's schema. */
export async function messageStatus(id: string): Promise<MessageStatus> {
  return expectJson(await call("GET", `/v1/messages/${id}`), 200, MessageStatus);
}

/** A fetch that answers every request with `status`. */
export function answering(status: number, headers: Record<string, string> = {}): FetchStub {
  return stubFetch(() => new Response(status === 204 ? null : "", { status, headers }));
}

/** A topic with one subscriber and one published message fanned out to it. */
export async function oneDelivery(
  subscriberInput: Parameters<typeof seedSubscriber>[1] = {},
  envelope: Record<string, unknown> = { body: { a: 1 } },
): Promise<{
  topic: string;
  subscriber: SubscriberWithSecret;
  messageId: string;
  task: DeliveryTask;
}> {
  const { name: topic } = await seedTopic();
  const subscriber = await seedSubscriber(topic, subscriberInput);
  const { messageId, tasks } = await publishAndFanOut(topic, envelope);
  const [task] = tasks;
  if (!task) throw new Error("the message was not fanned out");
  return { topic, subscriber, messageId, task };
}

/**
 * One message fanned out to three subscribers whose endpoints answer 200, `failingStatus` and
 * 410, with the fetch that answers so: a batch with one of each outcome.
 */
export async function okFailingGone(failingStatus: number) {
  const { name: topic } = await seedTopic();
  const ok = await seedSubscriber(topic, { url: "https://ok.example.com/" });
  const failing = await seedSubscriber(topic, { url: "https://failing.example.com/" });
  const gone = await seedSubscriber(topic, { url: "https://gone.example.com/" });
  const { messageId, tasks } = await publishAndFanOut(topic, { body: 1 });
  const statusOf: Record<string, number> = {
    "ok.example.com": 200,
    "failing.example.com": failingStatus,
    "gone.example.com": 410,
  };
  const fetch = stubFetch(
    (request) => new Response(null, { status: statusOf[new URL(request.url).host] ?? 200 }),
  );
  return { topic, ok, failing, gone, messageId, tasks, fetch };
}

/**
 * The subscribers a message's deliveries go to, sorted, as `GET /v1/messages/{id}` shows them; each
 * must be pending, and they must be as many as its fan-out counted.
 */
export async function pendingTo(messageId: string): Promise<string[]> {
  const status = await messageStatus(messageId);
  expect(status.matched).toBe(status.deliveries.length);
  for (const delivery of status.deliveries) {
    expect(delivery).toMatchObject({ state: "pending", attempts: 0 });
  }
  return status.deliveries.map((delivery) => delivery.subscriberId).sort();
}
