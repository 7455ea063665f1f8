/**
 * Replays racing their own consumption: a replayed task may be consumed, and its outcome recorded,
 * before the replay call has finished its bookkeeping; and a replayed delivery that dies again
 * makes a new dead letter while a bulk replay is still walking the dead letters.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { DeadLetterList, Replayed } from "../../src/api/schemas/dead-letters";
import { call, expectJson, seedSubscriber, seedTopic, silenceErrorLog } from "../harness";
import {
  answering,
  countingD1,
  deliver,
  type FetchStub,
  insertSubscribers,
  isWrite,
  messageStatus,
  publishAndFanOut,
  recordingQueue,
  rowsOf,
  stubFetch,
} from "./support";

silenceErrorLog();

/**
 * A delivery queue that hands every task it is sent to the delivery consumer at once, answered by
 * `fetch`, before `sendBatch` returns: the replay is consumed before the call that sent it goes on.
 */
function consumingQueue(fetch: FetchStub) {
  const recording = recordingQueue();
  const sendBatch: Queue<unknown>["sendBatch"] = async (messages, options) => {
    const sent = await recording.queue.sendBatch(messages, options);
    await deliver(
      [...messages].map((message) => message.body),
      fetch.fetch,
    );
    return sent;
  };
  return { ...recording, queue: { ...recording.queue, sendBatch } };
}

async function replayWith(path: string) {
  const queue = recordingQueue();
  const res = await call("POST", path, { env: { DELIVERY_QUEUE: queue.queue } });
  return { res, queue };
}

async function deadLettersOf(subscriberId: string) {
  const res = await call("GET", `/v1/dead-letters?subscriberId=${subscriberId}&limit=200`);
  return (await expectJson(res, 200, DeadLetterList)).deadLetters;
}

/** A subscriber with `maxAttempts`, and one message whose delivery to it died with a 500. */
async function deadDelivery(maxAttempts: number) {
  const { name: topic } = await seedTopic();
  const subscriber = await seedSubscriber(topic, {
    retry: { maxAttempts, baseDelaySeconds: 1 },
  });
  const { messageId, tasks } = await publishAndFanOut(topic, { body: { n: 1 } });
  for (let attempt = 1; attempt <= maxAttempts; attempt++) {
    await deliver(tasks, answering(500).fetch, { attempts: attempt });
  }
  const [deadLetter] = await deadLettersOf(subscriber.id);
  if (!deadLetter) throw new Error("the delivery did not die");
  return { topic, subscriber, messageId, deadLetter };
}

describe("a replay consumed before the replay call finishes", () => {
  it.each([
    ["delivered", 3, 200, { state: "delivered", attempts: 1, lastStatus: 200 }, 0],
    ["retrying", 3, 500, { state: "retrying", attempts: 1, lastStatus: 500 }, 0],
    ["dead again", 1, 500, { state: "dead", attempts: 1, lastStatus: 500 }, 1],
  ])(
    "keeps the outcome it recorded (%s) instead of making the delivery pending again",
    async (_label, maxAttempts, status, expected, deadLetters) => {
      const { subscriber, messageId, deadLetter } = await deadDelivery(maxAttempts);
      const fetch = answering(status);
      const queue = consumingQueue(fetch);
      const res = await call("POST", `/v1/dead-letters/${deadLetter.id}/replay`, {
        env: { DELIVERY_QUEUE: queue.queue },
      });
      expect(await expectJson(res, 202, Replayed)).toEqual({ replayed: 1 });
      expect(fetch.requests).toHaveLength(1);
      expect((await messageStatus(messageId)).deliveries).toEqual([
        expect.objectContaining({ subscriberId: subscriber.id, ...expected }),
      ]);
      const left = await deadLettersOf(subscriber.id);
      expect(left).toHaveLength(deadLetters);
      expect(left.map((letter) => letter.id)).not.toContain(deadLetter.id);
    },
  );
});

describe("a replay of a delivery with an older dead letter left over", () => {
  it("makes the delivery pending again, an older dead letter notwithstanding", async () => {
    const { subscriber, messageId, deadLetter: first } = await deadDelivery(1);
    // The first replay is queued, but its bookkeeping fails: its dead letter stays.
    const firstReplay = recordingQueue();
    const res = await call("POST", `/v1/dead-letters/${first.id}/replay`, {
      env: { DELIVERY_QUEUE: firstReplay.queue, DB: countingD1(env.DB, isWrite).db },
    });
    expect(await expectJson(res, 202, Replayed)).toEqual({ replayed: 1 });
    await deliver(firstReplay.bodies(), answering(500).fetch);
    const letters = await deadLettersOf(subscriber.id);
    const second = letters.find((letter) => letter.id !== first.id);
    expect(letters).toHaveLength(2);

    const { res: again } = await replayWith(`/v1/dead-letters/${second?.id}/replay`);
    expect(await expectJson(again, 202, Replayed)).toEqual({ replayed: 1 });
    expect((await messageStatus(messageId)).deliveries).toEqual([
      expect.objectContaining({ subscriberId: subscriber.id, state: "pending", attempts: 0 }),
    ]);
  });
});

describe("a bulk replay whose replays die again while it runs", () => {
  it("replays each dead letter that existed when it began once, not the new ones", async () => {
    const { name: topic } = await seedTopic();
    const subscribers = await insertSubscribers(topic, 100, { maxAttempts: 1 });
    const { tasks } = await publishAndFanOut(topic, { body: 1 });
    await deliver(tasks, answering(500).fetch);
    expect(await rowsOf("dead_letters", topic)).toHaveLength(100);

    // A full page of replays, each dying again at once; anything sent after them would succeed.
    const fetch = stubFetch(
      (_request) => new Response(null, { status: fetch.requests.length <= 100 ? 500 : 200 }),
    );
    const queue = consumingQueue(fetch);
    const res = await call("POST", "/v1/dead-letters/replay", {
      json: { topic },
      env: { DELIVERY_QUEUE: queue.queue },
    });
    expect(await expectJson(res, 202, Replayed)).toEqual({ replayed: 100 });
    expect(fetch.requests).toHaveLength(100);
    expect(queue.bodies()).toHaveLength(100);
    // Each delivery died again and has one new dead letter, there to replay in a later call.
    const letters = await rowsOf("dead_letters", topic);
    expect(letters).toHaveLength(100);
    expect(new Set(letters.map((letter) => letter.subscriber_id))).toEqual(
      new Set(subscribers.map((subscriber) => subscriber.id)),
    );
  });
});
