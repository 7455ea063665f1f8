import { describe, expect, it } from "vitest";
import { generateSecret, signatureHeader } from "../../src/delivery/signature";

const encoder = new TextEncoder();

function base64Decode(text: string): Uint8Array<ArrayBuffer> {
  return Uint8Array.from(atob(text), (char) => char.charCodeAt(0));
}

/** An independent check: Web Crypto's verify, with the key and message built by hand. */
async function verifies(
  secret: string,
  signature: string,
  id: string,
  timestamp: number,
  body: Uint8Array,
): Promise<boolean> {
  const key = await crypto.subtle.importKey(
    "raw",
    base64Decode(secret.replace(/^whsec_/, "")),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["verify"],
  );
  const message = new Uint8Array([...encoder.encode(`${id}.${timestamp}.`), ...body]);
  return crypto.subtle.verify("HMAC", key, base64Decode(signature.replace(/^v1,/, "")), message);
}

describe("generateSecret", () => {
  it("is whsec_ and the base64 of 32 bytes", () => {
    const secret = generateSecret();
    expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    expect(base64Decode(secret.slice("whsec_".length))).toHaveLength(32);
  });

  it("is different every time", () => {
    const secrets = new Set(Array.from({ length: 200 }, generateSecret));
    expect(secrets.size).toBe(200);
  });
});

describe("signatureHeader", () => {
  it("matches the example in the Standard Webhooks specification", async () => {
    const header = await signatureHeader(
      ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
      "msg_p5jXN8AQM9LWM0D4loKWxJek",
      1614265330,
      encoder.encode('{"test": 2432232314}'),
    );
    expect(header).toBe("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
  });

  const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
  const bodies: [string, Uint8Array][] = [
    ["an empty body", new Uint8Array()],
    ["a JSON body", encoder.encode('{"category":"food","green_light":true}')],
    ["a text body with non-ASCII text", encoder.encode("h\u00e9llo w\u00f6rld \u{1f44b}\n")],
    [
      "a binary body that is not UTF-8",
      new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x00, 0xff, 0xfe, 0x80]),
    ],
    ["every byte value", Uint8Array.from({ length: 256 }, (_, i) => i)],
    ["a 1 MiB body", new Uint8Array(1024 * 1024).fill(0x61)],
  ];

  it.each(bodies)("signs %s exactly as its bytes", async (_, body) => {
    const header = await signatureHeader([secret], "msg_1", 1764000000, body);
    expect(header).toMatch(/^v1,[A-Za-z0-9+/]{43}=$/);
    expect(await verifies(secret, header, "msg_1", 1764000000, body)).toBe(true);
  });

  it("signs only the viewed bytes of a subarray", async () => {
    const buffer = encoder.encode('xx{"a":1}yy');
    const view = buffer.subarray(2, buffer.length - 2);
    expect(await signatureHeader([secret], "msg_1", 1, view)).toBe(
      await signatureHeader([secret], "msg_1", 1, encoder.encode('{"a":1}')),
    );
  });

  it.each([
    ["the message id", "msg_2", 1764000000, "{}"],
    ["the timestamp", "msg_1", 1764000001, "{}"],
    ["the body", "msg_1", 1764000000, "{ }"],
  ])("changes when %s changes", async (_, id, timestamp, body) => {
    const original = await signatureHeader([secret], "msg_1", 1764000000, encoder.encode("{}"));
    const changed = await signatureHeader([secret], id, timestamp, encoder.encode(body));
    expect(changed).not.toBe(original);
  });

  it("lists one signature per secret, space-separated, in order", async () => {
    const secrets = [generateSecret(), generateSecret()];
    const body = encoder.encode('{"a":1}');
    const header = await signatureHeader(secrets, "msg_1", 1764000000, body);
    const signatures = header.split(" ");
    expect(signatures).toHaveLength(2);
    for (const [i, signature] of signatures.entries()) {
      expect(await verifies(secrets[i] ?? "", signature, "msg_1", 1764000000, body)).toBe(true);
      expect(await verifies(secrets[1 - i] ?? "", signature, "msg_1", 1764000000, body)).toBe(
        false,
      );
    }
  });

  it("gives the same signature on every call with the same secret", async () => {
    const body = encoder.encode("same");
    const calls = await Promise.all(
      Array.from({ length: 20 }, () => signatureHeader([secret], "msg_1", 5, body)),
    );
    expect(new Set(calls).size).toBe(1);
  });

  it("keeps signing correctly after more secrets than the key cache holds", async () => {
    const secrets = Array.from({ length: 300 }, generateSecret);
    const body = encoder.encode("x");
    for (const s of secrets) await signatureHeader([s], "msg_1", 5, body);
    const first = secrets[0] ?? "";
    const header = await signatureHeader([first], "msg_1", 5, body);
    expect(await verifies(first, header, "msg_1", 5, body)).toBe(true);
  });

  it.each([
    ["no prefix", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
    ["an empty key", "whsec_"],
    ["a key that is not base64", "whsec_not base64!"],
    ["a key with a bad length", "whsec_abcde"],
  ])("refuses a secret with %s, without repeating it", async (_, bad) => {
    await expect(signatureHeader([bad], "msg_1", 1, new Uint8Array())).rejects.toThrow(
      /^A signing secret must be whsec_ followed by base64$/,
    );
  });

  it("refuses an empty list of secrets", async () => {
    await expect(signatureHeader([], "msg_1", 1, new Uint8Array())).rejects.toThrow(
      "At least one signing secret is required",
    );
  });

  it.each([1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53])(
    "refuses the timestamp %s",
    async (timestamp) => {
      await expect(signatureHeader([secret], "msg_1", timestamp, new Uint8Array())).rejects.toThrow(
        "The signature timestamp must be whole seconds",
      );
    },
  );
});
