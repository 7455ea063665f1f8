import { newIdempotencyKey } from "../idempotency";
import type { CallOptions, RawBody, SendRequest } from "../request";
import type { BatchEnvelope, Envelope, PublishBatchResult, PublishResult } from "../types";
import { topicPath } from "./topics";

/** Options of `publish`. */
export interface PublishOptions extends CallOptions {
  /**
   * The same key on the same topic within 24 hours publishes nothing and answers the first
   * message's id with `duplicate: true`. When absent the SDK makes one per call, so that its own
   * retries never publish twice.
   */
  idempotencyKey?: string | undefined;
}

/** Options of `publishRaw`. */
export interface RawPublishOptions extends PublishOptions {
  /**
   * The message's content type. Defaults to the Blob's type, else `text/plain; charset=utf-8`
   * for a string and `application/octet-stream` for bytes.
   */
  contentType?: string | undefined;
  /** The message's query parameters; an array repeats the parameter. */
  query?: Envelope["query"];
  /** Headers delivered with the message (sent to the broker as `Forward-<name>`). */
  forwardHeaders?: Record<string, string> | undefined;
}

/** The publish calls; the client exposes them as `sb.publish`, `sb.publishBatch`, `sb.publishRaw`. */
export function publishCalls(request: SendRequest) {
  return {
    publish(
      topic: string,
      envelope: Envelope,
      options: PublishOptions = {},
    ): Promise<PublishResult> {
      return request({
        method: "POST",
        path: `${topicPath(topic)}/messages`,
        json: envelope,
        headers: { "idempotency-key": options.idempotencyKey ?? newIdempotencyKey() },
        idempotent: true,
        options,
      });
    },

    publishBatch(
      topic: string,
      envelopes: readonly BatchEnvelope[],
      options?: CallOptions,
    ): Promise<PublishBatchResult> {
      const messages = envelopes.map((envelope) => ({
        ...envelope,
        idempotencyKey: envelope.idempotencyKey ?? newIdempotencyKey(),
      }));
      return request({
        method: "POST",
        path: `${topicPath(topic)}/messages/batch`,
        json: { messages },
        idempotent: true,
        options,
      });
    },

    publishRaw(
      topic: string,
      body: RawBody,
      options: RawPublishOptions = {},
    ): Promise<PublishResult> {
      const headers: Record<string, string> = {
        "idempotency-key": options.idempotencyKey ?? newIdempotencyKey(),
      };
      for (const [name, value] of Object.entries(options.forwardHeaders ?? {})) {
        headers[`forward-${name}`] = value;
      }
      return request({
        method: "POST",
        path: `${topicPath(topic)}/messages/raw`,
        raw: { body, contentType: options.contentType ?? defaultContentType(body) },
        query: options.query,
        headers,
        idempotent: true,
        options,
      });
    },
  };
}

function defaultContentType(body: RawBody): string {
  if (typeof body === "string") return "text/plain; charset=utf-8";
  if (typeof Blob !== "undefined" && body instanceof Blob && body.type !== "") return body.type;
  return "application/octet-stream";
}
