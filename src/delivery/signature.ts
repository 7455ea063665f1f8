/**
 * Standard Webhooks (v1) signing: what subscribers check `webhook-signature` against.
 * https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md
 */
import { base64ToBytes, bytesToBase64 } from "../publish/body";

const SECRET_PREFIX = "whsec_";
const SECRET_BYTES = 32;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

// Importing a key costs more than the HMAC itself; a worker signs for a few subscribers at a
// time, so a small cache holds them all, and the oldest entry goes first when it is full.
const KEY_CACHE_LIMIT = 256;
const keyCache = new Map<string, Promise<CryptoKey>>();

/**
 * A new signing secret: `whsec_` followed by the base64 of 32 random bytes.
 *
 * @example
 * generateSecret(); // "whsec_" and 44 base64 characters, different every time
 */
export function generateSecret(): string {
  return SECRET_PREFIX + bytesToBase64(crypto.getRandomValues(new Uint8Array(SECRET_BYTES)));
}

/**
 * The `webhook-signature` header value: `v1,<base64 HMAC-SHA256(key, id + "." + timestamp + "."
 * + body)>` for each secret, space-separated (several during a secret rotation). The key is the
 * base64-decoded part after `whsec_`. The body bytes are signed exactly as they are sent.
 *
 * Throws if `secrets` is empty, a secret is not `whsec_` + base64, or the timestamp is not a
 * whole number: each is a bug in the caller, not a delivery failure.
 *
 * @example
 * // The example from the Standard Webhooks specification:
 * await signatureHeader(
 *   ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
 *   "msg_p5jXN8AQM9LWM0D4loKWxJek",
 *   1614265330,
 *   new TextEncoder().encode('{"test": 2432232314}'),
 * ); // "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
 */
export async function signatureHeader(
  secrets: readonly string[],
  messageId: string,
  timestampSeconds: number,
  body: Uint8Array,
): Promise<string> {
  if (secrets.length === 0) throw new RangeError("At least one signing secret is required");
  if (!Number.isSafeInteger(timestampSeconds)) {
    throw new RangeError(`The signature timestamp must be whole seconds, got ${timestampSeconds}`);
  }
  const prefix = new TextEncoder().encode(`${messageId}.${timestampSeconds}.`);
  const signed = new Uint8Array(prefix.length + body.length);
  signed.set(prefix);
  signed.set(body, prefix.length);
  const signatures = await Promise.all(
    secrets.map(async (secret) => {
      const mac = await crypto.subtle.sign("HMAC", await hmacKey(secret), signed);
      return `v1,${bytesToBase64(new Uint8Array(mac))}`;
    }),
  );
  return signatures.join(" ");
}

function hmacKey(secret: string): Promise<CryptoKey> {
  const cached = keyCache.get(secret);
  if (cached !== undefined) {
    keyCache.delete(secret);
    keyCache.set(secret, cached);
    return cached;
  }
  const encoded = secret.slice(SECRET_PREFIX.length);
  if (!secret.startsWith(SECRET_PREFIX) || encoded === "" || !BASE64.test(encoded)) {
    // The secret itself stays out of the message: errors end up in logs.
    throw new TypeError("A signing secret must be whsec_ followed by base64");
  }
  const key = crypto.subtle.importKey(
    "raw",
    base64ToBytes(encoded),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  keyCache.set(secret, key);
  key.catch(() => keyCache.delete(secret));
  const oldest = keyCache.keys().next();
  if (keyCache.size > KEY_CACHE_LIMIT && !oldest.done) keyCache.delete(oldest.value);
  return key;
}
