/**
 * Dead letters: how deliveries end up there, listing them, replaying them to the subscriber as it
 * is now, deleting them, and the dead-letter queue's consumer.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import { type DeadLetter, DeadLetterList, Replayed } from "../../src/api/schemas/dead-letters";
import type { SubscriberWithSecret } from "../../src/api/schemas/subscribers";
import { chunk } from "../../src/db/chunk";
import { newId } from "../../src/db/ids";
import { handleDeadLetterBatch } from "../../src/deadletters/consumer";
import { type DeadRecord, DeliveryTaskSchema, FanoutTaskSchema } from "../../src/queues/tasks";
import {
  call,
  expectJson,
  expectProblem,
  seedSubscriber,
  seedTopic,
  silenceErrorLog,
} from "../harness";
import {
  answering,
  consumeDeadLetters,
  countingD1,
  deliver,
  envWith,
  insertSubscribers,
  isWrite,
  messageBatch,
  messageStatus,
  publishAndFanOut,
  publishTask,
  type RecordingQueue,
  recordingQueue,
  rowsOf,
} from "./support";

silenceErrorLog();

/** A subscriber that gives up after one failed attempt. */
function fragileSubscriber(topic: string, input: Parameters<typeof seedSubscriber>[1] = {}) {
  return seedSubscriber(topic, { retry: { maxAttempts: 1 }, ...input });
}

/** Publishes one message to `topic` and lets every delivery of it die with a 500. */
async function killMessage(topic: string, envelope: Record<string, unknown> = { body: { a: 1 } }) {
  const { messageId, tasks } = await publishAndFanOut(topic, envelope);
  await deliver(tasks, answering(500).fetch);
  return { messageId, tasks };
}

async function list(query = ""): Promise<DeadLetter[]> {
  const res = await call("GET", `/v1/dead-letters${query}`);
  return (await expectJson(res, 200, DeadLetterList)).deadLetters;
}

async function listAll(query: string, limit: number): Promise<{ pages: DeadLetter[][] }> {
  const pages: DeadLetter[][] = [];
  let cursor: string | null = null;
  do {
    const after: string = cursor === null ? "" : `&cursor=${encodeURIComponent(cursor)}`;
    const res = await call("GET", `/v1/dead-letters?limit=${limit}${query}${after}`);
    const page = await expectJson(res, 200, DeadLetterList);
    pages.push(page.deadLetters);
    cursor = page.nextCursor;
    expect(pages.length).toBeLessThan(50);
  } while (cursor !== null);
  return { pages };
}

async function replay(path: string, options: { json?: unknown; queue?: RecordingQueue } = {}) {
  const queue = options.queue ?? recordingQueue();
  const res = await call("POST", path, {
    json: options.json,
    env: { DELIVERY_QUEUE: queue.queue },
  });
  return { res, queue };
}

describe("listing dead letters", () => {
  it("lists them by topic and by subscriber, oldest first, page by page", async () => {
    const { name: topic } = await seedTopic();
    const { name: otherTopic } = await seedTopic();
    const first = await fragileSubscriber(topic);
    const second = await fragileSubscriber(topic);
    await fragileSubscriber(otherTopic);
    const one = await killMessage(topic);
    const two = await killMessage(topic);
    await killMessage(otherTopic);

    const ofTopic = await list(`?topic=${topic}`);
    expect(ofTopic).toHaveLength(4);
    expect(ofTopic.every((d) => d.topic === topic)).toBe(true);
    expect(ofTopic.map((d) => d.id)).toEqual(ofTopic.map((d) => d.id).sort());
    expect(new Set(ofTopic.map((d) => d.messageId))).toEqual(
      new Set([one.messageId, two.messageId]),
    );
    for (const deadLetter of ofTopic) {
      expect(deadLetter).toMatchObject({ attempts: 1, lastStatus: 500 });
      expect(deadLetter.lastError).toMatch(/^HTTP 500/);
      expect(Date.parse(deadLetter.deadAt)).toBeGreaterThan(Date.now() - 60_000);
    }

    const ofSubscriber = await list(`?subscriberId=${first.id}`);
    expect(ofSubscriber.map((d) => d.subscriberId)).toEqual([first.id, first.id]);
    expect(await list(`?topic=${topic}&subscriberId=${second.id}`)).toHaveLength(2);
    expect(await list(`?topic=${otherTopic}&subscriberId=${second.id}`)).toEqual([]);

    const { pages } = await listAll(`&topic=${topic}`, 3);
    expect(pages.map((page) => page.length)).toEqual([3, 1]);
    expect(pages.flat().map((d) => d.id)).toEqual(ofTopic.map((d) => d.id));
  });

  it("ends with a null cursor when the last page is full", async () => {
    const { name: topic } = await seedTopic();
    await fragileSubscriber(topic);
    await killMessage(topic);
    await killMessage(topic);
    const { pages } = await listAll(`&topic=${topic}`, 2);
    expect(pages.map((page) => page.length)).toEqual([2]);
  });

  it.each([
    ["limit=0", 400],
    ["limit=201", 400],
    ["cursor=%%%", 400],
  ])("refuses %s", async (query, status) => {
    await expectProblem(
      await call("GET", `/v1/dead-letters?${query}`),
      status,
      "validation_failed",
    );
  });
});

describe("replaying one dead letter", () => {
  it("queues a fresh delivery, removes the dead letter and makes the delivery pending again", async () => {
    const { name: topic } = await seedTopic();
    const subscriber = await fragileSubscriber(topic);
    const { messageId, tasks } = await killMessage(topic, { body: { order: 7 } });
    const [deadLetter] = await list(`?subscriberId=${subscriber.id}`);
    if (!deadLetter) throw new Error("no dead letter");

    const before = Date.now();
    const { res, queue } = await replay(`/v1/dead-letters/${deadLetter.id}/replay`);
    expect(await expectJson(res, 202, Replayed)).toEqual({ replayed: 1 });
    const replayed = queue.bodies().map((body) => DeliveryTaskSchema.parse(body));
    expect(replayed).toEqual([
      {
        messageId,
        subscriberId: subscriber.id,
        topic,
        publishedAt: tasks[0]?.publishedAt,
        content: tasks[0]?.content,
        replay: true,
        openedAt: expect.any(Number),
      },
    ]);
    // The replay opens the delivery anew: a deactivation before it does not cancel it.
    expect(replayed[0]?.openedAt).toBeGreaterThanOrEqual(before);
    expect(replayed[0]?.openedAt).toBeLessThanOrEqual(Date.now());
    expect(await list(`?subscriberId=${subscriber.id}`)).toEqual([]);
    expect((await messageStatus(messageId)).deliveries).toEqual([
      expect.objectContaining({ subscriberId: subscriber.id, state: "pending", attempts: 0 }),
    ]);

    // The fresh delivery starts again from attempt 1.
    const fetch = answering(200);
    const { batch } = await deliver(replayed, fetch.fetch);
    expect(fetch.requests[0]?.headers["switchboard-attempt"]).toBe("1");
    expect(fetch.requests[0]?.body).toBe('{"order":7}');
    expect(batch.messages[0]?.outcome()).toEqual({ kind: "ack" });
    expect((await messageStatus(messageId)).deliveries[0]).toMatchObject({
      state: "delivered",
      attempts: 1,
    });
  });

  it("starts from attempt 1 even when the dead letter's bookkeeping could not be updated", async () => {
    const { name: topic } = await seedTopic();
    const subscriber = await seedSubscriber(topic, {
      retry: { maxAttempts: 2, baseDelaySeconds: 1 },
    });
    const { messageId, tasks } = await publishAndFanOut(topic, { body: 1 });
    await deliver(tasks, answering(500).fetch, { attempts: 1 });
    await deliver(tasks, answering(500).fetch, { attempts: 2 });
    const [deadLetter] = await list(`?subscriberId=${subscriber.id}`);

    const queue = recordingQueue();
    const res = await call("POST", `/v1/dead-letters/${deadLetter?.id}/replay`, {
      env: { DELIVERY_QUEUE: queue.queue, DB: countingD1(env.DB, isWrite).db },
    });
    expect(await expectJson(res, 202, Replayed)).toEqual({ replayed: 1 });

    const fetch = answering(200);
    await deliver(queue.bodies(), fetch.fetch, { attempts: 1 });
    expect(fetch.requests.map((r) => r.headers["switchboard-attempt"])).toEqual(["1"]);
    expect((await messageStatus(messageId)).deliveries[0]).toMatchObject({ state: "delivered" });
  });

  it("delivers to the subscriber as it is now, without evaluating its filter again", async () => {
    const { name: topic } = await seedTopic();
    const subscriber = await fragileSubscriber(topic);
    await killMessage(topic);
    await call("PATCH", `/v1/subscribers/${subscriber.id}`, {
      json: {
        url: "https://fixed.example.com/hook",
        headers: { "x-fixed": "yes" },
        filter: 'body.never == "matches"',
      },
    });
    const [deadLetter] = await list(`?subscriberId=${subscriber.id}`);
    const { queue } = await replay(`/v1/dead-letters/${deadLetter?.id}/replay`);
    const fetch = answering(200);
    await deliver(queue.bodies(), fetch.fetch);
    expect(fetch.requests[0]).toMatchObject({ url: "https://fixed.example.com/hook" });
    expect(fetch.requests[0]?.headers["x-fixed"]).toBe("yes");
  });

  it("delivers to a subscriber that was deactivated and made active again since the delivery died", async () => {
    const { name: topic } = await seedTopic();
    const subscriber = await fragileSubscriber(topic);
    const { messageId } = await killMessage(topic);
    const patch = (active: boolean) =>
      call("PATCH", `/v1/subscribers/${subscriber.id}`, { json: { active } });
    expect((await patch(false)).status).toBe(200);
    expect((await patch(true)).status).toBe(200);
    // The deactivation cancels what was opened up to its millisecond, itself included.
    await new Promise((resolve) => setTimeout(resolve, 5));

    const [deadLetter] = await list(`?subscriberId=${subscriber.id}`);
    const { queue } = await replay(`/v1/dead-letters/${deadLetter?.id}/replay`);
    expect((await messageStatus(messageId)).deliveries).toEqual([
      expect.objectContaining({ state: "pending", attempts: 0, lastError: null }),
    ]);
    const fetch = answering(200);
    const { batch } = await deliver(queue.bodies(), fetch.fetch);
    expect(fetch.requests).toHaveLength(1);
    expect(batch.messages[0]?.outcome()).toEqual({ kind: "ack" });
    expect((await messageStatus(messageId)).deliveries).toEqual([
      expect.objectContaining({ state: "delivered", attempts: 1 }),
    ]);
  });

  it("replays a large message that travels by reference, even after the message expired", async () => {
    const { name: topic } = await seedTopic();
    const subscriber = await fragileSubscriber(topic);
    const text = "L".repeat(120 * 1024);
    const { messageId } = await killMessage(topic, { bodyText: text });
    await env.DB.prepare("delete from messages where id = ?").bind(messageId).run();
    const [deadLetter] = await list(`?subscriberId=${subscriber.id}`);

    const { res, queue } = await replay(`/v1/dead-letters/${deadLetter?.id}/replay`);
    expect(await expectJson(res, 202, Replayed)).toEqual({ replayed: 1 });
    const [task] = queue.bodies().map((body) => DeliveryTaskSchema.parse(body));
    expect(task?.content).toBeNull();
    const fetch = answering(200);
    await deliver(queue.bodies(), fetch.fetch);
    expect(fetch.requests[0]?.body).toBe(text);
  });

  it.each([
    ["deleted", (s: SubscriberWithSecret) => call("DELETE", `/v1/subscribers/${s.id}`)],
    [
      "inactive",
      (s: SubscriberWithSecret) =>
        call("PATCH", `/v1/subscribers/${s.id}`, { json: { active: false } }),
    ],
  ])("answers 409 when the subscriber is %s, keeping the dead letter", async (_, change) => {
    const { name: topic } = await seedTopic();
    const subscriber = await fragileSubscriber(topic);
    await killMessage(topic);
    const [deadLetter] = await list(`?subscriberId=${subscriber.id}`);
    await change(subscriber);
    const { res, queue } = await replay(`/v1/dead-letters/${deadLetter?.id}/replay`);
    await expectProblem(res, 409, "conflict");
    expect(queue.calls).toEqual([]);
    expect(await list(`?subscriberId=${subscriber.id}`)).toEqual([deadLetter]);
  });

  it("answers 404 for a dead letter that does not exist", async () => {
    const { res, queue } = await replay("/v1/dead-letters/dlq_nope/replay");
    await expectProblem(res, 404, "not_found");
    expect(queue.calls).toEqual([]);
  });

  it("answers 503 and keeps the dead letter when the queue fails", async () => {
    const { name: topic } = await seedTopic();
    const subscriber = await fragileSubscriber(topic);
    await killMessage(topic);
    const [deadLetter] = await list(`?subscriberId=${subscriber.id}`);
    const queue = recordingQueue();
    queue.failWith(new Error("Queue send failed"));
    const { res } = await replay(`/v1/dead-letters/${deadLetter?.id}/replay`, { queue });
    await expectProblem(res, 503, "unavailable");
    expect(await list(`?subscriberId=${subscriber.id}`)).toEqual([deadLetter]);
  });
});

describe("replaying many dead letters", () => {
  it("replays those of one topic", async () => {
    const { name: topic } = await seedTopic();
    const { name: otherTopic } = await seedTopic();
    await fragileSubscriber(topic);
    await fragileSubscriber(topic);
    await fragileSubscriber(otherTopic);
    await killMessage(topic);
    await killMessage(otherTopic);

    const { res, queue } = await replay("/v1/dead-letters/replay", { json: { topic } });
    expect(await expectJson(res, 202, Replayed)).toEqual({ replayed: 2 });
    expect(queue.bodies().map((b) => DeliveryTaskSchema.parse(b).topic)).toEqual([topic, topic]);
    expect(await list(`?topic=${topic}`)).toEqual([]);
    expect(await list(`?topic=${otherTopic}`)).toHaveLength(1);
  });

  it("replays those of one subscriber", async () => {
    const { name: topic } = await seedTopic();
    const one = await fragileSubscriber(topic);
    const other = await fragileSubscriber(topic);
    await killMessage(topic);
    await killMessage(topic);

    const { res, queue } = await replay("/v1/dead-letters/replay", {
      json: { subscriberId: one.id },
    });
    expect(await expectJson(res, 202, Replayed)).toEqual({ replayed: 2 });
    expect(queue.bodies().map((b) => DeliveryTaskSchema.parse(b).subscriberId)).toEqual([
      one.id,
      one.id,
    ]);
    expect(await list(`?subscriberId=${one.id}`)).toEqual([]);
    expect(await list(`?subscriberId=${other.id}`)).toHaveLength(2);
  });

  it("replays more dead letters than fit in one page or one sendBatch", async () => {
    const { name: topic } = await seedTopic();
    await insertSubscribers(topic, 150, { maxAttempts: 1 });
    const { tasks } = await publishAndFanOut(topic, { body: 1 });
    for (const part of chunk(tasks, 24)) await deliver(part, answering(500).fetch);
    expect((await listAll(`&topic=${topic}`, 200)).pages.flat()).toHaveLength(150);

    const { res, queue } = await replay("/v1/dead-letters/replay", { json: { topic } });
    expect(await expectJson(res, 202, Replayed)).toEqual({ replayed: 150 });
    expect(queue.calls.map((c) => c.messages.length)).toEqual([100, 50]);
    expect(new Set(queue.bodies().map((b) => DeliveryTaskSchema.parse(b).subscriberId)).size).toBe(
      150,
    );
    expect(await list(`?topic=${topic}`)).toEqual([]);
  });

  it("replays every replayable dead letter without a body, leaving those it cannot replay", async () => {
    const { name: topic } = await seedTopic();
    await fragileSubscriber(topic);
    const paused = await fragileSubscriber(topic);
    await killMessage(topic);
    await killMessage(topic);
    await call("PATCH", `/v1/subscribers/${paused.id}`, { json: { active: false } });

    const before = await listAll("", 200);
    const queue = recordingQueue();
    const res = await call("POST", "/v1/dead-letters/replay", {
      env: { DELIVERY_QUEUE: queue.queue },
    });
    const { replayed } = await expectJson(res, 202, Replayed);

    const remaining = (await listAll("", 200)).pages.flat();
    expect(remaining.filter((d) => d.topic === topic).map((d) => d.subscriberId)).toEqual([
      paused.id,
      paused.id,
    ]);
    expect(replayed).toBe(before.pages.flat().length - remaining.length);
    expect(queue.sent()).toHaveLength(replayed);
    expect(replayed).toBeGreaterThanOrEqual(2);
  });

  it("takes an empty body as every dead letter, whatever its content type says", async () => {
    for (const contentType of ["application/json", "text/plain"]) {
      const queue = recordingQueue();
      const res = await call("POST", "/v1/dead-letters/replay", {
        body: "",
        contentType,
        env: { DELIVERY_QUEUE: queue.queue },
      });
      await expectJson(res, 202, Replayed);
    }
  });

  it("takes an empty filter as every dead letter", async () => {
    const { res } = await replay("/v1/dead-letters/replay", { json: {} });
    await expectJson(res, 202, Replayed);
  });

  it("refuses an unknown field in the filter", async () => {
    const { res, queue } = await replay("/v1/dead-letters/replay", { json: { queue: "x" } });
    await expectProblem(res, 400, "validation_failed");
    expect(queue.calls).toEqual([]);
  });
});

describe("deleting a dead letter", () => {
  it("answers 204, then 404", async () => {
    const { name: topic } = await seedTopic();
    const subscriber = await fragileSubscriber(topic);
    await killMessage(topic);
    const [deadLetter] = await list(`?subscriberId=${subscriber.id}`);
    const res = await call("DELETE", `/v1/dead-letters/${deadLetter?.id}`);
    expect(res.status).toBe(204);
    expect(await list(`?subscriberId=${subscriber.id}`)).toEqual([]);
    await expectProblem(
      await call("DELETE", `/v1/dead-letters/${deadLetter?.id}`),
      404,
      "not_found",
    );
  });
});

describe("the dead-letter queue consumer", () => {
  it("records a dead delivery handed over by the delivery consumer", async () => {
    const { name: topic } = await seedTopic();
    const subscriber = await fragileSubscriber(topic);
    const { messageId, tasks } = await publishAndFanOut(topic, { body: 1 });
    const record: DeadRecord = {
      kind: "dead",
      messageId,
      subscriberId: subscriber.id,
      topic,
      publishedAt: tasks[0]?.publishedAt ?? 0,
      attempts: 1,
      lastStatus: 500,
      lastError: "HTTP 500",
      lastAttemptAt: Date.now(),
      payload: JSON.stringify(tasks[0]?.content),
      gone: false,
    };
    const { batch } = await consumeDeadLetters([record]);
    expect(batch.messages[0]?.outcome()).toEqual({ kind: "ack" });
    expect(await list(`?subscriberId=${subscriber.id}`)).toEqual([
      expect.objectContaining({ messageId, attempts: 1, lastStatus: 500, lastError: "HTTP 500" }),
    ]);
    expect((await messageStatus(messageId)).deliveries[0]).toMatchObject({ state: "dead" });
    const [row] = await rowsOf("dead_letters", topic);
    expect(row?.payload).toBe(JSON.stringify(tasks[0]?.content));
  });

  it("retries what it cannot store, a minute then doubling up to an hour, naming each delivery in the log", async () => {
    const { name: topic } = await seedTopic();
    const subscriber = await seedSubscriber(topic);
    const { messageId, tasks } = await publishAndFanOut(topic, { body: 1 });
    const down = countingD1(env.DB, () => true);
    const errors = vi.spyOn(console, "error").mockImplementation(() => undefined);
    const delays = [];
    for (const attempts of [1, 2, 7, 8, 100]) {
      errors.mockClear();
      const batch = messageBatch("switchboard-dead-letters", tasks, attempts);
      await handleDeadLetterBatch(batch, envWith({ DB: down.db }));
      delays.push(batch.messages[0]?.outcome());
      expect(errors.mock.calls.map(([line]) => JSON.parse(String(line)))).toEqual([
        expect.objectContaining({
          event: "dead_letter.record_failed",
          attempts,
          deliveries: [{ kind: "exhausted", messageId, subscriberId: subscriber.id }],
        }),
      ]);
    }
    expect(delays.map((outcome) => outcome?.kind === "retry" && outcome.delaySeconds)).toEqual([
      60, 120, 3600, 3600, 3600,
    ]);
  });

  it("records a delivery task whose queue retries ran out once, however often it arrives", async () => {
    const { name: topic } = await seedTopic();
    const subscriber = await seedSubscriber(topic);
    const { tasks } = await publishAndFanOut(topic, { body: 1 });
    await deliver(tasks, answering(500).fetch, { attempts: 1 });

    // The queue keeps a message's id and the time it was first queued, days ago here, when it
    // moves it to the dead-letter queue, and delivers at least once: the same message, again.
    const queuedAt = new Date(Date.now() - 3 * 24 * 60 * 60 * 1000);
    const arrival = () => {
      const batch = messageBatch("switchboard-dead-letters", tasks);
      return {
        ...batch,
        messages: batch.messages.map((message) => ({
          ...message,
          id: "qm-1",
          timestamp: queuedAt,
        })),
      };
    };
    const deadLetterEnv = envWith({ FANOUT_QUEUE: recordingQueue().queue });
    const before = newId("dlq");
    await handleDeadLetterBatch(arrival(), deadLetterEnv);
    const again = arrival();
    await handleDeadLetterBatch(again, deadLetterEnv);
    expect(again.messages.map((message) => message.outcome())).toEqual([{ kind: "ack" }]);
    const letters = await list(`?subscriberId=${subscriber.id}`);
    expect(letters).toHaveLength(1);
    // Its id is of the time it was recorded, so it lists after the dead letters before it.
    expect((letters[0]?.id ?? "") > before).toBe(true);
  });

  it("records a delivery task whose queue retries ran out, with its attempts so far", async () => {
    const { name: topic } = await seedTopic();
    const subscriber = await seedSubscriber(topic);
    const { messageId, tasks } = await publishAndFanOut(topic, { body: 1 });
    await deliver(tasks, answering(500).fetch, { attempts: 1 });
    await deliver(tasks, answering(500).fetch, { attempts: 2 });

    const { batch } = await consumeDeadLetters(tasks);
    expect(batch.messages[0]?.outcome()).toEqual({ kind: "ack" });
    const [deadLetter] = await list(`?subscriberId=${subscriber.id}`);
    expect(deadLetter).toMatchObject({ messageId, attempts: 2 });
    expect((await messageStatus(messageId)).deliveries[0]).toMatchObject({ state: "dead" });

    // It can be replayed like any other.
    const { res } = await replay(`/v1/dead-letters/${deadLetter?.id}/replay`);
    expect(await expectJson(res, 202, Replayed)).toEqual({ replayed: 1 });
  });

  it("puts a fan-out task whose retries ran out back on the fan-out queue", async () => {
    const { name: topic } = await seedTopic();
    await seedSubscriber(topic);
    const task = await publishTask(topic, { body: 1 });
    const { batch, fanout } = await consumeDeadLetters([task]);
    expect(batch.messages[0]?.outcome()).toEqual({ kind: "ack" });
    const [sent] = fanout.sent();
    expect(FanoutTaskSchema.parse(sent?.body)).toMatchObject({
      messageId: task.messageId,
      redrives: 1,
    });
    expect(sent?.delaySeconds).toBeGreaterThan(0);
  });

  it("records a full batch of exhausted delivery tasks in one go", async () => {
    const { name: topic } = await seedTopic();
    await insertSubscribers(topic, 50);
    const { tasks } = await publishAndFanOut(topic, { body: 1 });
    const { batch } = await consumeDeadLetters(tasks);
    expect(batch.messages.every((m) => m.outcome()?.kind === "ack")).toBe(true);
    expect((await listAll(`&topic=${topic}`, 200)).pages.flat()).toHaveLength(50);
  });

  it("acks what it does not recognize", async () => {
    const { batch, fanout } = await consumeDeadLetters([{ what: "is this" }]);
    expect(batch.messages[0]?.outcome()).toEqual({ kind: "ack" });
    expect(fanout.calls).toEqual([]);
  });
});
