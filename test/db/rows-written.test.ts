import { describe, expect, it } from "vitest";
import { runRetention } from "../../src/retention/scheduled";
import { call, seedSubscriber, seedTopic } from "../harness";
import {
  answering,
  deliver,
  envWith,
  fanOut,
  messageStatus,
  publishTask,
  recordingQueue,
} from "../pipeline/support";
import { meteredD1 } from "./metered-d1";

/** Publishes through the Worker with inline fan-out on, on the metered database. */
async function publishInline(
  meter: ReturnType<typeof meteredD1>,
  topic: string,
  json: unknown,
  options: { batch?: boolean; key?: string } = {},
) {
  const deliveries = recordingQueue();
  const res = await call("POST", `/v1/topics/${topic}/messages${options.batch ? "/batch" : ""}`, {
    json,
    headers: options.key ? { "idempotency-key": options.key } : {},
    env: {
      DB: meter.db,
      INLINE_FANOUT_MAX_SUBSCRIBERS: "10",
      FANOUT_QUEUE: recordingQueue().queue,
      DELIVERY_QUEUE: deliveries.queue,
    },
  });
  expect(res.status, await res.clone().text()).toBe(202);
  return { res, tasks: deliveries.bodies() };
}

describe("rows written", () => {
  it("by a publish fanned out inline: the message, and its key's index entry when it has one", async () => {
    const { name: topic } = await seedTopic();
    await seedSubscriber(topic);
    const meter = meteredD1();
    await publishInline(meter, topic, { body: { n: 1 } });
    expect(meter.take()).toBe(1);
    await publishInline(meter, topic, { body: { n: 2 } }, { key: "k-1" });
    expect(meter.take()).toBe(2);
  });

  it("by a batch of 100 fanned out inline: one per message, and one more per key", async () => {
    const { name: topic } = await seedTopic();
    await seedSubscriber(topic);
    const meter = meteredD1();
    const messages = Array.from({ length: 100 }, (_, n) => ({ body: { n } }));
    await publishInline(meter, topic, { messages }, { batch: true });
    expect(meter.take()).toBe(100);
    const keyed = messages.map((message, n) => ({ ...message, idempotencyKey: `k-${n}` }));
    await publishInline(meter, topic, { messages: keyed }, { batch: true });
    expect(meter.take()).toBe(200);
  });

  it("by the first attempts of a batch: one per message, whatever its deliveries", async () => {
    const { name: topic } = await seedTopic();
    for (let i = 0; i < 10; i++) await seedSubscriber(topic);
    const meter = meteredD1();
    const first = await publishInline(meter, topic, { body: { n: 1 } });
    const second = await publishInline(meter, topic, { body: { n: 2 } });
    meter.take();
    await deliver([...first.tasks, ...second.tasks], answering(200).fetch, { db: meter.db });
    expect(meter.take()).toBe(2);
  });

  it("by a fan-out through the queue: one per message, its deliveries opened in its row", async () => {
    const { name: topic } = await seedTopic();
    for (let i = 0; i < 10; i++) await seedSubscriber(topic, { filter: "body.n >= 0" });
    const task = await publishTask(topic, { body: { n: 1 } });
    const meter = meteredD1();
    const { tasks } = await fanOut([task], meter.db);
    expect(tasks).toHaveLength(10);
    expect(meter.take()).toBe(1);
    await deliver(tasks, answering(200).fetch, { db: meter.db });
    expect(meter.take()).toBe(1);
    const status = await messageStatus(task.messageId);
    expect(status.deliveries.map((delivery) => delivery.state)).toEqual(
      Array(10).fill("delivered"),
    );
  });

  it("by a retry: the delivery's row and its message marked dispatched, then one per attempt", async () => {
    const { name: topic } = await seedTopic();
    await seedSubscriber(topic);
    const meter = meteredD1();
    const { tasks } = await publishInline(meter, topic, { body: { n: 1 } });
    meter.take();
    await deliver(tasks, answering(503).fetch, { db: meter.db });
    expect(meter.take()).toBe(2);
    await deliver(tasks, answering(200).fetch, { db: meter.db, attempts: 2 });
    expect(meter.take()).toBe(1);
  });

  it("by deactivating a subscriber with open deliveries: its own row alone", async () => {
    const { name: topic } = await seedTopic();
    const subscriber = await seedSubscriber(topic);
    const meter = meteredD1();
    for (let n = 0; n < 5; n++) await publishInline(meter, topic, { body: { n } });
    meter.take();
    const res = await call("PATCH", `/v1/subscribers/${subscriber.id}`, {
      json: { active: false },
      env: { DB: meter.db },
    });
    expect(res.status).toBe(200);
    expect(meter.take()).toBe(1);
  });

  it("by retention: one per message and one per delivery row, nothing else", async () => {
    const { name: topic } = await seedTopic();
    await seedSubscriber(topic);
    const meter = meteredD1();
    const delivered = await publishInline(meter, topic, { body: { n: 1 } }, { key: "r-1" });
    const retried = await publishInline(meter, topic, { body: { n: 2 } });
    await deliver(delivered.tasks, answering(200).fetch);
    await deliver(retried.tasks, answering(503).fetch);
    await deliver(retried.tasks, answering(200).fetch, { attempts: 2 });
    meter.take();
    const later = Date.now() + 8 * 24 * 60 * 60 * 1000;
    const deleted = await runRetention(envWith({ DB: meter.db }), later);
    expect(deleted.messages).toBeGreaterThanOrEqual(2);
    expect(meter.take()).toBe(deleted.messages + deleted.deliveries + deleted.dead_letters);
  });
});
