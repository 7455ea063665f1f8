/**
 * Inline fan-out: a publish to a topic whose active subscribers have no filter, and are few enough
 * for one `sendBatch` of bundles, opens the deliveries and queues their bundles itself.
 * Everything else goes through the fan-out queue as before. (The other workerd tests run with it
 * off, to walk messages through the fan-out queue; the end-to-end tests run with it on.)
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { PublishBatchResult, PublishResult } from "../../src/api/schemas/messages";
import { readConfig } from "../../src/config";
import { type DeliveryTask, FanoutTaskSchema } from "../../src/queues/tasks";
import {
  type CallOptions,
  call,
  expectJson,
  expectProblem,
  seedTopic,
  silenceErrorLog,
} from "../harness";
import {
  answering,
  bundlesIn,
  countingD1,
  deliver,
  deliveriesIn,
  expectBundlesWithinLimits,
  fanOut,
  insertSubscribers,
  messageStatus,
  recordingQueue,
  rowsOf,
} from "./support";

silenceErrorLog();

/** Publishes through `path` (under the topic) with inline fan-out up to `limit` subscribers. */
async function publishInline(
  topic: string,
  request: CallOptions,
  options: { path?: string; limit?: number; db?: D1Database } = {},
) {
  const fanout = recordingQueue();
  const deliveries = recordingQueue();
  const res = await call("POST", `/v1/topics/${topic}/messages${options.path ?? ""}`, {
    ...request,
    env: {
      DB: options.db ?? env.DB,
      FANOUT_QUEUE: fanout.queue,
      DELIVERY_QUEUE: deliveries.queue,
      INLINE_FANOUT_MAX_SUBSCRIBERS: String(options.limit ?? 100),
    },
  });
  /** The deliveries the bundles carry, one by one. */
  const tasks = (): DeliveryTask[] => deliveriesIn(deliveries.bodies());
  return { res, fanout, deliveries, tasks, bundles: () => bundlesIn(deliveries.bodies()) };
}

/** A batch publish of `count` messages, each `{ n, text }` when `text` is given, else `n`. */
function batchOf(count: number, text?: string): CallOptions {
  return {
    json: {
      messages: Array.from({ length: count }, (_, n) => ({
        body: text === undefined ? n : { n, text },
      })),
    },
  };
}

async function topicWith(subscribers: number): Promise<{ topic: string; ids: string[] }> {
  const { name: topic } = await seedTopic();
  const rows = await insertSubscribers(topic, subscribers);
  return { topic, ids: rows.map((row) => row.id) };
}

/** Rows D1 read for one publish to a topic of `subscribers` (with `filter`), inline fan-out on. */
async function rowsReadPublishingTo(subscribers: number, filter: string | null): Promise<number> {
  const { name: topic } = await seedTopic();
  await insertSubscribers(topic, subscribers, { filter });
  const d1 = countingD1();
  const res = await call("POST", `/v1/topics/${topic}/messages`, {
    json: { body: 1 },
    env: {
      DB: d1.db,
      FANOUT_QUEUE: recordingQueue().queue,
      DELIVERY_QUEUE: recordingQueue().queue,
      INLINE_FANOUT_MAX_SUBSCRIBERS: "10",
    },
  });
  expect(res.status).toBe(202);
  return d1.rowsRead();
}

describe("inline fan-out", () => {
  it("reads no more of a large topic's subscribers than of one just over the limit", async () => {
    // Deciding whether a topic qualifies reads at most limit + 1 subscribers: a publish to a
    // topic of thousands costs what a publish to a topic of eleven does.
    expect(await rowsReadPublishingTo(2000, null)).toBe(await rowsReadPublishingTo(11, null));
    expect(await rowsReadPublishingTo(2000, "body == 1")).toBe(
      await rowsReadPublishingTo(11, "body == 1"),
    );
  });

  it("queues one bundle of the message to every subscriber and opens the deliveries, with no fan-out task", async () => {
    const { topic, ids } = await topicWith(2);
    const { res, fanout, deliveries, tasks, bundles } = await publishInline(topic, {
      json: { body: { category: "food" }, headers: { "X-Mode": "quiet" }, query: { page: "2" } },
    });
    const { id } = await expectJson(res, 202, PublishResult);

    expect(fanout.calls).toEqual([]);
    expect(deliveries.calls).toHaveLength(1);
    expect(bundles()).toEqual([
      expect.objectContaining({ kind: "bundle", topic, messages: [expect.any(Object)] }),
    ]);
    expect([...(bundles()[0]?.subscriberIds ?? [])].sort()).toEqual([...ids].sort());
    expect(
      tasks()
        .map((task) => task.subscriberId)
        .sort(),
    ).toEqual([...ids].sort());
    for (const task of tasks()) {
      expect(task).toMatchObject({
        messageId: id,
        topic,
        content: {
          body: { kind: "json", value: { category: "food" }, contentType: "application/json" },
          headers: { "x-mode": "quiet" },
          query: { page: "2" },
          pathParams: {},
          method: null,
        },
      });
    }

    // Fanned out and counted at once, with a pending delivery to each subscriber.
    const status = await messageStatus(id);
    expect(status).toMatchObject({ matched: 2, filtered: 0 });
    expect(
      status.deliveries.map(({ subscriberId, state, attempts }) => [subscriberId, state, attempts]),
    ).toEqual([...ids].sort().map((subscriberId) => [subscriberId, "pending", 0]));
  });

  it("leaves the message queued until its first outcome is recorded, which dispatches it", async () => {
    const { topic } = await topicWith(2);
    const { res, deliveries } = await publishInline(topic, { json: { body: 1 } });
    const { id } = await expectJson(res, 202, PublishResult);
    expect(await messageStatus(id)).toMatchObject({ state: "queued", matched: 2, filtered: 0 });

    const ok = answering(200);
    await deliver(deliveries.bodies(), ok.fetch);
    expect(ok.requests).toHaveLength(2);
    const status = await messageStatus(id);
    expect(status).toMatchObject({ state: "dispatched", matched: 2, filtered: 0 });
    expect(status.deliveries.map((delivery) => delivery.state)).toEqual(["delivered", "delivered"]);
  });

  it("dispatches the message with a first outcome that failed, too", async () => {
    const { topic } = await topicWith(1);
    const { res, deliveries } = await publishInline(topic, { json: { body: 1 } });
    const { id } = await expectJson(res, 202, PublishResult);

    await deliver(deliveries.bodies(), answering(500).fetch);
    const status = await messageStatus(id);
    expect(status).toMatchObject({ state: "dispatched", matched: 1 });
    expect(status.deliveries).toEqual([
      expect.objectContaining({ state: "retrying", attempts: 1, lastStatus: 500 }),
    ]);
  });

  it("also serves a raw publish", async () => {
    const { topic } = await topicWith(1);
    const { res, fanout, tasks } = await publishInline(
      topic,
      { body: "raw bytes", headers: { "content-type": "text/csv" } },
      { path: "/raw" },
    );
    expect(res.status).toBe(202);
    expect(fanout.calls).toEqual([]);
    expect(tasks()).toHaveLength(1);
    expect(tasks()[0]?.content?.body).toMatchObject({ kind: "bytes", contentType: "text/csv" });
  });

  it("marks a message to a topic without subscribers dispatched, queueing nothing", async () => {
    const { topic } = await topicWith(0);
    const { res, fanout, deliveries } = await publishInline(topic, { json: { body: 1 } });
    const { id } = await expectJson(res, 202, PublishResult);
    expect(fanout.calls).toEqual([]);
    expect(deliveries.calls).toEqual([]);
    expect(await messageStatus(id)).toMatchObject({
      state: "dispatched",
      matched: 0,
      filtered: 0,
      deliveries: [],
    });
  });

  it("leaves a topic with a filtered subscriber to the fan-out queue", async () => {
    const { topic } = await topicWith(1);
    await insertSubscribers(topic, 1, { filter: "body == 1" });
    const { res, fanout, deliveries } = await publishInline(topic, { json: { body: 1 } });
    const { id } = await expectJson(res, 202, PublishResult);
    expect(deliveries.calls).toEqual([]);
    expect(FanoutTaskSchema.parse(fanout.bodies()[0]).messageId).toBe(id);
    expect(await messageStatus(id)).toMatchObject({
      state: "queued",
      matched: null,
      deliveries: [],
    });
  });

  it("counts only active subscribers, and their filters only", async () => {
    const { topic, ids } = await topicWith(1);
    await insertSubscribers(topic, 1, { active: false, filter: "body == 2" });
    const { res, fanout, tasks } = await publishInline(topic, { json: { body: 1 } });
    const { id } = await expectJson(res, 202, PublishResult);
    expect(fanout.calls).toEqual([]);
    expect(tasks().map((task) => task.subscriberId)).toEqual(ids);
    expect(await messageStatus(id)).toMatchObject({ matched: 1, filtered: 0 });
  });

  it("leaves a delayed message to the fan-out queue, with its delay", async () => {
    const { topic } = await topicWith(1);
    const { res, fanout, deliveries } = await publishInline(topic, {
      json: { body: 1, delaySeconds: 60 },
    });
    expect(res.status).toBe(202);
    expect(deliveries.calls).toEqual([]);
    expect(fanout.sent()).toEqual([expect.objectContaining({ delaySeconds: 60 })]);
  });

  it("leaves a message too large to travel inline to the fan-out queue", async () => {
    const { topic } = await topicWith(1);
    const { res, fanout, deliveries } = await publishInline(topic, {
      json: { bodyText: "x".repeat(200 * 1024) },
    });
    expect(res.status).toBe(202);
    expect(deliveries.calls).toEqual([]);
    expect(FanoutTaskSchema.parse(fanout.bodies()[0]).content).toBeNull();
  });

  it("bundles a batch's messages for few subscribers, ten deliveries to a bundle", async () => {
    const { topic, ids } = await topicWith(2);
    const { res, fanout, deliveries, tasks, bundles } = await publishInline(topic, batchOf(100), {
      path: "/batch",
    });
    const { messages } = await expectJson(res, 202, PublishBatchResult);
    expect(fanout.calls).toEqual([]);
    expect(deliveries.calls).toHaveLength(1);
    expect(bundles()).toHaveLength(20);
    for (const bundle of bundles()) {
      expect(bundle.messages).toHaveLength(5);
      expect([...bundle.subscriberIds].sort()).toEqual([...ids].sort());
    }
    expectBundlesWithinLimits(deliveries);
    // Every message to every subscriber, once.
    const pairs = tasks().map((task) => `${task.messageId} ${task.subscriberId}`);
    expect(new Set(pairs).size).toBe(200);
    expect(new Set(tasks().map((task) => task.messageId))).toEqual(
      new Set(messages.map((message) => message.id)),
    );
  });

  it("fans a batch out inline while its bundles fit one sendBatch, and not beyond", async () => {
    // Eleven subscribers take two bundles per message (ten and one): 50 messages make 100.
    const { topic } = await topicWith(11);
    const fits = await publishInline(topic, batchOf(50), { path: "/batch" });
    expect(fits.res.status).toBe(202);
    expect(fits.fanout.calls).toEqual([]);
    expect(fits.deliveries.calls).toHaveLength(1);
    expect(fits.bundles()).toHaveLength(100);
    expectBundlesWithinLimits(fits.deliveries);
    expect(fits.tasks()).toHaveLength(550);

    const over = await publishInline(topic, batchOf(51), { path: "/batch" });
    expect(over.res.status).toBe(202);
    expect(over.deliveries.calls).toEqual([]);
    expect(over.fanout.bodies()).toHaveLength(51);
  });

  it.each([
    ["50 messages of 2 KB to 10 subscribers", 50, 2 * 1024, 10, true],
    ["30 messages of 7 KB to 10 subscribers", 30, 7 * 1024, 10, true],
    ["15 messages of 12 KB to 2 subscribers, five to a bundle", 15, 12_300, 2, true],
    ["3 messages of 70 KB to 10 subscribers", 3, 70 * 1024, 10, true],
    ["2 messages of 90 KB to 10 subscribers", 2, 90 * 1024, 10, true],
    ["100 messages of 2 KB to 10 subscribers", 100, 2 * 1024, 10, false],
    ["2 messages of 90 KB to 20 subscribers", 2, 90 * 1024, 20, false],
  ])(
    "keeps the bundles of %s within the queue's limits, or leaves them to the fan-out",
    async (_, count, bytes, subscribers, inline) => {
      const { topic } = await topicWith(subscribers);
      const { res, fanout, deliveries, tasks } = await publishInline(
        topic,
        batchOf(count, "x".repeat(bytes)),
        { path: "/batch" },
      );
      expect(res.status).toBe(202);
      expectBundlesWithinLimits(deliveries);
      expect(deliveries.calls.length).toBeLessThanOrEqual(1);
      if (inline) {
        expect(fanout.calls).toEqual([]);
        expect(tasks()).toHaveLength(count * subscribers);
        expect(new Set(tasks().map((task) => task.messageId)).size).toBe(count);
      } else {
        expect(deliveries.calls).toEqual([]);
        expect(fanout.bodies()).toHaveLength(count);
      }
    },
  );

  it.each<[string | undefined, number]>([
    [undefined, 10],
    ["0", 0],
    ["3", 3],
    ["100", 100],
    ["101", 10],
    ["-1", 10],
    ["2.5", 10],
    ["many", 10],
    ["", 10],
  ])("reads INLINE_FANOUT_MAX_SUBSCRIBERS %j as %i", (value, limit) => {
    const config = readConfig({ ...env, INLINE_FANOUT_MAX_SUBSCRIBERS: value } as unknown as Env);
    expect(config.inlineFanoutMaxSubscribers).toBe(limit);
  });

  it("stays within the configured limit", async () => {
    const { topic } = await topicWith(2);
    const under = await publishInline(topic, { json: { body: 1 } }, { limit: 2 });
    expect(under.bundles()).toHaveLength(1);
    expect(under.tasks()).toHaveLength(2);
    const over = await publishInline(topic, { json: { body: 1 } }, { limit: 1 });
    expect(over.deliveries.calls).toEqual([]);
    expect(over.fanout.bodies()).toHaveLength(1);
  });

  it("sends the fan-out tasks of a mixed batch first, and the inline deliveries after", async () => {
    const { topic } = await topicWith(1);
    const { res, fanout, tasks } = await publishInline(
      topic,
      { json: { messages: [{ body: 1 }, { body: 2, delaySeconds: 30 }] } },
      { path: "/batch" },
    );
    const { messages } = await expectJson(res, 202, PublishBatchResult);
    expect(tasks().map((task) => task.messageId)).toEqual([messages[0]?.id]);
    expect(fanout.sent()).toEqual([
      expect.objectContaining({
        body: expect.objectContaining({ messageId: messages[1]?.id }),
        delaySeconds: 30,
      }),
    ]);
  });

  it("takes everything back when the deliveries cannot be queued", async () => {
    const { topic, ids } = await topicWith(1);
    const fanout = recordingQueue();
    const deliveries = recordingQueue();
    deliveries.failWith(new Error("Queue send failed: internal error"));
    const res = await call("POST", `/v1/topics/${topic}/messages/batch`, {
      json: {
        messages: [
          { body: 1, idempotencyKey: "k" },
          { body: 2, delaySeconds: 30 },
        ],
      },
      env: {
        FANOUT_QUEUE: fanout.queue,
        DELIVERY_QUEUE: deliveries.queue,
        INLINE_FANOUT_MAX_SUBSCRIBERS: "100",
      },
    });
    await expectProblem(res, 503, "unavailable");
    // The deliveries were opened in the message's row, and its key claimed there: all gone with it.
    expect(await rowsOf("messages", topic)).toEqual([]);
    const { results } = await env.DB.prepare("select * from deliveries where subscriber_id = ?")
      .bind(ids[0])
      .all();
    expect(results).toEqual([]);

    // The delayed message's fan-out task went out before the failure; its message is gone, so
    // the fan-out drops it.
    const dropped = await fanOut(fanout.bodies());
    expect(dropped.tasks).toEqual([]);
    expect(dropped.batch.messages[0]?.outcome()).toEqual({ kind: "ack" });
  });

  it("makes no request once the topic is deleted, and leaves the deliveries cancelled", async () => {
    const { topic } = await topicWith(2);
    const { res, deliveries } = await publishInline(topic, { json: { body: 1 } });
    const { id } = await expectJson(res, 202, PublishResult);
    expect((await call("DELETE", `/v1/topics/${topic}`)).status).toBe(204);

    const fetch = answering(200);
    const requeued = recordingQueue();
    const { batch, deadLetterQueue } = await deliver(deliveries.bodies(), fetch.fetch, {
      deliveryQueue: requeued,
    });
    expect(fetch.requests).toEqual([]);
    expect(batch.messages.map((message) => message.outcome())).toEqual([{ kind: "ack" }]);
    expect(requeued.calls).toEqual([]);
    expect(deadLetterQueue.calls).toEqual([]);
    const status = await messageStatus(id);
    expect(status.deliveries.map((delivery) => delivery.state)).toEqual(["cancelled", "cancelled"]);
  });

  it("answers a repeated publish without queueing it again once its first outcome is recorded", async () => {
    const { topic } = await topicWith(1);
    const key = { "idempotency-key": "again" };
    const first = await publishInline(topic, { json: { body: 1 }, headers: key });
    const { id } = await expectJson(first.res, 202, PublishResult);
    await deliver(first.deliveries.bodies(), answering(200).fetch);

    const repeat = await publishInline(topic, { json: { body: 1 }, headers: key });
    expect(await expectJson(repeat.res, 202, PublishResult)).toEqual({
      id,
      topic,
      duplicate: true,
    });
    expect(repeat.fanout.calls).toEqual([]);
    expect(repeat.deliveries.calls).toEqual([]);
  });

  it("re-queues a repeated publish through the fan-out until the message's first outcome is recorded", async () => {
    const { topic } = await topicWith(1);
    const key = { "idempotency-key": "again" };
    const first = await publishInline(topic, { json: { body: 1 }, headers: key });
    const { id } = await expectJson(first.res, 202, PublishResult);

    // With no outcome yet, its delivery tasks may never have been sent (a send that failed and
    // could not be taken back): a repeat queues it again, and the fan-out's claim lets it through
    // once.
    const repeat = await publishInline(topic, { json: { body: 1 }, headers: key });
    expect(await expectJson(repeat.res, 202, PublishResult)).toMatchObject({
      id,
      duplicate: true,
    });
    expect(repeat.deliveries.calls).toEqual([]);
    expect(FanoutTaskSchema.parse(repeat.fanout.bodies()[0]).messageId).toBe(id);

    // Both bundles go out; the later one finds the delivery done.
    const { tasks, deliveries } = await fanOut(repeat.fanout.bodies());
    expect(tasks.map((task) => task.messageId)).toEqual([id]);
    const ok = answering(200);
    await deliver(first.deliveries.bodies(), ok.fetch);
    await deliver(deliveries.bodies(), ok.fetch);
    expect(ok.requests).toHaveLength(1);
    expect((await messageStatus(id)).deliveries).toEqual([
      expect.objectContaining({ state: "delivered", attempts: 1 }),
    ]);
  });
});
