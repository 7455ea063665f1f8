import { env } from "cloudflare:workers";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { uniqueName } from "../harness";
import { recordingQueue } from "../pipeline/support";
import {
  adminClient,
  expectSwitchboardError,
  publisherClient,
  recording,
  workerFetchWith,
} from "./support";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

async function topic(): Promise<string> {
  return (await adminClient().topics.create({ name: uniqueName() })).name;
}

beforeEach(() => {
  // Published messages reach the Worker's own queues; their topics have no subscribers, but
  // nothing here may reach the network either way.
  vi.spyOn(globalThis, "fetch").mockImplementation(async () => new Response(null, { status: 204 }));
});

afterEach(() => {
  vi.restoreAllMocks();
});

describe("sb.publish", () => {
  it("publishes with a fresh idempotency key per call", async () => {
    const { fetch, sent } = recording();
    const sb = publisherClient({ fetch });
    const name = await topic();
    const first = await sb.publish(name, { body: { orderId: 1 } });
    const second = await sb.publish(name, { body: { orderId: 1 } });
    expect(first).toMatchObject({ topic: name, duplicate: false });
    expect(second.duplicate).toBe(false);
    expect(second.id).not.toBe(first.id);
    const keys = sent.map((request) => request.headers.get("idempotency-key"));
    expect(keys).toEqual([expect.stringMatching(UUID), expect.stringMatching(UUID)]);
    expect(keys[0]).not.toBe(keys[1]);
    expect(sent[0]?.headers.get("authorization")).toBe(`Bearer ${env.PUBLISH_TOKEN}`);
  });

  it("sends the caller's key: the same again is a duplicate, another payload a conflict", async () => {
    const sb = publisherClient();
    const name = await topic();
    const first = await sb.publish(name, { body: 1 }, { idempotencyKey: "order-1" });
    expect(await sb.publish(name, { body: 1 }, { idempotencyKey: "order-1" })).toEqual({
      ...first,
      duplicate: true,
    });
    await expectSwitchboardError(sb.publish(name, { body: 2 }, { idempotencyKey: "order-1" }), {
      status: 409,
      code: "conflict",
    });
  });

  it("maps an envelope the broker refuses, naming the field", async () => {
    const error = await expectSwitchboardError(
      publisherClient().publish(await topic(), { body: 1, bodyText: "one" }),
      { status: 400, code: "validation_failed" },
    );
    expect(error.errors.map((field) => field.path)).toEqual(["bodyText"]);
  });

  it("answers not_found for a topic that does not exist", async () => {
    await expectSwitchboardError(publisherClient().publish(uniqueName("missing"), { body: 1 }), {
      status: 404,
      code: "not_found",
    });
  });
});

describe("sb.publishBatch", () => {
  it("gives each envelope without a key a fresh one and keeps the caller's", async () => {
    const { fetch, sent } = recording();
    const name = await topic();
    const result = await publisherClient({ fetch }).publishBatch(name, [
      { body: 1 },
      { body: 2, idempotencyKey: "mine" },
      { bodyText: "three", contentType: "text/plain" },
    ]);
    expect(result.messages).toHaveLength(3);
    expect(result.messages.every((message) => !message.duplicate)).toBe(true);
    const body = JSON.parse(sent[0]?.body ?? "{}") as { messages: { idempotencyKey: string }[] };
    const keys = body.messages.map((message) => message.idempotencyKey);
    expect(keys).toEqual([expect.stringMatching(UUID), "mine", expect.stringMatching(UUID)]);
    expect(new Set(keys).size).toBe(3);

    const again = await publisherClient().publishBatch(name, [{ body: 2, idempotencyKey: "mine" }]);
    expect(again.messages).toEqual([{ id: result.messages[1]?.id, duplicate: true }]);
  });
});

describe("sb.publishRaw", () => {
  it("sends the bytes with their content type, query and forwarded headers", async () => {
    const { fetch, sent } = recording();
    const name = await topic();
    const bytes = new Uint8Array([0, 1, 2, 250, 255]);
    const result = await publisherClient({ fetch }).publishRaw(name, bytes.subarray(1, 4), {
      contentType: "application/x-thing",
      query: { page: "2", tag: ["a", "b"] },
      forwardHeaders: { "x-tenant": "acme" },
      idempotencyKey: "raw-1",
    });
    expect(result).toMatchObject({ topic: name, duplicate: false });
    const request = sent[0];
    expect(request?.headers.get("content-type")).toBe("application/x-thing");
    expect(request?.headers.get("forward-x-tenant")).toBe("acme");
    expect(request?.url.search).toBe("?page=2&tag=a&tag=b");
    expect(request?.bytes).toEqual(new Uint8Array([1, 2, 250]));

    const again = await publisherClient().publishRaw(name, new Uint8Array([1, 2, 250]), {
      contentType: "application/x-thing",
      query: { page: "2", tag: ["a", "b"] },
      forwardHeaders: { "x-tenant": "acme" },
      idempotencyKey: "raw-1",
    });
    expect(again).toEqual({ ...result, duplicate: true });
  });

  it("defaults the content type by the kind of body", async () => {
    const { fetch, sent } = recording();
    const sb = publisherClient({ fetch });
    const name = await topic();
    await sb.publishRaw(name, "plain words");
    await sb.publishRaw(name, new Uint8Array([1]).buffer);
    await sb.publishRaw(name, new Blob(["a,b"], { type: "text/csv" }));
    expect(sent.map((request) => request.headers.get("content-type"))).toEqual([
      "text/plain; charset=utf-8",
      "application/octet-stream",
      "text/csv",
    ]);
  });

  it("maps a body over the limit to payload_too_large", async () => {
    await expectSwitchboardError(
      publisherClient().publishRaw(await topic(), new Uint8Array(1024 * 1024 + 1)),
      { status: 413, code: "payload_too_large" },
    );
  });
});

describe("a queue that refuses for throughput", () => {
  it("is retried after Retry-After, and the message is published once", async () => {
    const name = await topic();
    const fanout = recordingQueue();
    let refusals = 1;
    const queue: Queue<unknown> = {
      ...fanout.queue,
      async send(body, options) {
        if (refusals-- > 0) throw new Error("Queue send failed: 429 Too Many Requests");
        return fanout.queue.send(body, options);
      },
    };
    const { fetch, sent } = recording(workerFetchWith(() => ({ FANOUT_QUEUE: queue })));
    const started = Date.now();
    const result = await publisherClient({ fetch }).publish(name, { body: 1 });
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
    expect(result.duplicate).toBe(false);
    expect(sent).toHaveLength(2);
    expect(new Set(sent.map((request) => request.headers.get("idempotency-key"))).size).toBe(1);
    expect(fanout.sent()).toHaveLength(1);
  });

  it("surfaces rate_limited when retries run out", async () => {
    const name = await topic();
    const queue: Queue<unknown> = {
      ...recordingQueue().queue,
      async send() {
        throw new Error("Queue send failed: 429 Too Many Requests");
      },
    };
    const sb = publisherClient({
      fetch: workerFetchWith(() => ({ FANOUT_QUEUE: queue })),
      retries: 0,
    });
    await expectSwitchboardError(sb.publish(name, { body: 1 }), {
      status: 429,
      code: "rate_limited",
    });
  });
});
