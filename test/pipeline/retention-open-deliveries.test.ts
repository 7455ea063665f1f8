/**
 * Retention against deliveries still being attempted: a large message's content lives only in its
 * message row, so retention must keep that row (and the open delivery that shows it is needed)
 * until the delivery is finished, however old the message is.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import { DeadLetterList, Replayed } from "../../src/api/schemas/dead-letters";
import { runRetention } from "../../src/retention/scheduled";
import { call, expectJson, seedSubscriber, seedTopic, silenceErrorLog } from "../harness";
import {
  answering,
  countingD1,
  deliver,
  deliveryRowsOf,
  messageStatus,
  publishAndFanOut,
  recordingQueue,
} from "./support";

silenceErrorLog();

const DAY = 24 * 60 * 60 * 1000;
/** Over the inline limit: the content is stored in the message row and tasks refer to it. */
const LARGE_TEXT = "L".repeat(120 * 1024);

/**
 * Runs `work` with the clock set `days` back: a message published there has an id made then, which
 * is the time retention reads. Only `Date` is faked; timers and I/O run as usual.
 */
async function daysAgo<T>(days: number, work: () => Promise<T>): Promise<T> {
  vi.useFakeTimers({ toFake: ["Date"] });
  vi.setSystemTime(Date.now() - days * DAY);
  try {
    return await work();
  } finally {
    vi.useRealTimers();
  }
}

async function messageRow(messageId: string) {
  return env.DB.prepare("select id, payload from messages where id = ?").bind(messageId).first();
}

async function deadLettersOf(subscriberId: string) {
  const res = await call("GET", `/v1/dead-letters?subscriberId=${subscriberId}`);
  return (await expectJson(res, 200, DeadLetterList)).deadLetters;
}

/**
 * A topic, a subscriber with `maxAttempts`, and a large message fanned out to it 8 days ago, past
 * RETENTION_DAYS (7): only what is still being attempted keeps it.
 */
async function largeDelivery(maxAttempts: number) {
  return daysAgo(8, async () => {
    const { name: topic } = await seedTopic();
    const subscriber = await seedSubscriber(topic, {
      retry: { maxAttempts, baseDelaySeconds: 1 },
    });
    const { messageId, tasks } = await publishAndFanOut(topic, { bodyText: LARGE_TEXT });
    expect(tasks[0]?.content).toBeNull();
    return { topic, subscriber, messageId, tasks };
  });
}

describe("retention and a delivery still being attempted", () => {
  it("keeps a large message whose retry plan outlasts RETENTION_DAYS until the delivery ends", async () => {
    const { messageId, tasks } = await largeDelivery(100);
    await deliver(tasks, answering(500).fetch, { attempts: 1 });

    await runRetention(env, Date.now());
    expect(await messageRow(messageId)).not.toBeNull();
    expect(await deliveryRowsOf(messageId)).toHaveLength(1);

    const fetch = answering(200);
    await deliver(tasks, fetch.fetch, { attempts: 2 });
    expect(fetch.requests[0]?.body).toBe(LARGE_TEXT);
    expect((await messageStatus(messageId)).deliveries[0]).toMatchObject({
      state: "delivered",
      attempts: 2,
    });

    // Finished, the delivery and its message go with the next run.
    await runRetention(env, Date.now());
    expect(await messageRow(messageId)).toBeNull();
    expect(await deliveryRowsOf(messageId)).toEqual([]);
  });

  it("keeps the content a replay of an old large dead letter put back, while the replay retries", async () => {
    const { subscriber, messageId, tasks } = await largeDelivery(2);
    await deliver(tasks, answering(500).fetch, { attempts: 1 });
    await deliver(tasks, answering(500).fetch, { attempts: 2 });
    await runRetention(env, Date.now());
    expect(await messageRow(messageId)).toBeNull();
    const [deadLetter] = await deadLettersOf(subscriber.id);

    const queue = recordingQueue();
    const res = await call("POST", `/v1/dead-letters/${deadLetter?.id}/replay`, {
      env: { DELIVERY_QUEUE: queue.queue },
    });
    expect(await expectJson(res, 202, Replayed)).toEqual({ replayed: 1 });
    await deliver(queue.bodies(), answering(500).fetch, { attempts: 1 });
    expect((await messageStatus(messageId)).deliveries[0]).toMatchObject({ state: "retrying" });

    await runRetention(env, Date.now());
    const fetch = answering(200);
    await deliver(queue.bodies(), fetch.fetch, { attempts: 2 });
    expect(fetch.requests[0]?.body).toBe(LARGE_TEXT);
    expect((await messageStatus(messageId)).deliveries[0]).toMatchObject({
      state: "delivered",
      attempts: 2,
    });
  });

  it("lets go of an open delivery whose next attempt was due before the cutoff: its task is gone", async () => {
    const { messageId, tasks } = await largeDelivery(100);
    await deliver(tasks, answering(500).fetch, { attempts: 1 });
    await env.DB.prepare("update deliveries set next_attempt_at = ? where message_id = ?")
      .bind(Date.now() - 8 * DAY, messageId)
      .run();

    await runRetention(env, Date.now());
    expect(await deliveryRowsOf(messageId)).toEqual([]);
    expect(await messageRow(messageId)).toBeNull();
  });
});

describe("a dead letter for a delivery whose content expired", () => {
  it("keeps the content of the delivery's earlier dead letter, so it can still be replayed", async () => {
    const { subscriber, messageId, tasks } = await largeDelivery(1);
    await deliver(tasks, answering(500).fetch);
    const [first] = await deadLettersOf(subscriber.id);

    // The replay is queued, but removing its dead letter fails; then the content expires.
    const queue = recordingQueue();
    const failBookkeeping = countingD1(env.DB, (round) =>
      round.sql.some((statement) => /^delete from "dead_letters"/i.test(statement)),
    );
    const res = await call("POST", `/v1/dead-letters/${first?.id}/replay`, {
      env: { DELIVERY_QUEUE: queue.queue, DB: failBookkeeping.db },
    });
    expect(await expectJson(res, 202, Replayed)).toEqual({ replayed: 1 });
    await runRetention(env, Date.now());
    expect(await messageRow(messageId)).toBeNull();

    await deliver(queue.bodies(), answering(200).fetch);
    const letters = await deadLettersOf(subscriber.id);
    const second = letters.find((letter) => letter.id !== first?.id);
    expect(second?.lastError).toMatch(/expired/);
    const stored = await env.DB.prepare("select payload from dead_letters where id = ?")
      .bind(second?.id)
      .first<{ payload: string | null }>();
    expect(stored?.payload).toContain(LARGE_TEXT);

    const replayed = recordingQueue();
    const again = await call("POST", `/v1/dead-letters/${second?.id}/replay`, {
      env: { DELIVERY_QUEUE: replayed.queue },
    });
    expect(await expectJson(again, 202, Replayed)).toEqual({ replayed: 1 });
    const fetch = answering(200);
    await deliver(replayed.bodies(), fetch.fetch);
    expect(fetch.requests[0]?.body).toBe(LARGE_TEXT);
  });
});
