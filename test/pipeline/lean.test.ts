/**
 * Topics that record failures only (`recording: "failures"`): a message whose content travels in
 * the queue writes no row, a delivered first attempt is only counted (`topic_counts`, once per topic
 * per consumer batch), and what went wrong (a retry, a dead letter) is recorded as on any topic.
 * Idempotency keys live in `idempotency_claims`, and a repeated publish queues its first message
 * again. docs/storage.md describes the design; these tests walk messages through the pipeline.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import { DeadLetterList, Replayed } from "../../src/api/schemas/dead-letters";
import { PublishBatchResult, PublishResult } from "../../src/api/schemas/messages";
import { CLAIM_DAY_MS } from "../../src/db/publish";
import { handleFanoutBatch } from "../../src/fanout/consumer";
import { type FanoutTask, FanoutTaskSchema } from "../../src/queues/tasks";
import { runRetention } from "../../src/retention/scheduled";
import { meteredD1 } from "../db/metered-d1";
import {
  type CallOptions,
  call,
  expectJson,
  expectProblem,
  seedSubscriber,
  seedTopic,
  silenceErrorLog,
} from "../harness";
import {
  answering,
  consumeDeadLetters,
  countingD1,
  deliver,
  deliveryRowsOf,
  envWith,
  fanOut,
  insertSubscribers,
  isWrite,
  messageBatch,
  messageStatus,
  type RecordingQueue,
  recordingQueue,
  rowsOf,
  stubFetch,
} from "./support";

silenceErrorLog();

const DAY = 24 * 60 * 60 * 1000;
/** Over INLINE_CONTENT_MAX_BYTES (96 KB): stored in a message row, tasks refer to it. */
const LARGE_TEXT = "L".repeat(120 * 1024);

// ---------------------------------------------------------------------------------------------
// Helpers

type Recording = "full" | "failures";

/** Sets a topic's recording straight in D1, until the API to create such a topic lands. */
async function setRecording(topic: string, recording: Recording): Promise<void> {
  await env.DB.prepare("update topics set recording = ? where name = ?")
    .bind(recording, topic)
    .run();
}

/** A topic that records failures only, with `subscribers` subscribers (none by default). */
async function leanTopic(subscribers = 0): Promise<string> {
  const { name } = await seedTopic();
  await setRecording(name, "failures");
  if (subscribers > 0) await insertSubscribers(name, subscribers);
  return name;
}

/** Publishes through `path` under the topic, with recording queues and inline fan-out as asked. */
async function publishTo(
  topic: string,
  request: Omit<CallOptions, "env">,
  options: {
    path?: "" | "/batch" | "/raw";
    inline?: boolean;
    fanout?: RecordingQueue;
    deliveries?: RecordingQueue;
    db?: D1Database;
  } = {},
) {
  const fanout = options.fanout ?? recordingQueue();
  const deliveries = options.deliveries ?? recordingQueue();
  const res = await call("POST", `/v1/topics/${topic}/messages${options.path ?? ""}`, {
    ...request,
    env: {
      DB: options.db ?? env.DB,
      FANOUT_QUEUE: fanout.queue,
      DELIVERY_QUEUE: deliveries.queue,
      INLINE_FANOUT_MAX_SUBSCRIBERS: options.inline ? "10" : "0",
    },
  });
  return { res, fanout, deliveries };
}

/** Publishes one envelope (with a key when given) through the fan-out queue; expects 202. */
async function publishOne(topic: string, envelope: Record<string, unknown>, key?: string) {
  const sent = await publishTo(topic, {
    json: envelope,
    headers: key === undefined ? {} : { "idempotency-key": key },
  });
  const result = await expectJson(sent.res, 202, PublishResult);
  return { ...sent, result, id: result.id };
}

/** The fan-out tasks a queue was sent. */
function fanoutTasks(queue: RecordingQueue): FanoutTask[] {
  return queue.bodies().map((body) => FanoutTaskSchema.parse(body));
}

/** Fans the tasks out and delivers what that queued with `fetch`, as one batch of bundles. */
async function fanOutAndDeliver(
  tasks: readonly unknown[],
  fetch: typeof globalThis.fetch,
  options: Parameters<typeof deliver>[2] = {},
  fanoutAttempts = 1,
) {
  const fanned = await fanOut(tasks, env.DB, fanoutAttempts);
  const delivered = await deliver(fanned.deliveries.bodies(), fetch, options);
  return { fanout: fanned, ...delivered };
}

interface Counts {
  minute: number;
  delivered: number;
  retried: number;
  dead: number;
}

/** The topic's `topic_counts` rows, oldest first. */
async function countsOf(topic: string): Promise<Counts[]> {
  const { results } = await env.DB.prepare(
    "select minute, delivered, retried, dead from topic_counts where topic = ? order by minute",
  )
    .bind(topic)
    .all<Counts>();
  return results;
}

/** The topic's counts summed over its minutes. */
async function totalsOf(topic: string): Promise<Omit<Counts, "minute">> {
  const rows = await countsOf(topic);
  return {
    delivered: rows.reduce((sum, row) => sum + row.delivered, 0),
    retried: rows.reduce((sum, row) => sum + row.retried, 0),
    dead: rows.reduce((sum, row) => sum + row.dead, 0),
  };
}

interface Claim {
  day: number;
  topic: string;
  key: string;
  messageId: string;
  payloadHash: string;
  createdAt: number;
}

/** The topic's idempotency claims, by key. */
async function claimsOf(topic: string): Promise<Claim[]> {
  const { results } = await env.DB.prepare(
    `select day, topic, key, message_id as messageId, payload_hash as payloadHash,
      created_at as createdAt
    from idempotency_claims where topic = ? order by key, day`,
  )
    .bind(topic)
    .all<Claim>();
  return results;
}

/** Asserts that GET /v1/messages/{id} answers 404 not_found because the message left no record. */
async function expectNoRecord(id: string): Promise<void> {
  const problem = await expectProblem(await call("GET", `/v1/messages/${id}`), 404, "not_found");
  expect(problem.detail).toContain(id);
  expect(problem.detail).toMatch(/left no record/);
}

/** Each request a fetch stub saw as [webhook-id, body], the large body named rather than shown. */
function seen(fetch: ReturnType<typeof stubFetch>): [string | undefined, string | null][] {
  return fetch.requests.map((request) => [
    request.headers["webhook-id"],
    request.body === LARGE_TEXT ? "<LARGE_TEXT>" : request.body,
  ]);
}

/** The webhook-id of each request a fetch stub saw, in order. */
function webhookIds(fetch: ReturnType<typeof stubFetch>): (string | undefined)[] {
  return fetch.requests.map((request) => request.headers["webhook-id"]);
}

async function deadLettersOf(topic: string) {
  const res = await call("GET", `/v1/dead-letters?topic=${topic}`);
  return (await expectJson(res, 200, DeadLetterList)).deadLetters;
}

/**
 * A fan-out queue whose first send waits until the test lets it fail, so that a second publish can
 * run while the first is between its D1 batch and its send.
 */
function stallingQueue() {
  let started: () => void = () => undefined;
  const sending = new Promise<void>((resolve) => {
    started = resolve;
  });
  let fail: (error: Error) => void = () => undefined;
  const outcome = new Promise<void>((_, reject) => {
    fail = reject;
  });
  const stall = async (): Promise<QueueSendResponse> => {
    started();
    await outcome;
    return { metadata: { metrics: { backlogCount: 0, backlogBytes: 0 } } };
  };
  const queue: Queue<unknown> = { ...recordingQueue().queue, send: stall, sendBatch: stall };
  return { queue, sending, fail };
}

/**
 * Runs `work` with the clock set `ms` back: rows made there carry that time. Only `Date` is faked;
 * timers and I/O run as usual.
 */
async function ago<T>(ms: number, work: () => Promise<T>): Promise<T> {
  vi.useFakeTimers({ toFake: ["Date"] });
  vi.setSystemTime(Date.now() - ms);
  try {
    return await work();
  } finally {
    vi.useRealTimers();
  }
}

// ---------------------------------------------------------------------------------------------
// Publishing

describe("publishing to a topic that records failures only", () => {
  it("through the fan-out queue: 202, no message row, and an unrecorded task carrying the content", async () => {
    const topic = await leanTopic(1);
    const { res, fanout } = await publishTo(topic, { json: { body: { n: 1 } } });
    const { id } = await expectJson(res, 202, PublishResult);
    expect(await rowsOf("messages", topic)).toEqual([]);
    const [task] = fanoutTasks(fanout);
    expect(task).toMatchObject({ messageId: id, topic, unrecorded: true });
    expect(task?.content?.body).toEqual({
      kind: "json",
      value: { n: 1 },
      contentType: expect.any(String),
    });

    const fetch = answering(200);
    await fanOutAndDeliver(fanout.bodies(), fetch.fetch);
    expect(webhookIds(fetch)).toEqual([id]);
    expect(fetch.requests[0]?.body).toBe(JSON.stringify({ n: 1 }));
    expect(await rowsOf("messages", topic)).toEqual([]);
    expect(await deliveryRowsOf(id)).toEqual([]);
  });

  it("a batch through the fan-out queue: one unrecorded task per message, no rows", async () => {
    const topic = await leanTopic(2);
    const { res, fanout } = await publishTo(
      topic,
      { json: { messages: [{ body: 1 }, { body: 2 }, { bodyText: "three" }] } },
      { path: "/batch" },
    );
    const { messages } = await expectJson(res, 202, PublishBatchResult);
    expect(messages.map((m) => m.duplicate)).toEqual([false, false, false]);
    expect(fanout.calls).toHaveLength(1);
    const tasks = fanoutTasks(fanout);
    expect(tasks.map((task) => task.messageId)).toEqual(messages.map((m) => m.id));
    expect(tasks.every((task) => task.unrecorded === true && task.content !== null)).toBe(true);
    expect(await rowsOf("messages", topic)).toEqual([]);

    const fetch = answering(200);
    await fanOutAndDeliver(fanout.bodies(), fetch.fetch);
    expect(fetch.requests).toHaveLength(6);
    expect(new Set(webhookIds(fetch))).toEqual(new Set(messages.map((m) => m.id)));
    expect(await rowsOf("messages", topic)).toEqual([]);
    expect(await totalsOf(topic)).toEqual({ delivered: 6, retried: 0, dead: 0 });
  });

  it("a raw publish: no message row, delivered byte for byte", async () => {
    const topic = await leanTopic(1);
    const { res, fanout } = await publishTo(
      topic,
      { body: "raw bytes", contentType: "text/plain" },
      { path: "/raw" },
    );
    const { id } = await expectJson(res, 202, PublishResult);
    expect(await rowsOf("messages", topic)).toEqual([]);
    const fetch = answering(200);
    await fanOutAndDeliver(fanout.bodies(), fetch.fetch);
    expect(seen(fetch)).toEqual([[id, "raw bytes"]]);
  });

  it("inline: 202, its bundles queued at publish, no fan-out task and no message row", async () => {
    const topic = await leanTopic(2);
    const { res, fanout, deliveries } = await publishTo(
      topic,
      { json: { body: { n: 1 } } },
      { inline: true },
    );
    const { id } = await expectJson(res, 202, PublishResult);
    expect(fanout.calls).toEqual([]);
    expect(deliveries.calls).toHaveLength(1);
    expect(await rowsOf("messages", topic)).toEqual([]);

    const fetch = answering(200);
    await deliver(deliveries.bodies(), fetch.fetch);
    expect(webhookIds(fetch)).toEqual([id, id]);
    expect(await rowsOf("messages", topic)).toEqual([]);
    expect(await deliveryRowsOf(id)).toEqual([]);
    expect(await totalsOf(topic)).toEqual({ delivered: 2, retried: 0, dead: 0 });
    await expectNoRecord(id);
  });

  it("inline, a batch: one bundle of its messages, no rows", async () => {
    const topic = await leanTopic(1);
    const { res, fanout, deliveries } = await publishTo(
      topic,
      { json: { messages: [{ body: 1 }, { body: 2 }, { body: 3 }] } },
      { path: "/batch", inline: true },
    );
    const { messages } = await expectJson(res, 202, PublishBatchResult);
    expect(fanout.calls).toEqual([]);
    expect(deliveries.bodies()).toHaveLength(1);
    expect(await rowsOf("messages", topic)).toEqual([]);

    const fetch = answering(200);
    await deliver(deliveries.bodies(), fetch.fetch);
    expect(webhookIds(fetch).sort()).toEqual(messages.map((m) => m.id).sort());
    expect(await rowsOf("messages", topic)).toEqual([]);
    expect(await totalsOf(topic)).toEqual({ delivered: 3, retried: 0, dead: 0 });
  });

  it("inline on, but a subscriber has a filter: through the fan-out queue, still no row", async () => {
    const topic = await leanTopic();
    await seedSubscriber(topic, { filter: "body.n >= 0" });
    const { res, fanout, deliveries } = await publishTo(
      topic,
      { json: { body: { n: 1 } } },
      { inline: true },
    );
    await expectJson(res, 202, PublishResult);
    expect(deliveries.calls).toEqual([]);
    expect(fanoutTasks(fanout)).toMatchObject([{ unrecorded: true }]);
    expect(await rowsOf("messages", topic)).toEqual([]);
  });

  it.each([false, true])(
    "a message too large to travel gets a row with its payload, and is delivered (inline on: %s)",
    async (inline) => {
      const topic = await leanTopic(1);
      const { res, fanout, deliveries } = await publishTo(
        topic,
        { json: { bodyText: LARGE_TEXT, contentType: "text/plain" } },
        { inline },
      );
      const { id } = await expectJson(res, 202, PublishResult);
      expect(deliveries.calls).toEqual([]);
      const rows = await rowsOf("messages", topic);
      expect(rows).toHaveLength(1);
      expect(rows[0]).toMatchObject({ id, idempotency_key: null });
      expect(String(rows[0]?.payload).includes(LARGE_TEXT)).toBe(true);
      const [task] = fanoutTasks(fanout);
      expect(task).toMatchObject({ messageId: id, content: null, unrecorded: true });

      const fetch = answering(200);
      const {
        fanout: { tasks },
      } = await fanOutAndDeliver(fanout.bodies(), fetch.fetch);
      expect(tasks.map((t) => t.content)).toEqual([null]);
      expect(seen(fetch)).toEqual([[id, "<LARGE_TEXT>"]]);
      expect(await deliveryRowsOf(id)).toEqual([]);
      expect(await totalsOf(topic)).toEqual({ delivered: 1, retried: 0, dead: 0 });
      // Its row holds its content alone: nothing of its fan-out or its delivery is recorded.
      expect(await messageStatus(id)).toMatchObject({ id, topic, deliveries: [] });
    },
  );

  it("a delayed message goes through the fan-out queue with its delay, inline on or not", async () => {
    const topic = await leanTopic(1);
    for (const inline of [false, true]) {
      const { res, fanout, deliveries } = await publishTo(
        topic,
        { json: { body: 1, delaySeconds: 30 } },
        { inline },
      );
      const { id } = await expectJson(res, 202, PublishResult);
      expect(deliveries.calls).toEqual([]);
      expect(fanout.sent()).toEqual([
        { body: expect.objectContaining({ messageId: id, unrecorded: true }), delaySeconds: 30 },
      ]);
    }
    expect(await rowsOf("messages", topic)).toEqual([]);
  });

  it("inline on: a batch with a delayed or a large message sends all of it through the fan-out queue", async () => {
    const topic = await leanTopic(1);
    for (const odd of [{ body: 2, delaySeconds: 5 }, { bodyText: LARGE_TEXT }]) {
      const { res, fanout, deliveries } = await publishTo(
        topic,
        { json: { messages: [{ body: 1 }, odd, { body: 3 }] } },
        { path: "/batch", inline: true },
      );
      const { messages } = await expectJson(res, 202, PublishBatchResult);
      expect(deliveries.calls).toEqual([]);
      expect(fanoutTasks(fanout).map((task) => task.messageId)).toEqual(messages.map((m) => m.id));
      const fetch = answering(200);
      await fanOutAndDeliver(fanout.bodies(), fetch.fetch);
      expect(webhookIds(fetch).sort()).toEqual(messages.map((m) => m.id).sort());
    }
    // Only the large message has a row.
    expect(await rowsOf("messages", topic)).toHaveLength(1);
  });
});

// ---------------------------------------------------------------------------------------------
// Delivery

describe("delivering on a topic that records failures only", () => {
  it("a first attempt answered 200 writes no row, counts 1 delivered, and GET answers 404", async () => {
    const topic = await leanTopic(1);
    const { id, fanout } = await publishOne(topic, { body: { n: 1 } });
    const fetch = answering(200);
    const { batch } = await fanOutAndDeliver(fanout.bodies(), fetch.fetch);
    expect(batch.messages.map((message) => message.outcome())).toEqual([{ kind: "ack" }]);
    expect(webhookIds(fetch)).toEqual([id]);
    expect(await rowsOf("messages", topic)).toEqual([]);
    expect(await deliveryRowsOf(id)).toEqual([]);

    const counts = await countsOf(topic);
    expect(counts).toHaveLength(1);
    expect(counts[0]).toMatchObject({ delivered: 1, retried: 0, dead: 0 });
    const minute = counts[0]?.minute ?? 0;
    expect(minute % 60_000).toBe(0);
    expect(Date.now() - minute).toBeLessThan(2 * 60_000);
    await expectNoRecord(id);
  });

  it("answers the publish token's GET of such a message with the same 404", async () => {
    const topic = await leanTopic(1);
    const { id, fanout } = await publishOne(topic, { body: 1 });
    await fanOutAndDeliver(fanout.bodies(), answering(200).fetch);
    const res = await call("GET", `/v1/messages/${id}`, { as: "publisher" });
    const problem = await expectProblem(res, 404, "not_found");
    expect(problem.detail).toMatch(/left no record/);
  });

  it("a failed first attempt gets a retrying row and counts 1 retried; GET shows it, then delivered", async () => {
    const topic = await leanTopic();
    const subscriber = await seedSubscriber(topic, {
      retry: { maxAttempts: 5, baseDelaySeconds: 1 },
    });
    const { id, fanout } = await publishOne(topic, { body: { n: 1 } });
    const first = await fanOutAndDeliver(fanout.bodies(), answering(503).fetch);
    expect(await rowsOf("messages", topic)).toEqual([]);
    expect(await deliveryRowsOf(id)).toMatchObject([
      { subscriber_id: subscriber.id, state: "retrying", attempts: 1, last_status: 503 },
    ]);
    expect(await totalsOf(topic)).toEqual({ delivered: 0, retried: 1, dead: 0 });

    const retrying = await messageStatus(id);
    expect(retrying).toMatchObject({
      id,
      topic,
      state: "dispatched",
      matched: null,
      filtered: null,
      deliveries: [
        { subscriberId: subscriber.id, state: "retrying", attempts: 1, lastStatus: 503 },
      ],
    });
    expect(retrying.deliveries[0]?.nextAttemptAt).not.toBeNull();
    expect(Math.abs(Date.parse(retrying.publishedAt) - Date.now())).toBeLessThan(60_000);

    // The bundle's delivery went back on the queue on its own, at attempt 2.
    const requeued = first.deliveryQueue.bodies();
    expect(requeued).toHaveLength(1);
    const fetch = answering(200);
    await deliver(requeued, fetch.fetch);
    expect(fetch.requests.map((r) => r.headers["switchboard-attempt"])).toEqual(["2"]);
    expect(await messageStatus(id)).toMatchObject({
      topic,
      deliveries: [
        { subscriberId: subscriber.id, state: "delivered", attempts: 2, lastStatus: 200 },
      ],
    });
    expect(await totalsOf(topic)).toEqual({ delivered: 1, retried: 1, dead: 0 });
    expect(await rowsOf("messages", topic)).toEqual([]);
  });

  it("a failed attempt of one subscriber leaves the other's delivered first attempt unrecorded", async () => {
    const topic = await leanTopic();
    const ok = await seedSubscriber(topic, { url: "https://ok.example.com/" });
    const failing = await seedSubscriber(topic, { url: "https://failing.example.com/" });
    const { id, fanout } = await publishOne(topic, { body: 1 });
    const fetch = stubFetch(
      (request) =>
        new Response(null, { status: new URL(request.url).host === "ok.example.com" ? 200 : 500 }),
    );
    await fanOutAndDeliver(fanout.bodies(), fetch.fetch);
    const status = await messageStatus(id);
    expect(status.deliveries.map((d) => [d.subscriberId, d.state])).toEqual([
      [failing.id, "retrying"],
    ]);
    expect(status.deliveries.some((d) => d.subscriberId === ok.id)).toBe(false);
    expect(await totalsOf(topic)).toEqual({ delivered: 1, retried: 1, dead: 0 });
  });

  it("a dead delivery: a dead letter listed by topic, 1 dead; replaying it delivers", async () => {
    const topic = await leanTopic();
    const subscriber = await seedSubscriber(topic, { retry: { maxAttempts: 1 } });
    const { id, fanout } = await publishOne(topic, { body: { n: 7 } });
    await fanOutAndDeliver(fanout.bodies(), answering(500).fetch);
    expect(await totalsOf(topic)).toEqual({ delivered: 0, retried: 0, dead: 1 });
    const [deadLetter, ...others] = await deadLettersOf(topic);
    expect(others).toEqual([]);
    expect(deadLetter).toMatchObject({
      messageId: id,
      topic,
      subscriberId: subscriber.id,
      attempts: 1,
      lastStatus: 500,
    });
    expect(await messageStatus(id)).toMatchObject({
      topic,
      state: "dispatched",
      deliveries: [{ subscriberId: subscriber.id, state: "dead", attempts: 1 }],
    });

    const queue = recordingQueue();
    const res = await call("POST", `/v1/dead-letters/${deadLetter?.id}/replay`, {
      env: { DELIVERY_QUEUE: queue.queue },
    });
    expect(await expectJson(res, 202, Replayed)).toEqual({ replayed: 1 });
    const fetch = answering(200);
    await deliver(queue.bodies(), fetch.fetch);
    expect(seen(fetch)).toEqual([[id, JSON.stringify({ n: 7 })]]);
    expect(await messageStatus(id)).toMatchObject({
      deliveries: [
        { subscriberId: subscriber.id, state: "delivered", attempts: 1, lastStatus: 200 },
      ],
    });
    expect(await deadLettersOf(topic)).toEqual([]);
    expect(await totalsOf(topic)).toEqual({ delivered: 1, retried: 0, dead: 1 });
    expect(await rowsOf("messages", topic)).toEqual([]);
  });

  it("a large message's dead letter keeps its content, and its replay delivers it", async () => {
    const topic = await leanTopic();
    await seedSubscriber(topic, { retry: { maxAttempts: 1 } });
    const { id, fanout } = await publishOne(topic, { bodyText: LARGE_TEXT });
    await fanOutAndDeliver(fanout.bodies(), answering(500).fetch);
    const [deadLetter] = await deadLettersOf(topic);
    expect(deadLetter?.messageId).toBe(id);
    const queue = recordingQueue();
    const res = await call("POST", "/v1/dead-letters/replay", {
      json: { topic },
      env: { DELIVERY_QUEUE: queue.queue },
    });
    expect(await expectJson(res, 202, Replayed)).toEqual({ replayed: 1 });
    const fetch = answering(200);
    await deliver(queue.bodies(), fetch.fetch);
    expect(seen(fetch).map(([, body]) => body)).toEqual(["<LARGE_TEXT>"]);
  });

  it("a 410 kills the delivery and deactivates the subscriber, as on any topic", async () => {
    const topic = await leanTopic();
    const subscriber = await seedSubscriber(topic);
    const { id, fanout } = await publishOne(topic, { body: 1 });
    await fanOutAndDeliver(fanout.bodies(), answering(410).fetch);
    expect(await totalsOf(topic)).toEqual({ delivered: 0, retried: 0, dead: 1 });
    expect(await deadLettersOf(topic)).toMatchObject([{ messageId: id, lastStatus: 410 }]);
    const res = await call("GET", `/v1/subscribers/${subscriber.id}`);
    expect(await res.json()).toMatchObject({ active: false });
  });

  it("a delivery cancelled because its subscriber was deactivated gets a row, and no count", async () => {
    const topic = await leanTopic();
    const subscriber = await seedSubscriber(topic);
    const { id, fanout } = await publishOne(topic, { body: 1 });
    const { deliveries } = await fanOut(fanout.bodies());
    const patched = await call("PATCH", `/v1/subscribers/${subscriber.id}`, {
      json: { active: false },
    });
    expect(patched.status).toBe(200);
    const fetch = answering(200);
    await deliver(deliveries.bodies(), fetch.fetch);
    expect(fetch.requests).toEqual([]);
    expect(await deliveryRowsOf(id)).toMatchObject([{ state: "cancelled" }]);
    expect(await totalsOf(topic)).toEqual({ delivered: 0, retried: 0, dead: 0 });
    expect(await messageStatus(id)).toMatchObject({ deliveries: [{ state: "cancelled" }] });
  });

  it("GET still answers a recorded retry after its subscriber was deleted (as cancelled)", async () => {
    const topic = await leanTopic();
    const subscriber = await seedSubscriber(topic, { retry: { maxAttempts: 5 } });
    const { id, fanout } = await publishOne(topic, { body: 1 });
    await fanOutAndDeliver(fanout.bodies(), answering(503).fetch);
    expect(await deliveryRowsOf(id)).toHaveLength(1);
    expect((await call("DELETE", `/v1/subscribers/${subscriber.id}`)).status).toBe(204);
    // The delivery row is still there: what was recorded is still answered, as on a topic that
    // records everything, where the message's row says which topic it was.
    expect(await deliveryRowsOf(id)).toHaveLength(1);
    expect(await messageStatus(id)).toMatchObject({
      topic,
      deliveries: [{ subscriberId: subscriber.id, state: "cancelled" }],
    });
  });

  it("counts a delivered first attempt whose outcome the dead-letter queue had to record", async () => {
    const topic = await leanTopic(1);
    const { id, fanout } = await publishOne(topic, { body: 1 });
    const { deliveries } = await fanOut(fanout.bodies());
    const failingWrites = countingD1(env.DB, isWrite);
    const fetch = answering(200);
    const { batch, deadLetterQueue } = await deliver(deliveries.bodies(), fetch.fetch, {
      db: failingWrites.db,
    });
    expect(webhookIds(fetch)).toEqual([id]);
    expect(batch.messages[0]?.outcome()).toEqual({ kind: "ack" });
    expect(deadLetterQueue.bodies()).toHaveLength(1);
    const consumed = await consumeDeadLetters(deadLetterQueue.bodies());
    expect(consumed.batch.messages[0]?.outcome()).toEqual({ kind: "ack" });
    // The delivery happened: the topic's counts must say so, as they would had the write worked.
    expect(await totalsOf(topic)).toEqual({ delivered: 1, retried: 0, dead: 0 });
  });

  it("records a delivery that needed a retry even when the failed attempt could not be written", async () => {
    const topic = await leanTopic();
    const subscriber = await seedSubscriber(topic, { retry: { maxAttempts: 5 } });
    const { id, fanout } = await publishOne(topic, { body: 1 });
    const { deliveries } = await fanOut(fanout.bodies());
    const failingWrites = countingD1(env.DB, isWrite);
    const first = await deliver(deliveries.bodies(), answering(503).fetch, {
      db: failingWrites.db,
    });
    const requeued = first.deliveryQueue.bodies();
    expect(requeued).toMatchObject([{ messageId: id, attempt: 2 }]);
    const fetch = answering(200);
    await deliver(requeued, fetch.fetch);
    expect(fetch.requests.map((r) => r.headers["switchboard-attempt"])).toEqual(["2"]);
    // It needed a retry: that is what a topic that records failures keeps.
    expect(await messageStatus(id)).toMatchObject({
      deliveries: [{ subscriberId: subscriber.id, state: "delivered", attempts: 2 }],
    });
  });

  it("counts a dead delivery whose outcome the dead-letter queue had to record", async () => {
    const topic = await leanTopic();
    await seedSubscriber(topic, { retry: { maxAttempts: 1 } });
    const { id, fanout } = await publishOne(topic, { body: 1 });
    const { deliveries } = await fanOut(fanout.bodies());
    const failingWrites = countingD1(env.DB, isWrite);
    const { deadLetterQueue } = await deliver(deliveries.bodies(), answering(500).fetch, {
      db: failingWrites.db,
    });
    await consumeDeadLetters(deadLetterQueue.bodies());
    expect(await deadLettersOf(topic)).toMatchObject([{ messageId: id }]);
    expect(await totalsOf(topic)).toEqual({ delivered: 0, retried: 0, dead: 1 });
  });
});

// ---------------------------------------------------------------------------------------------
// Counts and rows written

describe("the counts of a topic that records failures only", () => {
  it("one row per topic per minute for a consumer batch, with the batch's outcomes summed", async () => {
    const a = await leanTopic();
    const b = await leanTopic();
    const full = await seedTopic();
    const hostOf: Record<string, number> = {
      "ok.example.com": 200,
      "retry.example.com": 503,
      "dead.example.com": 500,
    };
    const seed = (topic: string, host: string) =>
      seedSubscriber(topic, { url: `https://${host}/`, retry: { maxAttempts: 2 } });
    await seed(a, "ok.example.com");
    await seed(a, "ok.example.com");
    await seed(a, "retry.example.com");
    await seed(b, "ok.example.com");
    await seed(full.name, "ok.example.com");
    const deadOnB = await seedSubscriber(b, {
      url: "https://dead.example.com/",
      retry: { maxAttempts: 1 },
    });

    const tasks: unknown[] = [];
    for (const topic of [a, a, b, full.name]) {
      tasks.push(...(await publishOne(topic, { body: 1 })).fanout.bodies());
    }
    const { deliveries } = await fanOut(tasks);
    const fetch = stubFetch(
      (request) => new Response(null, { status: hostOf[new URL(request.url).host] ?? 200 }),
    );
    await deliver(deliveries.bodies(), fetch.fetch);
    expect(fetch.requests).toHaveLength(6 + 2 + 1);

    const [countsA, countsB] = [await countsOf(a), await countsOf(b)];
    expect(countsA).toHaveLength(1);
    expect(countsA[0]).toMatchObject({ delivered: 4, retried: 2, dead: 0 });
    expect(countsB).toHaveLength(1);
    expect(countsB[0]).toMatchObject({ delivered: 1, retried: 0, dead: 1 });
    expect(await countsOf(full.name)).toEqual([]);
    expect(await deadLettersOf(b)).toMatchObject([{ subscriberId: deadOnB.id }]);
  });

  it("adds a later batch of the same minute to the same row", async () => {
    const topic = await leanTopic(1);
    const first = await publishOne(topic, { body: 1 });
    const second = await publishOne(topic, { body: 2 });
    const minute = Date.now() - (Date.now() % 60_000);
    // Far enough from the minute's end for both batches to land in it.
    if (Date.now() - minute > 55_000) await new Promise((resolve) => setTimeout(resolve, 6_000));
    await fanOutAndDeliver(first.fanout.bodies(), answering(200).fetch);
    await fanOutAndDeliver(second.fanout.bodies(), answering(200).fetch);
    const counts = await countsOf(topic);
    expect(counts).toHaveLength(1);
    expect(counts[0]).toMatchObject({ delivered: 2 });
  });

  it("a batch of delivered first attempts writes exactly one row, new or added to", async () => {
    const topic = await leanTopic(3);
    const tasks: unknown[] = [];
    for (let n = 0; n < 5; n++)
      tasks.push(...(await publishOne(topic, { body: n })).fanout.bodies());
    const { deliveries } = await fanOut(tasks);
    const bundles = deliveries.bodies();
    expect(bundles).toHaveLength(5);
    const meter = meteredD1();
    const fetch = answering(200);
    await deliver(bundles.slice(0, 3), fetch.fetch, { db: meter.db });
    expect(fetch.requests).toHaveLength(9);
    expect(meter.take()).toBe(1);
    await deliver(bundles.slice(3), fetch.fetch, { db: meter.db });
    expect(meter.take()).toBe(1);
    expect(await totalsOf(topic)).toEqual({ delivered: 15, retried: 0, dead: 0 });
  });

  it("a batch of delivered first attempts on two such topics writes one row per topic", async () => {
    const a = await leanTopic(2);
    const b = await leanTopic(2);
    const tasks = [
      ...(await publishOne(a, { body: 1 })).fanout.bodies(),
      ...(await publishOne(b, { body: 1 })).fanout.bodies(),
    ];
    const { deliveries } = await fanOut(tasks);
    const meter = meteredD1();
    await deliver(deliveries.bodies(), answering(200).fetch, { db: meter.db });
    expect(meter.take()).toBe(2);
  });

  it("rows written by a publish: none without a key, the claim with one, the row of a large one", async () => {
    const topic = await leanTopic(1);
    const meter = meteredD1();
    const plain = await publishTo(topic, { json: { body: 1 } }, { db: meter.db });
    expect(plain.res.status).toBe(202);
    expect(meter.take()).toBe(0);
    const keyed = await publishTo(
      topic,
      { json: { body: 2 }, headers: { "idempotency-key": "rows-1" } },
      { db: meter.db },
    );
    expect(keyed.res.status).toBe(202);
    expect(meter.take()).toBe(1);
    const inline = await publishTo(topic, { json: { body: 3 } }, { db: meter.db, inline: true });
    expect(inline.deliveries.calls).toHaveLength(1);
    expect(meter.take()).toBe(0);
    const large = await publishTo(topic, { json: { bodyText: LARGE_TEXT } }, { db: meter.db });
    expect(large.res.status).toBe(202);
    // Its row and the stored content's update (docs/storage.md).
    expect(meter.take()).toBe(2);
  });

  it("rows written by a failed first attempt: its row and the count", async () => {
    const topic = await leanTopic(1);
    const { fanout } = await publishOne(topic, { body: 1 });
    const { deliveries } = await fanOut(fanout.bodies());
    const meter = meteredD1();
    await deliver(deliveries.bodies(), answering(503).fetch, { db: meter.db });
    expect(meter.take()).toBe(2);
  });
});

// ---------------------------------------------------------------------------------------------
// Idempotency keys

describe("idempotency keys on a topic that records failures only", () => {
  it("claims the key in idempotency_claims, not on a message row", async () => {
    const topic = await leanTopic(1);
    const { id } = await publishOne(topic, { body: 1 }, "order-1");
    expect(await rowsOf("messages", topic)).toEqual([]);
    const claims = await claimsOf(topic);
    expect(claims).toMatchObject([
      { day: Math.floor(Date.now() / CLAIM_DAY_MS), topic, key: "order-1", messageId: id },
    ]);
    expect(claims[0]?.payloadHash).toMatch(/\S/);
  });

  it("answers a repeat with the first id, duplicate true, and queues the first message again", async () => {
    const topic = await leanTopic(1);
    const first = await publishOne(topic, { body: { a: 1 } }, "order-1");
    const again = await publishTo(topic, {
      json: { body: { a: 1 } },
      headers: { "idempotency-key": "order-1" },
      as: "publisher",
    });
    expect(await expectJson(again.res, 202, PublishResult)).toEqual({
      id: first.id,
      topic,
      duplicate: true,
    });
    const [resent] = fanoutTasks(again.fanout);
    expect(resent).toMatchObject({ messageId: first.id, topic, unrecorded: true });
    expect(resent?.content).toEqual(fanoutTasks(first.fanout)[0]?.content);
    expect(again.fanout.sent()[0]?.delaySeconds).toBe(0);
    expect(await rowsOf("messages", topic)).toEqual([]);
    expect(await claimsOf(topic)).toMatchObject([{ key: "order-1", messageId: first.id }]);

    // Nothing says whether the first went out: in separate batches, each task delivers it, under
    // one webhook-id; in one batch, once.
    const fetch = answering(200);
    await fanOutAndDeliver(first.fanout.bodies(), fetch.fetch);
    await fanOutAndDeliver(again.fanout.bodies(), fetch.fetch);
    expect(webhookIds(fetch)).toEqual([first.id, first.id]);
    const together = answering(200);
    await fanOutAndDeliver([...first.fanout.bodies(), ...again.fanout.bodies()], together.fetch);
    expect(webhookIds(together)).toEqual([first.id]);
  });

  it("queues a delayed first message again with what is left of its delay", async () => {
    const topic = await leanTopic(1);
    const envelope = { body: 1, delaySeconds: 60 };
    const first = await publishOne(topic, envelope, "k");
    const again = await publishTo(topic, { json: envelope, headers: { "idempotency-key": "k" } });
    expect(await expectJson(again.res, 202, PublishResult)).toMatchObject({
      id: first.id,
      duplicate: true,
    });
    const [resent] = again.fanout.sent();
    expect(FanoutTaskSchema.parse(resent?.body)).toMatchObject({ messageId: first.id });
    expect(resent?.delaySeconds).toBeGreaterThan(55);
    expect(resent?.delaySeconds).toBeLessThanOrEqual(60);
  });

  it("queues a large first message again by reference to its row, and delivers it", async () => {
    const topic = await leanTopic(1);
    const envelope = { bodyText: LARGE_TEXT };
    const first = await publishOne(topic, envelope, "big");
    expect(await rowsOf("messages", topic)).toHaveLength(1);
    const again = await publishTo(topic, { json: envelope, headers: { "idempotency-key": "big" } });
    expect(await expectJson(again.res, 202, PublishResult)).toMatchObject({
      id: first.id,
      duplicate: true,
    });
    expect(fanoutTasks(again.fanout)).toMatchObject([
      { messageId: first.id, content: null, unrecorded: true },
    ]);
    expect(await rowsOf("messages", topic)).toHaveLength(1);
    const fetch = answering(200);
    await fanOutAndDeliver(again.fanout.bodies(), fetch.fetch);
    expect(seen(fetch)).toEqual([[first.id, "<LARGE_TEXT>"]]);
  });

  it("inline on: a batch's fresh messages go inline, a repeat's first message through the fan-out queue", async () => {
    const topic = await leanTopic(1);
    const first = await publishOne(topic, { body: 1 }, "a");
    const { res, fanout, deliveries } = await publishTo(
      topic,
      { json: { messages: [{ body: 1, idempotencyKey: "a" }, { body: 2 }] } },
      { path: "/batch", inline: true },
    );
    const { messages } = await expectJson(res, 202, PublishBatchResult);
    expect(messages[0]).toEqual({ id: first.id, duplicate: true });
    expect(fanoutTasks(fanout)).toMatchObject([{ messageId: first.id, unrecorded: true }]);
    const fetch = answering(200);
    await deliver(deliveries.bodies(), fetch.fetch);
    expect(webhookIds(fetch)).toEqual([messages[1]?.id]);
    await fanOutAndDeliver(fanout.bodies(), fetch.fetch);
    expect(webhookIds(fetch)).toEqual([messages[1]?.id, first.id]);
    expect(await rowsOf("messages", topic)).toEqual([]);
  });

  it("refuses a repeat with a different payload with 409, queuing and claiming nothing", async () => {
    const topic = await leanTopic(1);
    const first = await publishOne(topic, { body: { a: 1 } }, "order-1");
    const claims = await claimsOf(topic);
    const other = await publishTo(topic, {
      json: { body: { a: 2 } },
      headers: { "idempotency-key": "order-1" },
    });
    await expectProblem(other.res, 409, "conflict");
    expect(other.fanout.calls).toEqual([]);
    expect(await claimsOf(topic)).toEqual(claims);
    expect(claims[0]?.messageId).toBe(first.id);
    expect(await rowsOf("messages", topic)).toEqual([]);
  });

  it("shares keys between /messages and /raw", async () => {
    const topic = await leanTopic(1);
    const raw = () =>
      publishTo(
        topic,
        { body: "hello", contentType: "text/plain", headers: { "idempotency-key": "shared" } },
        { path: "/raw" },
      );
    const first = await raw();
    const { id } = await expectJson(first.res, 202, PublishResult);
    expect(await expectJson((await raw()).res, 202, PublishResult)).toMatchObject({
      id,
      duplicate: true,
    });
    const clash = await publishTo(topic, {
      json: { body: "hello" },
      headers: { "idempotency-key": "shared" },
    });
    await expectProblem(clash.res, 409, "conflict");
  });

  it("a batch with per-envelope keys: a claim per key, repeats answered as duplicates", async () => {
    const topic = await leanTopic(1);
    const { res, fanout } = await publishTo(
      topic,
      {
        json: {
          messages: [
            { body: 1, idempotencyKey: "a" },
            { body: 2, idempotencyKey: "b" },
            { body: 3 },
            { body: 1, idempotencyKey: "a" },
          ],
        },
      },
      { path: "/batch" },
    );
    const { messages } = await expectJson(res, 202, PublishBatchResult);
    const [a, b, plain, repeat] = messages;
    expect(messages.map((m) => m.duplicate)).toEqual([false, false, false, true]);
    expect(repeat?.id).toBe(a?.id);
    expect(fanoutTasks(fanout).map((task) => task.messageId)).toEqual([a?.id, b?.id, plain?.id]);
    expect((await claimsOf(topic)).map((c) => [c.key, c.messageId])).toEqual([
      ["a", a?.id],
      ["b", b?.id],
    ]);
    expect(await rowsOf("messages", topic)).toEqual([]);

    const later = await publishTo(
      topic,
      {
        json: {
          messages: [
            { body: 2, idempotencyKey: "b" },
            { body: 4, idempotencyKey: "c" },
          ],
        },
      },
      { path: "/batch" },
    );
    const again = await expectJson(later.res, 202, PublishBatchResult);
    expect(again.messages[0]).toEqual({ id: b?.id, duplicate: true });
    expect(again.messages[1]?.duplicate).toBe(false);
    const tasks = fanoutTasks(later.fanout);
    expect(tasks.map((task) => task.messageId).sort()).toEqual(
      [b?.id, again.messages[1]?.id].sort(),
    );
    expect(tasks.every((task) => task.unrecorded === true)).toBe(true);
    expect((await claimsOf(topic)).map((c) => c.key)).toEqual(["a", "b", "c"]);
  });

  it("refuses a batch in which one key clashes, leaving none of its claims or rows", async () => {
    const topic = await leanTopic(1);
    await publishOne(topic, { body: 1 }, "old");
    const before = await claimsOf(topic);
    const refused = await publishTo(
      topic,
      {
        json: {
          messages: [
            { body: 5, idempotencyKey: "new" },
            { bodyText: LARGE_TEXT, idempotencyKey: "large" },
            { body: 2, idempotencyKey: "old" },
          ],
        },
      },
      { path: "/batch" },
    );
    await expectProblem(refused.res, 409, "conflict");
    expect(refused.fanout.calls).toEqual([]);
    expect(await claimsOf(topic)).toEqual(before);
    expect(await rowsOf("messages", topic)).toEqual([]);

    const retried = await publishTo(
      topic,
      { json: { messages: [{ body: 5, idempotencyKey: "new" }] } },
      { path: "/batch" },
    );
    const { messages } = await expectJson(retried.res, 202, PublishBatchResult);
    expect(messages[0]?.duplicate).toBe(false);
  });

  it("a key claimed while the topic recorded everything still answers once it records failures", async () => {
    const { name: topic } = await seedTopic();
    await insertSubscribers(topic, 1);
    const first = await publishOne(topic, { body: 1 }, "k");
    expect((await rowsOf("messages", topic))[0]).toMatchObject({
      id: first.id,
      idempotency_key: "k",
    });
    await fanOut(first.fanout.bodies());
    await setRecording(topic, "failures");

    const again = await publishTo(topic, {
      json: { body: 1 },
      headers: { "idempotency-key": "k" },
    });
    expect(await expectJson(again.res, 202, PublishResult)).toEqual({
      id: first.id,
      topic,
      duplicate: true,
    });
    // Its row says it was fanned out: nothing to queue again.
    expect(again.fanout.calls).toEqual([]);
    expect(await claimsOf(topic)).toEqual([]);
    const other = await publishTo(topic, {
      json: { body: 2 },
      headers: { "idempotency-key": "k" },
    });
    await expectProblem(other.res, 409, "conflict");
    expect(await rowsOf("messages", topic)).toHaveLength(1);
  });

  it("a key claimed while the topic recorded failures still answers once it records everything", async () => {
    const topic = await leanTopic(1);
    const first = await publishOne(topic, { body: 1 }, "k");
    await setRecording(topic, "full");

    const again = await publishTo(topic, {
      json: { body: 1 },
      headers: { "idempotency-key": "k" },
    });
    expect(await expectJson(again.res, 202, PublishResult)).toEqual({
      id: first.id,
      topic,
      duplicate: true,
    });
    expect(fanoutTasks(again.fanout)).toMatchObject([{ messageId: first.id, unrecorded: true }]);
    expect(await rowsOf("messages", topic)).toEqual([]);
    const other = await publishTo(topic, {
      json: { body: 2 },
      headers: { "idempotency-key": "k" },
    });
    await expectProblem(other.res, 409, "conflict");
    expect(await rowsOf("messages", topic)).toEqual([]);

    const fetch = answering(200);
    await fanOutAndDeliver(again.fanout.bodies(), fetch.fetch);
    expect(webhookIds(fetch)).toEqual([first.id]);
  });

  it.each<Recording>(["failures", "full"])(
    "deleting the topic frees its keys for a new topic of the same name (recording %s)",
    async (recording) => {
      const topic = await leanTopic(1);
      const old = await publishOne(topic, { body: 1 }, "k");
      expect((await call("DELETE", `/v1/topics/${topic}`)).status).toBe(204);
      await new Promise((resolve) => setTimeout(resolve, 5));
      await seedTopic({ name: topic });
      await setRecording(topic, recording);
      await insertSubscribers(topic, 1);

      const same = await publishTo(topic, {
        json: { body: 1 },
        headers: { "idempotency-key": "k" },
      });
      const fresh = await expectJson(same.res, 202, PublishResult);
      expect(fresh).toMatchObject({ topic, duplicate: false });
      expect(fresh.id).not.toBe(old.id);
      expect(fanoutTasks(same.fanout).map((task) => task.messageId)).toEqual([fresh.id]);
      if (recording === "failures") {
        expect(await claimsOf(topic)).toMatchObject([{ key: "k", messageId: fresh.id }]);
      }
      // The new topic's own claim answers from then on.
      const repeat = await publishTo(topic, {
        json: { body: 1 },
        headers: { "idempotency-key": "k" },
      });
      expect(await expectJson(repeat.res, 202, PublishResult)).toMatchObject({
        id: fresh.id,
        duplicate: true,
      });
      const other = await publishTo(topic, {
        json: { body: 2 },
        headers: { "idempotency-key": "k" },
      });
      await expectProblem(other.res, 409, "conflict");
    },
  );

  it.each<[string, "" | "/batch" | "/raw", Omit<CallOptions, "env">, boolean]>([
    ["a message", "", { json: { body: 1 }, headers: { "idempotency-key": "k" } }, false],
    ["a message, inline", "", { json: { body: 1 }, headers: { "idempotency-key": "k" } }, true],
    [
      "a large message",
      "",
      { json: { bodyText: LARGE_TEXT }, headers: { "idempotency-key": "k" } },
      false,
    ],
    [
      "a batch",
      "/batch",
      { json: { messages: [{ body: 1, idempotencyKey: "k" }, { body: 2 }] } },
      false,
    ],
    [
      "a batch, inline",
      "/batch",
      { json: { messages: [{ body: 1, idempotencyKey: "k" }, { body: 2 }] } },
      true,
    ],
    ["a raw message", "/raw", { body: "x", headers: { "idempotency-key": "k" } }, false],
  ])(
    "frees the claim of %s whose queue send failed, so that the retry is not a duplicate",
    async (_, path, request, inline) => {
      const topic = await leanTopic(1);
      const fanout = recordingQueue();
      const deliveries = recordingQueue();
      const failing = inline ? deliveries : fanout;
      failing.failWith(new Error("Queue send failed: internal error"));
      const refused = await publishTo(topic, request, { path, inline, fanout, deliveries });
      await expectProblem(refused.res, 503, "unavailable");
      expect(await claimsOf(topic)).toEqual([]);
      expect(await rowsOf("messages", topic)).toEqual([]);

      failing.failWith(undefined);
      const retried = await publishTo(topic, request, { path, inline, fanout, deliveries });
      expect(retried.res.status, await retried.res.clone().text()).toBe(202);
      const body = (await retried.res.json()) as Record<string, unknown>;
      const outcomes = path === "/batch" ? PublishBatchResult.parse(body).messages : [body];
      expect(outcomes.map((outcome) => outcome.duplicate)).toEqual(outcomes.map(() => false));
      expect(await claimsOf(topic)).toHaveLength(1);
    },
  );

  it("keeps answering a key with the first id when the first publish's send failed after a repeat answered for it", async () => {
    const topic = await leanTopic(1);
    const request = { json: { body: { n: 1 } }, headers: { "idempotency-key": "order-1" } };
    const stalled = stallingQueue();
    const first = call("POST", `/v1/topics/${topic}/messages`, {
      ...request,
      env: { FANOUT_QUEUE: stalled.queue },
    });
    await stalled.sending;

    const second = await publishTo(topic, request);
    const { id, duplicate } = await expectJson(second.res, 202, PublishResult);
    expect(duplicate).toBe(true);
    stalled.fail(new Error("Queue send failed"));
    await expectProblem(await first, 503, "unavailable");

    // 202 for `id`: the repeat's own task carries it, so it is delivered.
    const fetch = answering(200);
    await fanOutAndDeliver(second.fanout.bodies(), fetch.fetch);
    expect(webhookIds(fetch)).toEqual([id]);

    // The first publisher retries: the key answered for `id` already, and must not make a second
    // message (which would reach the subscriber under another webhook-id).
    const third = await publishTo(topic, request);
    expect(await expectJson(third.res, 202, PublishResult)).toEqual({
      id,
      topic,
      duplicate: true,
    });
  });

  it("delivers a large message a repeat answered for, when the first publish's send failed", async () => {
    const topic = await leanTopic(1);
    const request = {
      json: { bodyText: LARGE_TEXT },
      headers: { "idempotency-key": "order-large" },
    };
    const stalled = stallingQueue();
    const first = call("POST", `/v1/topics/${topic}/messages`, {
      ...request,
      env: { FANOUT_QUEUE: stalled.queue },
    });
    await stalled.sending;

    const second = await publishTo(topic, request);
    const { id, duplicate } = await expectJson(second.res, 202, PublishResult);
    expect(duplicate).toBe(true);
    expect(fanoutTasks(second.fanout)).toMatchObject([{ messageId: id, content: null }]);
    stalled.fail(new Error("Queue send failed"));
    await expectProblem(await first, 503, "unavailable");

    // 202 means durably accepted: the repeat's task refers to the first message's stored content.
    const fetch = answering(200);
    await fanOutAndDeliver(second.fanout.bodies(), fetch.fetch);
    expect(seen(fetch)).toEqual([[id, "<LARGE_TEXT>"]]);
  });
});

// ---------------------------------------------------------------------------------------------
// Fan-out of unrecorded tasks

describe("the fan-out of a message that has no row", () => {
  it("applies the subscribers' filters", async () => {
    const topic = await leanTopic();
    const food = await seedSubscriber(topic, { filter: 'body.kind == "food"' });
    const toys = await seedSubscriber(topic, { filter: 'body.kind == "toys"' });
    const everything = await seedSubscriber(topic);
    const { id, fanout } = await publishOne(topic, { body: { kind: "food" } });
    const fetch = answering(200);
    const {
      fanout: { tasks },
    } = await fanOutAndDeliver(fanout.bodies(), fetch.fetch);
    expect(tasks.map((task) => task.subscriberId).sort()).toEqual([food.id, everything.id].sort());
    expect(tasks.some((task) => task.subscriberId === toys.id)).toBe(false);
    expect(webhookIds(fetch)).toEqual([id, id]);
    expect(await totalsOf(topic)).toEqual({ delivered: 2, retried: 0, dead: 0 });
  });

  it("writes nothing", async () => {
    const topic = await leanTopic(3);
    const tasks: unknown[] = [];
    for (let n = 0; n < 3; n++)
      tasks.push(...(await publishOne(topic, { body: n })).fanout.bodies());
    tasks.push(...(await publishOne(topic, { bodyText: LARGE_TEXT })).fanout.bodies());
    const d1 = countingD1();
    const meter = meteredD1();
    const { batch, tasks: opened } = await fanOut(tasks, d1.db);
    expect(opened).toHaveLength(12);
    expect(batch.messages.map((message) => message.outcome())).toEqual(
      Array(4).fill({ kind: "ack" }),
    );
    expect(d1.writes()).toEqual([]);
    expect(d1.calls).toHaveLength(1);
    await fanOut(tasks, meter.db);
    expect(meter.take()).toBe(0);
  });

  it("drops a task of a topic deleted, or deleted and made anew, before the fan-out", async () => {
    const topic = await leanTopic(1);
    const gone = await leanTopic(1);
    const { fanout } = await publishOne(topic, { body: 1 });
    const { fanout: goneFanout } = await publishOne(gone, { body: 1 });
    expect((await call("DELETE", `/v1/topics/${topic}`)).status).toBe(204);
    expect((await call("DELETE", `/v1/topics/${gone}`)).status).toBe(204);
    await new Promise((resolve) => setTimeout(resolve, 5));
    await seedTopic({ name: topic });
    await setRecording(topic, "failures");
    await insertSubscribers(topic, 1);

    const { batch, tasks } = await fanOut([...fanout.bodies(), ...goneFanout.bodies()]);
    expect(tasks).toEqual([]);
    expect(batch.messages.map((message) => message.outcome())).toEqual([
      { kind: "ack" },
      { kind: "ack" },
    ]);
  });

  it("retries a task whose deliveries could not be sent, and fans it out on the retry", async () => {
    const topic = await leanTopic(1);
    const { id, fanout } = await publishOne(topic, { body: 1 });
    const failing = recordingQueue();
    failing.failWith(new Error("Queue send failed"));
    const batch = messageBatch("switchboard-fanout", fanout.bodies());
    await handleFanoutBatch(batch, envWith({ DELIVERY_QUEUE: failing.queue }));
    expect(batch.messages[0]?.outcome()).toMatchObject({ kind: "retry" });

    const fetch = answering(200);
    const retried = await fanOutAndDeliver(fanout.bodies(), fetch.fetch, {}, 2);
    expect(retried.fanout.batch.messages[0]?.outcome()).toEqual({ kind: "ack" });
    expect(webhookIds(fetch)).toEqual([id]);
  });
});

// ---------------------------------------------------------------------------------------------
// Retention

describe("retention of claims and counts", () => {
  it("deletes claims whose day is 24 hours past and keeps those younger than 24 hours", async () => {
    const topic = await ago(4 * DAY, () => leanTopic(1));
    const old = await ago(3 * DAY, () => publishOne(topic, { body: "old" }, "old"));
    const recent = await ago(23 * 60 * 60 * 1000, () =>
      publishOne(topic, { body: "recent" }, "recent"),
    );
    const now = await publishOne(topic, { body: "now" }, "now");
    expect((await claimsOf(topic)).map((claim) => claim.key)).toEqual(["now", "old", "recent"]);

    const deleted = await runRetention(env, Date.now());
    expect(deleted.idempotency_claims).toBeGreaterThanOrEqual(1);
    expect((await claimsOf(topic)).map((claim) => [claim.key, claim.messageId])).toEqual([
      ["now", now.id],
      ["recent", recent.id],
    ]);
    const repeat = await publishTo(topic, {
      json: { body: "recent" },
      headers: { "idempotency-key": "recent" },
    });
    expect(await expectJson(repeat.res, 202, PublishResult)).toMatchObject({
      id: recent.id,
      duplicate: true,
    });
    const reused = await publishTo(topic, {
      json: { body: "other" },
      headers: { "idempotency-key": "old" },
    });
    const fresh = await expectJson(reused.res, 202, PublishResult);
    expect(fresh.duplicate).toBe(false);
    expect(fresh.id).not.toBe(old.id);
  });

  it("deletes counts older than RETENTION_DAYS by minute, and keeps newer ones", async () => {
    const topic = await leanTopic(1);
    const now = Date.now();
    const minute = (at: number) => at - (at % 60_000);
    await env.DB.batch(
      [8 * DAY, 6 * DAY].map((age) =>
        env.DB.prepare(
          "insert into topic_counts (minute, topic, delivered, retried, dead) values (?, ?, 1, 0, 0)",
        ).bind(minute(now - age), topic),
      ),
    );
    const { fanout } = await publishOne(topic, { body: 1 });
    await fanOutAndDeliver(fanout.bodies(), answering(200).fetch);
    expect(await countsOf(topic)).toHaveLength(3);

    await runRetention(env, now);
    expect((await countsOf(topic)).map((row) => row.minute)).toEqual([
      minute(now - 6 * DAY),
      expect.any(Number),
    ]);
  });

  it("far ahead, deletes every claim and count, and the rows of what went wrong", async () => {
    const topic = await leanTopic();
    await seedSubscriber(topic, { retry: { maxAttempts: 1 } });
    const failed = await publishOne(topic, { body: 1 }, "k-1");
    await publishOne(topic, { bodyText: LARGE_TEXT }, "k-2");
    await fanOutAndDeliver(failed.fanout.bodies(), answering(500).fetch);
    expect(await claimsOf(topic)).toHaveLength(2);
    expect(await countsOf(topic)).toHaveLength(1);
    expect(await deliveryRowsOf(failed.id)).toHaveLength(1);
    expect(await rowsOf("messages", topic)).toHaveLength(1);

    await runRetention(env, Date.now() + 30 * DAY);
    expect(await claimsOf(topic)).toEqual([]);
    expect(await countsOf(topic)).toEqual([]);
    expect(await deliveryRowsOf(failed.id)).toEqual([]);
    expect(await rowsOf("messages", topic)).toEqual([]);
    expect(await deadLettersOf(topic)).toEqual([]);
    await expectNoRecord(failed.id);
  });
});

// ---------------------------------------------------------------------------------------------
// Changing a topic's recording

describe("changing a topic's recording", () => {
  it("records messages published after it went back to full", async () => {
    const topic = await leanTopic();
    const subscriber = await seedSubscriber(topic);
    const lean = await publishOne(topic, { body: "lean" });
    await setRecording(topic, "full");
    const recorded = await publishOne(topic, { body: "full" });
    expect(fanoutTasks(recorded.fanout)[0]?.unrecorded).toBeUndefined();
    expect((await rowsOf("messages", topic)).map((row) => row.id)).toEqual([recorded.id]);

    const fetch = answering(200);
    await fanOutAndDeliver([...lean.fanout.bodies(), ...recorded.fanout.bodies()], fetch.fetch);
    expect(webhookIds(fetch).sort()).toEqual([lean.id, recorded.id].sort());
    expect(await messageStatus(recorded.id)).toMatchObject({
      id: recorded.id,
      topic,
      state: "dispatched",
      matched: 1,
      filtered: 0,
      deliveries: [{ subscriberId: subscriber.id, state: "delivered", attempts: 1 }],
    });
    expect(await totalsOf(topic)).toEqual({ delivered: 0, retried: 0, dead: 0 });
  });

  it("records to the end a message published while the topic recorded everything", async () => {
    const { name: topic } = await seedTopic();
    const subscriber = await seedSubscriber(topic);
    const { id, fanout } = await publishOne(topic, { body: 1 });
    const { deliveries } = await fanOut(fanout.bodies());
    await setRecording(topic, "failures");
    await deliver(deliveries.bodies(), answering(200).fetch);
    expect(await messageStatus(id)).toMatchObject({
      matched: 1,
      deliveries: [{ subscriberId: subscriber.id, state: "delivered", attempts: 1 }],
    });
    expect(await countsOf(topic)).toEqual([]);
  });

  it("stops recording messages published after it switched to failures", async () => {
    const { name: topic } = await seedTopic();
    await seedSubscriber(topic);
    const before = await publishOne(topic, { body: 1 });
    await setRecording(topic, "failures");
    const after = await publishOne(topic, { body: 2 });
    expect((await rowsOf("messages", topic)).map((row) => row.id)).toEqual([before.id]);
    await fanOutAndDeliver(
      [...before.fanout.bodies(), ...after.fanout.bodies()],
      answering(200).fetch,
    );
    expect(await messageStatus(before.id)).toMatchObject({ deliveries: [{ state: "delivered" }] });
    await expectNoRecord(after.id);
    expect(await totalsOf(topic)).toEqual({ delivered: 1, retried: 0, dead: 0 });
  });
});
