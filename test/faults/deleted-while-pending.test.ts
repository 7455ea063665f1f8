/**
 * A subscriber or topic that goes away while deliveries to it are pending: no further request is
 * made, each pending delivery ends `cancelled`, and nothing else (no dead letter, no delivery to a
 * namesake) comes out of the deliveries that were on their way.
 *
 * Covered elsewhere: test/pipeline/delivery.test.ts ("a subscriber that changed meanwhile") covers
 * a subscriber deleted, deactivated, deactivated behind the API's back, or gone with its topic
 * before the first attempt; test/api/pending-deliveries.test.ts covers how the API shows open
 * deliveries, in the record or in rows, once their subscriber goes, and that reactivating does not
 * revive them.
 */
import { describe, expect, it } from "vitest";
import { DeadLetterList, Replayed } from "../../src/api/schemas/dead-letters";
import { call, expectJson, seedSubscriber, seedTopic, silenceErrorLog } from "../harness";
import {
  answering,
  deliver,
  fanOut,
  insertSubscribers,
  messageStatus,
  publishAndFanOut,
  publishTask,
  recordingQueue,
  stubFetch,
} from "../pipeline/support";
import { deadLettersOf, deliveryOf, oneDelivery } from "./support";

silenceErrorLog();

type Removal = (subscriber: { id: string; topic: string }) => Promise<Response>;

const REMOVALS: [label: string, remove: Removal][] = [
  ["the subscriber is deleted", (s) => call("DELETE", `/v1/subscribers/${s.id}`)],
  ["its topic is deleted", (s) => call("DELETE", `/v1/topics/${s.topic}`)],
  [
    "the subscriber is deactivated",
    (s) => call("PATCH", `/v1/subscribers/${s.id}`, { json: { active: false } }),
  ],
];

describe("a delivery waiting for its retry", () => {
  it.each(REMOVALS)(
    "gets no further request when %s, and ends cancelled with its last attempt kept",
    async (_label, remove) => {
      const { subscriber, messageId, task } = await oneDelivery({
        retry: { maxAttempts: 5, baseDelaySeconds: 1 },
      });
      await deliver([task], answering(503).fetch, { attempts: 1 });
      expect(await deliveryOf(messageId)).toMatchObject({ state: "retrying", attempts: 1 });

      expect((await remove(subscriber)).status).toBeLessThan(300);
      const cancelled = await deliveryOf(messageId);
      expect(cancelled).toMatchObject({
        state: "cancelled",
        attempts: 1,
        lastStatus: 503,
        nextAttemptAt: null,
      });
      expect(cancelled.lastError).toMatch(/^HTTP 503/);

      // Consuming its retry records the cancellation as it was shown, the last attempt kept.
      const fetch = answering(200);
      const { batch } = await deliver([task], fetch.fetch, { attempts: 2 });
      expect(fetch.requests).toEqual([]);
      expect(batch.messages[0]?.outcome()).toEqual({ kind: "ack" });
      expect(await deliveryOf(messageId)).toEqual(cancelled);
      expect(await deadLettersOf(subscriber.id)).toEqual([]);
    },
  );
});

describe("a delivery whose attempt is in flight", () => {
  it.each(REMOVALS)(
    "is neither dead-lettered nor reopened when %s during its last attempt",
    async (_label, remove) => {
      const { subscriber, messageId, task } = await oneDelivery({ retry: { maxAttempts: 1 } });
      const fetch = stubFetch(async () => {
        expect((await remove(subscriber)).status).toBeLessThan(300);
        return new Response("try later", { status: 500 });
      });
      const { batch, deadLetterQueue } = await deliver([task], fetch.fetch);
      expect(fetch.requests).toHaveLength(1);
      expect(batch.messages[0]?.outcome()).toEqual({ kind: "ack" });
      expect(deadLetterQueue.calls).toEqual([]);
      expect(await deliveryOf(messageId)).toMatchObject({ state: "cancelled" });
      expect(await deadLettersOf(subscriber.id)).toEqual([]);

      const late = answering(200);
      await deliver([task], late.fetch, { attempts: 2 });
      expect(late.requests).toEqual([]);
    },
  );

  it("is not reopened as retrying when the subscriber is deleted during an attempt that fails", async () => {
    const { subscriber, messageId, task } = await oneDelivery({ retry: { maxAttempts: 5 } });
    const fetch = stubFetch(async () => {
      await call("DELETE", `/v1/subscribers/${subscriber.id}`);
      return new Response(null, { status: 500 });
    });
    await deliver([task], fetch.fetch);
    expect(await deliveryOf(messageId)).toMatchObject({ state: "cancelled", nextAttemptAt: null });

    // Whether the queue message was retried or acked, its next consumption sends nothing.
    const late = answering(200);
    const { batch } = await deliver([task], late.fetch, { attempts: 2 });
    expect(late.requests).toEqual([]);
    expect(batch.messages[0]?.outcome()).toEqual({ kind: "ack" });
  });
});

describe("a whole batch for a topic that was deleted", () => {
  it("makes no request and cancels every delivery", async () => {
    const { name: topic } = await seedTopic();
    await insertSubscribers(topic, 30);
    const { messageId, tasks } = await publishAndFanOut(topic, { body: 1 });
    expect(tasks).toHaveLength(30);
    expect((await call("DELETE", `/v1/topics/${topic}`)).status).toBe(204);

    const fetch = answering(200);
    const batches = [tasks.slice(0, 24), tasks.slice(24)];
    for (const part of batches) {
      const { batch } = await deliver(part, fetch.fetch);
      expect(batch.messages.every((message) => message.outcome()?.kind === "ack")).toBe(true);
    }
    expect(fetch.requests).toEqual([]);
    const { deliveries } = await messageStatus(messageId);
    expect(new Set(deliveries.map((delivery) => delivery.state))).toEqual(new Set(["cancelled"]));
  });
});

describe("a message not yet fanned out when its topic goes", () => {
  it("opens no delivery once the topic is deleted", async () => {
    const { name: topic } = await seedTopic();
    await seedSubscriber(topic);
    const task = await publishTask(topic, { body: "before the deletion" });
    expect((await call("DELETE", `/v1/topics/${topic}`)).status).toBe(204);

    const { batch, deliveries } = await fanOut([task]);
    expect(batch.messages[0]?.outcome()).toEqual({ kind: "ack" });
    expect(deliveries.calls).toEqual([]);
    // The message itself stays until retention removes it, with no delivery.
    expect(await messageStatus(task.messageId)).toMatchObject({ matched: null, deliveries: [] });
  });

  it("is not delivered to a new topic that takes the same name", async () => {
    const { name: topic } = await seedTopic();
    await seedSubscriber(topic);
    const task = await publishTask(topic, { body: "for the old topic" });
    expect((await call("DELETE", `/v1/topics/${topic}`)).status).toBe(204);
    await seedTopic({ name: topic });
    const newcomer = await seedSubscriber(topic);

    const { deliveries } = await fanOut([task]);
    expect(deliveries.bodies()).toEqual([]);
    expect(await messageStatus(task.messageId)).toMatchObject({ matched: null, deliveries: [] });
    const fetch = answering(200);
    await deliver(deliveries.bodies(), fetch.fetch);
    expect(fetch.requests).toEqual([]);
    expect(await deadLettersOf(newcomer.id)).toEqual([]);
  });
});

describe("a replay queued before its subscriber goes", () => {
  it("makes no request and leaves the delivery cancelled", async () => {
    const { subscriber, messageId, task } = await oneDelivery({ retry: { maxAttempts: 1 } });
    await deliver([task], answering(500).fetch);
    const [deadLetter] = await deadLettersOf(subscriber.id);
    const queue = recordingQueue();
    const replay = await call("POST", `/v1/dead-letters/${deadLetter?.id}/replay`, {
      env: { DELIVERY_QUEUE: queue.queue },
    });
    expect(await expectJson(replay, 202, Replayed)).toEqual({ replayed: 1 });

    expect((await call("DELETE", `/v1/subscribers/${subscriber.id}`)).status).toBe(204);
    const fetch = answering(200);
    const { batch } = await deliver(queue.bodies(), fetch.fetch);
    expect(fetch.requests).toEqual([]);
    expect(batch.messages[0]?.outcome()).toEqual({ kind: "ack" });
    expect(await deliveryOf(messageId)).toMatchObject({ state: "cancelled" });
    const list = await expectJson(
      await call("GET", `/v1/dead-letters?subscriberId=${subscriber.id}`),
      200,
      DeadLetterList,
    );
    expect(list.deadLetters).toEqual([]);
  });
});
