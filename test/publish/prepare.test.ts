import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ApiError } from "../../src/api/problem";
import type { Envelope } from "../../src/api/schemas/envelope";
import {
  canonicalJson,
  deliveredSize,
  fitsInline,
  MAX_MESSAGE_BODY_BYTES,
  MAX_STORED_CONTENT_BYTES,
  prepareEnvelope,
  prepareRaw,
} from "../../src/publish/prepare";
import { INLINE_CONTENT_MAX_BYTES } from "../../src/queues/tasks";

const MiB = 1024 * 1024;
const NOW = Date.UTC(2026, 10, 28, 12, 0, 0);

/** A JSON string body whose serialized form (with its quotes) is exactly `bytes` long. */
function jsonStringOf(bytes: number): string {
  return "x".repeat(bytes - 2);
}

/** Base64 of `bytes` zero bytes. */
function base64Of(bytes: number): string {
  const chunk = String.fromCharCode(...new Uint8Array(3 * 1024));
  const whole = Math.floor(bytes / chunk.length);
  return btoa(chunk.repeat(whole) + "\0".repeat(bytes - whole * chunk.length));
}

async function refusal(envelope: Envelope): Promise<ApiError> {
  const error = await prepareEnvelope("t", envelope, undefined, NOW).then(
    () => undefined,
    (thrown: unknown) => thrown,
  );
  if (!(error instanceof ApiError)) throw new Error(`expected an ApiError, got ${String(error)}`);
  return error;
}

describe("prepareEnvelope size limit", () => {
  it.each<[string, Envelope]>([
    ["a JSON body of exactly 1 MiB", { body: jsonStringOf(MiB) }],
    ["a text body of exactly 1 MiB", { bodyText: "x".repeat(MiB) }],
    ["a base64 body that decodes to exactly 1 MiB", { bodyBase64: base64Of(MiB) }],
    ["a text body of 1 MiB of two-byte characters", { bodyText: "é".repeat(MiB / 2) }],
  ])("accepts %s", async (_, envelope) => {
    const message = await prepareEnvelope("t", envelope, undefined, NOW);
    expect(deliveredSize(message.content.body)).toBe(MAX_MESSAGE_BODY_BYTES);
  });

  it.each<[string, Envelope]>([
    ["a JSON body one byte over 1 MiB", { body: jsonStringOf(MiB + 1) }],
    ["a text body one byte over 1 MiB", { bodyText: "x".repeat(MiB + 1) }],
    ["a base64 body that decodes to one byte over 1 MiB", { bodyBase64: base64Of(MiB + 1) }],
    ["1 MiB + 1 of UTF-8 in fewer than 1 MiB characters", { bodyText: `${"é".repeat(MiB / 2)}x` }],
  ])("refuses %s with 413 payload_too_large", async (_, envelope) => {
    const error = await refusal(envelope);
    expect(error.code).toBe("payload_too_large");
    expect(error.status).toBe(413);
  });

  it("counts the decoded size of base64, not the length of its text", async () => {
    const base64 = base64Of(MiB);
    expect(base64.length).toBeGreaterThan(MiB);
    await expect(
      prepareEnvelope("t", { bodyBase64: base64 }, undefined, NOW),
    ).resolves.toBeDefined();
  });

  it("applies the same limit to raw bodies", async () => {
    const raw = (bytes: number) =>
      prepareRaw(
        "t",
        {
          body: { kind: "bytes", base64: base64Of(bytes), contentType: "application/octet-stream" },
          headers: {},
          query: {},
          pathParams: {},
          method: null,
        },
        undefined,
        NOW,
      );
    await expect(raw(MiB)).resolves.toBeDefined();
    await expect(raw(MiB + 1)).rejects.toMatchObject({ code: "payload_too_large", status: 413 });
  });
});

describe("prepareEnvelope stored size limit", () => {
  /** A 1 MiB body with `headerBytes` of header values beside it, in 8 KiB values. */
  const withHeaders = (headerBytes: number): Envelope => ({
    bodyBase64: base64Of(MiB),
    headers: Object.fromEntries(
      Array.from({ length: Math.ceil(headerBytes / 8192) }, (_, i) => [
        `x-h${i}`,
        "v".repeat(8192),
      ]),
    ),
  });

  it("refuses content that storage could not hold, naming the stored size and the limit", async () => {
    const error = await refusal(withHeaders(600 * 1024));
    expect(error.status).toBe(413);
    expect(error.code).toBe("payload_too_large");
    expect(error.message).toMatch(
      /^The message is \d+ bytes with its headers, query and path params/,
    );
    expect(error.message).toContain(`the limit is ${MAX_STORED_CONTENT_BYTES} bytes`);
  });

  it("accepts a 1 MiB body with headers that still fit", async () => {
    const message = await prepareEnvelope("t", withHeaders(400 * 1024), undefined, NOW);
    expect(message.contentBytes).toBeGreaterThan(1_800_000);
    expect(message.contentBytes).toBeLessThanOrEqual(MAX_STORED_CONTENT_BYTES);
  });
});

describe("prepareEnvelope", () => {
  it("gives a msg_ id, the topic, the publish time and the delay", async () => {
    const message = await prepareEnvelope("orders", { body: 1, delaySeconds: 30 }, "k1", NOW);
    expect(message).toMatchObject({
      topic: "orders",
      publishedAt: NOW,
      delaySeconds: 30,
      idempotencyKey: "k1",
    });
    expect(message.id).toMatch(/^msg_[0-9A-HJKMNP-TV-Z]{26}$/);
  });

  it("carries the body with the content type it is delivered with", async () => {
    const json = await prepareEnvelope("t", { body: { a: 1 } }, undefined, NOW);
    const text = await prepareEnvelope("t", { bodyText: "hi" }, undefined, NOW);
    const bytes = await prepareEnvelope(
      "t",
      { bodyBase64: "AAE=", contentType: "image/png" },
      undefined,
      NOW,
    );
    const none = await prepareEnvelope("t", {}, undefined, NOW);
    expect(json.content.body).toEqual({
      kind: "json",
      value: { a: 1 },
      contentType: "application/json",
    });
    expect(text.content.body).toEqual({
      kind: "text",
      text: "hi",
      contentType: "text/plain; charset=utf-8",
    });
    expect(bytes.content.body).toEqual({ kind: "bytes", base64: "AAE=", contentType: "image/png" });
    expect(none.content.body).toEqual({ kind: "none" });
  });

  it("lower-cases header names and keeps query, path params and method", async () => {
    const message = await prepareEnvelope(
      "t",
      {
        headers: { "X-Mode": "quiet" },
        query: { page: "2", tag: ["a", "b"] },
        pathParams: { orderId: "42" },
        method: "PUT",
      },
      undefined,
      NOW,
    );
    expect(message.content).toMatchObject({
      headers: { "x-mode": "quiet" },
      query: { page: "2", tag: ["a", "b"] },
      pathParams: { orderId: "42" },
      method: "PUT",
    });
  });

  it("hashes the same message the same whatever the key order", async () => {
    const a = await prepareEnvelope(
      "t",
      { body: { b: 1, a: { d: 1, c: 2 } }, headers: { "x-a": "1", "x-b": "2" }, delaySeconds: 5 },
      "k",
      NOW,
    );
    const b = await prepareEnvelope(
      "t",
      { delaySeconds: 5, headers: { "X-B": "2", "x-a": "1" }, body: { a: { c: 2, d: 1 }, b: 1 } },
      "k",
      NOW + 1000,
    );
    expect(a.payloadHash).toBe(b.payloadHash);
    expect(a.payloadHash).toMatch(/^[0-9a-f]{64}$/);
  });

  it.each<[string, Envelope]>([
    ["the body", { body: { a: 2 } }],
    ["a header", { body: { a: 1 }, headers: { "x-a": "2" } }],
    ["the query", { body: { a: 1 }, query: { q: "1" } }],
    ["the path params", { body: { a: 1 }, pathParams: { id: "1" } }],
    ["the method", { body: { a: 1 }, method: "PUT" }],
    ["the delay", { body: { a: 1 }, delaySeconds: 1 }],
    ["the body's content type", { body: { a: 1 }, contentType: "application/vnd.a+json" }],
    ["the body's kind", { bodyText: '{"a":1}', contentType: "application/json" }],
  ])("hashes a message that differs in %s differently", async (_, other) => {
    const base = await prepareEnvelope("t", { body: { a: 1 } }, "k", NOW);
    const changed = await prepareEnvelope("t", other, "k", NOW);
    expect(changed.payloadHash).not.toBe(base.payloadHash);
  });

  it("lets content up to the inline limit travel inside queue messages", async () => {
    const small = await prepareEnvelope("t", { body: "x" }, undefined, NOW);
    const large = await prepareEnvelope(
      "t",
      { body: jsonStringOf(INLINE_CONTENT_MAX_BYTES) },
      undefined,
      NOW,
    );
    expect(fitsInline(small)).toBe(true);
    expect(large.contentBytes).toBeGreaterThan(INLINE_CONTENT_MAX_BYTES);
    expect(fitsInline(large)).toBe(false);
  });
});

/** The first implementation, which stored hashes were made with: a sorting replacer. */
function replacerCanonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, inner: unknown) =>
    inner && typeof inner === "object" && !Array.isArray(inner)
      ? Object.fromEntries(Object.entries(inner).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : inner,
  );
}

/** Keys that enumerate or sort in surprising ways, beside arbitrary ones. */
const trickyKey = fc.oneof(
  fc.constantFrom("__proto__", "constructor", "10", "9", "0", "01", "-1", "1.5", "4294967294"),
  fc.constantFrom("4294967295", "", "a", "B", "é", "\u{1F600}", "\u0000"),
  fc.string(),
);
const trickyJson = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: "small" },
    fc.jsonValue({ maxDepth: 2 }),
    fc.array(tie("value"), { maxLength: 4 }),
    fc.dictionary(trickyKey, tie("value"), { maxKeys: 6 }),
  ),
})).value;

describe("canonicalJson", () => {
  it("writes what the sorting replacer wrote, so stored hashes still match", () => {
    fc.assert(
      fc.property(trickyJson, (value) => {
        // JSON.parse makes the data a publish hashes: own "__proto__" keys included.
        const parsed: unknown = JSON.parse(JSON.stringify(value));
        expect(canonicalJson(parsed)).toBe(replacerCanonicalJson(parsed));
      }),
      { seed: 20261128, numRuns: 2000 },
    );
    const content = {
      body: { kind: "json", value: { b: [1, { d: 1, c: 2 }], a: null, 10: 1, 9: 2 } },
      headers: { "x-b": "1", "x-a": "2" },
      query: { q: ["2", "1"] },
      pathParams: {},
      method: null,
    };
    expect(canonicalJson({ content, delaySeconds: 0 })).toBe(
      replacerCanonicalJson({ content, delaySeconds: 0 }),
    );
  });

  it("does not depend on the order of object keys, at any depth", () => {
    expect(canonicalJson({ b: 1, a: [{ y: 1, x: 2 }], c: { z: null, e: "s" } })).toBe(
      canonicalJson({ c: { e: "s", z: null }, a: [{ x: 2, y: 1 }], b: 1 }),
    );
  });

  it("sorts keys and keeps array order", () => {
    expect(canonicalJson({ b: [3, 1, 2], a: { d: 1, c: 2 } })).toBe(
      '{"a":{"c":2,"d":1},"b":[3,1,2]}',
    );
    expect(canonicalJson([2, 1])).not.toBe(canonicalJson([1, 2]));
  });

  it.each([null, 0, "x", true, [], {}])("serializes %j as JSON does", (value) => {
    expect(canonicalJson(value)).toBe(JSON.stringify(value));
  });
});
