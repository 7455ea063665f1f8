import { z } from "@hono/zod-openapi";
import { Description, NextCursor, Timestamp, TopicName } from "./common";

export const TopicInput = z
  .strictObject({
    name: TopicName,
    description: Description.optional(),
  })
  .openapi("TopicInput");

export const Topic = z
  .object({
    name: TopicName,
    description: Description,
    subscriberCount: z.number().int(),
    createdAt: Timestamp,
  })
  .openapi("Topic");

export const TopicList = z
  .object({ topics: z.array(Topic), nextCursor: NextCursor })
  .openapi("TopicList");

/** A name in a path is looked up, not validated: a name that cannot exist is simply not found. */
export const TopicParams = z.object({
  topic: z.string().openapi({ param: { name: "topic", in: "path" }, example: "orders.created" }),
});

export type TopicInput = z.infer<typeof TopicInput>;
export type Topic = z.infer<typeof Topic>;
export type TopicList = z.infer<typeof TopicList>;
