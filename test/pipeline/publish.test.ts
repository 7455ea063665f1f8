/**
 * Publishing as the contract describes it: what is answered, what is stored and queued, the I/O
 * it costs, idempotency, and what a failing database or queue leaves behind.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { MessageStatus, PublishBatchResult, PublishResult } from "../../src/api/schemas/messages";
import { FanoutTaskSchema } from "../../src/queues/tasks";
import { call, expectJson, expectProblem, seedTopic, silenceErrorLog } from "../harness";
import {
  countingD1,
  D1_FAILURE,
  fanOut,
  insertSubscribers,
  messageStatus,
  publish,
  queuedBytes,
  recordingQueue,
  rowsOf,
} from "./support";

silenceErrorLog();

const DAY = 24 * 60 * 60 * 1000;

async function topicWithSubscribers(count: number): Promise<string> {
  const { name } = await seedTopic();
  await insertSubscribers(name, count);
  return name;
}

describe("publishing one message", () => {
  it("answers 202 with the id, the topic and duplicate false, and queues one fan-out task", async () => {
    const topic = await topicWithSubscribers(1);
    const { res, fanout } = await publish(topic, {
      body: { category: "food" },
      headers: { "X-Mode": "quiet" },
      query: { page: "2", tag: ["a", "b"] },
      pathParams: { orderId: "42" },
      method: "PUT",
    });
    const result = await expectJson(res, 202, PublishResult);
    expect(result).toEqual({ id: expect.stringMatching(/^msg_/), topic, duplicate: false });

    expect(fanout.calls).toHaveLength(1);
    const task = FanoutTaskSchema.parse(fanout.bodies()[0]);
    expect(task).toMatchObject({
      messageId: result.id,
      topic,
      content: {
        body: { kind: "json", value: { category: "food" }, contentType: "application/json" },
        headers: { "x-mode": "quiet" },
        query: { page: "2", tag: ["a", "b"] },
        pathParams: { orderId: "42" },
        method: "PUT",
      },
    });
  });

  it("shows the message as queued until it is fanned out", async () => {
    const topic = await topicWithSubscribers(1);
    const { res } = await publish(topic, { body: 1 });
    const { id } = await expectJson(res, 202, PublishResult);
    const status = await expectJson(await call("GET", `/v1/messages/${id}`), 200, MessageStatus);
    expect(status).toMatchObject({ id, topic, state: "queued", deliveries: [] });
    expect(Date.parse(status.publishedAt)).toBeGreaterThan(Date.now() - 60_000);
  });

  it("queues the fan-out task with the message's delay", async () => {
    const topic = await topicWithSubscribers(1);
    const { res, fanout } = await publish(topic, { body: 1, delaySeconds: 90 });
    expect(res.status).toBe(202);
    expect(fanout.sent()).toEqual([expect.objectContaining({ delaySeconds: 90 })]);
  });

  it("lets the publish token publish and read the message's status", async () => {
    const topic = await topicWithSubscribers(1);
    const { res } = await publish(topic, { body: 1 }, { as: "publisher" });
    const { id } = await expectJson(res, 202, PublishResult);
    const status = await call("GET", `/v1/messages/${id}`, { as: "publisher" });
    expect((await expectJson(status, 200, MessageStatus)).id).toBe(id);
  });

  it("answers 404 for a message that does not exist", async () => {
    await expectProblem(await call("GET", "/v1/messages/msg_nope"), 404, "not_found");
  });
});

describe("publishing raw bytes", () => {
  it("takes the body byte for byte with its content type, the query and Forward-* headers", async () => {
    const topic = await topicWithSubscribers(1);
    const fanout = recordingQueue();
    const bytes = new Uint8Array([0, 1, 2, 250, 255]);
    const res = await call("POST", `/v1/topics/${topic}/messages/raw?page=2&tag=a&tag=b`, {
      as: "publisher",
      body: bytes,
      contentType: "application/x-thing",
      headers: { "Forward-X-Mode": "quiet", "x-not-forwarded": "1" },
      env: { FANOUT_QUEUE: fanout.queue },
    });
    const result = await expectJson(res, 202, PublishResult);
    expect(result).toMatchObject({ topic, duplicate: false });
    const task = FanoutTaskSchema.parse(fanout.bodies()[0]);
    expect(task.content).toEqual({
      body: {
        kind: "bytes",
        base64: btoa("\x00\x01\x02\xfa\xff"),
        contentType: "application/x-thing",
      },
      headers: { "x-mode": "quiet" },
      query: { page: "2", tag: ["a", "b"] },
      pathParams: {},
      method: null,
    });
  });
});

describe("publishing I/O", () => {
  it.each([1, 500])(
    "costs one D1 batch and one queue send with %i subscribers",
    async (subscribers) => {
      const topic = await topicWithSubscribers(subscribers);
      const d1 = countingD1();
      const fanout = recordingQueue();
      const res = await call("POST", `/v1/topics/${topic}/messages`, {
        json: { body: { n: 1 } },
        headers: { "idempotency-key": `io-${subscribers}` },
        env: { DB: d1.db, FANOUT_QUEUE: fanout.queue },
      });
      expect(res.status, await res.text()).toBe(202);
      expect(d1.calls.map((c) => c.kind)).toEqual(["batch"]);
      expect(fanout.calls.map((c) => c.method)).toEqual(["send"]);
    },
  );

  it("costs one D1 batch and one sendBatch for 100 messages with idempotency keys", async () => {
    const topic = await topicWithSubscribers(500);
    const d1 = countingD1();
    const fanout = recordingQueue();
    const messages = Array.from({ length: 100 }, (_, i) => ({
      body: { i },
      idempotencyKey: `key-${i}`,
    }));
    const res = await call("POST", `/v1/topics/${topic}/messages/batch`, {
      json: { messages },
      env: { DB: d1.db, FANOUT_QUEUE: fanout.queue },
    });
    const result = await expectJson(res, 202, PublishBatchResult);
    expect(result.messages.every((m) => !m.duplicate)).toBe(true);
    expect(d1.calls.map((c) => c.kind)).toEqual(["batch"]);
    expect(fanout.calls.map((c) => [c.method, c.messages.length])).toEqual([["sendBatch", 100]]);
    // Each key is claimed on its own message's row.
    const claimed = (await rowsOf("messages", topic)).map((row) => [row.id, row.idempotency_key]);
    expect(new Map(claimed as [string, string][])).toEqual(
      new Map(result.messages.map((m, i) => [m.id, `key-${i}`])),
    );

    // The statements are set-based: one message with a key costs the same six (the topic, the
    // claim of a topic that records failures only, the two adoptions, the insert, the owners).
    const single = countingD1();
    const one = await call("POST", `/v1/topics/${topic}/messages`, {
      json: { body: 1 },
      headers: { "idempotency-key": "key-single" },
      env: { DB: single.db, FANOUT_QUEUE: recordingQueue().queue },
    });
    await expectJson(one, 202, PublishResult);
    expect(d1.calls[0]?.sql).toHaveLength(6);
    expect(single.calls[0]?.sql).toEqual(d1.calls[0]?.sql);
  });

  it("costs one D1 batch and one sendBatch for a batch of messages, whatever the subscribers", async () => {
    const topic = await topicWithSubscribers(500);
    const d1 = countingD1();
    const fanout = recordingQueue();
    const res = await call("POST", `/v1/topics/${topic}/messages/batch`, {
      json: {
        messages: [{ body: 1 }, { body: 2, idempotencyKey: "b" }, { body: 3, delaySeconds: 7 }],
      },
      env: { DB: d1.db, FANOUT_QUEUE: fanout.queue },
    });
    const result = await expectJson(res, 202, PublishBatchResult);
    expect(result.messages).toHaveLength(3);
    expect(d1.calls.map((c) => c.kind)).toEqual(["batch"]);
    expect(fanout.calls.map((c) => c.method)).toEqual(["sendBatch"]);
    expect(fanout.sent().map((m) => m.delaySeconds ?? 0)).toEqual([0, 0, 7]);
    expect(fanout.bodies().map((b) => FanoutTaskSchema.parse(b).messageId)).toEqual(
      result.messages.map((m) => m.id),
    );
  });

  it("costs one D1 batch and one queue send for a raw message", async () => {
    const topic = await topicWithSubscribers(500);
    const d1 = countingD1();
    const fanout = recordingQueue();
    const res = await call("POST", `/v1/topics/${topic}/messages/raw`, {
      body: "hello",
      contentType: "text/plain",
      env: { DB: d1.db, FANOUT_QUEUE: fanout.queue },
    });
    expect(res.status, await res.text()).toBe(202);
    expect(d1.calls.map((c) => c.kind)).toEqual(["batch"]);
    expect(fanout.calls.map((c) => c.method)).toEqual(["send"]);
  });

  it("keeps a batch of 100 large messages within one sendBatch's limits", async () => {
    const topic = await topicWithSubscribers(1);
    const fanout = recordingQueue();
    const messages = Array.from({ length: 100 }, (_, i) => ({
      body: { i, pad: "x".repeat(50_000) },
    }));
    const res = await call("POST", `/v1/topics/${topic}/messages/batch`, {
      json: { messages },
      env: { FANOUT_QUEUE: fanout.queue },
    });
    const result = await expectJson(res, 202, PublishBatchResult);
    expect(fanout.calls).toHaveLength(1);
    const sizes = fanout.bodies().map(queuedBytes);
    expect(sizes.every((size) => size <= 128_000 - 100)).toBe(true);
    expect(sizes.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(256_000);

    // The messages that did not fit travel by reference, their content stored with the message.
    const tasks = fanout.bodies().map((b) => FanoutTaskSchema.parse(b));
    const byReference = tasks.filter((task) => task.content === null).map((t) => t.messageId);
    expect(byReference.length).toBeGreaterThan(0);
    const stored = await rowsOf("messages", topic);
    expect(stored).toHaveLength(100);
    for (const row of stored) {
      expect(row.payload === null).toBe(!byReference.includes(String(row.id)));
    }
    expect(result.messages.map((m) => m.id)).toEqual(tasks.map((t) => t.messageId));
  });

  it("counts the tasks sent by reference against the sendBatch's 256 KB, with a 128-character topic", async () => {
    // Each of these tasks names the topic, so a long name makes the by-reference tasks weigh.
    const { name: topic } = await seedTopic({ name: `t${"o".repeat(127)}` });
    await insertSubscribers(topic, 1);
    const fanout = recordingQueue();
    const messages = Array.from({ length: 100 }, (_, i) => ({
      body: { i, pad: "z".repeat(81_000) },
    }));
    const res = await call("POST", `/v1/topics/${topic}/messages/batch`, {
      json: { messages },
      env: { FANOUT_QUEUE: fanout.queue },
    });
    await expectJson(res, 202, PublishBatchResult);
    expect(fanout.calls).toHaveLength(1);
    // The platform counts each message's body and about 100 bytes of metadata.
    const [only] = fanout.calls;
    const bytes = only?.messages.reduce((sum, m) => sum + queuedBytes(m.body) + 100, 0);
    expect(only?.messages).toHaveLength(100);
    expect(bytes).toBeLessThanOrEqual(256_000);
    const tasks = fanout.bodies().map((b) => FanoutTaskSchema.parse(b));
    expect(tasks.some((task) => task.content !== null)).toBe(true);
  });

  it("sends a message over 96 KB by reference and stores its content", async () => {
    const topic = await topicWithSubscribers(1);
    const { res, fanout } = await publish(topic, { bodyText: "y".repeat(100 * 1024) });
    const { id } = await expectJson(res, 202, PublishResult);
    const task = FanoutTaskSchema.parse(fanout.bodies()[0]);
    expect(task.content).toBeNull();
    expect(queuedBytes(task)).toBeLessThan(1000);
    const [row] = await rowsOf("messages", topic);
    expect(row?.id).toBe(id);
    expect(JSON.parse(String(row?.payload)).body.text).toHaveLength(100 * 1024);
  });
});

describe("idempotency", () => {
  it("answers a repeated key and payload with the first id, duplicate true, queuing nothing once it was fanned out", async () => {
    const topic = await topicWithSubscribers(1);
    const first = await publish(topic, { body: { a: 1 } }, { idempotencyKey: "order-1" });
    const { id } = await expectJson(first.res, 202, PublishResult);
    await fanOut(first.fanout.bodies());
    const again = await publish(
      topic,
      { body: { a: 1 } },
      { idempotencyKey: "order-1", as: "publisher" },
    );
    expect(await expectJson(again.res, 202, PublishResult)).toEqual({ id, topic, duplicate: true });
    expect(again.fanout.calls).toEqual([]);
    expect(await rowsOf("messages", topic)).toHaveLength(1);
  });

  it("queues the first message again, under its own id, while it has not been fanned out", async () => {
    const topic = await topicWithSubscribers(1);
    const first = await publish(
      topic,
      { body: { a: 1 }, delaySeconds: 60 },
      { idempotencyKey: "k" },
    );
    const { id } = await expectJson(first.res, 202, PublishResult);
    const again = await publish(
      topic,
      { body: { a: 1 }, delaySeconds: 60 },
      { idempotencyKey: "k" },
    );
    expect(await expectJson(again.res, 202, PublishResult)).toEqual({ id, topic, duplicate: true });
    // Its first send may have failed without a trace; a second task is harmless, since the
    // fan-out claims each message once.
    const [resent] = again.fanout.sent();
    expect(FanoutTaskSchema.parse(resent?.body).messageId).toBe(id);
    expect(resent?.delaySeconds).toBeGreaterThan(55);
    expect(resent?.delaySeconds).toBeLessThanOrEqual(60);
    expect(await rowsOf("messages", topic)).toHaveLength(1);

    const { tasks } = await fanOut([...first.fanout.bodies(), ...again.fanout.bodies()]);
    expect(tasks).toHaveLength(1);
  });

  it("re-queues a first message stored inline with its content, even when the repeat would not fit inline", async () => {
    const topic = await topicWithSubscribers(1);
    const envelope = { body: { pad: "z".repeat(90_000) }, delaySeconds: 60 };
    const first = await publish(topic, envelope, { idempotencyKey: "k" });
    const { id } = await expectJson(first.res, 202, PublishResult);
    expect((await rowsOf("messages", topic))[0]?.payload).toBeNull();

    // The two new messages take the batch's room for inline content before the repeat comes.
    const fanout = recordingQueue();
    const res = await call("POST", `/v1/topics/${topic}/messages/batch`, {
      json: {
        messages: [
          { body: { pad: "x".repeat(90_000) } },
          { body: { pad: "y".repeat(90_000) } },
          { ...envelope, idempotencyKey: "k" },
        ],
      },
      env: { FANOUT_QUEUE: fanout.queue },
    });
    const { messages } = await expectJson(res, 202, PublishBatchResult);
    expect(messages[2]).toEqual({ id, duplicate: true });
    for (const { messages: sent } of fanout.calls) {
      expect(sent.length).toBeLessThanOrEqual(100);
      expect(sent.reduce((sum, m) => sum + queuedBytes(m.body) + 100, 0)).toBeLessThanOrEqual(
        256_000,
      );
    }
    const requeued = fanout
      .bodies()
      .map((body) => FanoutTaskSchema.parse(body))
      .find((task) => task.messageId === id);
    expect(requeued?.content?.body).toMatchObject({ value: envelope.body });

    // Fanned out before the first task, the re-queued one is the one that claims the message.
    const { tasks } = await fanOut([requeued, ...first.fanout.bodies()]);
    expect(tasks.map((task) => task.messageId)).toEqual([id]);
    expect(await messageStatus(id)).toMatchObject({ state: "dispatched", matched: 1 });
  });

  it("treats the same message with keys in another order as the same payload", async () => {
    const topic = await topicWithSubscribers(1);
    const first = await publish(
      topic,
      { body: { a: 1, b: 2 }, headers: { "x-a": "1" } },
      { idempotencyKey: "k" },
    );
    const { id } = await expectJson(first.res, 202, PublishResult);
    const again = await publish(
      topic,
      { headers: { "X-A": "1" }, body: { b: 2, a: 1 } },
      { idempotencyKey: "k" },
    );
    expect(await expectJson(again.res, 202, PublishResult)).toMatchObject({ id, duplicate: true });
  });

  it.each([
    ["another body", { body: { a: 2 } }],
    ["another header", { body: { a: 1 }, headers: { "x-a": "1" } }],
    ["another delay", { body: { a: 1 }, delaySeconds: 5 }],
    ["another method", { body: { a: 1 }, method: "PUT" }],
  ])("answers a reused key with %s with 409 conflict, queuing nothing", async (_, other) => {
    const topic = await topicWithSubscribers(1);
    const first = await publish(topic, { body: { a: 1 } }, { idempotencyKey: "k" });
    const { id } = await expectJson(first.res, 202, PublishResult);
    const reused = await publish(topic, other, { idempotencyKey: "k" });
    await expectProblem(reused.res, 409, "conflict");
    expect(reused.fanout.calls).toEqual([]);
    expect((await rowsOf("messages", topic)).map((row) => row.id)).toEqual([id]);
  });

  it("keeps keys per topic", async () => {
    const a = await topicWithSubscribers(1);
    const b = await topicWithSubscribers(1);
    const first = await publish(a, { body: 1 }, { idempotencyKey: "same" });
    const other = await publish(b, { body: 1 }, { idempotencyKey: "same" });
    const one = await expectJson(first.res, 202, PublishResult);
    const two = await expectJson(other.res, 202, PublishResult);
    expect(two.duplicate).toBe(false);
    expect(two.id).not.toBe(one.id);
    expect(other.fanout.calls).toHaveLength(1);
  });

  it("shares keys between /messages and /raw", async () => {
    const topic = await topicWithSubscribers(1);
    const raw = (body: string, key: string) => {
      const fanout = recordingQueue();
      return call("POST", `/v1/topics/${topic}/messages/raw`, {
        as: "publisher",
        body,
        contentType: "text/plain",
        headers: { "idempotency-key": key },
        env: { FANOUT_QUEUE: fanout.queue },
      }).then((res) => ({ res, fanout }));
    };

    const enveloped = await publish(topic, { body: { a: 1 } }, { idempotencyKey: "shared" });
    await expectJson(enveloped.res, 202, PublishResult);
    const clash = await raw("other bytes", "shared");
    await expectProblem(clash.res, 409, "conflict");
    expect(clash.fanout.calls).toEqual([]);

    const first = await raw("hello", "raw-key");
    const { id } = await expectJson(first.res, 202, PublishResult);
    await fanOut(first.fanout.bodies());
    const again = await raw("hello", "raw-key");
    expect(await expectJson(again.res, 202, PublishResult)).toMatchObject({ id, duplicate: true });
    expect(again.fanout.calls).toEqual([]);
    const envelopeClash = await publish(topic, { body: "hello" }, { idempotencyKey: "raw-key" });
    await expectProblem(envelopeClash.res, 409, "conflict");
  });

  it("answers a repeated key within one batch as a duplicate of the first, queuing it once", async () => {
    const topic = await topicWithSubscribers(1);
    const fanout = recordingQueue();
    const res = await call("POST", `/v1/topics/${topic}/messages/batch`, {
      json: {
        messages: [{ body: 1, idempotencyKey: "a" }, { body: 2 }, { body: 1, idempotencyKey: "a" }],
      },
      env: { FANOUT_QUEUE: fanout.queue },
    });
    const { messages } = await expectJson(res, 202, PublishBatchResult);
    expect(messages.map((m) => m.duplicate)).toEqual([false, false, true]);
    expect(messages[2]?.id).toBe(messages[0]?.id);
    expect(fanout.sent()).toHaveLength(2);
    expect(await rowsOf("messages", topic)).toHaveLength(2);
  });

  it("refuses a key repeated within one batch with different payloads, storing nothing", async () => {
    const topic = await topicWithSubscribers(1);
    const fanout = recordingQueue();
    const res = await call("POST", `/v1/topics/${topic}/messages/batch`, {
      json: {
        messages: [{ body: 0 }, { body: 1, idempotencyKey: "a" }, { body: 2, idempotencyKey: "a" }],
      },
      env: { FANOUT_QUEUE: fanout.queue },
    });
    await expectProblem(res, 409, "conflict");
    expect(fanout.calls).toEqual([]);
    expect(await rowsOf("messages", topic)).toEqual([]);

    // Nothing was claimed: the key takes either payload afterwards.
    const retried = await publish(topic, { body: 2 }, { idempotencyKey: "a" });
    expect((await expectJson(retried.res, 202, PublishResult)).duplicate).toBe(false);
  });

  it("answers a batch entry whose key was used before as a duplicate, queuing only the new ones", async () => {
    const topic = await topicWithSubscribers(1);
    const earlier = await publish(topic, { body: 1 }, { idempotencyKey: "old" });
    const { id } = await expectJson(earlier.res, 202, PublishResult);
    await fanOut(earlier.fanout.bodies());
    const fanout = recordingQueue();
    const res = await call("POST", `/v1/topics/${topic}/messages/batch`, {
      json: {
        messages: [
          { body: 1, idempotencyKey: "old" },
          { body: 2, idempotencyKey: "new" },
        ],
      },
      env: { FANOUT_QUEUE: fanout.queue },
    });
    const { messages } = await expectJson(res, 202, PublishBatchResult);
    expect(messages[0]).toEqual({ id, duplicate: true });
    expect(messages[1]?.duplicate).toBe(false);
    expect(fanout.bodies().map((b) => FanoutTaskSchema.parse(b).messageId)).toEqual([
      messages[1]?.id,
    ]);
  });

  it("refuses a batch in which one key clashes with an earlier message, storing none of it", async () => {
    const topic = await topicWithSubscribers(1);
    await expectJson(
      (await publish(topic, { body: 1 }, { idempotencyKey: "old" })).res,
      202,
      PublishResult,
    );
    const fanout = recordingQueue();
    const res = await call("POST", `/v1/topics/${topic}/messages/batch`, {
      json: { messages: [{ body: 5 }, { body: 2, idempotencyKey: "old" }] },
      env: { FANOUT_QUEUE: fanout.queue },
    });
    await expectProblem(res, 409, "conflict");
    expect(fanout.calls).toEqual([]);
    expect(await rowsOf("messages", topic)).toHaveLength(1);
  });

  it("answers a key for 24 hours after its message was published, and then forgets it", async () => {
    const topic = await topicWithSubscribers(1);
    const first = await publish(topic, { body: 1 }, { idempotencyKey: "stale" });
    const { id } = await expectJson(first.res, 202, PublishResult);
    await fanOut(first.fanout.bodies());
    // A key answers only for messages published since their topic was made: the topic is older.
    await env.DB.prepare("update topics set created_at = ? where name = ?")
      .bind(Date.now() - 2 * DAY, topic)
      .run();
    const publishedAgo = (ms: number) =>
      env.DB.prepare("update messages set published_at = ? where id = ?")
        .bind(Date.now() - ms, id)
        .run();

    await publishedAgo(DAY - 60_000);
    const inside = await publish(topic, { body: 1 }, { idempotencyKey: "stale" });
    expect(await expectJson(inside.res, 202, PublishResult)).toEqual({
      id,
      topic,
      duplicate: true,
    });

    await publishedAgo(DAY + 1000);
    const later = await publish(topic, { body: 2 }, { idempotencyKey: "stale" });
    const result = await expectJson(later.res, 202, PublishResult);
    expect(result.duplicate).toBe(false);
    expect(result.id).not.toBe(id);
    expect(later.fanout.calls).toHaveLength(1);
  });
});

describe("idempotency across a topic deleted and made anew", () => {
  it("frees the deleted topic's keys for the new topic of the same name", async () => {
    const topic = await topicWithSubscribers(1);
    const old = await publish(topic, { body: 1 }, { idempotencyKey: "k" });
    const { id } = await expectJson(old.res, 202, PublishResult);
    await fanOut(old.fanout.bodies());
    expect((await call("DELETE", `/v1/topics/${topic}`)).status).toBe(204);
    await seedTopic({ name: topic });
    await insertSubscribers(topic, 1);

    const same = await publish(topic, { body: 1 }, { idempotencyKey: "k" });
    const fresh = await expectJson(same.res, 202, PublishResult);
    expect(fresh).toMatchObject({ topic, duplicate: false });
    expect(fresh.id).not.toBe(id);
    expect(FanoutTaskSchema.parse(same.fanout.bodies()[0]).messageId).toBe(fresh.id);

    // The new topic's own claim of the key answers from then on, the old message aside.
    const other = await publish(topic, { body: 2 }, { idempotencyKey: "k" });
    await expectProblem(other.res, 409, "conflict");
  });
});

describe("publishing when storage or the queue fails", () => {
  it("answers 503 unavailable and queues nothing when D1 fails", async () => {
    const topic = await topicWithSubscribers(1);
    const d1 = countingD1(env.DB, () => true);
    const fanout = recordingQueue();
    const res = await call("POST", `/v1/topics/${topic}/messages`, {
      json: { body: 1 },
      env: { DB: d1.db, FANOUT_QUEUE: fanout.queue },
    });
    const problem = await expectProblem(res, 503, "unavailable");
    expect(JSON.stringify(problem)).not.toContain(D1_FAILURE);
    expect(fanout.calls).toEqual([]);
  });

  it.each(["", "/batch", "/raw"])(
    "answers 503 unavailable and leaves nothing recorded when the queue fails (messages%s)",
    async (endpoint) => {
      const topic = await topicWithSubscribers(1);
      const fanout = recordingQueue();
      fanout.failWith(new Error("Queue send failed: internal error"));
      const request =
        endpoint === "/batch"
          ? { json: { messages: [{ body: 1, idempotencyKey: "k" }, { body: 2 }] } }
          : endpoint === "/raw"
            ? { body: "x", headers: { "idempotency-key": "k" } }
            : { json: { body: 1 }, headers: { "idempotency-key": "k" } };
      const res = await call("POST", `/v1/topics/${topic}/messages${endpoint}`, {
        ...request,
        env: { FANOUT_QUEUE: fanout.queue },
      });
      await expectProblem(res, 503, "unavailable");
      expect(await rowsOf("messages", topic)).toEqual([]);

      // The key went with its message: it is free again, so the publisher's retry goes through as a new message.
      fanout.failWith(undefined);
      const retried = await call("POST", `/v1/topics/${topic}/messages${endpoint}`, {
        ...request,
        env: { FANOUT_QUEUE: fanout.queue },
      });
      expect(retried.status, await retried.text()).toBe(202);
      expect(fanout.calls).toHaveLength(1);
    },
  );

  it("answers 429 rate_limited with Retry-After when the queue refuses for throughput", async () => {
    const topic = await topicWithSubscribers(1);
    const fanout = recordingQueue();
    fanout.failWith(new Error("Queue send failed: Too Many Requests (429)"));
    const res = await call("POST", `/v1/topics/${topic}/messages`, {
      json: { body: 1 },
      headers: { "idempotency-key": "k" },
      env: { FANOUT_QUEUE: fanout.queue },
    });
    const retryAfter = res.headers.get("retry-after");
    await expectProblem(res, 429, "rate_limited");
    expect(Number(retryAfter)).toBeGreaterThan(0);
    expect(await rowsOf("messages", topic)).toEqual([]);
  });
});
