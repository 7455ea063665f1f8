/**
 * The Switchboard SDK: a client for the broker's HTTP API, and webhook verification for
 * subscribers. It needs nothing but the platform (fetch, Web Crypto, TextEncoder), so it runs
 * unchanged in Node 18+, browsers, Workers, Deno and Bun.
 *
 * @example
 * import { Switchboard } from "switchboard/sdk";
 * const sb = new Switchboard({ baseUrl: "https://switchboard.example.com", token });
 * await sb.publish("orders.created", { body: { orderId: 42 } });
 */
export { Switchboard, type SwitchboardOptions } from "./client";
export {
  type ClientErrorCode,
  SwitchboardError,
  type SwitchboardErrorCode,
  type SwitchboardErrorInit,
} from "./errors";
export { newIdempotencyKey } from "./idempotency";
export type { CallOptions, FetchLike, QueryParams, RawBody } from "./request";
export type { DeadLetters } from "./resources/dead-letters";
export type { Filters } from "./resources/filters";
export type { Messages } from "./resources/messages";
export type { PublishOptions, RawPublishOptions } from "./resources/publish";
export type { Subscribers } from "./resources/subscribers";
export type { Topics } from "./resources/topics";
export type * from "./types";
export {
  type VerifyWebhookOptions,
  verifyWebhook,
  type WebhookBody,
  type WebhookHeaders,
  WebhookVerificationError,
  type WebhookVerificationReason,
} from "./webhook";
