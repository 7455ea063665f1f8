import { z } from "@hono/zod-openapi";
import { NextCursor, PageQuery, Timestamp } from "./common";

export const DeadLetter = z
  .object({
    id: z.string().openapi({ example: "dlq_01JDQ3Y5N6M7P8Q9R0S1T2V3W4" }),
    messageId: z.string(),
    topic: z.string(),
    subscriberId: z.string(),
    attempts: z.number().int(),
    lastStatus: z.number().int().nullable(),
    lastError: z.string().nullable(),
    deadAt: Timestamp,
  })
  .openapi("DeadLetter");

export const DeadLetterList = z
  .object({ deadLetters: z.array(DeadLetter), nextCursor: NextCursor })
  .openapi("DeadLetterList");

export const DeadLetterQuery = PageQuery.extend({
  topic: z.string().max(256).optional(),
  subscriberId: z.string().max(256).optional(),
});

export const DeadLetterParams = z.object({
  id: z.string().openapi({ param: { name: "id", in: "path" } }),
});

export const ReplayFilter = z
  .strictObject({
    topic: z.string().max(256).optional(),
    subscriberId: z.string().max(256).optional(),
  })
  .openapi("ReplayFilter");

export const Replayed = z.object({ replayed: z.number().int() }).openapi("Replayed");

export type DeadLetter = z.infer<typeof DeadLetter>;
export type DeadLetterList = z.infer<typeof DeadLetterList>;
export type ReplayFilter = z.infer<typeof ReplayFilter>;
