/**
 * The fan-out consumer: filters decide who gets a delivery, the counts land in the message
 * status, the deliveries go out in bundles of up to ten, in sendBatch calls within the platform's
 * limits, and one batch costs one D1 read and one D1 write.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import { PublishResult } from "../../src/api/schemas/messages";
import { handleFanoutBatch } from "../../src/fanout/consumer";
import type { FanoutTask } from "../../src/queues/tasks";
import { call, expectJson, seedSubscriber, seedTopic, silenceErrorLog } from "../harness";
import {
  answering,
  bundlesIn,
  countingD1,
  deliver,
  deliveriesIn,
  envWith,
  expectBundlesWithinLimits,
  fanOut,
  insertSubscribers,
  messageBatch,
  messageStatus,
  pendingTo,
  publish,
  publishTask,
  queuedBytes,
  recordingQueue,
} from "./support";

silenceErrorLog();

/** The ids of `subscribers`, sorted. */
function idsOf(subscribers: readonly ({ id: string } | undefined)[]): string[] {
  return subscribers.map((subscriber) => subscriber?.id ?? "").sort();
}

describe("fan-out filters", () => {
  it("queues a delivery for each matching active subscriber and counts matched and filtered", async () => {
    const { name: topic } = await seedTopic();
    const food = await seedSubscriber(topic, { filter: 'body.category == "food"' });
    const quiet = await seedSubscriber(topic, { filter: 'headers.mode == "quiet"' });
    const everything = await seedSubscriber(topic);
    const inactive = await seedSubscriber(topic, { active: false });

    const task = await publishTask(topic, {
      body: { category: "food" },
      headers: { Mode: "loud" },
    });
    const { batch, tasks } = await fanOut([task]);

    expect(batch.messages[0]?.outcome()).toEqual({ kind: "ack" });
    const targets = tasks.map((t) => t.subscriberId).sort();
    expect(targets).toEqual([food.id, everything.id].sort());
    expect(targets).not.toContain(quiet.id);
    expect(targets).not.toContain(inactive.id);
    for (const delivery of tasks) {
      expect(delivery).toMatchObject({
        messageId: task.messageId,
        topic,
        publishedAt: task.publishedAt,
        content: task.content,
      });
    }

    const status = await messageStatus(task.messageId);
    expect(status).toMatchObject({ state: "dispatched", matched: 2, filtered: 1 });
    expect(status.deliveries.map((d) => d.subscriberId).sort()).toEqual(targets);
    for (const delivery of status.deliveries) {
      expect(delivery).toMatchObject({ state: "pending", attempts: 0, lastStatus: null });
    }
  });

  it.each([
    ["a missing field", 'body.customer.tier == "gold"', { body: { category: "food" } }],
    ["a header the message lacks", 'headers.mode == "quiet"', { body: 1 }],
    ["a binary body", 'body == "x"', { bodyBase64: btoa("x"), contentType: "image/png" }],
  ])("treats %s as a non-match", async (_, filter, envelope) => {
    const { name: topic } = await seedTopic();
    await seedSubscriber(topic, { filter });
    const task = await publishTask(topic, envelope);
    const { batch, tasks } = await fanOut([task]);
    expect(tasks).toEqual([]);
    expect(batch.messages[0]?.outcome()).toEqual({ kind: "ack" });
    expect(await messageStatus(task.messageId)).toMatchObject({ matched: 0, filtered: 1 });
  });

  it.each([
    [
      "the parsed JSON of a JSON text body",
      'body.category == "food"',
      {
        bodyText: '{"category":"food"}',
        contentType: "application/json",
      },
    ],
    ["the text of a text body", 'body == "hello"', { bodyText: "hello" }],
    ["the message's query", 'query.page == "2"', { body: 1, query: { page: "2" } }],
    [
      "the message's path params",
      'pathParams.orderId == "42"',
      { body: 1, pathParams: { orderId: "42" } },
    ],
    ["the message's method", 'method == "PUT"', { body: 1, method: "PUT" }],
    [
      "lower-cased header names",
      'headers.mode == "quiet"',
      { body: 1, headers: { MODE: "quiet" } },
    ],
  ])("lets a filter see %s", async (_, filter, envelope) => {
    const { name: topic } = await seedTopic();
    const subscriber = await seedSubscriber(topic, { filter });
    const task = await publishTask(topic, envelope);
    const { tasks } = await fanOut([task]);
    expect(tasks.map((t) => t.subscriberId)).toEqual([subscriber.id]);
  });

  it("lets a filter see the parsed JSON of a raw message with a JSON content type", async () => {
    const { name: topic } = await seedTopic();
    const subscriber = await seedSubscriber(topic, { filter: 'body.category == "food"' });
    const fanout = recordingQueue();
    const res = await call("POST", `/v1/topics/${topic}/messages/raw`, {
      body: '{"category":"food"}',
      contentType: "application/json",
      env: { FANOUT_QUEUE: fanout.queue },
    });
    await expectJson(res, 202, PublishResult);
    const { tasks } = await fanOut(fanout.bodies());
    expect(tasks.map((t) => t.subscriberId)).toEqual([subscriber.id]);
  });
});

describe("fan-out I/O", () => {
  it("sends 250 matching deliveries as 25 bundles of ten in one sendBatch, filtered subscribers adding none", async () => {
    const { name: topic } = await seedTopic();
    await insertSubscribers(topic, 250, { filter: 'body.kind == "a"' });
    await insertSubscribers(topic, 40, { filter: 'body.kind == "b"' });
    await insertSubscribers(topic, 10, { active: false });
    const task = await publishTask(topic, { body: { kind: "a" } });

    const d1 = countingD1();
    const { deliveries, batch, tasks } = await fanOut([task], d1.db);

    expect(deliveries.calls.map((c) => [c.method, c.messages.length])).toEqual([["sendBatch", 25]]);
    for (const bundle of bundlesIn(deliveries.bodies())) {
      expect(bundle.messages.map((message) => message.messageId)).toEqual([task.messageId]);
      expect(bundle.subscriberIds).toHaveLength(10);
    }
    expectBundlesWithinLimits(deliveries);
    expect(tasks).toHaveLength(250);
    expect(new Set(tasks.map((delivery) => delivery.subscriberId)).size).toBe(250);
    // One round trip loads the subscribers and claims the message, one records the fan-out.
    expect(d1.calls).toHaveLength(2);
    expect(d1.calls.every((c) => c.kind === "batch")).toBe(true);
    expect(batch.messages[0]?.outcome()).toEqual({ kind: "ack" });
    expect(await messageStatus(task.messageId)).toMatchObject({ matched: 250, filtered: 40 });
  });

  it("sends 1,005 deliveries as 101 bundles, in sendBatch calls of at most 100", async () => {
    const { name: topic } = await seedTopic();
    await insertSubscribers(topic, 1005);
    const task = await publishTask(topic, { body: 1 });
    const { deliveries, batch, tasks } = await fanOut([task]);
    expect(deliveries.calls.map((c) => [c.method, c.messages.length])).toEqual([
      ["sendBatch", 100],
      ["sendBatch", 1],
    ]);
    expect(bundlesIn(deliveries.bodies()).map((bundle) => bundle.subscriberIds.length)).toEqual([
      ...Array<number>(100).fill(10),
      5,
    ]);
    expectBundlesWithinLimits(deliveries);
    expect(new Set(tasks.map((delivery) => delivery.subscriberId)).size).toBe(1005);
    expect(batch.messages[0]?.outcome()).toEqual({ kind: "ack" });
  });

  it("costs one D1 round trip to load (and claim) and one to record, for a batch of several messages and topics", async () => {
    const topics = [(await seedTopic()).name, (await seedTopic()).name];
    const tasks: FanoutTask[] = [];
    for (const topic of topics) {
      await insertSubscribers(topic, 3);
      tasks.push(await publishTask(topic, { body: 1 }), await publishTask(topic, { body: 2 }));
    }
    const d1 = countingD1();
    const { deliveries, batch, tasks: queued } = await fanOut(tasks, d1.db);
    expect(d1.calls.map((c) => c.kind)).toEqual(["batch", "batch"]);
    // A bundle per message, of its three subscribers, all in one sendBatch.
    expect(queued).toHaveLength(12);
    expect(bundlesIn(deliveries.bodies()).map((bundle) => bundle.messages[0]?.messageId)).toEqual(
      tasks.map((task) => task.messageId),
    );
    expect(deliveries.calls).toHaveLength(1);
    expect(batch.messages.map((m) => m.outcome())).toEqual(tasks.map(() => ({ kind: "ack" })));
  });

  it("keeps each sendBatch under 256 KB when a large inline message fans out", async () => {
    const { name: topic } = await seedTopic();
    await insertSubscribers(topic, 25);
    const task = await publishTask(topic, { bodyText: "z".repeat(90 * 1024) });
    expect(task.content).not.toBeNull();
    const { deliveries, tasks } = await fanOut([task]);
    // Three bundles of some 90 KB each (10, 10 and 5 subscribers) do not fit one sendBatch.
    expect(bundlesIn(deliveries.bodies()).map((bundle) => bundle.subscriberIds.length)).toEqual([
      10, 10, 5,
    ]);
    expect(deliveries.calls.length).toBeGreaterThan(1);
    expectBundlesWithinLimits(deliveries);
    expect(tasks).toHaveLength(25);
  });
});

describe("fan-out of a large message", () => {
  it("sends a message over 96 KB by reference, and it is still delivered whole", async () => {
    const { name: topic } = await seedTopic();
    const subscriber = await seedSubscriber(topic);
    const text = "big ".repeat(30 * 1024);
    const task = await publishTask(topic, { bodyText: text });
    expect(task.content).toBeNull();

    const { tasks, deliveries } = await fanOut([task]);
    expect(tasks).toHaveLength(1);
    expect(tasks[0]).toMatchObject({ subscriberId: subscriber.id, content: null });
    expect(deliveries.bodies().map(queuedBytes)).toEqual([expect.any(Number)]);
    expect(queuedBytes(deliveries.bodies()[0])).toBeLessThan(1000);

    const fetch = answering(200);
    const { batch } = await deliver(deliveries.bodies(), fetch.fetch);
    expect(batch.messages[0]?.outcome()).toEqual({ kind: "ack" });
    expect(fetch.requests).toHaveLength(1);
    expect(fetch.requests[0]?.body).toBe(text);
    expect(fetch.requests[0]?.headers["content-type"]).toBe("text/plain; charset=utf-8");
    const status = await messageStatus(task.messageId);
    expect(status.deliveries).toEqual([
      expect.objectContaining({ state: "delivered", attempts: 1 }),
    ]);
  });
});

describe("fan-out edge cases", () => {
  it("drops a task whose message was taken back, queuing nothing", async () => {
    const { name: topic } = await seedTopic();
    await seedSubscriber(topic);
    const task = await publishTask(topic, { body: 1 });
    await env.DB.prepare("delete from messages where id = ?").bind(task.messageId).run();
    const { batch, deliveries } = await fanOut([task]);
    expect(batch.messages[0]?.outcome()).toEqual({ kind: "ack" });
    expect(deliveries.calls).toEqual([]);
  });

  it("acks a malformed task", async () => {
    const { batch, deliveries } = await fanOut([{ nonsense: true }]);
    expect(batch.messages[0]?.outcome()).toEqual({ kind: "ack" });
    expect(deliveries.calls).toEqual([]);
  });

  it("fans a message out once when a second task for it comes fresh", async () => {
    const { name: topic } = await seedTopic();
    const subscriberIds = idsOf(await insertSubscribers(topic, 2));
    const task = await publishTask(topic, { body: 1 });
    await fanOut([task]);
    const { tasks, batch } = await fanOut([task]);
    expect(tasks).toHaveLength(0);
    expect(batch.messages[0]?.outcome()).toEqual({ kind: "ack" });
    expect(await pendingTo(task.messageId)).toEqual(subscriberIds);
    expect(await messageStatus(task.messageId)).toMatchObject({ matched: 2, filtered: 0 });
  });

  it("fans out a claimed message whose retry shares a batch with a fresh duplicate task", async () => {
    const { name: topic } = await seedTopic();
    const subscriberIds = idsOf(await insertSubscribers(topic, 2));
    const task = await publishTask(topic, { body: 1 });
    // The first task claims the message (first round trip), then recording its fan-out fails.
    let roundTrips = 0;
    const failRecording = countingD1(env.DB, () => ++roundTrips === 2);
    const first = await fanOut([task], failRecording.db);
    expect(first.batch.messages[0]?.outcome()).toMatchObject({ kind: "retry" });
    expect(await messageStatus(task.messageId)).toMatchObject({ matched: null, deliveries: [] });

    // A repeated publish's fresh task comes first, then the claiming task's retry.
    const deliveries = recordingQueue();
    const batch = messageBatch("switchboard-fanout", [task, task], [1, 2]);
    await handleFanoutBatch(batch, envWith({ DELIVERY_QUEUE: deliveries.queue }));
    expect(batch.messages.map((message) => message.outcome())).toEqual([
      { kind: "ack" },
      { kind: "ack" },
    ]);
    expect(deliveries.sent()).toHaveLength(1);
    expect(
      deliveriesIn(deliveries.bodies())
        .map((task) => task.subscriberId)
        .sort(),
    ).toEqual(subscriberIds);
    expect(await pendingTo(task.messageId)).toEqual(subscriberIds);
    expect(await messageStatus(task.messageId)).toMatchObject({ matched: 2, filtered: 0 });
  });

  it("re-sends on a redelivery of the task, without opening its deliveries again", async () => {
    const { name: topic } = await seedTopic();
    const [early, late] = await insertSubscribers(topic, 2);
    const task = await publishTask(topic, { body: 1 });
    const first = await fanOut([task]);
    // One delivery arrives before the fan-out task comes again.
    await deliver(
      first.tasks.filter((t) => t.subscriberId === early?.id),
      answering(200).fetch,
    );

    const again = await fanOut([task], env.DB, 2);
    expect(again.tasks.map((t) => t.subscriberId).sort()).toEqual(idsOf([early, late]));
    const { deliveries } = await messageStatus(task.messageId);
    expect(deliveries).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ subscriberId: early?.id, state: "delivered", attempts: 1 }),
        expect.objectContaining({ subscriberId: late?.id, state: "pending", attempts: 0 }),
      ]),
    );
    expect(deliveries).toHaveLength(2);

    // The re-sent bundle sends nothing for the delivery that arrived; the other one is delivered.
    const fetch = answering(200);
    const { batch } = await deliver(again.deliveries.bodies(), fetch.fetch);
    expect(fetch.requests.map((request) => request.headers["switchboard-attempt"])).toEqual(["1"]);
    expect(batch.messages.map((message) => message.outcome())).toEqual([{ kind: "ack" }]);
    expect((await messageStatus(task.messageId)).deliveries).toEqual([
      expect.objectContaining({ state: "delivered", attempts: 1 }),
      expect.objectContaining({ state: "delivered", attempts: 1 }),
    ]);
  });

  it("retries the batch with a delay, queuing nothing, when D1 fails", async () => {
    const { name: topic } = await seedTopic();
    await seedSubscriber(topic);
    const task = await publishTask(topic, { body: 1 });
    const d1 = countingD1(env.DB, () => true);
    const { batch, deliveries } = await fanOut([task], d1.db);
    const outcome = batch.messages[0]?.outcome();
    expect(outcome).toMatchObject({ kind: "retry" });
    expect(outcome?.kind === "retry" && outcome.delaySeconds).toBeGreaterThan(0);
    expect(deliveries.calls).toEqual([]);
  });

  it("retries a message whose deliveries could not be queued, and never throws", async () => {
    const { name: topic } = await seedTopic();
    await seedSubscriber(topic);
    const task = await publishTask(topic, { body: 1 });
    const deliveries = recordingQueue();
    deliveries.failWith(new Error("Queue send failed"));
    const batch = messageBatch("switchboard-fanout", [task]);
    await expect(
      handleFanoutBatch(batch, envWith({ DELIVERY_QUEUE: deliveries.queue })),
    ).resolves.toBeUndefined();
    expect(batch.messages[0]?.outcome()).toMatchObject({ kind: "retry" });
  });
});

describe("fan-out budget per invocation", () => {
  /** Fans out `tasks` with a budget of `budget` deliveries; the fan-out queue records put-backs. */
  async function fanOutWithBudget(tasks: readonly unknown[], budget: number, attempts = 1) {
    const deliveries = recordingQueue();
    const fanout = recordingQueue();
    const batch = messageBatch("switchboard-fanout", tasks, attempts);
    await handleFanoutBatch(
      batch,
      envWith({ DELIVERY_QUEUE: deliveries.queue, FANOUT_QUEUE: fanout.queue }),
      budget,
    );
    return { batch, deliveries, fanout };
  }

  it("puts the messages past its budget back, claimed, and each is fanned out exactly once", async () => {
    const { name: topic } = await seedTopic();
    const subscriberIds = idsOf(await insertSubscribers(topic, 3));
    const tasks = [
      await publishTask(topic, { body: 1 }),
      await publishTask(topic, { body: 2 }),
      await publishTask(topic, { body: 3 }),
    ];

    const first = await fanOutWithBudget(tasks, 4);
    expect(first.deliveries.sent()).toHaveLength(2);
    expect(deliveriesIn(first.deliveries.bodies())).toHaveLength(6);
    expect(first.batch.messages.map((m) => m.outcome())).toEqual(
      tasks.map(() => ({ kind: "ack" })),
    );
    const putBack = first.fanout.bodies();
    expect(putBack).toEqual([{ ...tasks[2], deferred: true }]);
    expect(await messageStatus(tasks[2]?.messageId ?? "")).toMatchObject({
      matched: null,
      deliveries: [],
    });

    // A fresh duplicate of the put-back message's task finds it claimed and drops it.
    const duplicate = await fanOutWithBudget([tasks[2]], 4);
    expect(duplicate.deliveries.sent()).toHaveLength(0);

    const second = await fanOutWithBudget(putBack, 4);
    expect(deliveriesIn(second.deliveries.bodies()).map((task) => task.messageId)).toEqual(
      Array(3).fill(tasks[2]?.messageId),
    );
    expect(second.fanout.calls).toEqual([]);
    for (const task of tasks) {
      expect(await messageStatus(task.messageId)).toMatchObject({ matched: 3, filtered: 0 });
      expect(await pendingTo(task.messageId)).toEqual(subscriberIds);
    }
  });

  it("always fans out the batch's first message, even one over the budget alone", async () => {
    const { name: topic } = await seedTopic();
    await insertSubscribers(topic, 5);
    const tasks = [await publishTask(topic, { body: 1 }), await publishTask(topic, { body: 2 })];
    const { deliveries, fanout } = await fanOutWithBudget(tasks, 2);
    expect(deliveriesIn(deliveries.bodies())).toHaveLength(5);
    expect(fanout.bodies()).toEqual([{ ...tasks[1], deferred: true }]);
  });

  it("retries a message it could not put back, which then fans out without a claim", async () => {
    const { name: topic } = await seedTopic();
    await insertSubscribers(topic, 2);
    const tasks = [await publishTask(topic, { body: 1 }), await publishTask(topic, { body: 2 })];
    const deliveries = recordingQueue();
    const fanout = recordingQueue();
    fanout.failWith(new Error("Queue send failed"));
    const batch = messageBatch("switchboard-fanout", tasks);
    await handleFanoutBatch(
      batch,
      envWith({ DELIVERY_QUEUE: deliveries.queue, FANOUT_QUEUE: fanout.queue }),
      1,
    );
    expect(batch.messages[0]?.outcome()).toEqual({ kind: "ack" });
    expect(batch.messages[1]?.outcome()).toMatchObject({ kind: "retry" });

    const retried = await fanOut([tasks[1]], env.DB, 2);
    expect(retried.tasks).toHaveLength(2);
    expect(await messageStatus(tasks[1]?.messageId ?? "")).toMatchObject({ matched: 2 });
  });
});

describe("a message accepted as its topic is made", () => {
  it("is fanned out, and keeps its key, when the publishing clock lags the one that made the topic", async () => {
    const { name: topic } = await seedTopic();
    await seedSubscriber(topic);
    const row = await env.DB.prepare("select created_at as c from topics where name = ?")
      .bind(topic)
      .first<{ c: number }>();
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime((row?.c ?? 0) - 1);
    let first: Awaited<ReturnType<typeof publish>>;
    try {
      first = await publish(topic, { body: 1 }, { idempotencyKey: "k" });
    } finally {
      vi.useRealTimers();
    }
    const { id } = await expectJson(first.res, 202, PublishResult);
    const { tasks } = await fanOut(first.fanout.bodies());
    expect(tasks).toHaveLength(1);
    const again = await publish(topic, { body: 1 }, { idempotencyKey: "k" });
    expect(await expectJson(again.res, 202, PublishResult)).toMatchObject({ id, duplicate: true });
  });
});
