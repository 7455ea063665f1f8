/**
 * A workload run's counters turned into the figures the report prints: totals that stay exact
 * counts, the stages' shares of them, and the price per million deliveries.
 */

import type { WorkloadRun } from "./measure";
import {
  type CostPerMillion,
  costPerMillionDeliveries,
  QSTASH_PER_MILLION_DELIVERIES,
  queueOperations,
  snsPerMillionDeliveries,
} from "./prices";
import type { CostSnapshot } from "./snapshot";
import { PUBLISH_KIND, RETENTION_KIND } from "./worker";

export interface Figures {
  run: WorkloadRun;
  /** The stages in pipeline order: the publish, each queue's consumer, retention. */
  stages: string[];
  rowsWritten: number;
  rowsWrittenBy: Record<string, number>;
  rowsRead: number;
  statements: number;
  roundTrips: number;
  /** Statements whose rows the database did not report. */
  unmetered: number;
  queueOperations: number;
  queueMessagesSent: number;
  consumed: number;
  retried: number;
  requests: number;
  consumerInvocations: number;
  invocationsBy: Record<string, number>;
  cost: CostPerMillion;
  qstash: number;
  sns: number;
}

/** `queues`: the consumers' queue names in the config's order. */
export function figuresOf(run: WorkloadRun, queues: readonly string[]): Figures {
  const { counters } = run;
  const stages = [PUBLISH_KIND, ...queues, RETENTION_KIND];
  for (const kind of Object.keys(counters.d1)) if (!stages.includes(kind)) stages.push(kind);
  const d1 = Object.values(counters.d1);
  const sum = (values: number[]) => values.reduce((total, value) => total + value, 0);
  const rowsWritten = sum(d1.map((tally) => tally.rowsWritten));
  const rowsRead = sum(d1.map((tally) => tally.rowsRead));
  const consumed = Object.values(counters.consumed);
  const consumerInvocations = sum(consumed.map((tally) => tally.invocations));
  const queueOps = operationsOf(counters);
  const cost = costPerMillionDeliveries({
    deliveries: run.deliveries,
    d1RowsWritten: rowsWritten,
    d1RowsRead: rowsRead,
    queueOperations: queueOps,
    invocations: counters.requests + consumerInvocations,
    cpuMs: run.cpuMs,
  });
  return {
    run,
    stages,
    rowsWritten,
    rowsWrittenBy: Object.fromEntries(
      stages.map((kind) => [kind, counters.d1[kind]?.rowsWritten ?? 0]),
    ),
    rowsRead,
    statements: sum(d1.map((tally) => tally.statements)),
    roundTrips: sum(d1.map((tally) => tally.roundTrips)),
    unmetered: sum(d1.map((tally) => tally.unmetered)),
    queueOperations: queueOps,
    queueMessagesSent: sum(Object.values(counters.sent).map((tally) => tally.messages)),
    consumed: sum(consumed.map((tally) => tally.messages)),
    retried: sum(consumed.map((tally) => tally.retried)),
    requests: counters.requests,
    consumerInvocations,
    invocationsBy: Object.fromEntries(
      Object.entries(counters.consumed).map(([queue, tally]) => [queue, tally.invocations]),
    ),
    cost,
    qstash: QSTASH_PER_MILLION_DELIVERIES,
    sns: snsPerMillionDeliveries(run.deliveries, run.messages),
  };
}

/**
 * Per queue: every message is written once and deleted once (a message the platform moved to a
 * dead-letter queue was written there without a producer call, hence the larger of the two), and
 * read once per consumption.
 */
function operationsOf(counters: CostSnapshot): number {
  const queues = new Set([...Object.keys(counters.sent), ...Object.keys(counters.consumed)]);
  let operations = 0;
  for (const queue of queues) {
    const sent = counters.sent[queue]?.units ?? 0;
    const consumed = counters.consumed[queue];
    operations += queueOperations({
      writtenUnits: Math.max(sent, consumed?.distinctUnits ?? 0),
      readUnits: consumed?.units ?? 0,
    });
  }
  return operations;
}

/** How the report names a stage: a queue by what its consumer does. */
export function stageName(kind: string): string {
  if (kind === PUBLISH_KIND) return "publish";
  if (kind === RETENTION_KIND) return "retention";
  if (kind.endsWith("-fanout")) return "fan-out";
  if (kind.endsWith("-deliveries")) return "delivery";
  if (kind.endsWith("-dead-letters")) return "dead letters";
  return kind;
}
