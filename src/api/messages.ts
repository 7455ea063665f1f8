/**
 * Publishing (envelope, batch, raw) and message status. These are the routes the publish token
 * opens, besides the admin token.
 */
import { createRoute, z } from "@hono/zod-openapi";
import { findMessageStatus } from "../db/messages";
import type { DeliveryRow } from "../db/schema";
import { headerNameProblem, headerValueProblem } from "../http/headers";
import { BYTES_CONTENT_TYPE, bytesToBase64 } from "../publish/body";
import {
  MAX_MESSAGE_BODY_BYTES,
  type PreparedMessage,
  prepareEnvelope,
  prepareRaw,
} from "../publish/prepare";
import { type PublishBindings, publishMessages } from "../publish/publish";
import { requireAccess } from "./auth";
import { type AppContext, createRouter } from "./context";
import { jsonBody } from "./json-body";
import { ApiError, validationError } from "./problem";
import { commonErrors, conflictError, json, publisherSecurity, rateLimited } from "./responses";
import { Envelope, IdempotencyKey, PublishBatch } from "./schemas/envelope";
import {
  type Delivery,
  MessageParams,
  MessageStatus,
  PublishBatchResult,
  PublishResult,
} from "./schemas/messages";
import { TopicParams } from "./schemas/topics";

/** An envelope carries its body as JSON (base64 grows bytes by 4/3), plus headers and query. */
const MAX_ENVELOPE_BYTES = 2 * 1024 * 1024;
const MAX_BATCH_BYTES = 8 * 1024 * 1024;

const publisher = requireAccess("publisher");
const tags = ["Publishing"];
/** What every publish route can answer: 202 with `result`, or the publish problems. */
const publishResponses = <T extends z.ZodType>(result: T) => ({
  202: { description: "Durably queued", ...json(result) },
  ...commonErrors,
  ...conflictError,
  ...rateLimited,
});
const IdempotencyHeaders = z.object({
  "idempotency-key": IdempotencyKey.optional().openapi({
    description: "Same key and topic within 24 h: the first message's id, nothing published again",
  }),
});

export const messagesApi = createRouter()
  .openapi(
    createRoute({
      method: "post",
      path: "/topics/{topic}/messages",
      tags,
      summary: "Publish a message to a topic",
      security: publisherSecurity,
      middleware: [publisher, jsonBody({ maxBytes: MAX_ENVELOPE_BYTES })] as const,
      request: {
        params: TopicParams,
        headers: IdempotencyHeaders,
        body: { ...json(Envelope), required: true },
      },
      responses: publishResponses(PublishResult),
    }),
    async (c) => {
      const { topic } = c.req.valid("param");
      const key = c.req.valid("header")["idempotency-key"];
      const message = await prepareEnvelope(topic, c.req.valid("json"), key, Date.now());
      return c.json(await publishOne(c, topic, message), 202);
    },
  )
  .openapi(
    createRoute({
      method: "post",
      path: "/topics/{topic}/messages/batch",
      tags,
      summary: "Publish 1–100 messages to a topic in one call",
      security: publisherSecurity,
      middleware: [publisher, jsonBody({ maxBytes: MAX_BATCH_BYTES })] as const,
      request: { params: TopicParams, body: { ...json(PublishBatch), required: true } },
      responses: publishResponses(PublishBatchResult),
    }),
    async (c) => {
      const { topic } = c.req.valid("param");
      const publishedAt = Date.now();
      const prepared = await Promise.all(
        c.req
          .valid("json")
          .messages.map(({ idempotencyKey, ...envelope }) =>
            prepareEnvelope(topic, envelope, idempotencyKey, publishedAt),
          ),
      );
      const outcomes = await publishMessages(publishBindings(c), topic, prepared);
      return c.json({ messages: outcomes }, 202);
    },
  )
  .openapi(
    createRoute({
      method: "post",
      path: "/topics/{topic}/messages/raw",
      tags,
      summary: "Publish the request body, byte for byte, as the message",
      description:
        "The request's Content-Type is the message's; its query string becomes the message query; " +
        "each `Forward-<Name>` header becomes header `<name>`.",
      security: publisherSecurity,
      middleware: [publisher] as const,
      request: { params: TopicParams, headers: IdempotencyHeaders },
      responses: publishResponses(PublishResult),
    }),
    async (c) => {
      const { topic } = c.req.valid("param");
      const key = c.req.valid("header")["idempotency-key"];
      const bytes = await readRawBody(c);
      const message = await prepareRaw(
        topic,
        {
          body: {
            kind: "bytes",
            base64: bytesToBase64(bytes),
            contentType: c.req.header("content-type") ?? BYTES_CONTENT_TYPE,
          },
          headers: forwardedHeaders(c.req.raw.headers),
          query: singleOrRepeated(c.req.queries()),
          pathParams: {},
          method: null,
        },
        key,
        Date.now(),
      );
      return c.json(await publishOne(c, topic, message), 202);
    },
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/messages/{id}",
      tags: ["Messages"],
      summary: "A message's fan-out and the state of each delivery",
      security: publisherSecurity,
      middleware: [publisher] as const,
      request: { params: MessageParams },
      responses: {
        200: { description: "The message status", ...json(MessageStatus) },
        ...commonErrors,
      },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const found = await findMessageStatus(c.env.DB, id);
      if (!found) {
        throw new ApiError(
          "not_found",
          `Message ${id} left no record: it does not exist, has expired, or was delivered at its first attempt on a topic that records failures only`,
        );
      }
      const { message, deliveries } = found;
      return c.json(
        {
          id: message.id,
          topic: message.topic,
          publishedAt: iso(message.publishedAt),
          state: message.state,
          matched: message.matched,
          filtered: message.filtered,
          deliveries: deliveries.map(deliveryView),
        },
        200,
      );
    },
  );

function publishBindings(c: AppContext): PublishBindings {
  return {
    d1: c.env.DB,
    fanoutQueue: c.env.FANOUT_QUEUE,
    deliveryQueue: c.env.DELIVERY_QUEUE,
    inlineMaxSubscribers: c.get("config").inlineFanoutMaxSubscribers,
  };
}

/** Publishes one message and shapes the single-message answer. */
async function publishOne(
  c: AppContext,
  topic: string,
  message: PreparedMessage,
): Promise<PublishResult> {
  const [outcome] = await publishMessages(publishBindings(c), topic, [message]);
  return { id: outcome?.id ?? message.id, topic, duplicate: outcome?.duplicate ?? false };
}

function deliveryView(row: DeliveryRow): Delivery {
  return {
    subscriberId: row.subscriberId,
    state: row.state,
    attempts: row.attempts,
    lastStatus: row.lastStatus,
    lastError: row.lastError,
    lastAttemptAt: row.lastAttemptAt === null ? null : iso(row.lastAttemptAt),
    nextAttemptAt: row.nextAttemptAt === null ? null : iso(row.nextAttemptAt),
  };
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

async function readRawBody(c: AppContext): Promise<Uint8Array> {
  const declared = Number(c.req.header("content-length") ?? Number.NaN);
  if (declared > MAX_MESSAGE_BODY_BYTES) throw rawTooLarge(declared);
  const bytes = new Uint8Array(await c.req.arrayBuffer());
  if (bytes.byteLength > MAX_MESSAGE_BODY_BYTES) throw rawTooLarge(bytes.byteLength);
  return bytes;
}

function rawTooLarge(size: number): ApiError {
  return new ApiError(
    "payload_too_large",
    `The message body is ${size} bytes; the limit is ${MAX_MESSAGE_BODY_BYTES} bytes`,
  );
}

/** `Forward-<Name>: v` becomes header `<name>: v`, under the same rules as envelope headers. */
function forwardedHeaders(headers: Headers): Record<string, string> {
  const forwarded: Record<string, string> = {};
  const errors: { path: string; message: string }[] = [];
  headers.forEach((value, name) => {
    if (!name.startsWith("forward-")) return;
    const target = name.slice("forward-".length);
    const problem = headerNameProblem(target) ?? headerValueProblem(value);
    if (problem) errors.push({ path: `headers.${target}`, message: problem });
    else forwarded[target] = value;
  });
  if (errors.length > 0) throw validationError(errors);
  return forwarded;
}

/** `?a=1&b=2&b=3` → `{ a: "1", b: ["2", "3"] }`. */
function singleOrRepeated(queries: Record<string, string[]>): Record<string, string | string[]> {
  return Object.fromEntries(
    Object.entries(queries).map(([name, values]) => [
      name,
      values.length === 1 ? (values[0] ?? "") : values,
    ]),
  );
}
