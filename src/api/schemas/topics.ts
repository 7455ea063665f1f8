import { z } from "@hono/zod-openapi";
import { RECORDING_MODES } from "../../db/schema";
import { Description, NextCursor, Timestamp, TopicName } from "./common";

/** What a topic created without `recording` records. */
export const RECORDING_DEFAULT: RecordingMode = "full";

/** What the broker keeps of a topic's messages: what can be read back against what it costs. */
export const RecordingMode = z.enum(RECORDING_MODES).openapi("RecordingMode", {
  description:
    'What the broker records of the topic\'s messages. "full" (the default): every message and ' +
    "delivery can be read back with GET /v1/messages/{id}. " +
    '"failures": only deliveries that needed a retry and dead letters are recorded, with ' +
    "per-minute counts, so a message delivered at its first attempt leaves no record " +
    "(GET /v1/messages/{id} answers 404). A change applies to messages published after it.",
  example: "full",
});

export const TopicInput = z
  .strictObject({
    name: TopicName,
    description: Description.optional(),
    recording: RecordingMode.optional(),
  })
  .openapi("TopicInput");

/** PATCH body: any subset of the settings; `description: null` clears it, `{}` changes nothing. */
export const TopicPatch = z
  .strictObject({
    description: Description.optional(),
    recording: RecordingMode.optional(),
  })
  .openapi("TopicPatch", {
    description: "Any subset of the settings: `description` (null clears it) and `recording`.",
  });

export const Topic = z
  .object({
    name: TopicName,
    description: Description,
    recording: RecordingMode,
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

export type RecordingMode = z.infer<typeof RecordingMode>;
export type TopicInput = z.infer<typeof TopicInput>;
export type TopicPatch = z.infer<typeof TopicPatch>;
export type Topic = z.infer<typeof Topic>;
export type TopicList = z.infer<typeof TopicList>;
