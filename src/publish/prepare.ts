/**
 * Turns what a publisher sent (an envelope, or raw bytes) into a message ready to store and queue:
 * its id, content, size, and the hash that tells a retried publish from a reused idempotency key.
 * Pure apart from hashing; no storage, no queue.
 */

import { ApiError } from "../api/problem";
import type { Envelope } from "../api/schemas/envelope";
import { newId } from "../db/ids";
import { INLINE_CONTENT_MAX_BYTES, type MessageContent } from "../queues/tasks";
import { base64DecodedLength, type MessageBody } from "./body";
import { messageBodyOf, requestPartsOf } from "./envelope";

/** The contract's limit on the body as delivered: 1 MiB. */
export const MAX_MESSAGE_BODY_BYTES = 1024 * 1024;

/**
 * The limit on a message's content as stored: body, headers, query and path params as JSON. D1
 * refuses a value or a row over 2,000,000 bytes, and a message's content is stored whole (with the
 * message when it is too large to travel inline, and in a dead letter); the margin leaves room for
 * the row's other columns. A 1 MiB body alone stays well under it, even as base64.
 */
export const MAX_STORED_CONTENT_BYTES = 1_990_000;

/** A message about to be published. */
export interface PreparedMessage {
  id: string;
  topic: string;
  publishedAt: number;
  content: MessageContent;
  /** `content` as JSON, which is what D1 stores when it is too large to travel inline. */
  serialized: string;
  /** Serialized size of `content`, which decides whether it can travel inline. */
  contentBytes: number;
  delaySeconds: number;
  idempotencyKey: string | undefined;
  /** SHA-256 (hex) of the whole message as published. */
  payloadHash: string;
}

/** Prepares an envelope; throws `payload_too_large` when its body is over 1 MiB. */
export async function prepareEnvelope(
  topic: string,
  envelope: Envelope,
  idempotencyKey: string | undefined,
  publishedAt: number,
): Promise<PreparedMessage> {
  const content: MessageContent = { body: messageBodyOf(envelope), ...requestPartsOf(envelope) };
  return prepare(topic, content, envelope.delaySeconds ?? 0, idempotencyKey, publishedAt);
}

/** Prepares a raw publish: the bytes as they came, with the request's content type. */
export async function prepareRaw(
  topic: string,
  content: MessageContent,
  idempotencyKey: string | undefined,
  publishedAt: number,
): Promise<PreparedMessage> {
  return prepare(topic, content, 0, idempotencyKey, publishedAt);
}

async function prepare(
  topic: string,
  content: MessageContent,
  delaySeconds: number,
  idempotencyKey: string | undefined,
  publishedAt: number,
): Promise<PreparedMessage> {
  const size = deliveredSize(content.body);
  if (size > MAX_MESSAGE_BODY_BYTES) {
    throw new ApiError(
      "payload_too_large",
      `The message body is ${size} bytes; the limit is ${MAX_MESSAGE_BODY_BYTES} bytes`,
    );
  }
  const serialized = JSON.stringify(content);
  const contentBytes = new TextEncoder().encode(serialized).byteLength;
  if (contentBytes > MAX_STORED_CONTENT_BYTES) {
    throw new ApiError(
      "payload_too_large",
      `The message is ${contentBytes} bytes with its headers, query and path params (as JSON); ` +
        `the limit is ${MAX_STORED_CONTENT_BYTES} bytes`,
    );
  }
  return {
    id: newId("msg", publishedAt),
    topic,
    publishedAt,
    content,
    serialized,
    contentBytes,
    delaySeconds,
    idempotencyKey,
    payloadHash: await sha256Hex(canonicalJson({ content, delaySeconds })),
  };
}

/** The size of the body a subscriber will receive. */
export function deliveredSize(body: MessageBody): number {
  switch (body.kind) {
    case "none":
      return 0;
    case "json":
      return new TextEncoder().encode(JSON.stringify(body.value)).byteLength;
    case "text":
      return new TextEncoder().encode(body.text).byteLength;
    case "bytes":
      return base64DecodedLength(body.base64);
  }
}

/** Whether a message's content may ride inside queue messages rather than in storage. */
export function fitsInline(message: PreparedMessage): boolean {
  return message.contentBytes <= INLINE_CONTENT_MAX_BYTES;
}

/**
 * JSON with object keys sorted, so that the same message always hashes the same. It writes what
 * `JSON.stringify` would write for a copy of `value` whose objects were rebuilt with sorted keys
 * (stored hashes depend on it): array-index keys such as "2" and "10" stay first, in numeric order,
 * as JavaScript enumerates them, and the other keys follow in code-unit order.
 */
export function canonicalJson(value: unknown): string {
  return canonical(value) ?? "undefined";
}

function canonical(value: unknown): string | undefined {
  if (value === null || typeof value !== "object") return JSON.stringify(value);
  if (Array.isArray(value)) {
    return `[${value.map((item: unknown) => canonical(item) ?? "null").join(",")}]`;
  }
  const keys = Object.keys(value);
  let names = 0;
  while (names < keys.length && isArrayIndex(keys[names] as string)) names++;
  const ordered =
    names === 0 ? keys.sort() : [...keys.slice(0, names), ...keys.slice(names).sort()];
  const members: string[] = [];
  for (const key of ordered) {
    const member = canonical((value as Record<string, unknown>)[key]);
    if (member !== undefined) members.push(`${JSON.stringify(key)}:${member}`);
  }
  return `{${members.join(",")}}`;
}

/** A key that JavaScript enumerates before all others, in numeric order: 0 to 2^32 − 2. */
function isArrayIndex(key: string): boolean {
  return /^(?:0|[1-9]\d{0,9})$/.test(key) && Number(key) < 4_294_967_295;
}

const HEX = Array.from({ length: 256 }, (_, byte) => byte.toString(16).padStart(2, "0"));

async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (byte) => HEX[byte]).join("");
}
