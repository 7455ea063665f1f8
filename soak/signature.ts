/**
 * Checks `webhook-signature` the way a subscriber would: text bodies through the Standard Webhooks
 * library, binary bodies with an HMAC over the exact bytes (the library turns a Buffer into a
 * string first, which is lossy for bytes that are not UTF-8).
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import { Webhook } from "standardwebhooks";

/** The Standard Webhooks default tolerance for `webhook-timestamp`, either way. */
const TOLERANCE_SECONDS = 5 * 60;

/** Undefined when the signature is valid, otherwise why not. */
export function signatureProblem(
  secret: string,
  headers: Record<string, string>,
  body: Buffer,
  binary: boolean,
): string | undefined {
  try {
    if (!binary) {
      new Webhook(secret).verify(body.toString("utf8"), headers, { jsonParse: false });
      return undefined;
    }
    return binarySignatureProblem(secret, headers, body);
  } catch (error) {
    return `signature: ${error instanceof Error ? error.message : String(error)}`;
  }
}

function binarySignatureProblem(
  secret: string,
  headers: Record<string, string>,
  body: Buffer,
): string | undefined {
  const id = headers["webhook-id"];
  const timestamp = headers["webhook-timestamp"];
  const signatures = headers["webhook-signature"];
  if (!id || !timestamp || !signatures) return "signature: missing webhook headers";
  const seconds = Number(timestamp);
  if (!/^\d+$/.test(timestamp) || Math.abs(Date.now() / 1000 - seconds) > TOLERANCE_SECONDS) {
    return `signature: timestamp ${timestamp} outside the tolerance`;
  }
  const key = Buffer.from(secret.replace(/^whsec_/, ""), "base64");
  const expected = createHmac("sha256", key).update(`${id}.${timestamp}.`).update(body).digest();
  for (const entry of signatures.split(" ")) {
    const [version, value] = entry.split(",");
    if (version !== "v1" || value === undefined) continue;
    const given = Buffer.from(value, "base64");
    if (given.length === expected.length && timingSafeEqual(given, expected)) return undefined;
  }
  return "signature: no matching v1 signature over the exact bytes";
}
