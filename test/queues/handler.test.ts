/**
 * The Worker's queue entry point hands each batch to the consumer of its queue, recognized by the
 * name's suffix, and never throws.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import worker from "../../src/index";
import { handleQueue } from "../../src/queues/handler";
import { FanoutTaskSchema } from "../../src/queues/tasks";
import { seedSubscriber, seedTopic, silenceErrorLog } from "../harness";
import {
  deliveriesIn,
  envWith,
  fanOut,
  messageBatch,
  publishTask,
  recordingQueue,
} from "../pipeline/support";

silenceErrorLog();

describe("handleQueue", () => {
  it("is the Worker's queue handler", () => {
    expect(worker.queue).toBe(handleQueue);
  });

  it.each(["switchboard-fanout", "acme-fanout"])("fans out batches from %s", async (queue) => {
    const { name: topic } = await seedTopic();
    const subscriber = await seedSubscriber(topic);
    const task = await publishTask(topic, { body: 1 });
    const deliveries = recordingQueue();
    const batch = messageBatch(queue, [task]);
    await handleQueue(batch, envWith({ DELIVERY_QUEUE: deliveries.queue }));
    expect(deliveries.bodies()).toEqual([
      expect.objectContaining({ kind: "bundle", subscriberIds: [subscriber.id] }),
    ]);
    expect(deliveriesIn(deliveries.bodies())).toEqual([
      expect.objectContaining({ messageId: task.messageId, subscriberId: subscriber.id }),
    ]);
    expect(batch.messages[0]?.outcome()).toEqual({ kind: "ack" });
  });

  it.each(["switchboard-deliveries", "acme-deliveries"])(
    "delivers batches from %s",
    async (queue) => {
      const { name: topic } = await seedTopic();
      await seedSubscriber(topic);
      const { deliveries } = await fanOut([await publishTask(topic, { body: 1 })]);
      const fetch = vi
        .spyOn(globalThis, "fetch")
        .mockResolvedValue(new Response(null, { status: 200 }));
      // The bundle the fan-out queued, as the delivery queue hands it over.
      const batch = messageBatch(queue, deliveries.bodies());
      await handleQueue(batch, env);
      expect(fetch).toHaveBeenCalledTimes(1);
      expect(batch.messages[0]?.outcome()).toEqual({ kind: "ack" });
    },
  );

  it.each(["switchboard-dead-letters", "acme-dead-letters"])(
    "records batches from %s",
    async (queue) => {
      const { name: topic } = await seedTopic();
      const task = await publishTask(topic, { body: 1 });
      const fanout = recordingQueue();
      const batch = messageBatch(queue, [task]);
      await handleQueue(batch, envWith({ FANOUT_QUEUE: fanout.queue }));
      expect(FanoutTaskSchema.parse(fanout.bodies()[0]).redrives).toBe(1);
    },
  );

  it("retries a batch from a queue it does not know", async () => {
    const batch = messageBatch("something-else", [{}]);
    await handleQueue(batch, env);
    expect(batch.retryAll).toHaveBeenCalledWith({ delaySeconds: expect.any(Number) });
  });

  it("retries the batch instead of throwing when a consumer throws", async () => {
    const batch = messageBatch("switchboard-fanout", [{}]);
    Object.defineProperty(batch, "messages", {
      get() {
        throw new Error("boom");
      },
    });
    await expect(handleQueue(batch, env)).resolves.toBeUndefined();
    expect(batch.retryAll).toHaveBeenCalledWith({ delaySeconds: expect.any(Number) });
  });
});
