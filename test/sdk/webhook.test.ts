/** verifyWebhook against what the broker itself signs (src/delivery/signature.ts). */
import { describe, expect, it } from "vitest";
import { generateSecret, signatureHeader } from "../../src/delivery/signature";
import {
  verifyWebhook,
  WebhookVerificationError,
  type WebhookVerificationReason,
} from "../../src/sdk";

const SECRET = generateSecret();
const now = () => Math.floor(Date.now() / 1000);

/** The headers of a delivery as the broker sends it. */
async function signed(
  body: string | Uint8Array,
  options: { secrets?: string[]; id?: string; timestamp?: number } = {},
): Promise<Record<string, string>> {
  const id = options.id ?? "msg_01JDQ3Y5N6M7P8Q9R0S1T2V3W4";
  const timestamp = options.timestamp ?? now();
  const bytes = typeof body === "string" ? new TextEncoder().encode(body) : body;
  return {
    "webhook-id": id,
    "webhook-timestamp": String(timestamp),
    "webhook-signature": await signatureHeader(options.secrets ?? [SECRET], id, timestamp, bytes),
  };
}

async function reasonOf(promise: Promise<unknown>): Promise<WebhookVerificationReason> {
  const error = await promise.then(
    () => expect.unreachable("verified"),
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(WebhookVerificationError);
  return (error as WebhookVerificationError).reason;
}

describe("verifyWebhook", () => {
  it("accepts the broker's signature and returns the JSON payload", async () => {
    const body = JSON.stringify({ orderId: 42, items: ["a"] });
    const headers = await signed(body);
    expect(await verifyWebhook({ secret: SECRET, headers, body })).toEqual({
      orderId: 42,
      items: ["a"],
    });
  });

  it("takes the body as a string, bytes or an ArrayBuffer, and headers as Headers", async () => {
    const body = '{"n":1}';
    const headers = await signed(body);
    const bytes = new TextEncoder().encode(body);
    const buffer = new ArrayBuffer(bytes.byteLength);
    new Uint8Array(buffer).set(bytes);
    for (const form of [body, bytes, buffer]) {
      expect(
        await verifyWebhook({ secret: SECRET, headers: new Headers(headers), body: form }),
      ).toEqual({ n: 1 });
    }
  });

  it("returns text that is not JSON as text", async () => {
    const headers = await signed("plain words");
    expect(await verifyWebhook({ secret: SECRET, headers, body: "plain words" })).toBe(
      "plain words",
    );
  });

  it("finds the headers in a plain object whatever their case", async () => {
    const headers = Object.fromEntries(
      Object.entries(await signed("{}")).map(([name, value]) => [name.toUpperCase(), value]),
    );
    expect(await verifyWebhook({ secret: SECRET, headers, body: "{}" })).toEqual({});
  });

  it("accepts either secret of a rotation, and both at once", async () => {
    const next = generateSecret();
    const headers = await signed("{}", { secrets: [next, SECRET] });
    expect(headers["webhook-signature"]?.split(" ")).toHaveLength(2);
    for (const secret of [SECRET, next, [next, SECRET], [generateSecret(), SECRET]]) {
      expect(await verifyWebhook({ secret, headers, body: "{}" })).toEqual({});
    }
  });

  it("accepts a secret without its whsec_ prefix", async () => {
    const headers = await signed("{}");
    expect(await verifyWebhook({ secret: SECRET.slice(6), headers, body: "{}" })).toEqual({});
  });

  it("skips signatures of other versions and ones that are not base64", async () => {
    const headers = await signed("{}");
    headers["webhook-signature"] = `v2,abc v1,!!! ${headers["webhook-signature"]}`;
    expect(await verifyWebhook({ secret: SECRET, headers, body: "{}" })).toEqual({});
  });

  it.each<[string, (h: Record<string, string>) => void, WebhookVerificationReason]>([
    ["webhook-id is missing", (h) => delete h["webhook-id"], "missing_header"],
    ["webhook-timestamp is missing", (h) => delete h["webhook-timestamp"], "missing_header"],
    ["webhook-signature is missing", (h) => delete h["webhook-signature"], "missing_header"],
    ["webhook-signature is blank", (h) => (h["webhook-signature"] = " "), "missing_header"],
    [
      "the timestamp is not a number",
      (h) => (h["webhook-timestamp"] = "soon"),
      "invalid_timestamp",
    ],
    ["the id was changed", (h) => (h["webhook-id"] = "msg_other"), "no_matching_signature"],
    [
      "the signature has no v1 entry",
      (h) => (h["webhook-signature"] = "v2,abc"),
      "no_matching_signature",
    ],
  ])("rejects a request where %s", async (_label, tamper, reason) => {
    const headers = await signed("{}");
    tamper(headers);
    expect(await reasonOf(verifyWebhook({ secret: SECRET, headers, body: "{}" }))).toBe(reason);
  });

  it("rejects a tampered body", async () => {
    const headers = await signed('{"amount":1}');
    expect(await reasonOf(verifyWebhook({ secret: SECRET, headers, body: '{"amount":100}' }))).toBe(
      "no_matching_signature",
    );
    expect(await reasonOf(verifyWebhook({ secret: SECRET, headers, body: '{"amount": 1}' }))).toBe(
      "no_matching_signature",
    );
  });

  it("rejects a wrong secret", async () => {
    const headers = await signed("{}");
    expect(await reasonOf(verifyWebhook({ secret: generateSecret(), headers, body: "{}" }))).toBe(
      "no_matching_signature",
    );
  });

  it("rejects a stale and a future timestamp, within the tolerance either way", async () => {
    const stale = await signed("{}", { timestamp: now() - 301 });
    const future = await signed("{}", { timestamp: now() + 301 });
    expect(await reasonOf(verifyWebhook({ secret: SECRET, headers: stale, body: "{}" }))).toBe(
      "timestamp_too_old",
    );
    expect(await reasonOf(verifyWebhook({ secret: SECRET, headers: future, body: "{}" }))).toBe(
      "timestamp_in_future",
    );
    for (const headers of [stale, future]) {
      expect(
        await verifyWebhook({ secret: SECRET, headers, body: "{}", toleranceSeconds: 600 }),
      ).toEqual({});
    }
    const edge = await signed("{}", { timestamp: now() - 290 });
    expect(await verifyWebhook({ secret: SECRET, headers: edge, body: "{}" })).toEqual({});
  });

  it("checks the timestamp even when the signature matches", async () => {
    // The signature covers the timestamp, so a replayed request cannot move it forward.
    const old = await signed("{}", { timestamp: now() - 3600 });
    expect(await reasonOf(verifyWebhook({ secret: SECRET, headers: old, body: "{}" }))).toBe(
      "timestamp_too_old",
    );
  });

  it("throws a TypeError for a secret that is not base64, never naming it", async () => {
    const headers = await signed("{}");
    const attempt = verifyWebhook({ secret: "whsec_not*base64", headers, body: "{}" });
    await expect(attempt).rejects.toThrow(TypeError);
    await expect(attempt).rejects.not.toThrow(/not\*base64/);
    await expect(verifyWebhook({ secret: [], headers, body: "{}" })).rejects.toThrow(TypeError);
  });
});
