import { z } from "@hono/zod-openapi";
import { DELIVERY_STATES, MESSAGE_STATES } from "../../db/schema";
import { Timestamp } from "./common";

export const PublishResult = z
  .object({
    id: z.string().openapi({ example: "msg_01JDQ3Y5N6M7P8Q9R0S1T2V3W4" }),
    topic: z.string(),
    duplicate: z.boolean(),
  })
  .openapi("PublishResult");

export const PublishBatchResult = z
  .object({ messages: z.array(z.object({ id: z.string(), duplicate: z.boolean() })) })
  .openapi("PublishBatchResult");

export const Delivery = z
  .object({
    subscriberId: z.string(),
    state: z.enum(DELIVERY_STATES),
    attempts: z.number().int(),
    lastStatus: z.number().int().nullable(),
    lastError: z.string().nullable(),
    lastAttemptAt: Timestamp.nullable(),
    nextAttemptAt: Timestamp.nullable(),
  })
  .openapi("Delivery");

export const MessageStatus = z
  .object({
    id: z.string(),
    topic: z.string(),
    publishedAt: Timestamp,
    state: z.enum(MESSAGE_STATES),
    matched: z.number().int().nullable().openapi({ description: "null until fanned out" }),
    filtered: z.number().int().nullable().openapi({ description: "null until fanned out" }),
    deliveries: z.array(Delivery),
  })
  .openapi("MessageStatus");

export const MessageParams = z.object({
  id: z.string().openapi({ param: { name: "id", in: "path" } }),
});

export type PublishResult = z.infer<typeof PublishResult>;
export type PublishBatchResult = z.infer<typeof PublishBatchResult>;
export type Delivery = z.infer<typeof Delivery>;
export type MessageStatus = z.infer<typeof MessageStatus>;
