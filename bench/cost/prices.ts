/**
 * What a delivery costs at list prices (December 2026), from counts of what it used, and what the
 * same deliveries would cost on two hosted services. Pure arithmetic, no I/O, so that it can be
 * checked on its own.
 */

/** Dollars per million units. */
export interface Prices {
  d1RowWritten: number;
  d1RowRead: number;
  /** Each 64 KB of a message written, read or deleted. */
  queueOperation: number;
  /** Publish requests, consumer invocations and cron runs alike. */
  workerRequest: number;
  cpuMs: number;
}

export const LIST_PRICES: Prices = {
  d1RowWritten: 1.0,
  d1RowRead: 0.001,
  queueOperation: 0.4,
  workerRequest: 0.3,
  cpuMs: 0.02,
};

/** QStash: $1 per 100,000 deliveries, every attempt counted. */
export const QSTASH_PER_MILLION_DELIVERIES = 10;
/** SNS: per million publishes, and per million HTTP deliveries. */
export const SNS_PER_MILLION_PUBLISHES = 0.5;
export const SNS_PER_MILLION_HTTP_DELIVERIES = 0.6;

/** Totals over a workload. */
export interface Usage {
  deliveries: number;
  d1RowsWritten: number;
  d1RowsRead: number;
  queueOperations: number;
  /** Worker invocations: publish requests and consumer invocations. */
  invocations: number;
  /** Undefined where it could not be measured; it then counts as nothing in the total. */
  cpuMs: number | undefined;
}

/** Dollars per million deliveries, by what is billed. */
export interface CostPerMillion {
  d1Writes: number;
  d1Reads: number;
  queue: number;
  invocations: number;
  cpu: number | undefined;
  total: number;
}

/**
 * Per million deliveries, a count per delivery costs that count times the price per million:
 * 7 rows written per delivery cost $7 per million deliveries.
 */
export function costPerMillionDeliveries(usage: Usage, prices = LIST_PRICES): CostPerMillion {
  const each = (total: number, price: number) => (total / usage.deliveries) * price;
  const d1Writes = each(usage.d1RowsWritten, prices.d1RowWritten);
  const d1Reads = each(usage.d1RowsRead, prices.d1RowRead);
  const queue = each(usage.queueOperations, prices.queueOperation);
  const invocations = each(usage.invocations, prices.workerRequest);
  const cpu = usage.cpuMs === undefined ? undefined : each(usage.cpuMs, prices.cpuMs);
  return {
    d1Writes,
    d1Reads,
    queue,
    invocations,
    cpu,
    total: d1Writes + d1Reads + queue + invocations + (cpu ?? 0),
  };
}

/** One queue's billed operations: every message written and deleted once, read per consumption. */
export function queueOperations(queue: { writtenUnits: number; readUnits: number }): number {
  return 2 * queue.writtenUnits + queue.readUnits;
}

/** SNS bills each message published and each HTTP delivery: it depends on deliveries per message. */
export function snsPerMillionDeliveries(deliveries: number, messages: number): number {
  return SNS_PER_MILLION_HTTP_DELIVERIES + (SNS_PER_MILLION_PUBLISHES * messages) / deliveries;
}
