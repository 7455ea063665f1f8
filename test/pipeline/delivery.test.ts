/**
 * The delivery consumer against the contract's "What a subscriber receives": the request a
 * subscriber sees, and what each answer does to the delivery, the queue message, the subscriber
 * and the dead letters. The subscriber is a fetch stub.
 */
import { env } from "cloudflare:workers";
import { Webhook } from "standardwebhooks";
import { describe, expect, it } from "vitest";
import packageJson from "../../package.json";
import { DeadLetterList } from "../../src/api/schemas/dead-letters";
import { RotatedSecret } from "../../src/api/schemas/subscribers";
import { DeadRecordSchema, type DeliveryTask, SettledRecordSchema } from "../../src/queues/tasks";
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
  consumeDeadLetters,
  countingD1,
  deliver,
  type FetchStub,
  fanOut,
  insertSubscribers,
  isWrite,
  messageStatus,
  okFailingGone,
  oneDelivery,
  publishAndFanOut,
  publishTask,
  recordingQueue,
  stubFetch,
} from "./support";

silenceErrorLog();

/** Runs attempts 1…n of one task, each answered by `fetch`; returns the last batch. */
async function attempts(task: DeliveryTask, fetch: FetchStub, n: number) {
  let last = await deliver([task], fetch.fetch, { attempts: 1 });
  for (let attempt = 2; attempt <= n; attempt++) {
    last = await deliver([task], fetch.fetch, { attempts: attempt });
  }
  return last;
}

async function deliveryOf(messageId: string) {
  const [delivery] = (await messageStatus(messageId)).deliveries;
  if (!delivery) throw new Error("no delivery");
  return delivery;
}

async function deadLettersOfTopic(topic: string) {
  const res = await call("GET", `/v1/dead-letters?topic=${topic}&limit=200`);
  return (await expectJson(res, 200, DeadLetterList)).deadLetters;
}

async function deadLettersOf(subscriberId: string) {
  const res = await call("GET", `/v1/dead-letters?subscriberId=${subscriberId}`);
  return (await expectJson(res, 200, DeadLetterList)).deadLetters;
}

describe("the request a subscriber receives", () => {
  it("has the method, URL, headers, signature and body the contract describes", async () => {
    const { topic, subscriber, messageId, task } = await oneDelivery(
      {
        url: "https://hooks.example.com/orders/:orderId",
        method: "POST",
        headers: { "X-Api-Key": "key", "x-mode": "subscriber" },
        query: { source: "switchboard", page: "1" },
      },
      {
        body: { category: "food" },
        headers: { "X-Mode": "message", "X-Trace": "t1" },
        query: { page: "2", tag: ["a", "b"] },
        pathParams: { orderId: "4 2" },
        method: "PUT",
      },
    );
    const fetch = answering(200);
    const before = Math.floor(Date.now() / 1000);
    await deliver([task], fetch.fetch);
    const after = Math.floor(Date.now() / 1000);

    expect(fetch.requests).toHaveLength(1);
    const [request] = fetch.requests;
    if (!request) throw new Error("no request");
    expect(request.method).toBe("PUT");
    const url = new URL(request.url);
    expect(`${url.origin}${url.pathname}`).toBe("https://hooks.example.com/orders/4%202");
    expect(url.searchParams.get("source")).toBe("switchboard");
    expect(url.searchParams.getAll("page")).toEqual(["2"]);
    expect(url.searchParams.getAll("tag")).toEqual(["a", "b"]);
    expect(request.redirect).toBe("manual");
    expect(request.hasSignal).toBe(true);

    expect(request.headers).toMatchObject({
      "x-api-key": "key",
      "x-mode": "subscriber",
      "x-trace": "t1",
      "content-type": "application/json",
      "webhook-id": messageId,
      "switchboard-topic": topic,
      "switchboard-attempt": "1",
      "user-agent": `Switchboard/${packageJson.version}`,
    });
    const timestamp = Number(request.headers["webhook-timestamp"]);
    expect(timestamp).toBeGreaterThanOrEqual(before);
    expect(timestamp).toBeLessThanOrEqual(after);
    expect(request.body).toBe('{"category":"food"}');
    expect(new Webhook(subscriber.secret).verify(request.body ?? "", request.headers)).toEqual({
      category: "food",
    });
  });

  it("sends the same webhook-id to every subscriber and on every attempt", async () => {
    const { name: topic } = await seedTopic();
    await insertSubscribers(topic, 3);
    const { messageId, tasks } = await publishAndFanOut(topic, { body: 1 });
    const fetch = answering(500);
    await deliver(tasks, fetch.fetch);
    await deliver(tasks, fetch.fetch, { attempts: 2 });
    expect(fetch.requests).toHaveLength(6);
    expect(new Set(fetch.requests.map((r) => r.headers["webhook-id"]))).toEqual(
      new Set([messageId]),
    );
    expect(fetch.requests.map((r) => r.headers["switchboard-attempt"])).toEqual([
      "1",
      "1",
      "1",
      "2",
      "2",
      "2",
    ]);
  });

  it("sends a raw message byte for byte with its content type", async () => {
    const { name: topic } = await seedTopic();
    await seedSubscriber(topic);
    const bytes = Uint8Array.from({ length: 256 }, (_, i) => i);
    const fanout = recordingQueue();
    await call("POST", `/v1/topics/${topic}/messages/raw?page=2`, {
      body: bytes,
      contentType: "application/x-thing",
      headers: { "forward-x-mode": "quiet" },
      env: { FANOUT_QUEUE: fanout.queue },
    });
    const { tasks } = await fanOut(fanout.bodies());
    const fetch = answering(200);
    await deliver(tasks, fetch.fetch);
    const [request] = fetch.requests;
    expect([...(request?.bytes ?? [])]).toEqual([...bytes]);
    expect(request?.headers["content-type"]).toBe("application/x-thing");
    expect(request?.headers["x-mode"]).toBe("quiet");
    expect(new URL(request?.url ?? "").searchParams.get("page")).toBe("2");
  });

  it("sends no body for GET", async () => {
    const { task } = await oneDelivery({ method: "GET" }, { body: { a: 1 } });
    const fetch = answering(200);
    await deliver([task], fetch.fetch);
    expect(fetch.requests[0]).toMatchObject({ method: "GET", body: null });
    expect(fetch.requests[0]?.headers["content-type"]).toBeUndefined();
  });

  it("signs with the old and the new secret after a rotation", async () => {
    const { subscriber, task } = await oneDelivery();
    const rotated = await call("POST", `/v1/subscribers/${subscriber.id}/rotate-secret`);
    const { secret } = await expectJson(rotated, 200, RotatedSecret);
    const fetch = answering(200);
    await deliver([task], fetch.fetch);
    const [request] = fetch.requests;
    if (!request) throw new Error("no request");
    expect(request.headers["webhook-signature"]?.split(" ")).toHaveLength(2);
    for (const key of [secret, subscriber.secret]) {
      expect(() => new Webhook(key).verify(request.body ?? "", request.headers)).not.toThrow();
    }
  });

  it("goes to the subscriber as it is at the time of the attempt", async () => {
    const { subscriber, task } = await oneDelivery();
    await deliver([task], answering(500).fetch);
    await call("PATCH", `/v1/subscribers/${subscriber.id}`, {
      json: { url: "https://other.example.com/new", headers: { "x-v": "2" } },
    });
    const fetch = answering(200);
    await deliver([task], fetch.fetch, { attempts: 2 });
    expect(fetch.requests[0]?.url).toBe("https://other.example.com/new");
    expect(fetch.requests[0]?.headers["x-v"]).toBe("2");
  });
});

describe("what an answer does", () => {
  it("acks a 2xx and records the delivery as delivered", async () => {
    const { messageId, task } = await oneDelivery();
    const { batch } = await deliver([task], answering(204).fetch);
    expect(batch.messages[0]?.outcome()).toEqual({ kind: "ack" });
    expect(await deliveryOf(messageId)).toMatchObject({
      state: "delivered",
      attempts: 1,
      lastStatus: 204,
      lastError: null,
      nextAttemptAt: null,
    });
  });

  it("retries a 500 after the backoff, within the jitter", async () => {
    const { messageId, task } = await oneDelivery({
      retry: { baseDelaySeconds: 10, maxAttempts: 5 },
    });
    const fetch = answering(500);
    const first = await deliver([task], fetch.fetch, { random: () => 0.999999 });
    const firstOutcome = first.batch.messages[0]?.outcome();
    expect(firstOutcome?.kind).toBe("retry");
    const firstDelay = firstOutcome?.kind === "retry" ? (firstOutcome.delaySeconds ?? -1) : -1;
    expect(firstDelay).toBeGreaterThanOrEqual(10);
    expect(firstDelay).toBeLessThanOrEqual(12);

    const delivery = await deliveryOf(messageId);
    expect(delivery).toMatchObject({ state: "retrying", attempts: 1, lastStatus: 500 });
    expect(delivery.lastError).toMatch(/^HTTP 500/);
    const next = Date.parse(delivery.nextAttemptAt ?? "");
    const last = Date.parse(delivery.lastAttemptAt ?? "");
    expect(next - last).toBeGreaterThanOrEqual(10_000);
    expect(next - last).toBeLessThanOrEqual(12_000);

    const second = await deliver([task], fetch.fetch, { attempts: 2, random: () => 0 });
    expect(second.batch.messages[0]?.outcome()).toEqual({ kind: "retry", delaySeconds: 20 });
  });

  it("retries after the subscriber's Retry-After, without jitter", async () => {
    const { task } = await oneDelivery();
    const { batch } = await deliver([task], answering(429, { "retry-after": "120" }).fetch, {
      random: () => 0.9,
    });
    expect(batch.messages[0]?.outcome()).toEqual({ kind: "retry", delaySeconds: 120 });
  });

  it.each([
    [
      "a redirect",
      () => answering(302, { location: "https://elsewhere.example.com/" }),
      302,
      /^HTTP 302/,
    ],
    ["a 404", () => answering(404), 404, /^HTTP 404/],
    [
      "a network error",
      () => stubFetch(() => Promise.reject(new TypeError("Network connection lost."))),
      null,
      /Network connection lost/,
    ],
  ])("retries after %s", async (_, makeFetch, lastStatus, lastError) => {
    const { messageId, task } = await oneDelivery();
    const fetch = makeFetch();
    const { batch } = await deliver([task], fetch.fetch);
    expect(fetch.requests).toHaveLength(1);
    expect(batch.messages[0]?.outcome()).toMatchObject({ kind: "retry" });
    const delivery = await deliveryOf(messageId);
    expect(delivery).toMatchObject({ state: "retrying", lastStatus });
    expect(delivery.lastError).toMatch(lastError);
  });

  it("retries after a timeout, with 'Timed out' as the error", async () => {
    const { messageId, task } = await oneDelivery({ timeoutMs: 1000 });
    const fetch = stubFetch(
      (_, signal) =>
        new Promise<Response>((_resolve, reject) => {
          signal?.addEventListener("abort", () => reject(signal.reason));
        }),
    );
    const { batch } = await deliver([task], fetch.fetch);
    expect(batch.messages[0]?.outcome()).toMatchObject({ kind: "retry" });
    expect((await deliveryOf(messageId)).lastError).toMatch(/^Timed out/);
  });

  it("makes the delivery dead after the last attempt, visible as a dead letter", async () => {
    const { topic, subscriber, messageId, task } = await oneDelivery({
      retry: { maxAttempts: 3, baseDelaySeconds: 1 },
    });
    const fetch = answering(500);
    const last = await attempts(task, fetch, 3);
    expect(fetch.requests).toHaveLength(3);
    expect(last.batch.messages[0]?.outcome()).toEqual({ kind: "ack" });
    expect(await deliveryOf(messageId)).toMatchObject({
      state: "dead",
      attempts: 3,
      lastStatus: 500,
      nextAttemptAt: null,
    });
    const deadLetters = await deadLettersOf(subscriber.id);
    expect(deadLetters).toEqual([
      expect.objectContaining({
        messageId,
        topic,
        subscriberId: subscriber.id,
        attempts: 3,
        lastStatus: 500,
      }),
    ]);
    expect(deadLetters[0]?.id).toMatch(/^dlq_/);
  });

  it("makes the delivery dead at once on 410 and deactivates the subscriber", async () => {
    const { name: topic } = await seedTopic();
    const subscriber = await seedSubscriber(topic);
    const first = await publishAndFanOut(topic, { body: 1 });
    const second = await publishAndFanOut(topic, { body: 2 });

    const { batch } = await deliver(first.tasks, answering(410).fetch);
    expect(batch.messages[0]?.outcome()).toEqual({ kind: "ack" });
    expect(await deliveryOf(first.messageId)).toMatchObject({
      state: "dead",
      attempts: 1,
      lastStatus: 410,
    });
    const view = await readSubscriber(subscriber.id);
    expect(view.active).toBe(false);
    expect(await deadLettersOf(subscriber.id)).toEqual([
      expect.objectContaining({ messageId: first.messageId, lastStatus: 410 }),
    ]);

    // Its other pending deliveries stop.
    expect(await deliveryOf(second.messageId)).toMatchObject({ state: "cancelled" });
    const fetch = answering(200);
    const later = await deliver(second.tasks, fetch.fetch);
    expect(fetch.requests).toEqual([]);
    expect(later.batch.messages[0]?.outcome()).toEqual({ kind: "ack" });
  });

  it("makes a delivery dead at once, without a request, when the URL needs a missing path param", async () => {
    const { subscriber, messageId, task } = await oneDelivery(
      { url: "https://hooks.example.com/orders/:orderId" },
      { body: 1 },
    );
    const fetch = answering(200);
    const { batch } = await deliver([task], fetch.fetch);
    expect(fetch.requests).toEqual([]);
    expect(batch.messages[0]?.outcome()).toEqual({ kind: "ack" });
    const delivery = await deliveryOf(messageId);
    expect(delivery.state).toBe("dead");
    expect(delivery.lastError).toContain("orderId");
    const [deadLetter] = await deadLettersOf(subscriber.id);
    expect(deadLetter?.lastError).toContain("orderId");
  });

  it("makes a delivery dead without a request when maxAttempts was lowered below its attempts", async () => {
    const { subscriber, messageId, task } = await oneDelivery({ retry: { maxAttempts: 5 } });
    await deliver([task], answering(500).fetch);
    await call("PATCH", `/v1/subscribers/${subscriber.id}`, {
      json: { retry: { maxAttempts: 1 } },
    });
    const fetch = answering(200);
    const { batch } = await deliver([task], fetch.fetch, { attempts: 2 });
    expect(fetch.requests).toEqual([]);
    expect(batch.messages[0]?.outcome()).toEqual({ kind: "ack" });
    expect(await deliveryOf(messageId)).toMatchObject({ state: "dead", attempts: 1 });
  });
});

describe("a subscriber that changed meanwhile", () => {
  it.each([
    ["deleted", (id: string) => call("DELETE", `/v1/subscribers/${id}`)],
    [
      "deactivated",
      (id: string) => call("PATCH", `/v1/subscribers/${id}`, { json: { active: false } }),
    ],
    [
      "gone with its topic",
      async (id: string) => {
        const view = await readSubscriber(id);
        return call("DELETE", `/v1/topics/${view.topic}`);
      },
    ],
    [
      "deactivated behind the API's back",
      (id: string) =>
        env.DB.prepare("update subscribers set active = 0 where id = ?").bind(id).run(),
    ],
  ])(
    "gets no request when %s; the message is acked and the delivery cancelled",
    async (_, change) => {
      const { subscriber, messageId, task } = await oneDelivery();
      await change(subscriber.id);
      const fetch = answering(200);
      const { batch } = await deliver([task], fetch.fetch);
      expect(fetch.requests).toEqual([]);
      expect(batch.messages[0]?.outcome()).toEqual({ kind: "ack" });
      expect(await deliveryOf(messageId)).toMatchObject({ state: "cancelled" });
    },
  );

  it("gets no second request for a delivery that was already delivered", async () => {
    const { task } = await oneDelivery();
    await deliver([task], answering(200).fetch);
    const fetch = answering(200);
    const { batch } = await deliver([task], fetch.fetch, { attempts: 2 });
    expect(fetch.requests).toEqual([]);
    expect(batch.messages[0]?.outcome()).toEqual({ kind: "ack" });
  });
});

describe("delivery I/O", () => {
  it("costs one D1 read and one D1 write for a full batch", async () => {
    const { name: topic } = await seedTopic();
    await insertSubscribers(topic, 24, { maxAttempts: 1 });
    const { tasks } = await publishAndFanOut(topic, { body: 1 });
    const d1 = countingD1();
    let n = 0;
    const fetch = stubFetch(() => new Response(null, { status: [200, 500, 410][n++ % 3] ?? 200 }));
    const { batch } = await deliver(tasks, fetch.fetch, { db: d1.db });
    expect(fetch.requests).toHaveLength(24);
    expect(batch.messages.every((m) => m.outcome()?.kind === "ack")).toBe(true);
    expect(await deadLettersOfTopic(topic)).toHaveLength(16);
    expect(d1.calls.map((c) => [c.kind, isWrite(c)])).toEqual([
      ["batch", false],
      ["batch", true],
    ]);
  });

  it("costs one read and one write for 100 deliveries of 100 messages to 100 subscribers", async () => {
    const { name: topic } = await seedTopic();
    await insertSubscribers(topic, 100);
    const published = [];
    for (let i = 0; i < 100; i++) published.push(await publishTask(topic, { body: i }));
    const { tasks: all } = await fanOut(published);
    // One delivery of each message, each to another subscriber: 100 distinct pairs.
    const subscribers = [...new Set(all.map((task) => task.subscriberId))].sort();
    const tasks = published.map((message, i) => {
      const task = all.find(
        (t) => t.messageId === message.messageId && t.subscriberId === subscribers[i],
      );
      if (!task) throw new Error("missing delivery task");
      return task;
    });
    const d1 = countingD1();
    const fetch = answering(200);
    const { batch } = await deliver(tasks, fetch.fetch, { db: d1.db });
    expect(fetch.requests).toHaveLength(100);
    expect(batch.messages.every((m) => m.outcome()?.kind === "ack")).toBe(true);
    expect(d1.calls.map((c) => [c.kind, isWrite(c)])).toEqual([
      ["batch", false],
      ["batch", true],
    ]);
    // Each message shows its one delivery delivered, and its 99 others still pending.
    for (const task of tasks) {
      const { deliveries } = await messageStatus(task.messageId);
      const delivered = deliveries.filter((delivery) => delivery.state === "delivered");
      expect(delivered).toEqual([
        expect.objectContaining({ subscriberId: task.subscriberId, attempts: 1, lastStatus: 200 }),
      ]);
      expect(deliveries.filter((delivery) => delivery.state === "pending")).toHaveLength(99);
    }
  });

  it("has at most 6 requests in flight", async () => {
    const { name: topic } = await seedTopic();
    await insertSubscribers(topic, 20);
    const { tasks } = await publishAndFanOut(topic, { body: 1 });
    const fetch = stubFetch(
      () => new Promise<Response>((resolve) => setTimeout(() => resolve(new Response(null)), 15)),
    );
    const { batch } = await deliver(tasks, fetch.fetch);
    expect(fetch.requests).toHaveLength(20);
    expect(fetch.maxInFlight()).toBe(6);
    expect(batch.messages.every((m) => m.outcome()?.kind === "ack")).toBe(true);
  });

  it("acks a malformed task without a request", async () => {
    const fetch = answering(200);
    const { batch } = await deliver([{ messageId: 1 }], fetch.fetch);
    expect(fetch.requests).toEqual([]);
    expect(batch.messages[0]?.outcome()).toEqual({ kind: "ack" });
  });
});

describe("delivery when D1 is broken", () => {
  it("retries every message, without a request, when the read fails", async () => {
    const { task } = await oneDelivery();
    const d1 = countingD1(env.DB, () => true);
    const fetch = answering(200);
    const { batch } = await deliver([task], fetch.fetch, { db: d1.db });
    expect(fetch.requests).toEqual([]);
    const outcome = batch.messages[0]?.outcome();
    expect(outcome?.kind).toBe("retry");
    expect(outcome?.kind === "retry" && outcome.delaySeconds).toBeGreaterThan(0);
  });

  it("does not count a consumption that failed inside the broker as one of the subscriber's attempts", async () => {
    const { messageId, task } = await oneDelivery({ retry: { maxAttempts: 1 } });
    const broken = countingD1(env.DB, () => true);
    await deliver([task], answering(200).fetch, { db: broken.db, attempts: 1 });

    const fetch = answering(200);
    const { batch } = await deliver([task], fetch.fetch, { attempts: 2 });
    expect(fetch.requests).toHaveLength(1);
    expect(fetch.requests[0]?.headers["switchboard-attempt"]).toBe("1");
    expect(batch.messages[0]?.outcome()).toEqual({ kind: "ack" });
    expect(await deliveryOf(messageId)).toMatchObject({ state: "delivered", attempts: 1 });
  });

  it("acks, retries and hands finished deliveries to the dead-letter queue when the write fails", async () => {
    const { topic, ok, failing, gone, messageId, tasks, fetch } = await okFailingGone(500);
    const d1 = countingD1(env.DB, isWrite);

    const { batch, deadLetterQueue } = await deliver(tasks, fetch.fetch, { db: d1.db });

    const outcomeOf = (subscriberId: string) =>
      batch.messages[tasks.findIndex((t) => t.subscriberId === subscriberId)]?.outcome();
    expect(outcomeOf(ok.id)).toEqual({ kind: "ack" });
    expect(outcomeOf(failing.id)).toMatchObject({ kind: "retry" });
    expect(outcomeOf(gone.id)).toEqual({ kind: "ack" });

    const bodies = deadLetterQueue.bodies();
    const dead = bodies.flatMap((body) => DeadRecordSchema.safeParse(body).data ?? []);
    const settled = bodies.flatMap((body) => SettledRecordSchema.safeParse(body).data ?? []);
    expect(bodies).toHaveLength(2);
    expect(dead).toEqual([
      expect.objectContaining({
        kind: "dead",
        messageId,
        subscriberId: gone.id,
        topic,
        attempts: 1,
        lastStatus: 410,
        gone: true,
      }),
    ]);
    expect(settled).toEqual([
      expect.objectContaining({
        kind: "settled",
        messageId,
        subscriberId: ok.id,
        state: "delivered",
        attempts: 1,
        lastStatus: 200,
      }),
    ]);
    expect(await messageStatus(messageId)).toMatchObject({
      deliveries: expect.arrayContaining([
        expect.objectContaining({ subscriberId: ok.id, state: "pending" }),
      ]),
    });

    // The dead-letter consumer records what the delivery consumer could not.
    const { batch: dlqBatch } = await consumeDeadLetters(bodies);
    expect(dlqBatch.messages.map((m) => m.outcome())).toEqual([{ kind: "ack" }, { kind: "ack" }]);
    expect(await deadLettersOf(gone.id)).toEqual([
      expect.objectContaining({ messageId, lastStatus: 410, attempts: 1 }),
    ]);
    expect(await messageStatus(messageId)).toMatchObject({
      deliveries: expect.arrayContaining([
        expect.objectContaining({
          subscriberId: ok.id,
          state: "delivered",
          attempts: 1,
          lastStatus: 200,
        }),
      ]),
    });
    const view = await readSubscriber(gone.id);
    expect(view.active).toBe(false);
  });

  it.each([
    ["dead", 410],
    ["delivered", 200],
  ])(
    "retries a %s delivery when neither D1 nor the dead-letter queue takes it",
    async (_, status) => {
      const { task } = await oneDelivery();
      const d1 = countingD1(env.DB, isWrite);
      const deadLetterQueue = recordingQueue();
      deadLetterQueue.failWith(new Error("Queue send failed"));
      const { batch } = await deliver([task], answering(status).fetch, {
        db: d1.db,
        deadLetterQueue,
      });
      expect(batch.messages[0]?.outcome()).toMatchObject({ kind: "retry" });
    },
  );
});

describe("a late duplicate of a task whose delivery is dead", () => {
  it("is acknowledged without a request or a second dead letter", async () => {
    const { subscriber, messageId, task } = await oneDelivery({ retry: { maxAttempts: 1 } });
    await deliver([task], answering(500).fetch);
    expect(await deadLettersOf(subscriber.id)).toHaveLength(1);

    const duplicate = answering(200);
    const { batch } = await deliver([task], duplicate.fetch);

    expect(duplicate.requests).toHaveLength(0);
    expect(batch.messages[0]?.ack).toHaveBeenCalled();
    expect(await deadLettersOf(subscriber.id)).toHaveLength(1);
    expect((await deliveryOf(messageId)).state).toBe("dead");
  });

  it("is sent again when it is a replay of the dead letter", async () => {
    const { messageId, task } = await oneDelivery({ retry: { maxAttempts: 1 } });
    await deliver([task], answering(500).fetch);

    const replayed = answering(200);
    await deliver([{ ...task, replay: true }], replayed.fetch);

    expect(replayed.requests).toHaveLength(1);
    expect((await deliveryOf(messageId)).state).toBe("delivered");
  });
});

describe("two tasks for one delivery in one batch", () => {
  it("attempts it once and leaves one dead letter when it dies", async () => {
    const { subscriber, messageId, task } = await oneDelivery({ retry: { maxAttempts: 1 } });
    const fetch = answering(500);
    const { batch } = await deliver([task, task], fetch.fetch);
    expect(fetch.requests).toHaveLength(1);
    expect(batch.messages.map((message) => message.outcome())).toEqual([
      { kind: "ack" },
      { kind: "ack" },
    ]);
    expect(await deadLettersOf(subscriber.id)).toHaveLength(1);
    expect(await deliveryOf(messageId)).toMatchObject({ state: "dead", attempts: 1 });
  });

  it("leaves one dead letter when two replays of it die together", async () => {
    const { subscriber, task } = await oneDelivery({ retry: { maxAttempts: 1 } });
    await deliver([task], answering(500).fetch);
    const replay = { ...task, replay: true };
    const fetch = answering(500);
    await deliver([replay, replay], fetch.fetch);
    expect(fetch.requests).toHaveLength(1);
    // The first death's dead letter (this replay skipped the API, which would remove it) and one
    // for the replays.
    expect(await deadLettersOf(subscriber.id)).toHaveLength(2);
  });

  it("still sends a replay that comes after a stale duplicate of the dead task", async () => {
    const { messageId, task } = await oneDelivery({ retry: { maxAttempts: 1 } });
    await deliver([task], answering(500).fetch);
    const fetch = answering(200);
    await deliver([task, { ...task, replay: true }], fetch.fetch);
    expect(fetch.requests).toHaveLength(1);
    expect(await deliveryOf(messageId)).toMatchObject({ state: "delivered", attempts: 1 });
  });
});

describe("the status after a failure and then a success", () => {
  it("shows the delivery delivered with no error left from the failed attempt", async () => {
    const { messageId, task } = await oneDelivery();
    await deliver([task], answering(500).fetch, { attempts: 1 });
    expect(await deliveryOf(messageId)).toMatchObject({ state: "retrying", lastStatus: 500 });

    await deliver([task], answering(200).fetch, { attempts: 2 });
    expect(await deliveryOf(messageId)).toMatchObject({
      state: "delivered",
      attempts: 2,
      lastStatus: 200,
      lastError: null,
    });
  });
});
