/**
 * Settling a batch's queue messages once their deliveries are planned and the outcomes written (or
 * not): acks, retries, the deliveries of a bundle re-queued one by one, and outcomes that could not
 * be written handed to the dead-letter queue, so that none is acknowledged without a trace.
 */
import { type DeliveryOutcome, recordOutcomes } from "../db/deliveries";
import { logError } from "../log";
import {
  chunkForSendBatch,
  type DeadRecord,
  type DeliveryTask,
  QUEUE_MESSAGE_MAX_BYTES,
  type SettledRecord,
  taskSize,
} from "../queues/tasks";
import { INTERNAL_RETRY_SECONDS, type Plan, type Work } from "./plan";

/**
 * Acks or retries each message. When the outcomes could not be written, a finished delivery
 * (delivered, cancelled or dead) is handed to the dead-letter queue to be recorded there, so that
 * it is never acknowledged without a trace; if even that fails, it is retried (a delivered one may
 * then reach its subscriber twice, under one `webhook-id`).
 */
export async function settle(
  work: Work[],
  plans: Plan[],
  recorded: boolean,
  env: Env,
): Promise<void> {
  const unrecorded: { message: Message<unknown>; record: DeadRecord | SettledRecord }[] = [];
  work.forEach(({ message, task }, index) => {
    const plan = plans[index];
    if (!plan || plan.kind === "skip") {
      message.ack();
    } else if (plan.kind === "internal") {
      message.retry({ delaySeconds: INTERNAL_RETRY_SECONDS });
    } else if (plan.retrySeconds !== undefined) {
      message.retry({ delaySeconds: plan.retrySeconds });
    } else if (recorded) {
      message.ack();
    } else {
      const record = handoffRecord(task, plan);
      if (record) unrecorded.push({ message, record });
      else message.retry({ delaySeconds: INTERNAL_RETRY_SECONDS });
    }
  });
  await handOff(unrecorded, env.DEAD_LETTER_QUEUE);
}

/**
 * Settles each queue message that carried a bundle, once all its deliveries are: each finished one
 * whose outcome could not be written is handed to the dead-letter queue, and then each one to be
 * tried again goes back on the queue as a task of its own, with its attempt and delay. The bundle
 * is acked when all of that was sent, and retried whole otherwise. The hand-off goes first because
 * it may be sent twice (its records are recorded once), whereas a delivery re-queued twice would
 * be tried twice over. A retried bundle skips its deliveries that were recorded; those delivered on
 * a topic that records failures only leave no record, so they are written down before the retry,
 * or the subscriber would get them again.
 */
export async function settleBundles(
  work: readonly Work[],
  plans: readonly Plan[],
  recorded: boolean,
  env: Env,
  now: number,
): Promise<void> {
  const byMessage = new Map<Message<unknown>, BundleSettlement>();
  work.forEach(({ message, task, bundled }, index) => {
    if (!bundled) return;
    const settled = byMessage.get(message) ?? { requeue: [], handoff: [], unrecorded: [] };
    byMessage.set(message, settled);
    const plan = plans[index];
    if (!plan || plan.kind === "skip") return;
    if (plan.kind === "internal") {
      settled.requeue.push({ task: { ...task, attempt: 1 }, delaySeconds: INTERNAL_RETRY_SECONDS });
    } else if (plan.retrySeconds !== undefined) {
      const attempt = plan.outcome.attempts + 1;
      settled.requeue.push({ task: { ...task, attempt }, delaySeconds: plan.retrySeconds });
    } else if (!recorded) {
      const record = handoffRecord(task, plan);
      if (record) settled.handoff.push(record);
      else
        settled.requeue.push({
          task: { ...task, attempt: 1 },
          delaySeconds: INTERNAL_RETRY_SECONDS,
        });
    } else if (plan.outcome.unrecorded) {
      settled.unrecorded.push(plan.outcome);
    }
  });
  for (const [message, settlement] of byMessage) {
    try {
      await sendSettlement(settlement, env);
      message.ack();
    } catch (error) {
      logError("delivery.bundle_settle_failed", {
        error: String(error),
        requeue: settlement.requeue.length,
        handoff: settlement.handoff.length,
      });
      await writeDown(settlement.unrecorded, env.DB, now);
      message.retry({ delaySeconds: INTERNAL_RETRY_SECONDS });
    }
  }
}

/** What settling one bundle sends, and what it delivered without a record. */
interface BundleSettlement {
  requeue: Requeue[];
  handoff: Handoff[];
  /** Delivered on a topic that records failures only, so written nowhere. */
  unrecorded: DeliveryOutcome[];
}

async function sendSettlement({ requeue, handoff }: BundleSettlement, env: Env): Promise<void> {
  for (const part of chunkForSendBatch(handoff)) {
    await env.DEAD_LETTER_QUEUE.sendBatch(part.map((record) => ({ body: record })));
  }
  for (const part of chunkForSendBatch(requeue, ({ task }) => taskSize(task))) {
    await env.DELIVERY_QUEUE.sendBatch(
      part.map(({ task, delaySeconds }) => ({ body: task, delaySeconds })),
    );
  }
}

/**
 * Records deliveries made on a topic that records failures only, as rows, so that a bundle retried
 * whole skips them. Should that fail too, they may reach their subscribers again (at least once).
 */
async function writeDown(outcomes: DeliveryOutcome[], d1: D1Database, now: number): Promise<void> {
  if (outcomes.length === 0) return;
  try {
    await recordOutcomes(
      d1,
      outcomes.map(({ countIn: _counted, ...outcome }) => ({ ...outcome, unrecorded: false })),
      [],
      now,
    );
  } catch (error) {
    logError("delivery.write_down_failed", { error: String(error), deliveries: outcomes.length });
  }
}

/**
 * What the dead-letter queue is handed for a finished delivery whose outcome could not be written;
 * undefined for one that is not finished (its task is tried again instead).
 */
function handoffRecord(
  task: DeliveryTask,
  plan: Plan & { kind: "record" },
): DeadRecord | SettledRecord | undefined {
  return plan.outcome.state === "dead"
    ? deadRecord(task, plan.outcome, plan.gone ?? false)
    : settledRecord(plan.outcome);
}

/** A delivery of a bundle going back on the queue on its own. */
interface Requeue {
  task: DeliveryTask;
  delaySeconds: number;
}
type Handoff = DeadRecord | SettledRecord;

/**
 * Sends unrecorded outcomes to the dead-letter queue in `sendBatch` calls within the platform's
 * limits, acking each call's messages once it went and retrying them if it failed, so that one
 * failure cannot send delivered messages to their subscribers again. A record too large for a
 * queue message is retried on its own rather than failing a call with the others in it.
 */
async function handOff(
  unrecorded: readonly { message: Message<unknown>; record: DeadRecord | SettledRecord }[],
  queue: Queue<unknown>,
): Promise<void> {
  const sized = unrecorded.map((entry) => ({ ...entry, bytes: taskSize(entry.record) }));
  const sendable = sized.filter(({ message, record, bytes }) => {
    if (bytes <= QUEUE_MESSAGE_MAX_BYTES) return true;
    logError("delivery.dead_letter_record_too_large", {
      messageId: record.messageId,
      subscriberId: record.subscriberId,
      bytes,
    });
    message.retry({ delaySeconds: INTERNAL_RETRY_SECONDS });
    return false;
  });
  for (const part of chunkForSendBatch(sendable, (entry) => entry.bytes)) {
    try {
      await queue.sendBatch(part.map(({ record }) => ({ body: record })));
      for (const { message } of part) message.ack();
    } catch (error) {
      logError("delivery.dead_letter_handoff_failed", { error: String(error), count: part.length });
      for (const { message } of part) message.retry({ delaySeconds: INTERNAL_RETRY_SECONDS });
    }
  }
}

/** The record of a delivered or cancelled delivery; undefined for any other state. */
function settledRecord(outcome: DeliveryOutcome): SettledRecord | undefined {
  if (outcome.state !== "delivered" && outcome.state !== "cancelled") return undefined;
  return {
    kind: "settled",
    messageId: outcome.messageId,
    subscriberId: outcome.subscriberId,
    state: outcome.state,
    attempts: outcome.attempts,
    lastStatus: outcome.lastStatus,
    lastError: outcome.lastError,
    lastAttemptAt: outcome.lastAttemptAt,
    ...(outcome.topic === undefined ? {} : { topic: outcome.topic }),
    ...(outcome.countIn === undefined ? {} : { countIn: outcome.countIn }),
    ...(outcome.unrecorded ? { unrecorded: true } : {}),
  };
}

function deadRecord(task: DeliveryTask, outcome: DeliveryOutcome, gone: boolean): DeadRecord {
  return {
    kind: "dead",
    messageId: task.messageId,
    subscriberId: task.subscriberId,
    topic: task.topic,
    publishedAt: task.publishedAt,
    attempts: outcome.attempts,
    lastStatus: outcome.lastStatus,
    lastError: outcome.lastError,
    lastAttemptAt: outcome.lastAttemptAt,
    content: task.content,
    // During a deploy the previous version's consumer may read this record, and it knows a dead
    // record by a `payload` field: without one it would take the record for a delivery task whose
    // retries ran out, losing its status and its 410. With null it records both, and takes the
    // content from the message, where a large one is stored.
    payload: null,
    gone,
    ...(outcome.deadLetter ? { deadLetterId: outcome.deadLetter.id } : {}),
    ...(outcome.countIn === undefined ? {} : { countIn: outcome.countIn }),
  };
}
