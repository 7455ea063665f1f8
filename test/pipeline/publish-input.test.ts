/**
 * Publishing refuses bad input with the contract's problem, and then neither queues nor stores
 * anything: each row publishes to a fresh topic and checks both.
 */
import { describe, expect, it } from "vitest";
import { call, expectProblem, seedTopic, uniqueName } from "../harness";
import { recordingQueue, rowsOf } from "./support";

const MiB = 1024 * 1024;

interface BadRequest {
  /** Path after `/v1/topics/{topic}/messages`: "", "/batch" or "/raw". */
  endpoint: "" | "/batch" | "/raw";
  json?: unknown;
  body?: string;
  contentType?: string;
  headers?: Record<string, string>;
  /** Publish to a topic that does not exist. */
  unknownTopic?: boolean;
}

const envelope = (fields: Record<string, unknown>): BadRequest => ({ endpoint: "", json: fields });
const header = (name: string, value = "v") => envelope({ body: 1, headers: { [name]: value } });

const cases: [string, BadRequest, number, string][] = [
  ["an unknown topic", { endpoint: "", json: { body: 1 }, unknownTopic: true }, 404, "not_found"],
  [
    "an unknown topic (batch)",
    { endpoint: "/batch", json: { messages: [{ body: 1 }] }, unknownTopic: true },
    404,
    "not_found",
  ],
  ["an unknown topic (raw)", { endpoint: "/raw", body: "x", unknownTopic: true }, 404, "not_found"],
  [
    "a body that is not JSON by content type",
    { endpoint: "", body: '{"body":1}', contentType: "text/plain" },
    415,
    "unsupported_media_type",
  ],
  [
    "a batch that is not JSON by content type",
    {
      endpoint: "/batch",
      body: '{"messages":[]}',
      contentType: "application/x-www-form-urlencoded",
    },
    415,
    "unsupported_media_type",
  ],
  [
    "malformed JSON",
    { endpoint: "", body: '{"body":', contentType: "application/json" },
    400,
    "invalid_json",
  ],
  [
    "malformed JSON (batch)",
    { endpoint: "/batch", body: "{messages:[]}", contentType: "application/json" },
    400,
    "invalid_json",
  ],
  ["both body and bodyBase64", envelope({ body: 1, bodyBase64: "AA==" }), 400, "validation_failed"],
  ["both body and bodyText", envelope({ body: 1, bodyText: "x" }), 400, "validation_failed"],
  ["invalid base64", envelope({ bodyBase64: "abc$" }), 400, "validation_failed"],
  ["base64 with whitespace", envelope({ bodyBase64: "AA AA" }), 400, "validation_failed"],
  ["a header name with a space", header("x bad"), 400, "validation_failed"],
  ["a header name with a colon", header("x:bad"), 400, "validation_failed"],
  ["an empty header name", header(""), 400, "validation_failed"],
  ["a header value with CR LF", header("x-a", "a\r\nx-injected: 1"), 400, "validation_failed"],
  ["a header value with LF", header("x-a", "a\nb"), 400, "validation_failed"],
  ["a header value with NUL", header("x-a", "a\0b"), 400, "validation_failed"],
  ...[
    "host",
    "Content-Length",
    "transfer-encoding",
    "Connection",
    "keep-alive",
    "upgrade",
    "te",
  ].map((name): [string, BadRequest, number, string] => [
    `the header ${name}`,
    header(name),
    400,
    "validation_failed",
  ]),
  ["the header trailer", header("trailer"), 400, "validation_failed"],
  ["a proxy-* header", header("Proxy-Authorization"), 400, "validation_failed"],
  ["a webhook-* header", header("webhook-id"), 400, "validation_failed"],
  ["a switchboard-* header", header("Switchboard-Attempt"), 400, "validation_failed"],
  ["delaySeconds -1", envelope({ body: 1, delaySeconds: -1 }), 400, "validation_failed"],
  ["delaySeconds 43201", envelope({ body: 1, delaySeconds: 43201 }), 400, "validation_failed"],
  ["fractional delaySeconds", envelope({ body: 1, delaySeconds: 1.5 }), 400, "validation_failed"],
  ["an unknown method", envelope({ body: 1, method: "TRACE" }), 400, "validation_failed"],
  ["an unknown envelope field", envelope({ body: 1, bodyJson: 1 }), 400, "validation_failed"],
  [
    "an idempotency key of 256 characters",
    { endpoint: "", json: { body: 1 }, headers: { "idempotency-key": "k".repeat(256) } },
    400,
    "validation_failed",
  ],
  [
    "an idempotency key of 256 characters (raw)",
    { endpoint: "/raw", body: "x", headers: { "idempotency-key": "k".repeat(256) } },
    400,
    "validation_failed",
  ],
  [
    "an idempotency key of 256 characters (batch)",
    { endpoint: "/batch", json: { messages: [{ body: 1, idempotencyKey: "k".repeat(256) }] } },
    400,
    "validation_failed",
  ],
  [
    "101 messages in a batch",
    {
      endpoint: "/batch",
      json: { messages: Array.from({ length: 101 }, (_, i) => ({ body: i })) },
    },
    400,
    "validation_failed",
  ],
  ["an empty batch", { endpoint: "/batch", json: { messages: [] } }, 400, "validation_failed"],
  [
    "a batch with one bad envelope",
    { endpoint: "/batch", json: { messages: [{ body: 1 }, { body: 1, delaySeconds: -1 }] } },
    400,
    "validation_failed",
  ],
  ["a body over 1 MiB", envelope({ body: "x".repeat(MiB - 1) }), 413, "payload_too_large"],
  ["a text body over 1 MiB", envelope({ bodyText: "x".repeat(MiB + 1) }), 413, "payload_too_large"],
  [
    "a base64 body that decodes to over 1 MiB",
    envelope({ bodyBase64: btoa("\0".repeat(MiB + 3)) }),
    413,
    "payload_too_large",
  ],
  [
    "a batch with one body over 1 MiB",
    { endpoint: "/batch", json: { messages: [{ body: 1 }, { bodyText: "x".repeat(MiB + 1) }] } },
    413,
    "payload_too_large",
  ],
  [
    "a raw body over 1 MiB",
    { endpoint: "/raw", body: "x".repeat(MiB + 1) },
    413,
    "payload_too_large",
  ],
  [
    "a forwarded host header (raw)",
    { endpoint: "/raw", body: "x", headers: { "forward-host": "evil.example.com" } },
    400,
    "validation_failed",
  ],
  [
    "a forwarded webhook-* header (raw)",
    { endpoint: "/raw", body: "x", headers: { "forward-webhook-id": "msg_fake" } },
    400,
    "validation_failed",
  ],
];

describe("publishing bad input", () => {
  it.each(cases.map(([label, bad, status, code]) => [label, status, code, bad] as const))(
    "refuses %s (%i %s), queuing and storing nothing",
    async (_, status, code, bad) => {
      const topic = bad.unknownTopic ? uniqueName("missing") : (await seedTopic()).name;
      const fanout = recordingQueue();
      const res = await call("POST", `/v1/topics/${topic}/messages${bad.endpoint}`, {
        as: "publisher",
        json: bad.json,
        body: bad.body,
        contentType: bad.contentType,
        headers: bad.headers,
        env: { FANOUT_QUEUE: fanout.queue },
      });
      await expectProblem(res, status, code);
      expect(fanout.calls).toEqual([]);
      // A key is claimed on its message's row: no row, no key.
      expect(await rowsOf("messages", topic)).toEqual([]);
    },
  );

  it("accepts a JSON body of exactly 1 MiB", async () => {
    const topic = (await seedTopic()).name;
    const fanout = recordingQueue();
    const res = await call("POST", `/v1/topics/${topic}/messages`, {
      as: "publisher",
      json: { body: "x".repeat(MiB - 2) },
      env: { FANOUT_QUEUE: fanout.queue },
    });
    expect(res.status, await res.text()).toBe(202);
    expect(fanout.sent()).toHaveLength(1);
  });

  it("accepts a raw body of exactly 1 MiB", async () => {
    const topic = (await seedTopic()).name;
    const fanout = recordingQueue();
    const res = await call("POST", `/v1/topics/${topic}/messages/raw`, {
      as: "publisher",
      body: new Uint8Array(MiB),
      env: { FANOUT_QUEUE: fanout.queue },
    });
    expect(res.status, await res.text()).toBe(202);
    expect(fanout.sent()).toHaveLength(1);
  });
});

describe("publishing access", () => {
  it.each([
    ["no token", "anonymous", 401, "unauthorized"],
    ["a wrong token", { authorization: "Bearer nope" }, 401, "unauthorized"],
  ] as const)("refuses %s (%i)", async (_, as, status, code) => {
    const topic = (await seedTopic()).name;
    const fanout = recordingQueue();
    const res = await call("POST", `/v1/topics/${topic}/messages`, {
      as,
      json: { body: 1 },
      env: { FANOUT_QUEUE: fanout.queue },
    });
    await expectProblem(res, status, code);
    expect(fanout.calls).toEqual([]);
  });

  it.each([
    ["GET", "/v1/dead-letters"],
    ["POST", "/v1/dead-letters/replay"],
    ["POST", "/v1/dead-letters/dlq_x/replay"],
    ["DELETE", "/v1/dead-letters/dlq_x"],
  ])("refuses the publish token on %s %s with 403", async (method, path) => {
    await expectProblem(await call(method, path, { as: "publisher" }), 403, "forbidden");
  });
});
