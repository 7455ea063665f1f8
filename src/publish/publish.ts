/**
 * Publishing: record the messages (one D1 batch) and put them on the fan-out queue (one send, see
 * `send` for the exception), so that a publish costs the same whatever the number of subscribers. A publisher gets its answer
 * only once the message is durably queued; when storage or the queue fails, what was recorded is
 * taken back and the answer is 503 (or 429 when the queue refused for throughput).
 *
 * Inline fan-out: when a topic's active subscribers have no filter and are few (the configured
 * limit, and few enough that the call's deliveries fit in one `sendBatch`), the same D1 batch opens
 * the deliveries and the publish queues the delivery tasks itself, skipping the fan-out queue: one
 * queue hop less before delivery, and three queue operations less per message. Only messages
 * without a delay whose content travels inline qualify; the others go through the fan-out queue.
 */
import { ApiError } from "../api/problem";
import { forgetMessages, type MessageToRecord, recordMessages } from "../db/publish";
import { MAX_DELAY_SECONDS } from "../delivery/backoff";
import { logError } from "../log";
import {
  BUNDLE_MAX_DELIVERIES,
  bundle,
  chunkForSendBatch,
  type DeliveryBundle,
  type DeliveryWork,
  type FanoutTask,
  SEND_BATCH_MAX_BYTES,
  SEND_BATCH_MAX_MESSAGES,
  taskSize,
} from "../queues/tasks";
import { fitsInline, type PreparedMessage } from "./prepare";

export interface PublishOutcome {
  id: string;
  duplicate: boolean;
}

/** What publishing writes to and how far it fans out by itself. */
export interface PublishBindings {
  d1: D1Database;
  fanoutQueue: Queue<FanoutTask>;
  deliveryQueue: Queue<DeliveryWork>;
  /** The most active subscribers a topic may have for inline fan-out; 0 turns it off. */
  inlineMaxSubscribers: number;
}

/** A message as recorded, with the size of its fan-out task. */
type StorageForm = MessageToRecord & { taskBytes: number };

/** A fan-out task about to be sent, with the size the queue counts for it. */
interface QueuedTask {
  body: FanoutTask;
  delaySeconds: number;
  bytes: number;
}

/** A message fanned out at publish, with its share of a bundle's size. */
interface BundledMessage {
  message: DeliveryBundle["messages"][number];
  bytes: number;
}

/** A message's share of a bundle beside its content: its id, time and the JSON around them. */
const BUNDLED_MESSAGE_BYTES = 96;

/** What `"unrecorded":true,` adds to a fan-out task. */
const UNRECORDED_FLAG_BYTES = 18;

/** A subscriber id's share of a delivery task, beyond what the fan-out task already counts. */
const SUBSCRIBER_ID_BYTES = 64;

/** Publishes prepared messages of one topic, in order; throws the contract's problems. */
export async function publishMessages(
  bindings: PublishBindings,
  topic: string,
  prepared: readonly PreparedMessage[],
): Promise<PublishOutcome[]> {
  const { d1 } = bindings;
  const { unique, slots } = dedupeWithinRequest(prepared);
  const records = storageForm(unique);

  let result: Awaited<ReturnType<typeof recordMessages>>;
  const openedAt = Date.now();
  try {
    result = await recordMessages(
      d1,
      topic,
      records,
      openedAt,
      inlineMaxSubscribers(records, bindings.inlineMaxSubscribers),
    );
  } catch (error) {
    throw unavailable("storage", error);
  }
  if (result.recording === undefined) {
    throw new ApiError("not_found", `Topic ${topic} does not exist`);
  }
  const lean = result.recording === "failures";

  const now = Date.now();
  const outcomes: PublishOutcome[] = [];
  const fresh: number[] = [];
  const tasks: QueuedTask[] = [];
  const inlineMessages: BundledMessage[] = [];
  const isFresh = (index: number) => {
    const owner = result.owners[index];
    return owner === undefined || owner.messageId === unique[index]?.id;
  };
  // A topic that records failures only has no row to take back a message whose send failed:
  // its call fans out inline only if every fresh message can, so that it is one send.
  const inlineTo =
    lean && !records.every((record, index) => !isFresh(index) || record.inlineCandidate)
      ? undefined
      : result.inlineSubscriberIds;
  unique.forEach((message, index) => {
    const owner = result.owners[index];
    const record = records[index];
    if (owner === undefined || owner.messageId === message.id) {
      outcomes.push({ id: message.id, duplicate: false });
      fresh.push(index);
      if (inlineTo && record?.inlineCandidate) {
        inlineMessages.push({
          message: {
            messageId: message.id,
            publishedAt: Math.max(message.publishedAt, result.topicCreatedAt),
            content: message.content,
          },
          bytes: message.contentBytes + BUNDLED_MESSAGE_BYTES,
        });
      } else if (record) {
        const content = record.storedPayload === null ? message.content : null;
        // As recorded, a message is never published before its topic was created (the clock that
        // created the topic may be ahead of this one): the fan-out compares the two.
        const body: FanoutTask = {
          messageId: message.id,
          topic,
          publishedAt: Math.max(message.publishedAt, result.topicCreatedAt),
          content,
          ...(lean ? { unrecorded: true } : {}),
        };
        const bytes = record.taskBytes + (lean ? UNRECORDED_FLAG_BYTES : 0);
        tasks.push({ body, delaySeconds: message.delaySeconds, bytes });
      }
    } else if (owner.payloadHash === message.payloadHash && owner.state === null) {
      outcomes.push({ id: owner.messageId, duplicate: true });
      // A topic that records failures only keeps no state that says whether the first message went
      // out (its send may have failed in a way that could not be taken back): it is queued again
      // under its own id, so that it is never lost, and may reach a subscriber twice.
      const publishedAt = owner.publishedAt ?? message.publishedAt;
      const body: FanoutTask = {
        messageId: owner.messageId,
        topic,
        publishedAt,
        content: owner.contentStored ? null : message.content,
        unrecorded: true,
      };
      const remaining = Math.ceil((publishedAt + message.delaySeconds * 1000 - now) / 1000);
      tasks.push({
        body,
        delaySeconds: Math.min(Math.max(remaining, 0), MAX_DELAY_SECONDS),
        bytes: taskSize(body),
      });
    } else if (owner.payloadHash === message.payloadHash) {
      outcomes.push({ id: owner.messageId, duplicate: true });
      // Not fanned out yet: perhaps never queued (its send failed and could not be taken back).
      // Queue it again under its own id rather than answer for a message that may be lost; the
      // fan-out consumer claims each message once, so a second task changes nothing. One fanned
      // out inline is queued only until its tasks were sent, or, if marking it then failed,
      // until its first outcome: the claim lets this task fan it out once more, a delivery
      // already made is skipped, one still in flight may repeat. Whether the task carries the
      // content follows how the owner was stored, not how this request would have stored it.
      if (owner.state === "queued" && owner.publishedAt !== null) {
        const remaining = Math.ceil(((owner.availableAt ?? owner.publishedAt) - now) / 1000);
        const body: FanoutTask = {
          messageId: owner.messageId,
          topic,
          publishedAt: owner.publishedAt,
          content: owner.contentStored ? null : message.content,
        };
        tasks.push({
          body,
          delaySeconds: Math.min(Math.max(remaining, 0), MAX_DELAY_SECONDS),
          bytes: taskSize(body),
        });
      }
    }
  });
  const freshRecords = fresh.map((index) => records[index] as MessageToRecord);
  const bytesByMessage = new Map(inlineMessages.map((item) => [item.message, item.bytes]));

  if (outcomes.length < unique.length) {
    await forgetQuietly(d1, topic, freshRecords, openedAt);
    throw new ApiError(
      "conflict",
      "The idempotency key was already used for a different message on this topic",
    );
  }

  // The fan-out tasks first: if the deliveries' send then fails, what is taken back includes the
  // fresh messages those tasks name, and the fan-out drops a task whose message is gone. The
  // reverse would leave delivery tasks, which carry their content, for a refused publish.
  try {
    await send(bindings.fanoutQueue, tasks);
    // A topic without active subscribers has nothing to queue: its messages are dispatched.
    if (inlineTo && inlineTo.length > 0 && inlineMessages.length > 0) {
      const bundles = bundle(
        topic,
        openedAt,
        inlineMessages.map((item) => item.message),
        inlineTo,
        (message) => bytesByMessage.get(message) ?? 0,
      );
      await bindings.deliveryQueue.sendBatch(bundles.map((body) => ({ body })));
    }
  } catch (error) {
    await forgetQuietly(d1, topic, freshRecords, openedAt);
    throw queueFailure(error);
  }
  return slots.map(({ unique: index, repeat }) => {
    const outcome = outcomes[index] as PublishOutcome;
    return repeat ? { id: outcome.id, duplicate: true } : outcome;
  });
}

/**
 * Two messages of one request with the same key: the later is a duplicate of the earlier if the
 * payload is the same, and a conflict otherwise.
 */
function dedupeWithinRequest(prepared: readonly PreparedMessage[]) {
  const firstByKey = new Map<string, number>();
  const unique: PreparedMessage[] = [];
  const slots = prepared.map((message, index) => {
    const key = message.idempotencyKey;
    const first = key === undefined ? undefined : firstByKey.get(key);
    if (first === undefined) {
      if (key !== undefined) firstByKey.set(key, unique.length);
      unique.push(message);
      return { unique: unique.length - 1, repeat: false };
    }
    if ((unique[first] as PreparedMessage).payloadHash !== message.payloadHash) {
      throw new ApiError(
        "conflict",
        `messages.${index}: idempotency key ${key} is used twice with different payloads`,
      );
    }
    return { unique: first, repeat: true };
  });
  return { unique, slots };
}

/**
 * Small messages ride inside queue messages; a large one, or one that would push a `sendBatch`
 * over its size limit, is stored in D1 and travels by reference. Every message's task goes in the
 * same `sendBatch`, so each first reserves its size by reference (a long topic name makes a
 * hundred of them weigh tens of KB), and content rides inline only in what is left.
 */
function storageForm(messages: readonly PreparedMessage[]): StorageForm[] {
  const referenceBytes = messages.map((message) =>
    taskSize({
      messageId: message.id,
      topic: message.topic,
      publishedAt: message.publishedAt,
      content: null,
    }),
  );
  let budget = SEND_BATCH_MAX_BYTES - referenceBytes.reduce((sum, bytes) => sum + bytes, 0);
  return messages.map((message, index) => {
    const inline = fitsInline(message) && message.contentBytes <= budget;
    if (inline) budget -= message.contentBytes;
    return {
      id: message.id,
      topic: message.topic,
      publishedAt: message.publishedAt,
      availableAt: message.publishedAt + message.delaySeconds * 1000,
      storedPayload: inline ? null : message.serialized,
      idempotencyKey: message.idempotencyKey,
      payloadHash: message.payloadHash,
      inlineCandidate: inline && message.delaySeconds === 0,
      taskBytes: (referenceBytes[index] ?? 0) + (inline ? message.contentBytes : 0),
    };
  });
}

/**
 * The most active subscribers the topic may have for this call to fan out inline: at most `limit`,
 * and as many as keep the call's bundles within one `sendBatch`. Each run of up to
 * {@link BUNDLE_MAX_DELIVERIES} subscribers carries every message once, in at most one bundle per
 * message. Undefined when nothing in the call can be fanned out inline, or inline fan-out is off.
 */
function inlineMaxSubscribers(records: readonly StorageForm[], limit: number): number | undefined {
  const candidates = records.filter((record) => record.inlineCandidate);
  if (limit <= 0 || candidates.length === 0) return undefined;
  const bytes = candidates.reduce(
    (sum, record) => sum + record.taskBytes + BUNDLE_MAX_DELIVERIES * SUBSCRIBER_ID_BYTES,
    0,
  );
  const runs = Math.min(
    Math.floor(SEND_BATCH_MAX_MESSAGES / candidates.length),
    Math.floor(SEND_BATCH_MAX_BYTES / bytes),
  );
  return Math.min(limit, runs * BUNDLE_MAX_DELIVERIES);
}

/**
 * Sends the fan-out tasks, in one `sendBatch` when they fit its limits (as a new message's always
 * do, see `storageForm`). A repeated key's task that must carry its first message's content can
 * make them too large: the rest then goes in further calls, and a failure of any of them takes
 * back all the request's fresh messages, as for a single call.
 */
async function send(queue: Queue<FanoutTask>, tasks: readonly QueuedTask[]): Promise<void> {
  for (const part of chunkForSendBatch(tasks, (task) => task.bytes)) {
    const [only] = part;
    if (part.length === 1 && only) {
      await queue.send(only.body, { delaySeconds: only.delaySeconds });
    } else {
      await queue.sendBatch(part.map(({ body, delaySeconds }) => ({ body, delaySeconds })));
    }
  }
}

async function forgetQuietly(
  d1: D1Database,
  topic: string,
  records: MessageToRecord[],
  recordedAt: number,
): Promise<void> {
  try {
    await forgetMessages(d1, topic, records, recordedAt);
  } catch (error) {
    // The rows stay in state "queued" and are never fanned out; retention removes them.
    logError("publish.forget_failed", { error: String(error) });
  }
}

function queueFailure(error: unknown): ApiError {
  const text = String(error);
  if (/\b429\b|too many requests|rate limit/i.test(text)) {
    return new ApiError(
      "rate_limited",
      "The queue refused the message for throughput; retry shortly",
      {
        headers: { "retry-after": "1" },
      },
    );
  }
  return unavailable("queue", error);
}

function unavailable(what: "storage" | "queue", error: unknown): ApiError {
  logError(`publish.${what}_failed`, { error: String(error) });
  return new ApiError("unavailable", `The ${what} is unavailable; the message was not accepted`);
}
