/**
 * A consumer invocation that dies part-way: a fetch that throws something that is not an Error, a
 * delivery the broker itself cannot build, storage that throws on the read or on the write. The
 * handler never throws (the runtime would redeliver acknowledged messages too), acknowledges what
 * is settled, and retries the rest, which then arrives: running the retried messages again
 * delivers them, and nothing is lost.
 *
 * Covered elsewhere, in test/pipeline/delivery.test.ts ("delivery when D1 is broken"): a read that
 * rejects retries the batch without a request and does not count as an attempt; a write that
 * rejects acks, retries and hands dead deliveries to the dead-letter queue; and a dead delivery
 * that neither D1 nor that queue takes is retried. test/pipeline/fanout.test.ts covers the fan-out
 * under a rejecting D1 and a failing delivery queue, and test/queues/handler.test.ts the queue
 * entry point retrying a batch whose consumer throws.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { handleDeliveryBatch } from "../../src/delivery/consumer";
import { handleFanoutBatch } from "../../src/fanout/consumer";
import { DeadRecordSchema, DeliveryTaskSchema, SettledRecordSchema } from "../../src/queues/tasks";
import { readSubscriber, seedTopic, silenceErrorLog } from "../harness";
import {
  answering,
  consumeDeadLetters,
  deliver,
  deps,
  envWith,
  fanOut,
  insertSubscribers,
  messageBatch,
  okFailingGone,
  pendingTo,
  publishAndFanOut,
  publishTask,
  recordingQueue,
  stubFetch,
} from "../pipeline/support";
import { deadLettersOf, deliveryOf, oneDelivery, throwingBatches } from "./support";

silenceErrorLog();

describe("a fetch that throws something that is not an Error", () => {
  it.each([
    ["a string", () => "socket hang up"],
    ["undefined", () => undefined],
    ["null", () => null],
    ["a plain object", () => ({ errno: -104 })],
    ["a number", () => 42],
  ])(
    "is a failed attempt when it throws %s, and the retry is delivered",
    async (_label, thrown) => {
      const { messageId, task } = await oneDelivery({ retry: { maxAttempts: 3 } });
      const broken = stubFetch(() => {
        throw thrown();
      });
      const first = deliver([task], broken.fetch);
      await expect(first).resolves.toBeDefined();
      const { batch } = await first;
      expect(batch.messages[0]?.outcome()?.kind).toBe("retry");
      expect(await deliveryOf(messageId)).toMatchObject({ state: "retrying", attempts: 1 });

      const healthy = answering(200);
      const again = await deliver([task], healthy.fetch, { attempts: 2 });
      expect(healthy.requests.map((r) => r.headers["switchboard-attempt"])).toEqual(["2"]);
      expect(again.batch.messages[0]?.outcome()).toEqual({ kind: "ack" });
      expect(await deliveryOf(messageId)).toMatchObject({ state: "delivered", attempts: 2 });
    },
  );
});

describe("a delivery the broker cannot build", () => {
  it.each([
    ["its URL no longer parses", "url", "not a url"],
    ["its secret is not a signing secret", "secret", "not-a-secret"],
  ])(
    "is retried alone when %s; the rest of the batch is delivered once",
    async (_label, column, value) => {
      const { name: topic } = await seedTopic();
      const [poisoned, ...healthy] = await insertSubscribers(topic, 4);
      const { messageId, tasks } = await publishAndFanOut(topic, { body: 1 });
      // Written behind the API's back: the API would never store it.
      await env.DB.prepare(`update subscribers set ${column} = ? where id = ?`)
        .bind(value, poisoned?.id)
        .run();

      const fetch = answering(200);
      const { batch } = await deliver(tasks, fetch.fetch);
      const outcomeOf = (id: string | undefined) =>
        batch.messages[tasks.findIndex((task) => task.subscriberId === id)]?.outcome();

      expect(fetch.requests).toHaveLength(healthy.length);
      for (const subscriber of healthy) {
        expect(outcomeOf(subscriber.id)).toEqual({ kind: "ack" });
        expect(await deliveryOf(messageId, subscriber.id)).toMatchObject({ state: "delivered" });
      }
      expect(outcomeOf(poisoned?.id)?.kind).toBe("retry");
      expect(await deliveryOf(messageId, poisoned?.id)).toMatchObject({
        state: "pending",
        attempts: 0,
      });

      // Repaired, the retried delivery arrives, and the others are not sent again.
      const repaired = column === "url" ? "https://hooks.example.com/repaired" : healthy[0]?.secret;
      await env.DB.prepare(`update subscribers set ${column} = ? where id = ?`)
        .bind(repaired, poisoned?.id)
        .run();
      const later = answering(200);
      await deliver(tasks, later.fetch, { attempts: 2 });
      expect(later.requests).toHaveLength(1);
      expect(later.requests[0]?.headers["switchboard-attempt"]).toBe("1");
      expect(await deliveryOf(messageId, poisoned?.id)).toMatchObject({
        state: "delivered",
        attempts: 1,
      });
    },
  );
});

describe("storage that throws while the consumer works", () => {
  it.each([
    ["a D1 error", () => new Error("D1_ERROR: Network connection lost.")],
    ["a TypeError", () => new TypeError("Cannot read properties of undefined (reading 'batch')")],
    ["a string", () => "storage exploded"],
  ])(
    "retries every delivery without a request when the read throws %s; the retry is delivered",
    async (_label, thrown) => {
      const { messageId, task } = await oneDelivery({ retry: { maxAttempts: 1 } });
      const fetch = answering(200);
      const batch = messageBatch("switchboard-deliveries", [task]);
      await expect(
        handleDeliveryBatch(
          batch,
          envWith({ DB: throwingBatches(() => true, thrown) }),
          deps(fetch.fetch),
        ),
      ).resolves.toBeUndefined();
      expect(fetch.requests).toEqual([]);
      expect(batch.messages[0]?.outcome()?.kind).toBe("retry");

      const healthy = answering(200);
      await deliver([task], healthy.fetch, { attempts: 2 });
      expect(healthy.requests).toHaveLength(1);
      expect(await deliveryOf(messageId)).toMatchObject({ state: "delivered", attempts: 1 });
    },
  );

  it("settles every delivery when recording the outcomes throws, and loses none of them", async () => {
    const { ok, failing, gone, messageId, tasks, fetch } = await okFailingGone(503);
    // The read works; every write throws, the broker's one retry of it included.
    const db = throwingBatches(
      (index) => index >= 1,
      () => new TypeError("recordOutcomes blew up"),
    );

    const { batch, deadLetterQueue } = await deliver(tasks, fetch.fetch, { db });
    const indexOf = (id: string) => tasks.findIndex((task) => task.subscriberId === id);
    expect(batch.messages[indexOf(ok.id)]?.outcome()).toEqual({ kind: "ack" });
    expect(batch.messages[indexOf(failing.id)]?.outcome()?.kind).toBe("retry");
    expect(batch.messages[indexOf(gone.id)]?.outcome()).toEqual({ kind: "ack" });
    expect(fetch.requests).toHaveLength(3);

    // The retried delivery arrives on its next attempt.
    const healthy = answering(200);
    const retried = tasks.filter((task) => task.subscriberId === failing.id);
    await deliver(retried, healthy.fetch, { attempts: 2 });
    expect(healthy.requests).toHaveLength(1);
    expect(await deliveryOf(messageId, failing.id)).toMatchObject({ state: "delivered" });

    // The dead one and the delivered one, handed to the dead-letter queue, are recorded there.
    const bodies = deadLetterQueue.bodies();
    expect(bodies.flatMap((body) => DeadRecordSchema.safeParse(body).data ?? [])).toEqual([
      expect.objectContaining({ subscriberId: gone.id, lastStatus: 410, gone: true }),
    ]);
    expect(bodies.flatMap((body) => SettledRecordSchema.safeParse(body).data ?? [])).toEqual([
      expect.objectContaining({ subscriberId: ok.id, state: "delivered", lastStatus: 200 }),
    ]);
    await consumeDeadLetters(bodies);
    expect(await deadLettersOf(gone.id)).toEqual([
      expect.objectContaining({ messageId, lastStatus: 410 }),
    ]);
    expect(await deliveryOf(messageId, ok.id)).toMatchObject({ state: "delivered", attempts: 1 });
    const view = await readSubscriber(gone.id);
    expect(view.active).toBe(false);
  });

  it("retries a fan-out whose read throws, and fans it out once when run again", async () => {
    const { name: topic } = await seedTopic();
    const subscriberIds = (await insertSubscribers(topic, 2)).map((s) => s.id).sort();
    const task = await publishTask(topic, { body: 1 });
    const broken = await fanOut(
      [task],
      throwingBatches(
        () => true,
        () => "storage exploded",
      ),
    );
    expect(broken.batch.messages[0]?.outcome()?.kind).toBe("retry");
    expect(broken.deliveries.calls).toEqual([]);

    const { tasks } = await fanOut([task]);
    expect(tasks.map((t) => t.subscriberId).sort()).toEqual(subscriberIds);
    expect(await pendingTo(task.messageId)).toEqual(subscriberIds);
  });

  it("retries a fan-out whose delivery tasks could not be sent, without opening deliveries twice", async () => {
    const { name: topic } = await seedTopic();
    const subscriberIds = (await insertSubscribers(topic, 2)).map((s) => s.id).sort();
    const task = await publishTask(topic, { body: 1 });
    const deliveries = recordingQueue();
    const failing: Queue<unknown> = {
      ...deliveries.queue,
      sendBatch: () => Promise.reject("queue went away"),
    };
    const batch = messageBatch("switchboard-fanout", [task]);
    await expect(
      handleFanoutBatch(batch, envWith({ DELIVERY_QUEUE: failing })),
    ).resolves.toBeUndefined();
    expect(batch.messages[0]?.outcome()?.kind).toBe("retry");

    // The queue redelivers it as attempt 2, which re-sends even though attempt 1 claimed it.
    const { tasks } = await fanOut([task], env.DB, 2);
    expect(tasks.map((t) => DeliveryTaskSchema.parse(t).messageId)).toEqual([
      task.messageId,
      task.messageId,
    ]);
    expect(tasks.map((t) => t.subscriberId).sort()).toEqual(subscriberIds);
    expect(await pendingTo(task.messageId)).toEqual(subscriberIds);
  });

  it("retries dead records the dead-letter consumer cannot store, and records them once later", async () => {
    const { subscriber, task } = await oneDelivery({ retry: { maxAttempts: 1 } });
    const deadLetterQueue = recordingQueue();
    await deliver([task], answering(500).fetch, {
      db: throwingBatches(
        (index) => index >= 1,
        () => new Error("D1_ERROR: Network connection lost."),
      ),
      deadLetterQueue,
    });
    const records = deadLetterQueue.bodies();
    expect(records).toHaveLength(1);

    const broken = await consumeDeadLetters(
      records,
      throwingBatches(
        () => true,
        () => undefined,
      ),
    );
    expect(broken.batch.messages[0]?.outcome()?.kind).toBe("retry");
    expect(await deadLettersOf(subscriber.id)).toEqual([]);

    const healthy = await consumeDeadLetters(records);
    expect(healthy.batch.messages[0]?.outcome()).toEqual({ kind: "ack" });
    expect(await deadLettersOf(subscriber.id)).toHaveLength(1);
  });
});
