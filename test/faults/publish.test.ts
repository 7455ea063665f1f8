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
import { FanoutTaskSchema } from "../../src/queues/tasks";
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
import { countingD1, D1_FAILURE, isWrite, recordingQueue } from "../pipeline/support";
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
