/**
 * The HTTP request one delivery attempt sends, exactly as the contract describes it: method, URL
 * with path params and merged query, merged headers, the broker's signature headers, and the body.
 */

import { bodyBytes } from "../publish/body";
import type { MessageContent } from "../queues/tasks";
import { VERSION } from "../version";
import { signatureHeader } from "./signature";
import { buildTargetUrl } from "./target-url";

/** What a request needs to know about its subscriber. */
export interface RequestSubscriber {
  url: string;
  method: string;
  headers: Record<string, string>;
  query: Record<string, string | string[]>;
  /** Every secret that signs now: the current one, and the previous one during a rotation. */
  secrets: readonly string[];
}

export interface DeliveryRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  body: Uint8Array | null;
}

/**
 * Builds the request of attempt `attempt` (1-based) at `now`. Fails, with the reason as the
 * delivery's error, when the URL needs a path parameter that the message lacks.
 */
export async function buildDeliveryRequest(input: {
  messageId: string;
  topic: string;
  content: MessageContent;
  subscriber: RequestSubscriber;
  attempt: number;
  now: Date;
  /**
   * Bodies already encoded, by message id: a message's tasks often share a batch, and encoding a
   * large body once per subscriber would repeat the same work. Filled as bodies are encoded.
   */
  bodies?: Map<string, Uint8Array>;
}): Promise<{ ok: true; request: DeliveryRequest } | { ok: false; error: string }> {
  const { messageId, topic, content, subscriber, attempt, now } = input;
  const target = buildTargetUrl(
    subscriber.url,
    content.pathParams,
    subscriber.query,
    content.query,
  );
  if (!target.ok) return { ok: false, error: target.reason };

  const method = content.method ?? subscriber.method;
  const sendsBody = method !== "GET" && content.body.kind !== "none";
  const body = sendsBody ? encodedBody(messageId, content, input.bodies) : null;
  const timestamp = Math.floor(now.getTime() / 1000);

  const headers: Record<string, string> = { ...content.headers, ...subscriber.headers };
  if (sendsBody && content.body.kind !== "none") headers["content-type"] = content.body.contentType;
  else delete headers["content-type"];
  headers["webhook-id"] = messageId;
  headers["webhook-timestamp"] = String(timestamp);
  headers["webhook-signature"] = await signatureHeader(
    subscriber.secrets,
    messageId,
    timestamp,
    body ?? new Uint8Array(),
  );
  headers["switchboard-topic"] = topic;
  headers["switchboard-attempt"] = String(attempt);
  headers["user-agent"] = `Switchboard/${VERSION}`;

  return { ok: true, request: { method, url: target.url, headers, body } };
}

function encodedBody(
  messageId: string,
  content: MessageContent,
  bodies: Map<string, Uint8Array> | undefined,
): Uint8Array {
  let body = bodies?.get(messageId);
  if (body === undefined) {
    body = bodyBytes(content.body);
    bodies?.set(messageId, body);
  }
  return body;
}

/** The secrets that sign at `now`: the current one first, then a previous one still in overlap. */
export function signingSecrets(
  subscriber: {
    secret: string;
    previousSecret: string | null;
    previousSecretExpiresAt: number | null;
  },
  now: number,
): string[] {
  const { secret, previousSecret, previousSecretExpiresAt } = subscriber;
  return previousSecret && (previousSecretExpiresAt ?? 0) > now
    ? [secret, previousSecret]
    : [secret];
}
