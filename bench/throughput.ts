/**
 * End-to-end deliveries per second: messages published to a topic with one subscriber, until the
 * last one reaches the sink, against the baseline Worker (bench/baseline), which only moves
 * queue messages to `fetch`, with the same batching and the same sink. The broker is measured
 * twice per round: on a topic whose subscriber has no filter, which the publish fans out itself
 * (inline fan-out), and on one whose subscriber has a filter that every message matches, which
 * goes through the fan-out queue. Each round runs the three in turn, starting with a different
 * one, so that drift on a shared machine hits all alike.
 */
import type { BenchBroker } from "./lib/broker";
import { closedLoop, HttpClient } from "./lib/http";
import type { QueueLog } from "./lib/queue-log";
import { type QueueTotals, totalsByQueue } from "./lib/queue-log";
import { type RuntimeCpu, withCpuTime } from "./lib/runtime-cpu";
import type { ChannelStats, Sink } from "./lib/sink";
import { median } from "./lib/stats";

/** The broker on each path, and the baseline. */
export type ThroughputSystem = "broker" | "broker-fanout" | "baseline";
export type BrokerPath = Exclude<ThroughputSystem, "baseline">;

export interface ThroughputRun {
  system: ThroughputSystem;
  messages: number;
  /** From the first publish to the last arrival at the sink. */
  ms: number;
  perSecond: number;
  /** From the first publish until every publish was answered (or the baseline enqueued all). */
  publishMs: number;
  /** CPU time of the system's runtime processes over the run; undefined where unreadable. */
  cpuMs: number | undefined;
  duplicates: number;
  queues: Map<string, QueueTotals>;
}

export interface SystemSummary {
  /** Deliveries per second over all of the system's runs. */
  perSecond: number;
  /** Runtime CPU per delivery over all of its runs, in ms; undefined where unreadable. */
  cpuPerDelivery: number | undefined;
}

export interface PathRatio {
  /** Median over rounds of this path / baseline, each round measured back to back. */
  ratio: number;
  roundRatios: number[];
}

export interface ThroughputResult {
  runs: ThroughputRun[];
  systems: Record<ThroughputSystem, SystemSummary>;
  ratios: Record<BrokerPath, PathRatio>;
}

export interface ThroughputOptions {
  broker: BenchBroker;
  baselineUrl: string;
  baselineCpu: RuntimeCpu;
  sink: Sink;
  queueLog: QueueLog;
  messages: number;
  rounds: number;
  warmup: number;
}

/** A topic of the workload: its name, the sink channel of its one subscriber, and its filter. */
export interface Workload {
  topic: string;
  channel: string;
  filter?: string;
}

/** The subscriber takes everything: the publish fans the messages out itself. */
export const INLINE_WORKLOAD: Workload = { topic: "bench-e2e", channel: "e2e" };
/** The subscriber's filter matches every message, so the fan-out queue must evaluate it. */
export const FANOUT_WORKLOAD: Workload = {
  topic: "bench-e2e-filtered",
  channel: "e2e-filtered",
  filter: 'body.category == "food"',
};

/** The publish batch endpoint's limit; the baseline enqueues with sendBatch calls of the same size. */
export const PUBLISH_BATCH = 100;
const ARRIVAL_TIMEOUT_MS = 180_000;
const SETTLE_MS = 1_000;
const SYSTEMS: readonly ThroughputSystem[] = ["broker", "broker-fanout", "baseline"];

/** Keep in step with `messageBody` in bench/baseline/worker.ts: both sides send the same bytes. */
function messageBody(index: number) {
  return { orderId: index, category: "food", total: 12.5, currency: "EUR" };
}

/** Creates the workload's topic on `broker`, with its one subscriber at the sink. */
export async function prepareWorkload(
  broker: BenchBroker,
  sink: Sink,
  workload: Workload,
): Promise<void> {
  const { http, adminToken } = broker;
  await http.expect(201, "POST", "/v1/topics", {
    token: adminToken,
    json: { name: workload.topic },
  });
  await http.expect(201, "POST", `/v1/topics/${workload.topic}/subscribers`, {
    token: adminToken,
    json: {
      url: `${sink.url}/${workload.channel}`,
      ...(workload.filter === undefined ? {} : { filter: workload.filter }),
    },
  });
}

/** Message numbers, shared by the runs of one process so that idempotency keys never repeat. */
let sequence = 0;

/**
 * Publishes `messages` (batches of 100, one call at a time, each message with an idempotency key)
 * to the workload's topic and waits until its sink channel has them all.
 */
export async function publishAndDeliver(
  broker: BenchBroker,
  sink: Sink,
  workload: Workload,
  messages: number,
): Promise<{ started: number; publishMs: number; stats: ChannelStats }> {
  sink.reset(workload.channel);
  const started = performance.now();
  const batches = Math.ceil(messages / PUBLISH_BATCH);
  await closedLoop(batches, 1, async (batch) => {
    const size = Math.min(PUBLISH_BATCH, messages - batch * PUBLISH_BATCH);
    const envelopes = Array.from({ length: size }, () => {
      const index = sequence++;
      return { body: messageBody(index), idempotencyKey: `e2e-${index}` };
    });
    const result = await broker.http.expect(
      202,
      "POST",
      `/v1/topics/${workload.topic}/messages/batch`,
      { token: broker.publishToken, json: { messages: envelopes } },
    );
    return result.ms;
  });
  const publishMs = performance.now() - started;
  const stats = await sink.waitFor(workload.channel, messages, ARRIVAL_TIMEOUT_MS);
  return { started, publishMs, stats };
}

export async function measureThroughput(options: ThroughputOptions): Promise<ThroughputResult> {
  const { broker, sink } = options;
  await prepareWorkload(broker, sink, INLINE_WORKLOAD);
  await prepareWorkload(broker, sink, FANOUT_WORKLOAD);
  const baseline = new HttpClient(options.baselineUrl, 4);

  const runBaseline = async (messages: number) => {
    sink.reset("baseline");
    const started = performance.now();
    await baseline.expect(200, "GET", `/enqueue?n=${messages}&run=${sequence++}`);
    const publishMs = performance.now() - started;
    const stats = await sink.waitFor("baseline", messages, ARRIVAL_TIMEOUT_MS);
    return { started, publishMs, stats };
  };
  const run = (system: ThroughputSystem, messages: number) =>
    system === "baseline"
      ? runBaseline(messages)
      : publishAndDeliver(
          broker,
          sink,
          system === "broker" ? INLINE_WORKLOAD : FANOUT_WORKLOAD,
          messages,
        );

  const measure = async (system: ThroughputSystem): Promise<ThroughputRun> => {
    const mark = options.queueLog.mark();
    const cpu = system === "baseline" ? options.baselineCpu : broker.cpu;
    // The settle lets the last batch report, so the queue counts below (and the CPU time) belong
    // to this run and not to the next.
    const { result, cpuMs } = await withCpuTime(
      cpu,
      () => run(system, options.messages),
      SETTLE_MS,
    );
    const { started, publishMs, stats } = result;
    const ms = (stats.lastAt ?? Number.NaN) - started;
    return {
      system,
      messages: options.messages,
      ms,
      perSecond: (options.messages / ms) * 1000,
      publishMs,
      cpuMs,
      duplicates: stats.arrivals - stats.distinct,
      queues: totalsByQueue(options.queueLog.since(mark)),
    };
  };

  try {
    for (const system of SYSTEMS) await run(system, options.warmup);
    await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));

    const runs: ThroughputRun[] = [];
    const roundRatios: Record<BrokerPath, number[]> = { broker: [], "broker-fanout": [] };
    for (let round = 0; round < options.rounds; round++) {
      const first = round % SYSTEMS.length;
      const order = [...SYSTEMS.slice(first), ...SYSTEMS.slice(0, first)];
      const measured = new Map<ThroughputSystem, ThroughputRun>();
      for (const system of order) {
        const result = await measure(system);
        measured.set(system, result);
        runs.push(result);
      }
      const floor = measured.get("baseline");
      for (const path of ["broker", "broker-fanout"] as const) {
        const own = measured.get(path);
        if (own && floor) roundRatios[path].push(own.perSecond / floor.perSecond);
      }
    }
    const summary = (system: ThroughputSystem): SystemSummary => {
      const own = runs.filter((result) => result.system === system);
      const deliveries = own.reduce((sum, result) => sum + result.messages, 0);
      let cpuMs: number | undefined = 0;
      for (const result of own) {
        cpuMs =
          cpuMs === undefined || result.cpuMs === undefined ? undefined : cpuMs + result.cpuMs;
      }
      return {
        perSecond: (deliveries / own.reduce((sum, result) => sum + result.ms, 0)) * 1000,
        cpuPerDelivery: cpuMs === undefined ? undefined : cpuMs / deliveries,
      };
    };
    const pathRatio = (path: BrokerPath): PathRatio => ({
      ratio: median(roundRatios[path]),
      roundRatios: roundRatios[path],
    });
    return {
      runs,
      systems: {
        broker: summary("broker"),
        "broker-fanout": summary("broker-fanout"),
        baseline: summary("baseline"),
      },
      ratios: { broker: pathRatio("broker"), "broker-fanout": pathRatio("broker-fanout") },
    };
  } finally {
    baseline.close();
  }
}
