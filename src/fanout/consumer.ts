/**
 * The fan-out consumer: for each published message, evaluate every active subscriber's filter,
 * record the counts and one delivery per match (the write that also claims the message), and queue
 * their first attempts in bundles of up to ten. One D1 read and one D1 write per batch; subscribers whose filter does not match cost no queue operation.
 * An invocation opens at most {@link DELIVERIES_PER_INVOCATION} deliveries (and always at least one
 * message's): the messages after that are put back on the queue, still claimed, so that a batch of
 * messages to huge topics stays inside the per-invocation limits. It never throws: failures retry
 * the affected messages with a delay.
 */
import {
  type FanoutContext,
  type FanoutResult,
  loadFanoutContext,
  recordFanout,
} from "../db/fanout";
import { doublingDelaySeconds } from "../delivery/backoff";
import type { FilterMessage } from "../filter";
import { logError } from "../log";
import { filterBody } from "../publish/body";
import { readFanoutTask, type Work as TaskWork, wellFormedTasks } from "../queues/task-guards";
import {
  bundle,
  chunkForSendBatch,
  type DeliveryBundle,
  type FanoutTask,
  FanoutTaskSchema,
  type MessageContent,
  parseStoredContent,
  taskSize,
} from "../queues/tasks";
import { filterFor } from "./filters";

/**
 * Deliveries one invocation opens, at most, before it leaves the batch's remaining messages to
 * later ones: 100 `sendBatch` calls and 10,000 delivery rows, whatever the batch size.
 */
export const DELIVERIES_PER_INVOCATION = 10_000;

/** Retry delay when the broker itself failed: grows with the task's attempts, up to 5 minutes. */
const internalRetrySeconds = (attempts: number) => doublingDelaySeconds(attempts, 5, 300);

type Work = TaskWork<FanoutTask>;

interface Planned {
  work: Work;
  result: FanoutResult;
  /** The first attempts of its deliveries, bundled (see `DeliveryBundle`). */
  bundles: DeliveryBundle[];
  /** The size of each of its bundles, as the queue counts it: they share one message. */
  bundleBytes: number;
}

/** Handles one batch from the fan-out queue; `budget` is there for tests to lower. */
export async function handleFanoutBatch(
  batch: MessageBatch<unknown>,
  env: Env,
  budget = DELIVERIES_PER_INVOCATION,
): Promise<void> {
  const work = wellFormedTasks(batch, readFanoutTask, FanoutTaskSchema, "fanout");
  if (work.length === 0) return;

  let planned: Planned[];
  let deferred: Work[] = [];
  const openedAt = Date.now();
  try {
    const context = await loadFanoutContext(env.DB, {
      topics: [...new Set(work.map(({ task }) => task.topic))],
      messageIds: work.map(({ task }) => task.messageId),
    });
    planned = [];
    const seen = new Set<string>();
    let opened = 0;
    for (const item of work) {
      // Two tasks for one message in one batch may both own it (a retry beside a redrive), so the
      // first owner fans it out. Only an owner counts: a fresh task that cannot claim it must not
      // hide a later retry of the task that did.
      const mine = !seen.has(item.task.messageId) && isMine(item, context);
      if (mine) seen.add(item.task.messageId);
      if (!mine) item.message.ack();
      else if (opened >= budget) deferred.push(item);
      else {
        const plan = planFanout(item, context, openedAt);
        if (plan) {
          planned.push(plan);
          opened += plan.result.matchedSubscriberIds.length;
        } else item.message.ack();
      }
    }
    const recorded = await recordFanout(
      env.DB,
      planned.filter((plan) => !plan.work.task.unrecorded).map((plan) => plan.result),
      deferred.filter(isFirstDelivery).map(({ task }) => task.messageId),
      openedAt,
    );
    // A claim another task won meanwhile: that task fans the message out.
    const won = (item: Work) => !isFirstDelivery(item) || recorded.has(item.task.messageId);
    for (const item of [...planned.map((plan) => plan.work), ...deferred]) {
      if (!won(item)) item.message.ack();
    }
    planned = planned.filter((plan) => won(plan.work));
    deferred = deferred.filter(won);
  } catch (error) {
    logError("fanout.storage_failed", { error: String(error) });
    for (const { message } of work)
      message.retry({ delaySeconds: internalRetrySeconds(message.attempts) });
    return;
  }
  await sendDeliveries(planned, env.DELIVERY_QUEUE);
  await defer(deferred, env.FANOUT_QUEUE);
}

/**
 * A task's first consumption, which must claim its message; retries, redrives and deferred tasks
 * need not, and neither does one of a message that has no row to claim.
 */
function isFirstDelivery({ message, task }: Work): boolean {
  return message.attempts <= 1 && !task.redrives && !task.deferred && !task.unrecorded;
}

/** Whether this task may be the one to fan its message out, as far as the batch's read tells. */
function isMine(item: Work, context: FanoutContext): boolean {
  const { task } = item;
  if (task.unrecorded) {
    // Its topic was deleted, and perhaps made anew since.
    const createdAt = context.topicsCreatedAt.get(task.topic);
    return createdAt !== undefined && task.publishedAt >= createdAt;
  }
  // No row: the publish was refused and taken back, it expired, or its topic was deleted (and
  // perhaps made anew since).
  const message = context.messages.get(item.task.messageId);
  if (!message) return false;
  // Another task already fanned this message out; a retry, a redrive or a deferral of one that
  // claimed it goes on, since its fan-out may not have finished.
  return !isFirstDelivery(item) || message.state === "queued";
}

/** Matches one message against its topic's subscribers; undefined if it is to be dropped. */
function planFanout(item: Work, context: FanoutContext, openedAt: number): Planned | undefined {
  const { task } = item;
  const stored = context.messages.get(task.messageId);
  const content = task.content ?? parseStoredContent(stored?.payload);
  if (!content) {
    logError("fanout.content_missing", { messageId: task.messageId });
    return undefined;
  }
  const subscribers = context.subscribersByTopic.get(task.topic) ?? [];
  // Built only if some subscriber has a filter: it parses a JSON text body, for instance.
  let view: FilterMessage | undefined;
  const matched = subscribers.filter((subscriber) => {
    const filter = filterFor(subscriber);
    if (filter === null) return true;
    if (filter === "invalid") return false;
    view ??= filterView(task, content);
    return filter.matches(view);
  });
  const matchedIds = matched.map((subscriber) => subscriber.id);
  const message = {
    messageId: task.messageId,
    publishedAt: task.publishedAt,
    content: task.content,
  };
  const messageBytes = taskSize(message);
  const bundles = bundle(task.topic, openedAt, [message], matchedIds, () => messageBytes);
  const [sample] = bundles;
  return {
    work: item,
    result: {
      messageId: task.messageId,
      matchedSubscriberIds: matchedIds,
      filtered: subscribers.length - matched.length,
      payloadChars: stored?.payload?.length ?? 0,
      claim: isFirstDelivery(item),
    },
    bundles,
    bundleBytes: sample ? taskSize(sample) : 0,
  };
}

/**
 * Sends the bundles in `sendBatch` chunks within the platform's limits. A message is acked only
 * when all of its bundles were sent; otherwise it is retried, and the redelivery re-sends (the
 * subscriber may see a duplicate `webhook-id`, never a gap).
 */
async function sendDeliveries(planned: Planned[], queue: Queue<unknown>): Promise<void> {
  const entries = planned.flatMap((plan, index) =>
    plan.bundles.map((task) => ({ task, index, bytes: plan.bundleBytes })),
  );
  const failed = new Set<number>();
  for (const part of chunkForSendBatch(entries, (entry) => entry.bytes)) {
    try {
      await queue.sendBatch(part.map((entry) => ({ body: entry.task })));
    } catch (error) {
      logError("fanout.send_failed", { error: String(error), tasks: part.length });
      for (const entry of part) failed.add(entry.index);
    }
  }
  planned.forEach((plan, index) => {
    const { message } = plan.work;
    if (failed.has(index)) message.retry({ delaySeconds: internalRetrySeconds(message.attempts) });
    else message.ack();
  });
}

/**
 * Puts claimed messages this invocation had no budget for back on the fan-out queue, marked as
 * claimed. Only once they are sent is the original acked; if the send fails, the original is
 * retried, and as a retry it needs no claim either.
 */
async function defer(items: Work[], queue: Queue<unknown>): Promise<void> {
  for (const part of chunkForSendBatch(items, ({ task }) => taskSize(task))) {
    try {
      await queue.sendBatch(part.map(({ task }) => ({ body: { ...task, deferred: true } })));
      for (const { message } of part) message.ack();
    } catch (error) {
      logError("fanout.defer_failed", { error: String(error), tasks: part.length });
      for (const { message } of part)
        message.retry({ delaySeconds: internalRetrySeconds(message.attempts) });
    }
  }
}

function filterView(task: FanoutTask, content: MessageContent): FilterMessage {
  return {
    id: task.messageId,
    topic: task.topic,
    body: filterBody(content.body),
    headers: content.headers,
    query: content.query,
    pathParams: content.pathParams,
    method: content.method,
    publishedAt: new Date(task.publishedAt).toISOString(),
  };
}
