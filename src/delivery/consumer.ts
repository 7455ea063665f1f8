/**
 * The delivery consumer: one attempt per delivery, at most six in flight, then one D1 write for the
 * whole batch, and for each queue message an ack or a retry. A queue message carries one delivery,
 * or a bundle of first attempts, whose deliveries that must be tried again go back on the queue one
 * by one. It never throws: the local runtime would redeliver the whole batch, acked messages
 * included.
 */

import {
  type DeliveryContext,
  type DeliveryOutcome,
  deliveryKey,
  loadDeliveryContext,
  recordOutcomes,
} from "../db/deliveries";
import { cancellation } from "../db/delivery-record";
import { newId } from "../db/ids";
import type { SubscriberRow } from "../db/schema";
import { logError } from "../log";
import { mapWithLimit } from "../queues/pool";
import { readDeliveryWork, wellFormedTasks } from "../queues/task-guards";
import {
  chunkForSendBatch,
  type DeadRecord,
  type DeliveryTask,
  DeliveryWorkSchema,
  type MessageContent,
  parseStoredContent,
  QUEUE_MESSAGE_MAX_BYTES,
  type SettledRecord,
  taskSize,
  unbundle,
} from "../queues/tasks";
import { type AttemptResult, decide, sendAttempt } from "./attempt";
import { buildDeliveryRequest, signingSecrets } from "./request";

/** Requests in flight at once: the platform's limit of open connections per invocation. */
export const MAX_IN_FLIGHT = 6;
/** Delay before a task is retried because the broker itself failed (not the subscriber). */
const INTERNAL_RETRY_SECONDS = 30;

export interface DeliveryDeps {
  fetch: typeof fetch;
  random: () => number;
  now: () => number;
}

const defaultDeps: DeliveryDeps = {
  fetch: (input, init) => fetch(input, init),
  random: Math.random,
  now: Date.now,
};

/** What happens to one queue message once its attempt is done. */
type Plan =
  | { kind: "skip" }
  | { kind: "internal" }
  | { kind: "record"; outcome: DeliveryOutcome; retrySeconds?: number; gone?: boolean };

/** One delivery of the batch: a queue message's own, or one of its bundle's. */
interface Work {
  message: Message<unknown>;
  task: DeliveryTask;
  /** Whether it came in a bundle, whose deliveries are first attempts. */
  bundled: boolean;
}

/** Handles one batch from the delivery queue. */
export async function handleDeliveryBatch(
  batch: MessageBatch<unknown>,
  env: Env,
  deps: DeliveryDeps = defaultDeps,
): Promise<void> {
  const queued = wellFormedTasks(batch, readDeliveryWork, DeliveryWorkSchema, "delivery");
  if (queued.length === 0) return;
  const work = queued.flatMap(({ message, task }): Work[] =>
    "kind" in task
      ? unbundle(task).map((delivery) => ({ message, task: delivery, bundled: true }))
      : [{ message, task, bundled: false }],
  );

  try {
    const context = await loadDeliveryContext(env.DB, {
      deliveries: work.map(({ task }) => task),
      storedMessageIds: unique(
        work.filter(({ task }) => !task.content).map(({ task }) => task.messageId),
      ),
    });
    // A large message's tasks usually come together: parse its stored content once per batch.
    const shared: BatchShared = {
      context,
      storedContents: new Map(
        [...context.payloads].map(([id, payload]) => [id, parseStoredContent(payload)]),
      ),
      bodies: new Map(),
      attempting: new Set(),
    };
    const plans = await mapWithLimit(work, MAX_IN_FLIGHT, (item) =>
      planDelivery(item, shared, deps).catch((error: unknown): Plan => {
        // One delivery the broker cannot build (bad stored data, a bug) must not send the rest
        // of the batch again: it alone is retried, and the queue dead-letters it if it persists.
        logError("delivery.plan_failed", {
          messageId: item.task.messageId,
          subscriberId: item.task.subscriberId,
          error: String(error),
        });
        return { kind: "internal" };
      }),
    );
    const recorded = await recordWithOneRetry(env.DB, plans, deps.now());
    const single = work.flatMap((item, index) => (item.bundled ? [] : [index]));
    await settle(
      single.map((index) => work[index] as Work),
      single.map((index) => plans[index] as Plan),
      recorded,
      env,
    );
    await settleBundles(work, plans, recorded, env);
  } catch (error) {
    logError("delivery.batch_failed", { error: String(error) });
    for (const { message } of queued) message.retry({ delaySeconds: INTERNAL_RETRY_SECONDS });
  }
}

/** What the deliveries of one batch share: its storage read, and what was derived from it once. */
interface BatchShared {
  context: DeliveryContext;
  /** A large message's stored content, parsed once per batch. */
  storedContents: ReadonlyMap<string, MessageContent | undefined>;
  /** Encoded bodies by message id, filled as the batch's requests are built. */
  bodies: Map<string, Uint8Array>;
  /** The deliveries this batch attempts, by `deliveryKey`. */
  attempting: Set<string>;
}

/** Decides, and if there is something to send, sends: everything short of writing the outcome. */
async function planDelivery(
  { message, task, bundled }: Work,
  { context, storedContents, bodies, attempting }: BatchShared,
  deps: DeliveryDeps,
): Promise<Plan> {
  const key = deliveryKey(task.messageId, task.subscriberId);
  const stored = context.states.get(key);
  if (stored?.state === "delivered" || stored?.state === "cancelled") return { kind: "skip" };
  if (stored?.state === "dead" && !task.replay) return { kind: "skip" };
  // Two tasks for one delivery in one batch (a duplicate, or a replay beside a retry) would both be
  // planned before either is recorded: both could die and leave two dead letters, which replays
  // would deliver twice. One attempt carries the delivery on; the other task is done. This runs
  // before the first await, so the first task of the batch to get here is the one.
  if (attempting.has(key)) return { kind: "skip" };
  attempting.add(key);

  // The queue also counts consumptions that failed inside the broker (storage down), which never
  // reached the subscriber; the stored count does not. The queue's count still wins when it is
  // lower: a replayed task can arrive before its delivery's attempts were reset. A bundle carries
  // first attempts: only storage can say one was made already.
  const attempt = bundled
    ? (stored?.attempts ?? 0) + 1
    : Math.min(
        (task.attempt ?? 1) + message.attempts - 1,
        (stored?.attempts ?? Number.POSITIVE_INFINITY) + 1,
      );
  const subscriber = context.subscribers.get(task.subscriberId);
  const openedAt = task.openedAt ?? stored?.openedAt ?? task.publishedAt;
  const base = { messageId: task.messageId, subscriberId: task.subscriberId, openedAt };
  const cancelled = cancellation(subscriber, openedAt);
  if (cancelled || !subscriber) {
    return {
      kind: "record",
      outcome: closed(base, "cancelled", attempt - 1, cancelled ?? "Subscriber was deleted"),
    };
  }
  // A delivered first attempt goes to the message's record, where the delivery waits as pending.
  // On a topic that records failures only, it is only counted; what goes wrong is recorded there
  // as anywhere, and a delivery recorded once (a retry) stays recorded to the end.
  const inRecord = stored?.inRecord === true && stored.state === "pending";
  const lean = context.recordings.get(task.topic) === "failures";
  const recording = lean ? { countIn: task.topic, unrecorded: stored === undefined } : {};

  const content = task.content ?? storedContents.get(task.messageId);
  if (!content) return dead(task, attempt - 1, null, "The message content expired before delivery");
  if (attempt > subscriber.maxAttempts) {
    return dead(task, attempt - 1, null, `All ${subscriber.maxAttempts} attempts were used`);
  }

  const now = deps.now();
  const built = await buildDeliveryRequest({
    messageId: task.messageId,
    topic: task.topic,
    content,
    subscriber: { ...subscriber, secrets: signingSecrets(subscriber, now) },
    attempt,
    now: new Date(now),
    bodies,
  });
  if (!built.ok) return dead(task, attempt - 1, null, built.error);

  const result = await sendAttempt(
    built.request,
    subscriber.timeoutMs,
    deps.fetch,
    () => new Date(deps.now()),
  );
  const plan = planFromResult(task, subscriber, attempt, result, deps);
  if (plan.kind !== "record") return plan;
  const unrecorded = recording.unrecorded === true && plan.outcome.state === "delivered";
  return { ...plan, outcome: { ...plan.outcome, openedAt, inRecord, ...recording, unrecorded } };
}

function planFromResult(
  task: DeliveryTask,
  subscriber: SubscriberRow,
  attempt: number,
  result: AttemptResult,
  deps: DeliveryDeps,
): Plan {
  const attemptedAt = deps.now();
  const decision = decide(result, attempt, subscriber, deps.random);
  const lastError = result.kind === "failed" ? result.error : null;
  const lastStatus = result.status;
  if (decision.action === "delivered") {
    return {
      kind: "record",
      outcome: {
        ...keyOf(task),
        state: "delivered",
        attempts: attempt,
        lastStatus,
        lastError: null,
        lastAttemptAt: attemptedAt,
        nextAttemptAt: null,
      },
    };
  }
  if (decision.action === "retry") {
    return {
      kind: "record",
      retrySeconds: decision.delaySeconds,
      outcome: {
        ...keyOf(task),
        state: "retrying",
        attempts: attempt,
        lastStatus,
        lastError,
        lastAttemptAt: attemptedAt,
        nextAttemptAt: attemptedAt + decision.delaySeconds * 1000,
      },
    };
  }
  const error =
    result.kind === "gone" ? "HTTP 410: the subscriber is gone and was deactivated" : lastError;
  const plan = dead(task, attempt, lastStatus, error ?? `HTTP ${lastStatus}`, attemptedAt);
  return { ...plan, gone: result.kind === "gone" };
}

function dead(
  task: DeliveryTask,
  attempts: number,
  lastStatus: number | null,
  lastError: string,
  lastAttemptAt: number | null = null,
): Plan & { kind: "record" } {
  return {
    kind: "record",
    outcome: {
      ...keyOf(task),
      state: "dead",
      attempts,
      lastStatus,
      lastError,
      lastAttemptAt,
      nextAttemptAt: null,
      deadLetter: {
        id: newId("dlq"),
        topic: task.topic,
        publishedAt: task.publishedAt,
        payload: task.content ? JSON.stringify(task.content) : null,
      },
    },
  };
}

function closed(
  base: { messageId: string; subscriberId: string; openedAt: number },
  state: "cancelled",
  attempts: number,
  lastError: string,
): DeliveryOutcome {
  return {
    ...base,
    state,
    attempts,
    lastStatus: null,
    lastError,
    lastAttemptAt: null,
    nextAttemptAt: null,
  };
}

async function recordWithOneRetry(d1: D1Database, plans: Plan[], now: number): Promise<boolean> {
  const outcomes: DeliveryOutcome[] = [];
  const gone: string[] = [];
  for (const plan of plans) {
    if (plan.kind !== "record") continue;
    outcomes.push(plan.outcome);
    if (plan.gone) gone.push(plan.outcome.subscriberId);
  }
  if (outcomes.length === 0) return true;
  for (let tries = 0; tries < 2; tries++) {
    try {
      await recordOutcomes(d1, outcomes, unique(gone), now);
      return true;
    } catch (error) {
      logError("delivery.record_failed", { error: String(error), tries: tries + 1 });
    }
  }
  return false;
}

/**
 * Acks or retries each message. When the outcomes could not be written, a finished delivery
 * (delivered, cancelled or dead) is handed to the dead-letter queue to be recorded there, so that
 * it is never acknowledged without a trace; if even that fails, it is retried (a delivered one may
 * then reach its subscriber twice, under one `webhook-id`).
 */
async function settle(work: Work[], plans: Plan[], recorded: boolean, env: Env): Promise<void> {
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
      const { outcome } = plan;
      const record =
        outcome.state === "dead"
          ? deadRecord(task, outcome, plan.gone ?? false)
          : settledRecord(outcome);
      if (record) unrecorded.push({ message, record });
      else message.retry({ delaySeconds: INTERNAL_RETRY_SECONDS });
    }
  });
  await handOff(unrecorded, env.DEAD_LETTER_QUEUE);
}

/**
 * Settles each queue message that carried a bundle, once all its deliveries are: each one to be
 * tried again goes back on the queue as a task of its own, with its attempt and delay, and each
 * finished one whose outcome could not be written is handed to the dead-letter queue. The bundle
 * is acked when all of that was sent, and retried whole otherwise: its deliveries that were
 * recorded are skipped the next time, the others may be tried once more.
 */
async function settleBundles(
  work: readonly Work[],
  plans: readonly Plan[],
  recorded: boolean,
  env: Env,
): Promise<void> {
  const byMessage = new Map<Message<unknown>, { requeue: Requeue[]; handoff: Handoff[] }>();
  work.forEach(({ message, task, bundled }, index) => {
    if (!bundled) return;
    const settled = byMessage.get(message) ?? { requeue: [], handoff: [] };
    byMessage.set(message, settled);
    const plan = plans[index];
    if (!plan || plan.kind === "skip") return;
    if (plan.kind === "internal") {
      settled.requeue.push({ task: { ...task, attempt: 1 }, delaySeconds: INTERNAL_RETRY_SECONDS });
    } else if (plan.retrySeconds !== undefined) {
      const attempt = plan.outcome.attempts + 1;
      settled.requeue.push({ task: { ...task, attempt }, delaySeconds: plan.retrySeconds });
    } else if (!recorded) {
      const { outcome } = plan;
      const record =
        outcome.state === "dead"
          ? deadRecord(task, outcome, plan.gone ?? false)
          : settledRecord(outcome);
      if (record) settled.handoff.push(record);
      else
        settled.requeue.push({
          task: { ...task, attempt: 1 },
          delaySeconds: INTERNAL_RETRY_SECONDS,
        });
    }
  });
  for (const [message, { requeue, handoff }] of byMessage) {
    try {
      for (const part of chunkForSendBatch(requeue, ({ task }) => taskSize(task))) {
        await env.DELIVERY_QUEUE.sendBatch(
          part.map(({ task, delaySeconds }) => ({ body: task, delaySeconds })),
        );
      }
      for (const part of chunkForSendBatch(handoff)) {
        await env.DEAD_LETTER_QUEUE.sendBatch(part.map((record) => ({ body: record })));
      }
      message.ack();
    } catch (error) {
      logError("delivery.bundle_settle_failed", {
        error: String(error),
        requeue: requeue.length,
        handoff: handoff.length,
      });
      message.retry({ delaySeconds: INTERNAL_RETRY_SECONDS });
    }
  }
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
  };
}

function keyOf(task: DeliveryTask) {
  return { messageId: task.messageId, subscriberId: task.subscriberId };
}

function unique(values: string[]): string[] {
  return [...new Set(values)];
}
