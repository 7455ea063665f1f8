/**
 * Publishing while storage or the queue fails: the answer is 503 and nothing is accepted, neither
 * stored nor queued, so that the publisher's retry goes through as if the first call never
 * happened.
 *
 * Covered elsewhere: D1 failing under an envelope publish, the queue failing under each endpoint
 * (503, nothing left behind, the key free again) and the 429 when the queue refuses for throughput
 * are in test/pipeline/publish.test.ts ("publishing when storage or the queue fails"); the
 * management routes under a failing D1 are in test/api/storage-failure.test.ts.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { PublishBatchResult, PublishResult } from "../../src/api/schemas/messages";
import { DeliveryTaskSchema, FanoutTaskSchema } from "../../src/queues/tasks";
import {
  type CallOptions,
  call,
  expectJson,
  expectProblem,
  seedSubscriber,
  seedTopic,
  silenceErrorLog,
} from "../harness";
import { snapshotTables } from "../hostile/support";
import {
  countingD1,
  D1_FAILURE,
  fanOut,
  isWrite,
  messageStatus,
  recordingQueue,
} from "../pipeline/support";
import { throwingBatches } from "./support";

silenceErrorLog();

/** A request each publish endpoint accepts, with an idempotency key. */
const ENDPOINTS: [endpoint: string, request: CallOptions][] = [
  ["", { json: { body: { n: 1 } }, headers: { "idempotency-key": "order-1" } }],
  ["/batch", { json: { messages: [{ body: 1, idempotencyKey: "order-1" }, { body: 2 }] } }],
  [
    "/raw",
    { body: "raw bytes", contentType: "text/plain", headers: { "idempotency-key": "order-1" } },
  ],
];

/**
 * A queue whose first send (or sendBatch) waits until the test settles it: the publish that made
 * it has recorded its message and is stalled on the queue, the moment another publish can race it.
 */
function stallingQueue() {
  let started: () => void = () => undefined;
  const sending = new Promise<void>((resolve) => {
    started = resolve;
  });
  let settle: (error: unknown) => void = () => undefined;
  const outcome = new Promise<void>((resolve, reject) => {
    settle = (error) => (error === undefined ? resolve() : reject(error));
  });
  const bodies: unknown[] = [];
  const stall = async (...sent: unknown[]): Promise<QueueSendResponse> => {
    const [first] = sent;
    bodies.push(...(Array.isArray(first) ? first.map((message) => message.body) : [first]));
    started();
    await outcome;
    return { metadata: { metrics: { backlogCount: 0, backlogBytes: 0 } } };
  };
  const queue: Queue<unknown> = {
    ...recordingQueue().queue,
    send: stall,
    sendBatch: stall,
  };
  return {
    queue,
    /** What the stalled publish tried to send. */
    bodies,
    /** Resolves once the publish is waiting on its send. */
    sending,
    /** Lets the send fail with `error`. */
    fail: (error: Error) => settle(error),
  };
}

async function topicWithSubscriber(): Promise<string> {
  const { name } = await seedTopic();
  await seedSubscriber(name);
  return name;
}

describe("publishing while D1 fails", () => {
  it.each(ENDPOINTS)(
    "answers 503 to messages%s, stores and queues nothing, and takes the retry as new",
    async (endpoint, request) => {
      const topic = await topicWithSubscriber();
      const before = await snapshotTables();
      const fanout = recordingQueue();
      const res = await call("POST", `/v1/topics/${topic}/messages${endpoint}`, {
        ...request,
        env: { DB: countingD1(env.DB, () => true).db, FANOUT_QUEUE: fanout.queue },
      });
      const problem = await expectProblem(res, 503, "unavailable");
      expect(JSON.stringify(problem)).not.toContain(D1_FAILURE);
      expect(fanout.calls).toEqual([]);
      expect(await snapshotTables()).toEqual(before);

      const retried = await call("POST", `/v1/topics/${topic}/messages${endpoint}`, {
        ...request,
        env: { FANOUT_QUEUE: fanout.queue },
      });
      expect(retried.status, await retried.text()).toBe(202);
      expect(fanout.calls).toHaveLength(1);
    },
  );

  it("answers 503 when the binding throws something that is not an Error", async () => {
    const topic = await topicWithSubscriber();
    const before = await snapshotTables();
    const fanout = recordingQueue();
    const res = await call("POST", `/v1/topics/${topic}/messages`, {
      json: { body: 1 },
      env: {
        DB: throwingBatches(
          () => true,
          () => "D1_ERROR: storage went away",
        ),
        FANOUT_QUEUE: fanout.queue,
      },
    });
    await expectProblem(res, 503, "unavailable");
    expect(fanout.calls).toEqual([]);
    expect(await snapshotTables()).toEqual(before);
  });
});

describe("publishing while the queue fails", () => {
  it.each([
    ["a string", () => "Queue send failed"],
    ["undefined", () => undefined],
    ["a plain object", () => ({ code: 500 })],
  ])("answers 503 and records nothing when send rejects with %s", async (_label, thrown) => {
    const topic = await topicWithSubscriber();
    const before = await snapshotTables();
    const fanout = recordingQueue();
    const failing: Queue<unknown> = {
      ...fanout.queue,
      send: () => Promise.reject(thrown()),
      sendBatch: () => Promise.reject(thrown()),
    };
    const res = await call("POST", `/v1/topics/${topic}/messages`, {
      json: { body: 1 },
      headers: { "idempotency-key": "k" },
      env: { FANOUT_QUEUE: failing },
    });
    await expectProblem(res, 503, "unavailable");
    expect(await snapshotTables()).toEqual(before);
  });

  it.each(ENDPOINTS)(
    "never answers a retry of messages%s as a duplicate of a message that was not queued",
    async (endpoint, request) => {
      const topic = await topicWithSubscriber();
      const fanout = recordingQueue();
      fanout.failWith(new Error("Queue send failed"));
      // The publish's own write goes through; the write that would take it back fails too.
      let writes = 0;
      const db = countingD1(env.DB, (call) => isWrite(call) && ++writes > 1).db;
      const first = await call("POST", `/v1/topics/${topic}/messages${endpoint}`, {
        ...request,
        env: { DB: db, FANOUT_QUEUE: fanout.queue },
      });
      await expectProblem(first, 503, "unavailable");

      fanout.failWith(undefined);
      const retried = await call("POST", `/v1/topics/${topic}/messages${endpoint}`, {
        ...request,
        env: { FANOUT_QUEUE: fanout.queue },
      });
      const accepted =
        endpoint === "/batch"
          ? (await expectJson(retried, 202, PublishBatchResult)).messages.map((m) => m.id)
          : [(await expectJson(retried, 202, PublishResult)).id];
      // 202 means durably queued: every id the retry answered with is on the fan-out queue.
      const queued = fanout.bodies().map((body) => FanoutTaskSchema.parse(body).messageId);
      expect(queued).toEqual(expect.arrayContaining(accepted));
    },
  );
});

describe("two publishes with one key, the first one's send failing", () => {
  const request: CallOptions = {
    json: { body: { n: 1 } },
    headers: { "idempotency-key": "order-1" },
  };

  it("keeps the message the second one answered 202 for, and its task fans it out", async () => {
    const topic = await topicWithSubscriber();
    const path = `/v1/topics/${topic}/messages`;
    const stalled = stallingQueue();
    const first = call("POST", path, { ...request, env: { FANOUT_QUEUE: stalled.queue } });
    await stalled.sending;

    const fanout = recordingQueue();
    const second = await call("POST", path, { ...request, env: { FANOUT_QUEUE: fanout.queue } });
    const { id, duplicate } = await expectJson(second, 202, PublishResult);
    expect(duplicate).toBe(true);

    stalled.fail(new Error("Queue send failed"));
    await expectProblem(await first, 503, "unavailable");

    // 202 means durably accepted: the first publish's rollback left the message and its key.
    expect(await messageStatus(id)).toMatchObject({ state: "queued" });
    const { tasks } = await fanOut(fanout.bodies());
    expect(tasks.map((task) => task.messageId)).toEqual([id]);
    const again = await call("POST", path, { ...request, env: { FANOUT_QUEUE: fanout.queue } });
    expect(await expectJson(again, 202, PublishResult)).toMatchObject({ id, duplicate: true });
  });

  it("leaves the message queued for a further retry when the second one's send fails too", async () => {
    const topic = await topicWithSubscriber();
    const path = `/v1/topics/${topic}/messages`;
    const stalled = stallingQueue();
    const first = call("POST", path, { ...request, env: { FANOUT_QUEUE: stalled.queue } });
    await stalled.sending;

    const failing = recordingQueue();
    failing.failWith(new Error("Queue send failed"));
    const second = await call("POST", path, { ...request, env: { FANOUT_QUEUE: failing.queue } });
    await expectProblem(second, 503, "unavailable");
    stalled.fail(new Error("Queue send failed"));
    await expectProblem(await first, 503, "unavailable");

    // The first publish's message, adopted by the second, is still there and owns the key.
    const id = FanoutTaskSchema.parse(stalled.bodies[0]).messageId;
    expect(await messageStatus(id)).toMatchObject({ state: "queued" });
    const fanout = recordingQueue();
    const third = await call("POST", path, { ...request, env: { FANOUT_QUEUE: fanout.queue } });
    expect(await expectJson(third, 202, PublishResult)).toMatchObject({ id, duplicate: true });
    expect(fanout.bodies().map((body) => FanoutTaskSchema.parse(body).messageId)).toEqual([id]);
    const { tasks } = await fanOut(fanout.bodies());
    expect(tasks.map((task) => task.messageId)).toEqual([id]);
    expect(await messageStatus(id)).toMatchObject({ state: "dispatched", matched: 1 });
  });

  it("keeps a message fanned out inline, and its deliveries, when its delivery send fails", async () => {
    const topic = await topicWithSubscriber();
    const path = `/v1/topics/${topic}/messages`;
    const inline = { INLINE_FANOUT_MAX_SUBSCRIBERS: "100" };
    const stalled = stallingQueue();
    const first = call("POST", path, {
      ...request,
      env: { ...inline, FANOUT_QUEUE: recordingQueue().queue, DELIVERY_QUEUE: stalled.queue },
    });
    await stalled.sending;

    const fanout = recordingQueue();
    const second = await call("POST", path, {
      ...request,
      env: { ...inline, FANOUT_QUEUE: fanout.queue },
    });
    const { id } = await expectJson(second, 202, PublishResult);
    stalled.fail(new Error("Queue send failed"));
    await expectProblem(await first, 503, "unavailable");

    // Its deliveries, opened in its own row at publish, stay with it.
    expect(await messageStatus(id)).toMatchObject({
      state: "queued",
      matched: 1,
      deliveries: [expect.objectContaining({ state: "pending", attempts: 0 })],
    });
    const { tasks } = await fanOut(fanout.bodies());
    expect(tasks.map((task) => DeliveryTaskSchema.parse(task).content?.body)).toEqual([
      expect.objectContaining({ value: { n: 1 } }),
    ]);
  });
});
