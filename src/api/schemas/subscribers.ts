import { z } from "@hono/zod-openapi";
import { Description, HeaderMap, HttpMethod, NextCursor, QueryMap, Timestamp } from "./common";

export const RETRY_DEFAULTS = { maxAttempts: 15, baseDelaySeconds: 5, maxDelaySeconds: 43200 };
export const TIMEOUT_DEFAULT_MS = 15000;

const Url = z
  .string()
  .min(1)
  .max(2048)
  .openapi({ example: "https://api.example.com/orders/:orderId" });
const Filter = z
  .string()
  .nullable()
  .openapi({ example: 'body.category == "food" and headers.mode == "quiet"' });
const TimeoutMs = z.number().int().min(1000).max(30000);
const MaxAttempts = z.number().int().min(1).max(100);
const BaseDelaySeconds = z.number().int().min(0).max(3600);
const MaxDelaySeconds = z.number().int().min(0).max(43200);

/** Retry settings as a client sends them: any subset, the rest defaulted (or kept, on update). */
export const RetryInput = z
  .strictObject({
    maxAttempts: MaxAttempts.optional(),
    baseDelaySeconds: BaseDelaySeconds.optional(),
    maxDelaySeconds: MaxDelaySeconds.optional(),
  })
  .openapi("RetryInput");

export const Retry = z
  .object({
    maxAttempts: MaxAttempts,
    baseDelaySeconds: BaseDelaySeconds,
    maxDelaySeconds: MaxDelaySeconds,
  })
  .openapi("Retry");

const inputFields = {
  url: Url,
  filter: Filter.optional(),
  method: HttpMethod.optional(),
  headers: HeaderMap.optional(),
  query: QueryMap.optional(),
  timeoutMs: TimeoutMs.optional(),
  retry: RetryInput.optional(),
  active: z.boolean().optional(),
  description: Description.optional(),
};

export const SubscriberInput = z.strictObject(inputFields).openapi("SubscriberInput");

/** PATCH body: any subset of the input; `retry` fields merge with the current ones. */
export const SubscriberPatch = z
  .strictObject({ ...inputFields, url: Url.optional() })
  .openapi("SubscriberPatch");

export const Subscriber = z
  .object({
    id: z.string().openapi({ example: "sub_01JDQ3Y5N6M7P8Q9R0S1T2V3W4" }),
    topic: z.string(),
    url: z.string(),
    filter: z.string().nullable(),
    method: HttpMethod,
    headers: z.record(z.string(), z.string()),
    query: z.record(z.string(), z.union([z.string(), z.array(z.string())])),
    timeoutMs: z.number().int(),
    retry: Retry,
    active: z.boolean(),
    description: Description,
    createdAt: Timestamp,
    updatedAt: Timestamp,
  })
  .openapi("Subscriber");

/** Only creation and rotation show the signing secret. */
export const SubscriberWithSecret = Subscriber.extend({
  secret: z.string().openapi({ example: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" }),
}).openapi("SubscriberWithSecret");

export const SubscriberList = z
  .object({ subscribers: z.array(Subscriber), nextCursor: NextCursor })
  .openapi("SubscriberList");

export const SubscriberParams = z.object({
  id: z
    .string()
    .openapi({ param: { name: "id", in: "path" }, example: "sub_01JDQ3Y5N6M7P8Q9R0S1T2V3W4" }),
});

export const RotatedSecret = z.object({ secret: z.string() }).openapi("RotatedSecret");

export type SubscriberInput = z.infer<typeof SubscriberInput>;
export type SubscriberPatch = z.infer<typeof SubscriberPatch>;
export type Subscriber = z.infer<typeof Subscriber>;
export type SubscriberWithSecret = z.infer<typeof SubscriberWithSecret>;
export type SubscriberList = z.infer<typeof SubscriberList>;
