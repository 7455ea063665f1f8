/**
 * End-to-end deliveries per second: messages published to a topic with one subscriber, until the
 * last one reaches the sink, against the baseline Worker (bench/baseline), which only moves
 * queue messages to `fetch`, with the same batching and the same sink. Runs alternate between
 * the two so that drift on a shared machine hits both alike.
 */
import type { BenchBroker } from "./lib/broker";
import { closedLoop, HttpClient } from "./lib/http";
import type { QueueLog } from "./lib/queue-log";
import { type QueueTotals, totalsByQueue } from "./lib/queue-log";
import type { RuntimeCpu } from "./lib/runtime-cpu";
import type { ChannelStats, Sink } from "./lib/sink";
import { median } from "./lib/stats";

export interface ThroughputRun {
  system: "broker" | "baseline";
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

export interface ThroughputResult {
  runs: ThroughputRun[];
  broker: number;
  baseline: number;
  /** Median over rounds of broker / baseline, each round measured back to back. */
  ratio: number;
  roundRatios: number[];
  /** Runtime CPU per delivery over all runs, in ms; undefined where unreadable. */
  cpuPerDelivery: { broker: number | undefined; baseline: number | undefined };
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

const TOPIC = "bench-e2e";
/** The publish batch endpoint's limit; the baseline enqueues with sendBatch calls of the same size. */
export const PUBLISH_BATCH = 100;
const ARRIVAL_TIMEOUT_MS = 180_000;
const SETTLE_MS = 1_000;

/** Keep in step with `messageBody` in bench/baseline/worker.ts: both sides send the same bytes. */
function messageBody(index: number) {
  return { orderId: index, category: "food", total: 12.5, currency: "EUR" };
}

/** The workload's topic on `broker`, with one subscriber (no filter) at the sink's `channel`. */
export async function prepareWorkload(
  broker: BenchBroker,
  sink: Sink,
  channel: string,
): Promise<void> {
  const { http, adminToken } = broker;
  await http.expect(201, "POST", "/v1/topics", { token: adminToken, json: { name: TOPIC } });
  await http.expect(201, "POST", `/v1/topics/${TOPIC}/subscribers`, {
    token: adminToken,
    json: { url: `${sink.url}/${channel}` },
  });
}

/** Message numbers, shared by the runs of one process so that idempotency keys never repeat. */
let sequence = 0;

/**
 * Publishes `messages` (batches of 100, one call at a time, each message with an idempotency key)
 * to the workload's topic and waits until the sink's `channel` has them all.
 */
export async function publishAndDeliver(
  broker: BenchBroker,
  sink: Sink,
  channel: string,
  messages: number,
): Promise<{ started: number; publishMs: number; stats: ChannelStats }> {
  sink.reset(channel);
  const started = performance.now();
  const batches = Math.ceil(messages / PUBLISH_BATCH);
  await closedLoop(batches, 1, async (batch) => {
    const size = Math.min(PUBLISH_BATCH, messages - batch * PUBLISH_BATCH);
    const envelopes = Array.from({ length: size }, () => {
      const index = sequence++;
      return { body: messageBody(index), idempotencyKey: `e2e-${index}` };
    });
    const result = await broker.http.expect(202, "POST", `/v1/topics/${TOPIC}/messages/batch`, {
      token: broker.publishToken,
      json: { messages: envelopes },
    });
    return result.ms;
  });
  const publishMs = performance.now() - started;
  const stats = await sink.waitFor(channel, messages, ARRIVAL_TIMEOUT_MS);
  return { started, publishMs, stats };
}

export async function measureThroughput(options: ThroughputOptions): Promise<ThroughputResult> {
  const { broker, sink } = options;
  await prepareWorkload(broker, sink, "e2e");
  const baseline = new HttpClient(options.baselineUrl, 4);
  const runBroker = (messages: number) => publishAndDeliver(broker, sink, "e2e", messages);

  const runBaseline = async (messages: number) => {
    sink.reset("baseline");
    const started = performance.now();
    await baseline.expect(200, "GET", `/enqueue?n=${messages}&run=${sequence++}`);
    const publishMs = performance.now() - started;
    const stats = await sink.waitFor("baseline", messages, ARRIVAL_TIMEOUT_MS);
    return { started, publishMs, stats };
  };

  const measure = async (system: ThroughputRun["system"]): Promise<ThroughputRun> => {
    const mark = options.queueLog.mark();
    const cpu = system === "broker" ? broker.cpu : options.baselineCpu;
    const cpuBefore = cpu.readMs();
    const { started, publishMs, stats } =
      system === "broker" ? await runBroker(options.messages) : await runBaseline(options.messages);
    const ms = (stats.lastAt ?? Number.NaN) - started;
    // The last batch reports after its last request arrived; let it, so the queue counts below
    // (and the CPU time) belong to this run and not to the next.
    await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
    const cpuAfter = cpu.readMs();
    return {
      system,
      messages: options.messages,
      ms,
      perSecond: (options.messages / ms) * 1000,
      publishMs,
      cpuMs: cpuBefore === undefined || cpuAfter === undefined ? undefined : cpuAfter - cpuBefore,
      duplicates: stats.arrivals - stats.distinct,
      queues: totalsByQueue(options.queueLog.since(mark)),
    };
  };

  try {
    await runBroker(options.warmup);
    await runBaseline(options.warmup);
    await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));

    const runs: ThroughputRun[] = [];
    const roundRatios: number[] = [];
    for (let round = 0; round < options.rounds; round++) {
      const order =
        round % 2 === 0 ? (["broker", "baseline"] as const) : (["baseline", "broker"] as const);
      const pair: Partial<Record<ThroughputRun["system"], ThroughputRun>> = {};
      for (const system of order) {
        const run = await measure(system);
        pair[system] = run;
        runs.push(run);
      }
      if (pair.broker && pair.baseline) {
        roundRatios.push(pair.broker.perSecond / pair.baseline.perSecond);
      }
    }
    const rate = (system: ThroughputRun["system"]) => {
      const own = runs.filter((run) => run.system === system);
      const total = own.reduce((sum, run) => sum + run.messages, 0);
      return (total / own.reduce((sum, run) => sum + run.ms, 0)) * 1000;
    };
    const cpuPerDelivery = (system: ThroughputRun["system"]) => {
      const own = runs.filter((run) => run.system === system);
      let cpuMs = 0;
      for (const run of own) {
        if (run.cpuMs === undefined) return undefined;
        cpuMs += run.cpuMs;
      }
      return cpuMs / own.reduce((sum, run) => sum + run.messages, 0);
    };
    return {
      runs,
      broker: rate("broker"),
      baseline: rate("baseline"),
      ratio: median(roundRatios),
      roundRatios,
      cpuPerDelivery: { broker: cpuPerDelivery("broker"), baseline: cpuPerDelivery("baseline") },
    };
  } finally {
    baseline.close();
  }
}
