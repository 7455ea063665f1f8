/**
 * Queue operations per delivered message. Computed from the code's constants (the `sendBatch`
 * chunk size in src/queues/tasks.ts, the consumers' `max_batch_size` in wrangler.toml) and set
 * beside what the local runtime reported for the 10,000-subscriber fan-out. Cloudflare bills
 * every 64 KB written, read or deleted as one operation; the tasks here are far below 64 KB, so a
 * message costs one write, one read per consumption and one delete.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { SEND_BATCH_MAX_MESSAGES } from "../src/queues/tasks";
import { projectRoot } from "../test/node/local-worker";
import type { QueueTotals } from "./lib/queue-log";

export interface Consumers {
  fanoutBatch: number;
  deliveryBatch: number;
  /** `INLINE_FANOUT_MAX_SUBSCRIBERS`: the largest topic a publish fans out itself (0: none). */
  inlineMaxSubscribers: number;
}

/** The broker's consumers' `max_batch_size` and its inline fan-out limit as wrangler.toml sets them. */
export async function readConsumers(): Promise<Consumers> {
  const toml = await readFile(join(projectRoot, "wrangler.toml"), "utf8");
  const inline = /^INLINE_FANOUT_MAX_SUBSCRIBERS = "(\d+)"/m.exec(toml)?.[1];
  if (inline === undefined) throw new Error("wrangler.toml sets no INLINE_FANOUT_MAX_SUBSCRIBERS");
  return {
    fanoutBatch: await batchSize("wrangler.toml", "-fanout"),
    deliveryBatch: await batchSize("wrangler.toml", "-deliveries"),
    inlineMaxSubscribers: Number(inline),
  };
}

/** `max_batch_size` of the consumer in `config` whose queue name ends in `suffix`. */
export async function batchSize(config: string, suffix: string): Promise<number> {
  const toml = await readFile(join(projectRoot, config), "utf8");
  for (const section of toml.split("[[queues.consumers]]").slice(1)) {
    const queue = /^queue = "([^"]+)"/m.exec(section)?.[1];
    const size = /^max_batch_size = (\d+)/m.exec(section)?.[1];
    if (queue?.endsWith(suffix) && size) return Number(size);
  }
  throw new Error(`${config} has no consumer with a batch size for a queue ending in ${suffix}`);
}

export interface CostRow {
  subscribers: number;
  /** Whether the publish fans the message out itself (no filter, few enough deliveries). */
  inline: boolean;
  /** `send` + `sendBatch` calls: 1 for the publish, then the fan-out's chunks. */
  producerCalls: number;
  /** Consumer invocations at least: the fan-out's share of one batch, then the delivery batches. */
  invocations: number;
  /** Billed operations (write + read + delete per message), without retries. */
  operations: number;
  operationsPerDelivery: number;
}

/**
 * The cost of one message published alone that matches `n` subscribers, every delivery succeeding
 * at once. Without filters and within the inline limit, the publish queues the `n` delivery tasks
 * itself (one `sendBatch`); otherwise a fan-out task comes first and the fan-out queues them.
 */
export function costFor(n: number, consumers: Consumers, filtered = false): CostRow {
  const inline = !filtered && n <= consumers.inlineMaxSubscribers;
  const deliveryInvocations = Math.ceil(n / consumers.deliveryBatch);
  const producerCalls = inline ? 1 : 1 + Math.ceil(n / SEND_BATCH_MAX_MESSAGES);
  const invocations = inline
    ? deliveryInvocations
    : 1 / consumers.fanoutBatch + deliveryInvocations;
  const operations = 3 * (inline ? n : 1 + n);
  return {
    subscribers: n,
    inline,
    producerCalls,
    invocations,
    operations,
    operationsPerDelivery: operations / n,
  };
}

export interface ObservedCost {
  /** Queue messages consumed, per queue, retries included. */
  fanoutConsumed: number;
  deliveryConsumed: number;
  deliveryInvocations: number;
  retried: number;
  delivered: number;
  /** write + read + delete for each message; a retry is one more read. */
  operations: number;
  operationsPerDelivery: number;
}

/**
 * Operations as the local runtime saw them: every consumed message was written once (by the
 * publish or the fan-out) and is deleted once when acked; a retried one was read again.
 */
export function observedCost(queues: Map<string, QueueTotals>, delivered: number): ObservedCost {
  const find = (suffix: string) => {
    for (const [queue, totals] of queues) if (queue.endsWith(suffix)) return totals;
    return { invocations: 0, messages: 0, retried: 0, busyMs: 0 };
  };
  const fanout = find("-fanout");
  const deliveries = find("-deliveries");
  const retried = fanout.retried + deliveries.retried;
  const written = fanout.messages - fanout.retried + deliveries.messages - deliveries.retried;
  const operations = 3 * written + retried;
  return {
    fanoutConsumed: fanout.messages,
    deliveryConsumed: deliveries.messages,
    deliveryInvocations: deliveries.invocations,
    retried,
    delivered,
    operations,
    operationsPerDelivery: operations / delivered,
  };
}

export { SEND_BATCH_MAX_MESSAGES };
