/**
 * The subscriber side: checking that a request came from the broker. Switchboard signs per the
 * Standard Webhooks specification (v1), so any of its verifiers works too; this one needs only
 * Web Crypto and runs wherever the client does.
 */

/** Why a request failed verification. */
export type WebhookVerificationReason =
  | "missing_header"
  | "invalid_timestamp"
  | "timestamp_too_old"
  | "timestamp_in_future"
  | "no_matching_signature";

/**
 * A request that did not verify: answer it with 401 and do not act on it. `reason` says why;
 * the message names the header or the clock difference, never the secret.
 */
export class WebhookVerificationError extends Error {
  override readonly name = "WebhookVerificationError";

  constructor(
    readonly reason: WebhookVerificationReason,
    message: string,
  ) {
    super(message);
  }
}

/** Request headers: a `Headers` object, or a plain object such as Node's `req.headers`. */
export type WebhookHeaders = Headers | Record<string, string | readonly string[] | undefined>;

/** The request body exactly as received: verify before parsing, re-serialised JSON differs. */
export type WebhookBody = string | Uint8Array | ArrayBuffer;

/** What {@link verifyWebhook} checks. */
export interface VerifyWebhookOptions {
  /**
   * The subscriber's signing secret: `whsec_` + base64 as the broker shows it, or the base64
   * alone. During a rotation pass both, new and old: a signature by either is accepted.
   */
  secret: string | readonly string[];
  headers: WebhookHeaders;
  body: WebhookBody;
  /** How far `webhook-timestamp` may be from the local clock, either way. Default 300. */
  toleranceSeconds?: number | undefined;
}

const SECRET_PREFIX = "whsec_";
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * Verifies a delivery's `webhook-id`, `webhook-timestamp` and `webhook-signature` against the
 * body, and returns the payload: the body parsed as JSON when it parses, else the body as text.
 * A `webhook-signature` may hold several space-separated `v1,<base64>` entries (the broker signs
 * with the old and the new secret for 24 hours after a rotation); one match is enough.
 * Signatures are compared in constant time.
 *
 * Throws {@link WebhookVerificationError} when the request does not verify, and `TypeError` when
 * a secret is not base64 (the `whsec_` prefix is optional) or none is given: a configuration
 * error, not a bad request.
 *
 * @example
 * // Node: read the raw body first, then verify.
 * const payload = await verifyWebhook({
 *   secret: process.env.SWITCHBOARD_SECRET,
 *   headers: req.headers,
 *   body: rawBody,
 * });
 */
export async function verifyWebhook(options: VerifyWebhookOptions): Promise<unknown> {
  const keys = (typeof options.secret === "string" ? [options.secret] : options.secret).map(
    secretBytes,
  );
  if (keys.length === 0) throw new TypeError("At least one signing secret is required");
  const id = header(options.headers, "webhook-id");
  const timestamp = header(options.headers, "webhook-timestamp");
  const signature = header(options.headers, "webhook-signature");

  if (!/^\d{1,15}$/.test(timestamp)) {
    throw new WebhookVerificationError(
      "invalid_timestamp",
      "webhook-timestamp is not a whole number of seconds",
    );
  }
  const tolerance = options.toleranceSeconds ?? 300;
  const skew = Math.floor(Date.now() / 1000) - Number(timestamp);
  if (skew > tolerance) {
    throw new WebhookVerificationError(
      "timestamp_too_old",
      `webhook-timestamp is ${skew} s old; at most ${tolerance} s are accepted`,
    );
  }
  if (-skew > tolerance) {
    throw new WebhookVerificationError(
      "timestamp_in_future",
      `webhook-timestamp is ${-skew} s ahead of this clock; at most ${tolerance} s are accepted`,
    );
  }

  const body = bodyBytes(options.body);
  const signed = concat(new TextEncoder().encode(`${id}.${timestamp}.`), body);
  const candidates = v1Signatures(signature);
  for (const key of keys) {
    const expected = await hmacSha256(key, signed);
    if (candidates.some((candidate) => constantTimeEqual(candidate, expected))) {
      return payloadOf(body);
    }
  }
  throw new WebhookVerificationError(
    "no_matching_signature",
    "No webhook-signature entry matches the body and the secret",
  );
}

function header(headers: WebhookHeaders, name: string): string {
  const value = headerValue(headers, name);
  if (value === undefined || value.trim() === "") {
    throw new WebhookVerificationError("missing_header", `The ${name} header is missing`);
  }
  return value.trim();
}

function headerValue(headers: WebhookHeaders, name: string): string | undefined {
  // Duck-typed: a Headers from another realm or a polyfill is not `instanceof` this one.
  if (isHeaders(headers)) return headers.get(name) ?? undefined;
  for (const [key, value] of Object.entries(headers)) {
    if (key.toLowerCase() !== name || value === undefined) continue;
    return typeof value === "string" ? value : value.join(" ");
  }
  return undefined;
}

function isHeaders(headers: WebhookHeaders): headers is Headers {
  return typeof headers.get === "function";
}

function secretBytes(secret: string): Uint8Array<ArrayBuffer> {
  const encoded = secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : secret;
  const bytes = encoded === "" ? undefined : fromBase64(encoded);
  // The secret stays out of the message: errors end up in logs.
  if (bytes === undefined)
    throw new TypeError("A signing secret must be base64, with or without the whsec_ prefix");
  return bytes;
}

/** The decoded `v1` entries of a signature header; other versions and bad base64 are skipped. */
function v1Signatures(header: string): Uint8Array[] {
  const signatures: Uint8Array[] = [];
  for (const entry of header.split(/\s+/)) {
    const comma = entry.indexOf(",");
    if (comma < 0 || entry.slice(0, comma) !== "v1") continue;
    const bytes = fromBase64(entry.slice(comma + 1));
    if (bytes !== undefined) signatures.push(bytes);
  }
  return signatures;
}

async function hmacSha256(
  key: Uint8Array<ArrayBuffer>,
  data: Uint8Array<ArrayBuffer>,
): Promise<Uint8Array> {
  const subtle = typeof crypto === "undefined" ? undefined : crypto.subtle;
  if (subtle === undefined) {
    throw new TypeError(
      'Web Crypto is not available. On Node 18, start Node with --experimental-global-webcrypto or set globalThis.crypto = (await import("node:crypto")).webcrypto',
    );
  }
  const cryptoKey = await subtle.importKey("raw", key, { name: "HMAC", hash: "SHA-256" }, false, [
    "sign",
  ]);
  return new Uint8Array(await subtle.sign("HMAC", cryptoKey, data));
}

/** Equal bytes, in time that depends only on the length (which is public: 32 for SHA-256). */
function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let difference = 0;
  for (let i = 0; i < a.length; i += 1) difference |= (a[i] ?? 0) ^ (b[i] ?? 0);
  return difference === 0;
}

function bodyBytes(body: WebhookBody): Uint8Array {
  if (typeof body === "string") return new TextEncoder().encode(body);
  return body instanceof Uint8Array ? body : new Uint8Array(body);
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array<ArrayBuffer> {
  const joined = new Uint8Array(a.length + b.length);
  joined.set(a);
  joined.set(b, a.length);
  return joined;
}

function payloadOf(body: Uint8Array): unknown {
  const text = new TextDecoder().decode(body);
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function fromBase64(text: string): Uint8Array<ArrayBuffer> | undefined {
  if (!BASE64.test(text)) return undefined;
  return Uint8Array.from(atob(text), (char) => char.charCodeAt(0));
}
