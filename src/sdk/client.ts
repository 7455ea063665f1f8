import {
  type CallOptions,
  createRequest,
  type FetchLike,
  isHeaderValue,
  type RawBody,
} from "./request";
import { type DeadLetters, deadLettersResource } from "./resources/dead-letters";
import { type Filters, filtersResource } from "./resources/filters";
import { type Messages, messagesResource } from "./resources/messages";
import { type PublishOptions, publishCalls, type RawPublishOptions } from "./resources/publish";
import { type Subscribers, subscribersResource } from "./resources/subscribers";
import { type Topics, topicsResource } from "./resources/topics";
import type { BatchEnvelope, Envelope, PublishBatchResult, PublishResult } from "./types";

/** How a {@link Switchboard} client reaches the broker. */
export interface SwitchboardOptions {
  /** The broker's origin (and path prefix, if any), e.g. `https://switchboard.example.com`. */
  baseUrl: string;
  /**
   * `ADMIN_TOKEN` for everything, or `PUBLISH_TOKEN` for publishing and `messages.get`. An empty
   * token, or one no header can carry (not Latin-1, or with CR, LF or NUL), throws a TypeError.
   */
  token: string;
  /** Replaces the global `fetch`, e.g. with a service binding's in another Worker. */
  fetch?: FetchLike | undefined;
  /** How long each attempt may take, body included, before it fails with `timeout`. Default 30 000. */
  timeoutMs?: number | undefined;
  /**
   * How many times a failed call is tried again (default 3), after an exponential backoff with
   * jitter, or after `Retry-After` when the broker sends one (up to 60 s). Retried: 429 and 503
   * (except `not_configured`) always; network errors, timeouts and other 5xx only for calls that
   * are safe to repeat (reads, updates, deletes, publishes, filter tests), not for creates, secret
   * rotation or replays. Answers such as 400, 404 or 409 are never retried.
   */
  retries?: number | undefined;
}

const DEFAULT_TIMEOUT_MS = 30_000;
const DEFAULT_RETRIES = 3;

/**
 * A client for one Switchboard broker. Resources are namespaces (`sb.topics`, `sb.subscribers`,
 * `sb.messages`, `sb.deadLetters`, `sb.filters`); every call rejects with a `SwitchboardError`,
 * arguments that cannot make a request included (`invalid_request`, never retried). The
 * constructor throws a TypeError on a configuration error: a relative `baseUrl`, an unusable
 * `token`.
 *
 * @example
 * const sb = new Switchboard({ baseUrl: "https://switchboard.example.com", token });
 * await sb.topics.create({ name: "orders.created" });
 * const { id } = await sb.publish("orders.created", { body: { orderId: 42 } });
 */
export class Switchboard {
  /** Create, list, read, change and delete topics. */
  readonly topics: Topics;
  /** Add, list, read, change and remove a topic's subscribers, and rotate their secrets. */
  readonly subscribers: Subscribers;
  /** The fan-out and delivery state of a published message. */
  readonly messages: Messages;
  /** List, replay and delete deliveries that ran out of attempts. */
  readonly deadLetters: DeadLetters;
  /** Try a filter against a message. */
  readonly filters: Filters;
  readonly #publish: ReturnType<typeof publishCalls>;

  constructor(options: SwitchboardOptions) {
    assertAbsoluteUrl(options.baseUrl);
    assertSendableToken(options.token);
    const request = createRequest({
      baseUrl: options.baseUrl,
      token: options.token,
      fetch: options.fetch ?? ((input, init) => fetch(input, init)),
      timeoutMs: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      retries: options.retries ?? DEFAULT_RETRIES,
    });
    this.topics = topicsResource(request);
    this.subscribers = subscribersResource(request);
    this.messages = messagesResource(request);
    this.deadLetters = deadLettersResource(request);
    this.filters = filtersResource(request);
    this.#publish = publishCalls(request);
  }

  /**
   * Publishes one message. Every publish carries an `Idempotency-Key` (yours, or a fresh one per
   * call), so retries never publish twice; `duplicate` is true when the key was seen before.
   *
   * @example
   * await sb.publish("orders.created", {
   *   body: { orderId: 42, total: 99.5 },
   *   headers: { "x-tenant": "acme" },
   *   pathParams: { orderId: "42" },
   * }, { idempotencyKey: "order-42" });
   */
  publish(topic: string, envelope: Envelope, options?: PublishOptions): Promise<PublishResult> {
    return this.#publish.publish(topic, envelope, options);
  }

  /**
   * Publishes 1–100 messages in one call; answers their ids in order. Envelopes without an
   * `idempotencyKey` get a fresh one each, so retries never publish twice.
   *
   * @example
   * const { messages } = await sb.publishBatch("orders.created", [
   *   { body: { orderId: 1 } },
   *   { body: { orderId: 2 }, idempotencyKey: "order-2" },
   * ]);
   */
  publishBatch(
    topic: string,
    envelopes: readonly BatchEnvelope[],
    options?: CallOptions,
  ): Promise<PublishBatchResult> {
    return this.#publish.publishBatch(topic, envelopes, options);
  }

  /**
   * Publishes `body` byte for byte as the message, with its content type, query and headers.
   * Use the envelope (`publish`) for a method, path params or a delay.
   *
   * @example
   * await sb.publishRaw("invoices", pdfBytes, {
   *   contentType: "application/pdf",
   *   query: { customer: "acme" },
   *   forwardHeaders: { "x-invoice": "2026-0042" },
   * });
   */
  publishRaw(topic: string, body: RawBody, options?: RawPublishOptions): Promise<PublishResult> {
    return this.#publish.publishRaw(topic, body, options);
  }
}

/** A token that no header can carry would fail every call alike; it is refused at once instead. */
function assertSendableToken(token: string): void {
  if (!token) throw new TypeError("token is required");
  // The token stays out of the message: errors end up in logs.
  if (!isHeaderValue(token)) {
    throw new TypeError("token must be Latin-1 text without CR, LF or NUL, to fit in a header");
  }
}

function assertAbsoluteUrl(baseUrl: string): void {
  try {
    new URL(baseUrl);
  } catch {
    throw new TypeError(`baseUrl must be an absolute URL, got ${JSON.stringify(baseUrl)}`);
  }
}
