/**
 * What travels through the queues, validated with zod when consumed. A message's content rides
 * inline when it is small; a large one is stored once in D1 and the task carries only a reference.
 */
import { z } from "zod";
import { packBySize } from "../db/chunk";
import { HTTP_METHODS } from "../db/schema";

const StringMap = z.record(z.string(), z.string());

export const MessageBodySchema = z.discriminatedUnion("kind", [
  z.object({ kind: z.literal("none") }),
  z.object({ kind: z.literal("json"), value: z.unknown(), contentType: z.string() }),
  z.object({ kind: z.literal("text"), text: z.string(), contentType: z.string() }),
  z.object({ kind: z.literal("bytes"), base64: z.string(), contentType: z.string() }),
]);

/** Everything about a message that shapes the subscriber's request. */
export const MessageContentSchema = z.object({
  body: MessageBodySchema,
  headers: StringMap,
  query: z.record(z.string(), z.union([z.string(), z.array(z.string())])),
  pathParams: StringMap,
  method: z.enum(HTTP_METHODS).nullable(),
});
export type MessageContent = z.infer<typeof MessageContentSchema>;

/** Inline content, or `null` when it is stored in `messages.payload`. */
const Content = MessageContentSchema.nullable();

/** One published message, to be fanned out to its topic's subscribers. */
export const FanoutTaskSchema = z.object({
  messageId: z.string(),
  topic: z.string(),
  publishedAt: z.number(),
  content: Content,
  /** How often the dead-letter consumer has put this task back after its retries ran out. */
  redrives: z.number().int().optional(),
  /**
   * Set when a fan-out invocation claimed the message but left it to a later one, having used up
   * its budget of deliveries: the message is already claimed, and is fanned out without a claim.
   */
  deferred: z.boolean().optional(),
});
export type FanoutTask = z.infer<typeof FanoutTaskSchema>;

/** One message for one subscriber; its attempts are the queue message's attempts. */
export const DeliveryTaskSchema = z.object({
  messageId: z.string(),
  subscriberId: z.string(),
  topic: z.string(),
  publishedAt: z.number(),
  content: Content,
  /**
   * Set on a replay of a dead letter: only such a task may reopen a dead delivery, so a late
   * duplicate of the task that died cannot revive it or record it dead twice.
   */
  replay: z.boolean().optional(),
});
export type DeliveryTask = z.infer<typeof DeliveryTaskSchema>;

/** Content stored as JSON in D1 (`messages.payload`, `dead_letters.payload`), if it is valid. */
export function parseStoredContent(payload: string | null | undefined): MessageContent | undefined {
  if (!payload) return undefined;
  try {
    const parsed = MessageContentSchema.safeParse(JSON.parse(payload));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Queue messages are at most 128 KB with ~100 B of metadata; content up to this size (serialized)
 * travels inline, leaving room for the rest of the task.
 */
export const INLINE_CONTENT_MAX_BYTES = 96 * 1024;

/** A queue message is at most 128 KB, metadata included, as {@link taskSize} counts it. */
export const QUEUE_MESSAGE_MAX_BYTES = 128_000;

/** `sendBatch` takes at most 100 messages and 256 KB; these leave headroom for metadata. */
export const SEND_BATCH_MAX_MESSAGES = 100;
export const SEND_BATCH_MAX_BYTES = 240 * 1024;

/** The serialized size the queue will count for a task body. */
export function taskSize(task: unknown): number {
  return new TextEncoder().encode(JSON.stringify(task)).byteLength + 128;
}

/**
 * Splits tasks into `sendBatch` calls that respect the count and size limits, in order. `sizeOf`
 * lets a caller that knows the sizes (many tasks sharing one content) skip re-serializing.
 */
export function chunkForSendBatch<T>(
  tasks: readonly T[],
  sizeOf: (task: T) => number = taskSize,
): T[][] {
  return packBySize(tasks, sizeOf, SEND_BATCH_MAX_BYTES, SEND_BATCH_MAX_MESSAGES);
}

/**
 * A dead delivery that the delivery consumer could not record in D1, handed to the dead-letter
 * queue so that its consumer records it instead of it being lost.
 */
export const DeadRecordSchema = z.object({
  kind: z.literal("dead"),
  messageId: z.string(),
  subscriberId: z.string(),
  topic: z.string(),
  publishedAt: z.number(),
  attempts: z.number().int(),
  lastStatus: z.number().int().nullable(),
  lastError: z.string().nullable(),
  lastAttemptAt: z.number().nullable(),
  /**
   * The content if it travelled inline; null or absent when it is stored with the message. It
   * rides as an object, not as JSON text: escaping the text would make a record for content near
   * the inline limit larger than a queue message may be, whereas the object is the same size as in
   * the delivery task it came in.
   */
  content: MessageContentSchema.nullable().optional(),
  /** The content as JSON text, as records queued by earlier versions carry it. */
  payload: z.string().nullable().optional(),
  /** The subscriber answered 410 and is to be deactivated. */
  gone: z.boolean(),
  /**
   * The dead letter's id, chosen when the delivery died (absent from records of earlier versions).
   * The queue delivers at least once, and the write the delivery consumer saw fail may have
   * landed: recorded again under the same id, the record still leaves one dead letter.
   */
  deadLetterId: z.string().optional(),
});
export type DeadRecord = z.infer<typeof DeadRecordSchema>;

/**
 * A delivered or cancelled delivery that the delivery consumer could not record in D1, handed to
 * the dead-letter queue for its consumer to record, so that the message's status does not stay
 * pending after the subscriber got it (or went away).
 */
export const SettledRecordSchema = z.object({
  kind: z.literal("settled"),
  messageId: z.string(),
  subscriberId: z.string(),
  state: z.enum(["delivered", "cancelled"]),
  attempts: z.number().int(),
  lastStatus: z.number().int().nullable(),
  lastError: z.string().nullable(),
  lastAttemptAt: z.number().nullable(),
});
export type SettledRecord = z.infer<typeof SettledRecordSchema>;
