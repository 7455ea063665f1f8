/**
 * Planning one delivery of a batch: whether to attempt it, at which attempt, and if so the attempt
 * itself, ending in the outcome to record and what its queue message is to do. Everything short
 * of writing the outcome, which the consumer does for the whole batch at once.
 */
import { type DeliveryContext, type DeliveryOutcome, deliveryKey } from "../db/deliveries";
import { cancellation } from "../db/delivery-record";
import { newId } from "../db/ids";
import type { SubscriberRow } from "../db/schema";
import type { DeliveryTask, MessageContent } from "../queues/tasks";
import { type AttemptResult, decide, sendAttempt } from "./attempt";
import { buildDeliveryRequest, signingSecrets } from "./request";

/** Delay before a task is retried because the broker itself failed (not the subscriber). */
export const INTERNAL_RETRY_SECONDS = 30;

export interface DeliveryDeps {
  fetch: typeof fetch;
  random: () => number;
  now: () => number;
}

/** What happens to one queue message once its attempt is done. */
export type Plan =
  | { kind: "skip" }
  | { kind: "internal" }
  | { kind: "record"; outcome: DeliveryOutcome; retrySeconds?: number; gone?: boolean };

/** One delivery of the batch: a queue message's own, or one of its bundle's. */
export interface Work {
  message: Message<unknown>;
  task: DeliveryTask;
  /** Whether it came in a bundle, whose deliveries are first attempts. */
  bundled: boolean;
}

/** What the deliveries of one batch share: its storage read, and what was derived from it once. */
export interface BatchShared {
  context: DeliveryContext;
  /** A large message's stored content, parsed once per batch. */
  storedContents: ReadonlyMap<string, MessageContent | undefined>;
  /** Encoded bodies by message id, filled as the batch's requests are built. */
  bodies: Map<string, Uint8Array>;
  /** The deliveries this batch attempts, by `deliveryKey`. */
  attempting: Set<string>;
}

/** Decides, and if there is something to send, sends: everything short of writing the outcome. */
export async function planDelivery(
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
  const base = { ...keyOf(task), openedAt };
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
  // A delivery of the message's record was opened while its topic recorded everything: it is
  // recorded to the end, whatever the topic records now.
  const lean = context.recordings.get(task.topic) === "failures" && stored?.inRecord !== true;
  // Only a first attempt: one that needed a retry is recorded even if the failed attempt's
  // outcome could not be written.
  const recording = lean
    ? { countIn: task.topic, unrecorded: stored === undefined && attempt === 1 }
    : {};

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
  base: { messageId: string; subscriberId: string; topic: string; openedAt: number },
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

function keyOf(task: DeliveryTask) {
  return { messageId: task.messageId, subscriberId: task.subscriberId, topic: task.topic };
}
