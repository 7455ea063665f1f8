/**
 * The delivery consumer's bundles, end to end: a bundle's first attempts are each recorded as a
 * single task's would be; each delivery to be tried again goes back on the queue on its own, with
 * its attempt and its backoff; finished deliveries whose outcome could not be written go to the
 * dead-letter queue; and the bundle is acked only once all of that was sent.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import { DeadLetterList } from "../../src/api/schemas/dead-letters";
import type { SubscriberWithSecret } from "../../src/api/schemas/subscribers";
import { handleDeadLetterBatch } from "../../src/deadletters/consumer";
import { backoffDelaySeconds } from "../../src/delivery/backoff";
import {
  DeadRecordSchema,
  type DeliveryBundle,
  DeliveryTaskSchema,
  SettledRecordSchema,
} from "../../src/queues/tasks";
import {
  call,
  expectJson,
  readSubscriber,
  seedSubscriber,
  seedTopic,
  silenceErrorLog,
} from "../harness";
import {
  answering,
  bundlesIn,
  consumeDeadLetters,
  countingD1,
  deliver,
  deliveriesIn,
  deliveryRowsOf,
  envWith,
  type FetchStub,
  fanOut,
  isWrite,
  messageBatch,
  messageStatus,
  publishTask,
  recordingQueue,
  stubFetch,
} from "./support";

silenceErrorLog();

/** What the failing subscriber's retries are set to, so that its backoff is known. */
const RETRY = { maxAttempts: 5, baseDelaySeconds: 7, maxDelaySeconds: 3600 };

/**
 * A topic with subscribers whose endpoints answer 200, 503 and 410 (`statuses` picks which), one
 * message fanned out to them, and the one bundle the fan-out queued for it.
 */
async function bundleTo(statuses: readonly number[] = [200, 503, 410]) {
  const { name: topic } = await seedTopic();
  const subscribers: SubscriberWithSecret[] = [];
  for (const status of statuses) {
    subscribers.push(
      await seedSubscriber(topic, { url: `https://s${status}.example.com/`, retry: RETRY }),
    );
  }
  const task = await publishTask(topic, { body: { order: 1 } });
  const { deliveries } = await fanOut([task]);
  const [bundle, ...others] = bundlesIn(deliveries.bodies());
  if (!bundle) throw new Error("the message was not fanned out");
  expect(others).toEqual([]);
  expect(bundle.subscriberIds).toHaveLength(statuses.length);
  return { topic, subscribers, messageId: task.messageId, bundle };
}

/** A fetch that answers with the status its host names (`s503.example.com` answers 503). */
function answeringByHost(): FetchStub {
  return stubFetch((request) => {
    const status = Number(/^s(\d{3})\./.exec(new URL(request.url).host)?.[1] ?? 200);
    return new Response(null, { status });
  });
}

/** Each request's host and `switchboard-attempt`, sorted. */
function attemptsSeen(fetch: FetchStub): string[] {
  return fetch.requests
    .map((request) => `${new URL(request.url).host} ${request.headers["switchboard-attempt"]}`)
    .sort();
}

/** The delivery of `messageId` to `subscriberId`, as `GET /v1/messages/{id}` shows it. */
async function deliveryTo(messageId: string, subscriberId: string) {
  const { deliveries } = await messageStatus(messageId);
  const delivery = deliveries.find((item) => item.subscriberId === subscriberId);
  if (!delivery) throw new Error(`no delivery to ${subscriberId}`);
  return delivery;
}

async function deadLettersOf(subscriberId: string) {
  const res = await call("GET", `/v1/dead-letters?subscriberId=${subscriberId}`);
  return (await expectJson(res, 200, DeadLetterList)).deadLetters;
}

/** Publishes `count` messages in one batch with inline fan-out on; returns their bundles. */
async function publishInline(topic: string, count: number) {
  const deliveries = recordingQueue();
  const res = await call("POST", `/v1/topics/${topic}/messages/batch`, {
    json: { messages: Array.from({ length: count }, (_, n) => ({ body: { n } })) },
    env: { DELIVERY_QUEUE: deliveries.queue, INLINE_FANOUT_MAX_SUBSCRIBERS: "10" },
  });
  expect(res.status).toBe(202);
  return bundlesIn(deliveries.bodies());
}

/** Watches `console.error`, silenced, for the broker's log of an event. */
function errorLog() {
  const spy = vi.spyOn(console, "error").mockImplementation(() => undefined);
  return {
    /** Whether `event` was logged. */
    has: (event: string) =>
      spy.mock.calls.some(
        ([line]) => typeof line === "string" && line.includes(`"event":"${event}"`),
      ),
  };
}

describe("a bundle's first attempts", () => {
  it("records a 200, re-queues a 503 on its own with its attempt and backoff, and kills a 410", async () => {
    const { topic, subscribers, messageId, bundle } = await bundleTo();
    const [ok, failing, gone] = subscribers;
    if (!ok || !failing || !gone) throw new Error("no subscribers");
    const fetch = answeringByHost();
    const { batch, deliveryQueue, deadLetterQueue } = await deliver([bundle], fetch.fetch);

    expect(attemptsSeen(fetch)).toEqual([
      "s200.example.com 1",
      "s410.example.com 1",
      "s503.example.com 1",
    ]);
    expect(batch.messages.map((message) => message.outcome())).toEqual([{ kind: "ack" }]);
    expect(deadLetterQueue.calls).toEqual([]);

    // The 503 alone goes back, as a single task whose first consumption is attempt 2, after the
    // subscriber's backoff for attempt 1 (no jitter).
    const [message] = bundle.messages;
    expect(deliveryQueue.sent()).toEqual([
      {
        body: {
          messageId,
          subscriberId: failing.id,
          topic,
          publishedAt: message?.publishedAt,
          content: message?.content,
          openedAt: bundle.openedAt,
          attempt: 2,
        },
        delaySeconds: backoffDelaySeconds(1, RETRY, () => 0),
      },
    ]);
    expect(backoffDelaySeconds(1, RETRY, () => 0)).toBe(7);

    expect(await deliveryTo(messageId, ok.id)).toMatchObject({
      state: "delivered",
      attempts: 1,
      lastStatus: 200,
    });
    expect(await deliveryTo(messageId, failing.id)).toMatchObject({
      state: "retrying",
      attempts: 1,
      lastStatus: 503,
    });
    expect(await deliveryTo(messageId, gone.id)).toMatchObject({
      state: "dead",
      attempts: 1,
      lastStatus: 410,
    });
    expect(await deadLettersOf(gone.id)).toEqual([
      expect.objectContaining({ messageId, subscriberId: gone.id, attempts: 1, lastStatus: 410 }),
    ]);
    expect(await deadLettersOf(failing.id)).toEqual([]);
    expect(await deadLettersOf(ok.id)).toEqual([]);
    expect((await readSubscriber(gone.id)).active).toBe(false);
    expect((await readSubscriber(ok.id)).active).toBe(true);
  });

  it("delivers the re-queued delivery at attempt 2, and counts on from there", async () => {
    const { subscribers, messageId, bundle } = await bundleTo([200, 503]);
    const [, failing] = subscribers;
    if (!failing) throw new Error("no subscriber");
    const first = await deliver([bundle], answeringByHost().fetch);
    const retry = first.deliveryQueue.bodies();
    expect(deliveriesIn(retry)).toEqual([expect.objectContaining({ attempt: 2 })]);

    // Failing again, it is retried by the queue itself, after the backoff for attempt 2.
    const stillFailing = answering(503);
    const second = await deliver(retry, stillFailing.fetch);
    expect(stillFailing.requests.map((r) => r.headers["switchboard-attempt"])).toEqual(["2"]);
    expect(second.batch.messages[0]?.outcome()).toEqual({
      kind: "retry",
      delaySeconds: backoffDelaySeconds(2, RETRY, () => 0),
    });
    expect(second.deliveryQueue.calls).toEqual([]);
    expect(await deliveryTo(messageId, failing.id)).toMatchObject({
      state: "retrying",
      attempts: 2,
    });

    // The queue's redelivery of that task is attempt 3, and the subscriber is back.
    const ok = answering(200);
    const third = await deliver(retry, ok.fetch, { attempts: 2 });
    expect(ok.requests.map((r) => r.headers["switchboard-attempt"])).toEqual(["3"]);
    expect(third.batch.messages[0]?.outcome()).toEqual({ kind: "ack" });
    expect(await deliveryTo(messageId, failing.id)).toMatchObject({
      state: "delivered",
      attempts: 3,
      lastStatus: 200,
    });
  });

  it("delivers the re-queued delivery at attempt 2 when the subscriber answers", async () => {
    const { subscribers, messageId, bundle } = await bundleTo([200, 503]);
    const [, failing] = subscribers;
    if (!failing) throw new Error("no subscriber");
    const first = await deliver([bundle], answeringByHost().fetch);

    const ok = answering(200);
    const { batch } = await deliver(first.deliveryQueue.bodies(), ok.fetch);
    expect(ok.requests).toHaveLength(1);
    expect(ok.requests[0]?.headers["switchboard-attempt"]).toBe("2");
    expect(ok.requests[0]?.headers["webhook-id"]).toBe(messageId);
    expect(batch.messages[0]?.outcome()).toEqual({ kind: "ack" });
    expect(await deliveryTo(messageId, failing.id)).toMatchObject({
      state: "delivered",
      attempts: 2,
      lastStatus: 200,
    });
  });

  it("sends one request per message of a bundle to one subscriber, and writes once", async () => {
    const { name: topic } = await seedTopic();
    const subscriber = await seedSubscriber(topic);
    const bundles = await publishInline(topic, 4);
    expect(bundles).toHaveLength(1);
    const [bundle] = bundles;
    expect(bundle?.subscriberIds).toEqual([subscriber.id]);
    const messageIds = bundle?.messages.map((message) => message.messageId) ?? [];
    expect(messageIds).toHaveLength(4);

    const fetch = answering(200);
    const d1 = countingD1();
    const { batch, deliveryQueue } = await deliver(bundles, fetch.fetch, { db: d1.db });
    expect(fetch.requests.map((request) => request.headers["webhook-id"]).sort()).toEqual(
      [...messageIds].sort(),
    );
    expect(fetch.requests.map((request) => request.body).sort()).toEqual([
      '{"n":0}',
      '{"n":1}',
      '{"n":2}',
      '{"n":3}',
    ]);
    expect(batch.messages.map((message) => message.outcome())).toEqual([{ kind: "ack" }]);
    expect(deliveryQueue.calls).toEqual([]);
    expect(d1.writes()).toHaveLength(1);
    for (const messageId of messageIds) {
      expect(await messageStatus(messageId)).toMatchObject({
        state: "dispatched",
        deliveries: [expect.objectContaining({ state: "delivered", attempts: 1 })],
      });
    }
  });
});

describe("a bundle whose settling fails", () => {
  it("hands finished deliveries to the dead-letter queue when the outcome write fails, and acks", async () => {
    const { subscribers, messageId, bundle } = await bundleTo();
    const [ok, failing, gone] = subscribers;
    if (!ok || !failing || !gone) throw new Error("no subscribers");
    const d1 = countingD1(env.DB, isWrite);
    const { batch, deliveryQueue, deadLetterQueue } = await deliver(
      [bundle],
      answeringByHost().fetch,
      { db: d1.db },
    );
    expect(d1.writes().length).toBeGreaterThan(0);
    expect(batch.messages.map((message) => message.outcome())).toEqual([{ kind: "ack" }]);

    const handedOff = deadLetterQueue.bodies();
    expect(handedOff).toHaveLength(2);
    const settled = handedOff.flatMap((body) => {
      const parsed = SettledRecordSchema.safeParse(body);
      return parsed.success ? [parsed.data] : [];
    });
    const dead = handedOff.flatMap((body) => {
      const parsed = DeadRecordSchema.safeParse(body);
      return parsed.success ? [parsed.data] : [];
    });
    expect(settled).toEqual([
      expect.objectContaining({
        messageId,
        subscriberId: ok.id,
        state: "delivered",
        attempts: 1,
        lastStatus: 200,
      }),
    ]);
    expect(dead).toEqual([
      expect.objectContaining({
        messageId,
        subscriberId: gone.id,
        attempts: 1,
        lastStatus: 410,
        gone: true,
      }),
    ]);
    // The 503 goes back on the queue on its own, as it would have had the write gone through.
    expect(deliveriesIn(deliveryQueue.bodies())).toEqual([
      expect.objectContaining({ subscriberId: failing.id, attempt: 2 }),
    ]);

    // Nothing was written meanwhile; the dead-letter consumer records what was handed to it.
    expect((await messageStatus(messageId)).deliveries.map((d) => d.state)).toEqual([
      "pending",
      "pending",
      "pending",
    ]);
    const recorded = await consumeDeadLetters(handedOff);
    expect(recorded.batch.messages.map((message) => message.outcome())).toEqual([
      { kind: "ack" },
      { kind: "ack" },
    ]);
    expect(await deliveryTo(messageId, ok.id)).toMatchObject({
      state: "delivered",
      attempts: 1,
      lastStatus: 200,
    });
    expect(await deliveryTo(messageId, gone.id)).toMatchObject({
      state: "dead",
      attempts: 1,
      lastStatus: 410,
    });
    expect(await deadLettersOf(gone.id)).toEqual([
      expect.objectContaining({ messageId, lastStatus: 410 }),
    ]);
    expect((await readSubscriber(gone.id)).active).toBe(false);
    expect(await deliveryTo(messageId, failing.id)).toMatchObject({ state: "pending" });

    // The re-queued delivery then goes through; storage never saw its first attempt.
    const fine = answering(200);
    await deliver(deliveryQueue.bodies(), fine.fetch);
    expect(fine.requests).toHaveLength(1);
    expect(await deliveryTo(messageId, failing.id)).toMatchObject({ state: "delivered" });
  });

  it("retries the bundle, unacked, when a delivery cannot be re-queued", async () => {
    const { subscribers, messageId, bundle } = await bundleTo([200, 503]);
    const [ok, failing] = subscribers;
    if (!ok || !failing) throw new Error("no subscribers");
    const broken = recordingQueue();
    broken.failWith(new Error("Queue sendBatch failed: internal error"));
    const log = errorLog();
    const { batch } = await deliver([bundle], answeringByHost().fetch, {
      deliveryQueue: broken,
    });
    const [message] = batch.messages;
    expect(message?.outcome()).toEqual({ kind: "retry", delaySeconds: 30 });
    expect(message?.ack).not.toHaveBeenCalled();
    expect(log.has("delivery.bundle_settle_failed")).toBe(true);

    // Its redelivery skips what was delivered and carries the other delivery on, at attempt 2.
    const fetch = answering(200);
    const again = await deliver([bundle], fetch.fetch, { attempts: 2 });
    expect(fetch.requests.map((request) => new URL(request.url).host)).toEqual([
      "s503.example.com",
    ]);
    expect(fetch.requests[0]?.headers["switchboard-attempt"]).toBe("2");
    expect(again.batch.messages[0]?.outcome()).toEqual({ kind: "ack" });
    expect(again.deliveryQueue.calls).toEqual([]);
    expect(await deliveryTo(messageId, ok.id)).toMatchObject({ state: "delivered", attempts: 1 });
    expect(await deliveryTo(messageId, failing.id)).toMatchObject({
      state: "delivered",
      attempts: 2,
    });
  });

  it("retries the bundle, unacked, when the dead-letter hand-off fails", async () => {
    const { bundle } = await bundleTo([200, 410]);
    const deadLetterQueue = recordingQueue();
    deadLetterQueue.failWith(new Error("Queue sendBatch failed: internal error"));
    const { batch } = await deliver([bundle], answeringByHost().fetch, {
      db: countingD1(env.DB, isWrite).db,
      deadLetterQueue,
    });
    const [message] = batch.messages;
    expect(message?.outcome()).toEqual({ kind: "retry", delaySeconds: 30 });
    expect(message?.ack).not.toHaveBeenCalled();
  });

  it("leaves one retry chain per delivery when a bundle retried whole comes again", async () => {
    const { subscribers, messageId, bundle } = await bundleTo([200, 503]);
    const [, failing] = subscribers;
    if (!failing) throw new Error("no subscriber");
    // Storage cannot take the outcomes and the dead-letter queue cannot take them either: the
    // bundle is retried whole.
    const deadLetterQueue = recordingQueue();
    deadLetterQueue.failWith(new Error("Queue sendBatch failed: internal error"));
    const requeued = recordingQueue();
    const first = await deliver([bundle], answeringByHost().fetch, {
      db: countingD1(env.DB, isWrite).db,
      deadLetterQueue,
      deliveryQueue: requeued,
    });
    expect(first.batch.messages[0]?.outcome()).toMatchObject({ kind: "retry" });

    // Its redelivery, with everything working again, carries the failing delivery on.
    await deliver([bundle], answeringByHost().fetch, { attempts: 2, deliveryQueue: requeued });
    expect(await deliveryTo(messageId, failing.id)).toMatchObject({ state: "retrying" });
    // Whatever the first consumption sent is still on the queue beside what the second sent: one
    // task for the delivery, or the subscriber gets each later attempt twice.
    const chains = deliveriesIn(requeued.bodies()).filter(
      (task) => task.subscriberId === failing.id,
    );
    expect(chains).toHaveLength(1);
  });
});

describe("a bundle that comes again", () => {
  it("makes no second request for a delivery recorded delivered", async () => {
    const { messageId, bundle } = await bundleTo([200, 200]);
    const first = answering(200);
    await deliver([bundle], first.fetch);
    expect(first.requests).toHaveLength(2);

    const second = answering(200);
    const { batch, deliveryQueue, deadLetterQueue } = await deliver([bundle], second.fetch, {
      attempts: 2,
    });
    expect(second.requests).toEqual([]);
    expect(batch.messages.map((message) => message.outcome())).toEqual([{ kind: "ack" }]);
    expect(deliveryQueue.calls).toEqual([]);
    expect(deadLetterQueue.calls).toEqual([]);
    expect((await messageStatus(messageId)).deliveries).toEqual([
      expect.objectContaining({ state: "delivered", attempts: 1 }),
      expect.objectContaining({ state: "delivered", attempts: 1 }),
    ]);
  });

  it("skips a delivery that a single task delivered meanwhile, and attempts the rest", async () => {
    const { subscribers, messageId, bundle } = await bundleTo([200, 200]);
    const [early, late] = subscribers;
    if (!early || !late) throw new Error("no subscribers");
    const single = deliveriesIn([bundle]).filter((task) => task.subscriberId === early.id);
    await deliver(single, answering(200).fetch);

    const fetch = answering(200);
    await deliver([bundle], fetch.fetch);
    expect(fetch.requests).toHaveLength(1);
    expect(await deliveryTo(messageId, early.id)).toMatchObject({ attempts: 1 });
    expect(await deliveryTo(messageId, late.id)).toMatchObject({
      state: "delivered",
      attempts: 1,
    });
  });
});

describe("a bundle whose queue retries ran out", () => {
  /**
   * A bundle to subscribers answering 200, 410 and 503 whose first consumption recorded all three
   * outcomes but could not re-queue the 503, and was retried; its retries then ran out.
   */
  async function exhaustedBundle() {
    const { subscribers, messageId, bundle } = await bundleTo([200, 410, 503]);
    const [delivered, gone, retrying] = subscribers;
    if (!delivered || !gone || !retrying) throw new Error("no subscribers");
    const broken = recordingQueue();
    broken.failWith(new Error("Queue sendBatch failed: internal error"));
    const { batch } = await deliver([bundle], answeringByHost().fetch, { deliveryQueue: broken });
    expect(batch.messages[0]?.outcome()).toMatchObject({ kind: "retry" });
    expect(await deadLettersOf(gone.id)).toHaveLength(1);
    return { messageId, bundle, delivered, gone, retrying };
  }

  /**
   * Runs the dead-letter consumer over the bundle as the queue hands it over: with the time it was
   * first queued, when it was fanned out.
   */
  async function exhaust(bundle: DeliveryBundle) {
    const batch = messageBatch("switchboard-dead-letters", [bundle]);
    for (const message of batch.messages) {
      Object.assign(message, { timestamp: new Date(bundle.openedAt) });
    }
    await handleDeadLetterBatch(batch, envWith({ FANOUT_QUEUE: recordingQueue().queue }));
    return batch;
  }

  it("makes each delivery not finished dead, with a dead letter, and none for one delivered", async () => {
    const { messageId, bundle, delivered, retrying } = await exhaustedBundle();
    const batch = await exhaust(bundle);
    expect(batch.messages.map((message) => message.outcome())).toEqual([{ kind: "ack" }]);

    expect(await deliveryTo(messageId, delivered.id)).toMatchObject({
      state: "delivered",
      attempts: 1,
      lastStatus: 200,
    });
    expect(await deadLettersOf(delivered.id)).toEqual([]);
    expect(await deliveryTo(messageId, retrying.id)).toMatchObject({
      state: "dead",
      attempts: 1,
    });
    expect(await deadLettersOf(retrying.id)).toEqual([
      expect.objectContaining({ messageId, subscriberId: retrying.id }),
    ]);

    // The queue may hand the bundle over twice: it still leaves one dead letter each.
    await exhaust(bundle);
    expect(await deadLettersOf(retrying.id)).toHaveLength(1);
    expect(await deadLettersOf(delivered.id)).toEqual([]);
  });

  it("leaves a delivery that died before as it was, with its one dead letter", async () => {
    const { messageId, bundle, gone } = await exhaustedBundle();
    const before = await deliveryTo(messageId, gone.id);
    expect(before).toMatchObject({ state: "dead", attempts: 1, lastStatus: 410 });

    await exhaust(bundle);
    expect(await deadLettersOf(gone.id)).toHaveLength(1);
    expect(await deliveryTo(messageId, gone.id)).toEqual(before);
  });

  it("leaves the dead letter of a 410 replayable once its subscriber is back", async () => {
    const { messageId, bundle, gone } = await exhaustedBundle();
    await exhaust(bundle);

    await call("PATCH", `/v1/subscribers/${gone.id}`, { json: { active: true } });
    const [deadLetter] = await deadLettersOf(gone.id);
    const replays = recordingQueue();
    const res = await call("POST", `/v1/dead-letters/${deadLetter?.id}/replay`, {
      env: { DELIVERY_QUEUE: replays.queue },
    });
    expect(res.status).toBe(202);
    expect(replays.bodies()).toHaveLength(1);
    const fetch = answering(200);
    await deliver(replays.bodies(), fetch.fetch);
    expect(fetch.requests).toHaveLength(1);
    expect(await deliveryTo(messageId, gone.id)).toMatchObject({ state: "delivered" });
  });
});

describe("a malformed bundle", () => {
  const content = {
    body: { kind: "none" },
    headers: {},
    query: {},
    pathParams: {},
    method: null,
  };
  const good = {
    kind: "bundle",
    topic: "orders",
    openedAt: 1,
    messages: [{ messageId: "msg_1", publishedAt: 1, content }],
    subscriberIds: ["sub_1"],
  };

  it.each<[string, Record<string, unknown>]>([
    ["no subscribers", { ...good, subscriberIds: [] }],
    ["no messages", { ...good, messages: [] }],
    ["a subscriber id that is not a string", { ...good, subscriberIds: ["sub_1", 2] }],
    ["a message without its id", { ...good, messages: [{ publishedAt: 1, content }] }],
    [
      "a message whose content is malformed",
      { ...good, messages: [{ messageId: "m", publishedAt: 1, content: { body: 1 } }] },
    ],
    ["an openedAt that is not a number", { ...good, openedAt: "yesterday" }],
    ["no topic", { ...good, topic: undefined }],
    [
      "several fields wrong",
      { kind: "bundle", topic: 3, openedAt: null, messages: "all", subscriberIds: [] },
    ],
  ])("is logged and acked when it has %s", async (_, body) => {
    const fetch = answering(200);
    const log = errorLog();
    const { batch, deliveryQueue } = await deliver([body], fetch.fetch);
    expect(batch.messages[0]?.outcome()).toEqual({ kind: "ack" });
    expect(log.has("delivery.malformed_task")).toBe(true);
    expect(fetch.requests).toEqual([]);
    expect(deliveryQueue.calls).toEqual([]);
  });

  it("does not hold up the well-formed bundles of its batch", async () => {
    const { messageId, bundle } = await bundleTo([200]);
    const fetch = answering(200);
    const malformed: Record<string, unknown> = { ...bundle, subscriberIds: [] };
    const { batch } = await deliver([malformed, bundle], fetch.fetch);
    expect(batch.messages.map((message) => message.outcome())).toEqual([
      { kind: "ack" },
      { kind: "ack" },
    ]);
    expect(fetch.requests).toHaveLength(1);
    expect((await messageStatus(messageId)).deliveries).toEqual([
      expect.objectContaining({ state: "delivered" }),
    ]);
  });
});

describe("a bundle of a topic that records failures only", () => {
  it("writes no row for a delivered delivery, and one for a failed one", async () => {
    const { name: topic } = await seedTopic();
    await env.DB.prepare("update topics set recording = 'failures' where name = ?")
      .bind(topic)
      .run();
    const ok = await seedSubscriber(topic, { url: "https://s200.example.com/", retry: RETRY });
    const failing = await seedSubscriber(topic, {
      url: "https://s503.example.com/",
      retry: RETRY,
    });
    const task = await publishTask(topic, { body: 1 });
    const { deliveries } = await fanOut([task]);
    const bundles: DeliveryBundle[] = bundlesIn(deliveries.bodies());
    expect(bundles).toHaveLength(1);

    const { batch, deliveryQueue } = await deliver(bundles, answeringByHost().fetch);
    expect(batch.messages.map((message) => message.outcome())).toEqual([{ kind: "ack" }]);
    const rows = await deliveryRowsOf(task.messageId);
    expect(rows).toEqual([
      expect.objectContaining({ subscriber_id: failing.id, state: "retrying", attempts: 1 }),
    ]);
    expect(rows.map((row) => row.subscriber_id)).not.toContain(ok.id);
    const { results: counts } = await env.DB.prepare(
      "select sum(delivered) as delivered, sum(retried) as retried from topic_counts where topic = ?",
    )
      .bind(topic)
      .all();
    expect(counts).toEqual([{ delivered: 1, retried: 1 }]);

    // Its retry is recorded to the end, at attempt 2.
    const requeued = deliveryQueue.bodies();
    expect(requeued.map((body) => DeliveryTaskSchema.parse(body).attempt)).toEqual([2]);
    const fetch = answering(200);
    await deliver(requeued, fetch.fetch);
    expect(fetch.requests[0]?.headers["switchboard-attempt"]).toBe("2");
    expect(await deliveryRowsOf(task.messageId)).toEqual([
      expect.objectContaining({ subscriber_id: failing.id, state: "delivered", attempts: 2 }),
    ]);
  });

  it("does not deliver a delivered delivery again when the bundle is retried whole", async () => {
    const { name: topic } = await seedTopic();
    await env.DB.prepare("update topics set recording = 'failures' where name = ?")
      .bind(topic)
      .run();
    await seedSubscriber(topic, { url: "https://s200.example.com/", retry: RETRY });
    await seedSubscriber(topic, { url: "https://s503.example.com/", retry: RETRY });
    const { deliveries } = await fanOut([await publishTask(topic, { body: 1 })]);

    const broken = recordingQueue();
    broken.failWith(new Error("Queue sendBatch failed: internal error"));
    const fetch = answeringByHost();
    const first = await deliver(deliveries.bodies(), fetch.fetch, { deliveryQueue: broken });
    expect(first.batch.messages[0]?.outcome()).toMatchObject({ kind: "retry" });
    await deliver(deliveries.bodies(), fetch.fetch, { attempts: 2 });
    expect(attemptsSeen(fetch)).toEqual([
      "s200.example.com 1",
      "s503.example.com 1",
      "s503.example.com 2",
    ]);
  });
});
