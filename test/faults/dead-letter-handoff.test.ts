/**
 * When D1 cannot take a delivery batch's outcomes, the finished ones go to the dead-letter queue
 * instead. That hand-off must respect the queue's limits (100 messages and 256 KB per `sendBatch`,
 * 128 KB per message) as the platform enforces them, or one refused call would send every
 * delivered message to its subscriber again.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { DeadRecordSchema, type DeliveryTask, parseStoredContent } from "../../src/queues/tasks";
import { seedSubscriber, seedTopic, silenceErrorLog } from "../harness";
import {
  consumeDeadLetters,
  countingD1,
  deliver,
  isWrite,
  publishAndFanOut,
  queuedBytes,
  type RecordingQueue,
  recordingQueue,
  rowsOf,
  stubFetch,
} from "../pipeline/support";
import { deadLettersOf, deliveryOf } from "./support";

silenceErrorLog();

/** The platform's limits, with the ~100 B of metadata it counts per message. */
const MESSAGE_LIMIT = 128_000;
const BATCH_LIMIT = 256_000;
const BATCH_COUNT = 100;
const METADATA = 100;

/** A recording queue whose `sendBatch` refuses what the platform would refuse. */
function limitedQueue(): RecordingQueue {
  const recording = recordingQueue();
  const sendBatch: Queue<unknown>["sendBatch"] = (messages, options) => {
    const sizes = [...messages].map((message) => queuedBytes(message.body) + METADATA);
    const total = sizes.reduce((sum, size) => sum + size, 0);
    if (sizes.length > BATCH_COUNT || total > BATCH_LIMIT || sizes.some((s) => s > MESSAGE_LIMIT)) {
      return Promise.reject(
        new Error(`Queue sendBatch failed: ${sizes.length} messages, ${total} B`),
      );
    }
    return recording.queue.sendBatch(messages, options);
  };
  return { ...recording, queue: { ...recording.queue, sendBatch } };
}

/** A JSON body of `count` two-letter strings: quotes make up much of its JSON. */
function quotedBody(count: number): string[] {
  return Array.from({ length: count }, () => "ab");
}

/** Subscribers answering 200 (one) and 500 (`failing`, each with one attempt), by host. */
async function okAndFailing(topic: string, failing: number) {
  const ok = await seedSubscriber(topic, { url: "https://ok.example.com/" });
  const dead = [];
  for (let i = 0; i < failing; i++) {
    dead.push(
      await seedSubscriber(topic, {
        url: "https://failing.example.com/",
        retry: { maxAttempts: 1 },
      }),
    );
  }
  const fetch = stubFetch(
    (request) =>
      new Response(null, { status: new URL(request.url).host === "ok.example.com" ? 200 : 500 }),
  );
  return { ok, dead, fetch };
}

describe("handing unrecorded outcomes to the dead-letter queue", () => {
  it("splits large dead records across sendBatch calls and acks every message, the delivered one included", async () => {
    const { name: topic } = await seedTopic();
    const { ok, dead, fetch } = await okAndFailing(topic, 3);
    // Just under the inline limit as JSON; as escaped JSON text it would be over 128 KB.
    const body = quotedBody(19_000);
    const { messageId, tasks } = await publishAndFanOut(topic, { body });
    expect(tasks.every((task) => task.content !== null)).toBe(true);

    const deadLetterQueue = limitedQueue();
    const { batch } = await deliver(tasks, fetch.fetch, {
      db: countingD1(env.DB, isWrite).db,
      deadLetterQueue,
    });
    expect(fetch.requests).toHaveLength(4);
    expect(batch.messages.map((message) => message.outcome())).toEqual(
      tasks.map(() => ({ kind: "ack" })),
    );
    expect(deadLetterQueue.calls.length).toBeGreaterThan(1);
    expect(deadLetterQueue.bodies()).toHaveLength(4);

    // The records reach D1 through the dead-letter consumer, each dead letter with its content.
    const consumed = await consumeDeadLetters(deadLetterQueue.bodies());
    expect(consumed.batch.messages.every((m) => m.outcome()?.kind === "ack")).toBe(true);
    expect(await deliveryOf(messageId, ok.id)).toMatchObject({ state: "delivered", attempts: 1 });
    for (const subscriber of dead) {
      expect(await deadLettersOf(subscriber.id)).toEqual([expect.objectContaining({ messageId })]);
    }
    const rows = await rowsOf("dead_letters", topic);
    expect(rows).toHaveLength(3);

    // The queue may deliver a record again: it is recorded under the id it was given when the
    // delivery died, so no second dead letter appears.
    const again = await consumeDeadLetters(deadLetterQueue.bodies());
    expect(again.batch.messages.every((m) => m.outcome()?.kind === "ack")).toBe(true);
    expect(await rowsOf("dead_letters", topic)).toHaveLength(3);
    for (const row of rows) {
      const payload = typeof row.payload === "string" ? row.payload : null;
      expect(parseStoredContent(payload)?.body).toEqual({
        kind: "json",
        value: body,
        contentType: "application/json",
      });
    }
  });

  it("retries alone a record too large for a queue message, and hands over the others", async () => {
    const { name: topic } = await seedTopic();
    const { ok, dead, fetch } = await okAndFailing(topic, 2);
    const { tasks } = await publishAndFanOut(topic, { body: 1 });
    const [oversized] = dead;
    // A task whose content alone nearly fills a queue message: its record, with the outcome
    // added, would not fit in one.
    const withContent = (task: DeliveryTask): DeliveryTask =>
      task.subscriberId === oversized?.id && task.content
        ? {
            ...task,
            content: {
              ...task.content,
              body: { kind: "text", text: "x".repeat(127_500), contentType: "text/plain" },
            },
          }
        : task;

    const deadLetterQueue = limitedQueue();
    const { batch } = await deliver(tasks.map(withContent), fetch.fetch, {
      db: countingD1(env.DB, isWrite).db,
      deadLetterQueue,
    });
    const outcomeOf = (subscriberId: string | undefined) =>
      batch.messages[tasks.findIndex((task) => task.subscriberId === subscriberId)]?.outcome();
    expect(outcomeOf(oversized?.id)).toMatchObject({ kind: "retry" });
    expect(outcomeOf(ok.id)).toEqual({ kind: "ack" });
    expect(outcomeOf(dead[1]?.id)).toEqual({ kind: "ack" });
    const handed = deadLetterQueue.bodies();
    expect(handed).toHaveLength(2);
    expect(handed.flatMap((body) => DeadRecordSchema.safeParse(body).data ?? [])).toEqual([
      expect.objectContaining({ subscriberId: dead[1]?.id }),
    ]);
  });

  it("hands over records that the previous version's consumer still reads as dead records", async () => {
    // What a dead record was before it carried its content as an object: during a deploy, that
    // version's consumer may read the records this one hands over.
    const previousDeadRecord = z.object({
      kind: z.literal("dead"),
      messageId: z.string(),
      subscriberId: z.string(),
      topic: z.string(),
      publishedAt: z.number(),
      attempts: z.number().int(),
      lastStatus: z.number().int().nullable(),
      lastError: z.string().nullable(),
      lastAttemptAt: z.number().nullable(),
      payload: z.string().nullable(),
      gone: z.boolean(),
    });
    const { name: topic } = await seedTopic();
    const { dead, fetch } = await okAndFailing(topic, 1);
    const { tasks } = await publishAndFanOut(topic, { body: 1 });
    const deadLetterQueue = limitedQueue();
    await deliver(tasks, fetch.fetch, { db: countingD1(env.DB, isWrite).db, deadLetterQueue });

    const record = deadLetterQueue
      .bodies()
      .find((body) => (body as { kind?: unknown }).kind === "dead");
    expect(previousDeadRecord.parse(record)).toMatchObject({
      subscriberId: dead[0]?.id,
      lastStatus: 500,
      payload: null,
      gone: false,
    });
  });
});
