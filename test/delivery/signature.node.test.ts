import { Buffer } from "node:buffer";
import { createHmac } from "node:crypto";
import { Webhook, WebhookVerificationError } from "standardwebhooks";
import { describe, expect, it } from "vitest";
import { generateSecret, signatureHeader } from "../../src/delivery/signature";

// The reference verifier runs here, in Node: it needs Buffer for byte bodies, which workerd only
// has with the nodejs_compat flag the Worker does not enable.

const encoder = new TextEncoder();

async function headersFor(secrets: string[], id: string, body: Uint8Array) {
  const timestamp = Math.floor(Date.now() / 1000);
  return {
    "webhook-id": id,
    "webhook-timestamp": String(timestamp),
    "webhook-signature": await signatureHeader(secrets, id, timestamp, body),
  };
}

describe("signatureHeader against the standardwebhooks package", () => {
  it.each([
    ["a JSON object", '{"category":"food","green_light":true}'],
    ["a JSON string with non-ASCII text", '"h\u00e9llo \u{1f44b}"'],
    ["a JSON array", "[1,2,3]"],
    ["JSON with whitespace kept as sent", '{ "a" :  1 }\n'],
  ])("verifies %s", async (_, json) => {
    const secret = generateSecret();
    const body = encoder.encode(json);
    const headers = await headersFor([secret], "msg_json", body);
    expect(new Webhook(secret).verify(json, headers)).toEqual(JSON.parse(json));
    expect(new Webhook(secret).verify(Buffer.from(body), headers)).toEqual(JSON.parse(json));
  });

  it.each([
    ["plain text", "hello world"],
    ["text with non-ASCII characters", "gr\u00fc\u00dfe, \u6771\u4eac \u{1f44b}\r\n"],
    ["an empty body", ""],
  ])("verifies %s", async (_, text) => {
    const secret = generateSecret();
    const headers = await headersFor([secret], "msg_text", encoder.encode(text));
    expect(() => new Webhook(secret).verify(text, headers, { jsonParse: false })).not.toThrow();
  });

  it("verifies a binary body whose bytes are valid UTF-8", async () => {
    const secret = generateSecret();
    const body = new Uint8Array([0x00, 0x01, 0x7f, 0xc3, 0xa9, 0xe2, 0x82, 0xac, 0x0a]);
    const headers = await headersFor([secret], "msg_bin", body);
    expect(() =>
      new Webhook(secret).verify(Buffer.from(body), headers, { jsonParse: false }),
    ).not.toThrow();
  });

  it("signs a binary body that is not UTF-8 over its exact bytes", async () => {
    // The reference JavaScript verifier decodes byte bodies as UTF-8 before signing, which
    // replaces invalid sequences; the specification signs the bytes, so check with a plain HMAC.
    const secret = generateSecret();
    const body = Uint8Array.from({ length: 256 }, (_, i) => 255 - i);
    const timestamp = 1764000000;
    const header = await signatureHeader([secret], "msg_bin", timestamp, body);
    const expected = createHmac("sha256", Buffer.from(secret.slice("whsec_".length), "base64"))
      .update(Buffer.concat([Buffer.from(`msg_bin.${timestamp}.`), body]))
      .digest("base64");
    expect(header).toBe(`v1,${expected}`);
  });

  it("verifies with each secret of a rotation, and not with another", async () => {
    const [oldSecret, newSecret] = [generateSecret(), generateSecret()];
    const json = '{"rotating":true}';
    const headers = await headersFor([oldSecret, newSecret], "msg_rot", encoder.encode(json));
    expect(headers["webhook-signature"].split(" ")).toHaveLength(2);
    expect(new Webhook(oldSecret).verify(json, headers)).toEqual({ rotating: true });
    expect(new Webhook(newSecret).verify(json, headers)).toEqual({ rotating: true });
    expect(() => new Webhook(generateSecret()).verify(json, headers)).toThrow(
      WebhookVerificationError,
    );
  });

  it("does not verify when the body was changed", async () => {
    const secret = generateSecret();
    const headers = await headersFor([secret], "msg_x", encoder.encode('{"a":1}'));
    expect(() => new Webhook(secret).verify('{"a":2}', headers)).toThrow(WebhookVerificationError);
  });

  it("matches the package's own signature", async () => {
    const secret = generateSecret();
    const json = '{"same":"bytes"}';
    const date = new Date(1764000000 * 1000);
    expect(await signatureHeader([secret], "msg_same", 1764000000, encoder.encode(json))).toBe(
      new Webhook(secret).sign("msg_same", date, json),
    );
  });
});
