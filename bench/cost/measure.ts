/**
 * One workload in one mode, from a fresh topic to the end of retention: set the topic and its
 * subscribers up (not counted), publish one request after another, wait until the sink has every
 * delivery and the broker is idle, run retention until nothing is left, and read the counters.
 */
import { type QueueLog, totalsByQueue } from "../lib/queue-log";
import type { ChannelStats, Sink } from "../lib/sink";
import { type RetentionResult, resetCounters, runRetentionToEnd, waitUntilIdle } from "./counters";
import type { CostWorker } from "./local";
import type { CostSnapshot } from "./snapshot";
import { publish, setUp } from "./traffic";
import type { Mode, Workload } from "./workloads";

export interface WorkloadRun {
  workload: Workload;
  mode: Mode;
  messages: number;
  /** Deliveries the workload asks for: messages × subscribers. */
  deliveries: number;
  arrivals: ChannelStats;
  /** Everything from the first publish to the end of retention. */
  counters: CostSnapshot;
  retention: RetentionResult;
  /**
   * Runtime CPU over the deliveries and retention, less what the bench's reads of the counters
   * cost; undefined where unreadable.
   */
  cpuMs: number | undefined;
  /** Consumer invocations per queue as the runtime's own log lines counted them. */
  loggedInvocations: Record<string, number>;
}

const SETUP_IDLE_TIMEOUT_MS = 60_000;
const IDLE_TIMEOUT_MS = 120_000;

export interface RunContext {
  worker: CostWorker;
  sink: Sink;
  queueLog: QueueLog;
  /** Runtime CPU of one read of the counters (see `readCost`). */
  readCpuMs: number | undefined;
}

export async function runWorkload(
  { worker, sink, queueLog, readCpuMs }: RunContext,
  workload: Workload,
  mode: Mode,
): Promise<WorkloadRun> {
  const { http } = worker;
  const topic = `cost-${mode.name}-${workload.slug}`;
  await setUp(worker, sink.url, workload, mode, topic);
  await waitUntilIdle(http, SETUP_IDLE_TIMEOUT_MS);
  sink.reset(topic);
  await resetCounters(http);
  const mark = queueLog.mark();
  const cpuBefore = worker.cpu.readMs();

  const messages = workload.publishes * workload.messagesPerPublish;
  const deliveries = messages * workload.subscribers;
  for (let request = 0; request < workload.publishes; request++) {
    await publish(worker, workload, topic, request);
  }
  await sink.waitFor(topic, deliveries, 60_000 + 30 * deliveries);
  const delivered = await waitUntilIdle(http, IDLE_TIMEOUT_MS);
  const retention = await runRetentionToEnd(http, worker.retentionDays);
  const { counters, reads } = await waitUntilIdle(http, IDLE_TIMEOUT_MS);

  const cpuAfter = worker.cpu.readMs();
  const readsCpu = (delivered.reads + reads) * (readCpuMs ?? Number.NaN);
  const logged = totalsByQueue(queueLog.since(mark));
  return {
    workload,
    mode,
    messages,
    deliveries,
    arrivals: sink.stats(topic),
    counters,
    retention,
    cpuMs:
      cpuBefore === undefined || cpuAfter === undefined || Number.isNaN(readsCpu)
        ? undefined
        : Math.max(0, cpuAfter - cpuBefore - readsCpu),
    loggedInvocations: Object.fromEntries(
      [...logged].map(([queue, totals]) => [queue, totals.invocations]),
    ),
  };
}
