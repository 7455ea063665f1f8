/**
 * The delivery consumer: one attempt per delivery, at most six in flight, then one D1 write for the
 * whole batch, and for each queue message an ack or a retry. A queue message carries one delivery,
 * or a bundle of first attempts, whose deliveries that must be tried again go back on the queue one
 * by one. It never throws: the local runtime would redeliver the whole batch, acked messages
 * included.
 */

import { type DeliveryOutcome, loadDeliveryContext, recordOutcomes } from "../db/deliveries";
import { logError } from "../log";
import { mapWithLimit } from "../queues/pool";
import { readDeliveryWork, wellFormedTasks } from "../queues/task-guards";
import { DeliveryWorkSchema, parseStoredContent, unbundle } from "../queues/tasks";
import {
  type BatchShared,
  type DeliveryDeps,
  INTERNAL_RETRY_SECONDS,
  type Plan,
  planDelivery,
  type Work,
} from "./plan";
import { settle, settleBundles } from "./settle";

/** Requests in flight at once: the platform's limit of open connections per invocation. */
export const MAX_IN_FLIGHT = 6;

export type { DeliveryDeps };

const defaultDeps: DeliveryDeps = {
  fetch: (input, init) => fetch(input, init),
  random: Math.random,
  now: Date.now,
};

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
    await settleBundles(work, plans, recorded, env, deps.now());
  } catch (error) {
    logError("delivery.batch_failed", { error: String(error) });
    for (const { message } of queued) message.retry({ delaySeconds: INTERNAL_RETRY_SECONDS });
  }
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

function unique(values: string[]): string[] {
  return [...new Set(values)];
}
