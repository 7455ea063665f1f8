/**
 * What travels through the queues, validated with zod when consumed. A message's content rides
 * inline when it is small; a large one is stored once in D1 and the task carries only a reference.
 */
import { z } from "zod";
import { chunk, packBySize } from "../db/chunk";
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
  /**
   * Set when the message has no row (its topic records failures only and its content travels
   * here): it is fanned out without a claim, and nothing is recorded of the fan-out.
   */
  unrecorded: z.boolean().optional(),
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
  /**
   * When the delivery was opened (fanned out, or replayed): a subscriber deactivated at or after
   * this time cancels it. Absent from tasks of earlier versions, which fall back to what storage
   * says of the delivery, else the message's publication time.
   */
  openedAt: z.number().optional(),
  /**
   * The attempt its first consumption makes, for a delivery re-queued from a bundle after a failed
   * attempt; absent, the first. Each further consumption of the same queue message is one more.
   */
  attempt: z.number().int().min(1).optional(),
});
export type DeliveryTask = z.infer<typeof DeliveryTaskSchema>;

/**
 * The first attempts of several deliveries in one queue message, which costs the queue operations
 * of one: every message in it to every subscriber in it. A publish bundles a batch's messages for
 * its subscribers, a fan-out a message's subscribers. Each delivery that must be tried again goes
 * back on the queue as a `DeliveryTask` of its own, carrying its attempt.
 */
export const DeliveryBundleSchema = z.object({
  kind: z.literal("bundle"),
  topic: z.string(),
  /** When the deliveries were opened (see `DeliveryTask.openedAt`). */
  openedAt: z.number(),
  messages: z
    .array(z.object({ messageId: z.string(), publishedAt: z.number(), content: Content }))
    .min(1),
  subscriberIds: z.array(z.string()).min(1),
});
export type DeliveryBundle = z.infer<typeof DeliveryBundleSchema>;

/** What the delivery queue carries: one delivery, or a bundle of first attempts. */
export const DeliveryWorkSchema = z.union([DeliveryTaskSchema, DeliveryBundleSchema]);
export type DeliveryWork = DeliveryTask | DeliveryBundle;

/** Deliveries one bundle carries at most: a consumer batch of bundles stays a bounded fan-out. */
export const BUNDLE_MAX_DELIVERIES = 10;
/**
 * A bundle's size at most, as `taskSize` counts it: within one 64 KB unit of the queue's billing,
 * so that a bundle costs the operations of one small message. A message whose content alone is
 * larger travels in a bundle of its own.
 */
export const BUNDLE_MAX_BYTES = 63 * 1024;

/** The deliveries of a bundle, each as the task it would be on its own. */
export function unbundle(bundle: DeliveryBundle): DeliveryTask[] {
  return bundle.messages.flatMap((message) =>
    bundle.subscriberIds.map((subscriberId) => ({
      messageId: message.messageId,
      subscriberId,
      topic: bundle.topic,
      publishedAt: message.publishedAt,
      content: message.content,
      openedAt: bundle.openedAt,
    })),
  );
}

/**
 * Bundles `messages` for `subscriberIds`: as many messages per bundle as keep it within
 * {@link BUNDLE_MAX_DELIVERIES} and {@link BUNDLE_MAX_BYTES}, and the subscribers split when even
 * one message has more of them than a bundle carries. `bytesOf` is a message's share of the size.
 */
export function bundle(
  topic: string,
  openedAt: number,
  messages: readonly DeliveryBundle["messages"][number][],
  subscriberIds: readonly string[],
  bytesOf: (message: DeliveryBundle["messages"][number]) => number,
): DeliveryBundle[] {
  const bundles: DeliveryBundle[] = [];
  const perBundle = Math.max(1, Math.floor(BUNDLE_MAX_DELIVERIES / subscriberIds.length));
  const subscriberChunks = chunk(subscriberIds, BUNDLE_MAX_DELIVERIES);
  const fixed = taskSize({ kind: "bundle", topic, openedAt, messages: [], subscriberIds: [] });
  for (const subscribers of subscriberChunks) {
    const base = fixed + subscribers.reduce((sum, id) => sum + id.length + 3, 0);
    for (const part of packBySize(messages, bytesOf, BUNDLE_MAX_BYTES - base, perBundle)) {
      bundles.push({ kind: "bundle", topic, openedAt, messages: part, subscriberIds: subscribers });
    }
  }
  return bundles;
}

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
  /** Set on a topic that records failures only: the topic whose per-minute counts it goes in. */
  countIn: z.string().optional(),
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
  /** The message's topic (absent from records of earlier versions). */
  topic: z.string().optional(),
  /** As in `DeadRecord`. */
  countIn: z.string().optional(),
  /** A delivered first attempt on a topic that records failures only: counted, not written. */
  unrecorded: z.boolean().optional(),
});
export type SettledRecord = z.infer<typeof SettledRecordSchema>;
