/**
 * `npm run bench`: every benchmark of the broker, each figure a ratio against a baseline measured
 * in the same run (absolute times drift on a shared machine). In order:
 *
 * 1. filter evaluation, ours against filtrex (`npm run bench:filter`, run as it is);
 * 2. publish latency against `GET /healthz` on the same local Worker;
 * 3. publish latency with 1 against 1,000 subscribers on the topic;
 * 4. end-to-end deliveries per second against a Worker that only moves queue messages to `fetch`;
 * 5. fan-out of one message to 10,000 subscribers, and the queue operations it took;
 * 6. what one delivery costs over its whole life at list prices, per workload (bench/cost/);
 * 7. whether retention keeps pace, and what one D1 database sustains (bench/retention/).
 *
 * Everything runs on loopback, in the runtime `wrangler dev` uses, with bounded request counts, and
 * is stopped at the end. `--quick` runs each part with small counts, to check that it works;
 * `--only=latency,fanout` runs only the named parts (filter, latency, subscribers, throughput,
 * fanout, cost, retention).
 */
import { spawn } from "node:child_process";
import { projectRoot, startLocalWorker } from "../test/node/local-worker";
import { measureLifetimeCost } from "./cost/part";
import {
  batchSize,
  costFor,
  observedCost,
  readConsumers,
  SEND_BATCH_MAX_MESSAGES,
} from "./cost-model";
import { FANOUT_CHANNEL, FANOUT_TOPIC, measureFanout } from "./fanout";
import { type BenchBroker, startBenchBroker } from "./lib/broker";
import { describeMachine } from "./lib/machine";
import { type QueueLog, type QueueTotals, tapQueueLog } from "./lib/queue-log";
import { withRuntimeCpu } from "./lib/runtime-cpu";
import { type Sink, startSink } from "./lib/sink";
import { count, ms, perSecond, ratio } from "./lib/stats";
import { measurePublishLatency } from "./publish-latency";
import { measureRetentionPart } from "./retention/part";
import { measureSubscriberCount, NEVER_MATCHES } from "./subscriber-count";
import { measureThroughput, PUBLISH_BATCH } from "./throughput";
import { measureUnitCosts, operationCost } from "./unit-costs";

const quick = process.argv.includes("--quick");
const only = process.argv
  .find((arg) => arg.startsWith("--only="))
  ?.slice("--only=".length)
  .split(",");
const PARTS = [
  "filter",
  "latency",
  "subscribers",
  "throughput",
  "fanout",
  "cost",
  "retention",
] as const;
/**
 * The parts measured on the broker as it is; the cost and retention parts each start their own
 * wrapper around it.
 */
const BROKER_PARTS = ["latency", "subscribers", "throughput", "fanout"] as const;
const unknown = only?.filter((part) => !(PARTS as readonly string[]).includes(part)) ?? [];
if (unknown.length > 0) throw new Error(`unknown part ${unknown.join(", ")}; parts: ${PARTS}`);
const runs = (part: (typeof PARTS)[number]) => only === undefined || only.includes(part);
const settings = quick
  ? {
      latencyRequests: 200,
      latencyBlocks: 2,
      warmup: 50,
      subscribers: 100,
      throughputMessages: 1_200,
      throughputRounds: 2,
      unitCostRounds: 1,
      fanoutSubscribers: 1_000,
    }
  : {
      latencyRequests: 2_000,
      latencyBlocks: 8,
      warmup: 200,
      subscribers: 1_000,
      // A multiple of both consumers' batch sizes (100 and 10, checked below): a last partial batch
      // would wait out max_batch_timeout (1 s) in the local queue, a constant that would flatter
      // the ratio.
      throughputMessages: 2_400,
      throughputRounds: 3,
      unitCostRounds: 3,
      fanoutSubscribers: 10_000,
    };
const CONCURRENCIES = [1, 16] as const;
const FANOUT_TIMEOUT_MS = 300_000;

const line = (text = "") => console.log(text);
const heading = (text: string) => line(`\n=== ${text} ===`);

async function main(): Promise<number> {
  const runStarted = performance.now();
  const machine = describeMachine();
  heading("Machine");
  line(`${machine.cpus} × ${machine.cpuModel}, ${machine.memoryGiB} GiB, ${machine.os}`);
  line(`node ${machine.node}, wrangler ${machine.wrangler}${quick ? " (--quick)" : ""}`);

  let filterExit = 0;
  if (runs("filter")) {
    heading("1. Filter evaluation (npm run bench:filter)");
    filterExit = await runFilterBench();
    if (filterExit !== 0) line(`npm run bench:filter exited with ${filterExit}; continuing`);
  }
  if (!PARTS.some((part) => part !== "filter" && runs(part))) return filterExit === 0 ? 0 : 1;

  const sink = await startSink();
  const queueLog = tapQueueLog();
  let broker: BenchBroker | undefined;
  try {
    if (BROKER_PARTS.some(runs)) {
      broker = await startBenchBroker({
        topic: FANOUT_TOPIC,
        subscribers: settings.fanoutSubscribers,
        url: `${sink.url}/${FANOUT_CHANNEL}`,
      });
      if (runs("latency")) await publishLatency(broker, sink);
      if (runs("subscribers")) await subscriberCount(broker, sink, queueLog);
      if (runs("throughput")) await throughput(broker, sink, queueLog);
      if (runs("fanout")) await fanoutAndCost(broker, sink, queueLog);
      // Its queues have the names the cost part's Worker uses: one local runtime at a time.
      const started = broker;
      broker = undefined;
      await started.dispose();
    }
    if (runs("cost")) {
      heading("6. Lifetime cost of a delivery at list prices");
      await measureLifetimeCost({ quick, sink, queueLog, line });
    }
    if (runs("retention")) {
      heading(
        `7. Retention against ${quick ? "20,000" : "600,000"} deliveries' rows, and what one D1 database sustains`,
      );
      await measureRetentionPart({ quick, sink, line });
    }
  } finally {
    await broker?.dispose();
    queueLog.stop();
    await sink.close();
  }
  line(`\nTotal run time: ${((performance.now() - runStarted) / 1000).toFixed(0)} s`);
  return filterExit === 0 ? 0 : 1;
}

function runFilterBench(): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn("npm", ["run", "--silent", "bench:filter"], {
      cwd: projectRoot,
      stdio: "inherit",
    });
    child.on("error", () => resolve(1));
    child.on("exit", (code) => resolve(code ?? 1));
  });
}

async function publishLatency(broker: BenchBroker, sink: Sink) {
  heading(
    `2. Publish latency vs GET /healthz (${count(settings.latencyRequests)} requests each per concurrency)`,
  );
  const rows = await measurePublishLatency({
    http: broker.http,
    publishToken: broker.publishToken,
    adminToken: broker.adminToken,
    sinkUrl: sink.url,
    requests: settings.latencyRequests,
    concurrencies: CONCURRENCIES,
    warmup: settings.warmup,
    blocks: settings.latencyBlocks,
  });
  line(
    "| concurrency | healthz p50 | healthz p99 | publish p50 | publish p99 | p50 ratio | p99 ratio | healthz rate | publish rate |",
  );
  line("|---|---|---|---|---|---|---|---|---|");
  for (const row of rows) {
    line(
      `| ${row.concurrency} | ${ms(row.healthz.p50)} | ${ms(row.healthz.p99)} | ${ms(row.publish.p50)} | ${ms(row.publish.p99)} | ${ratio(row.publish.p50 / row.healthz.p50)} | ${ratio(row.publish.p99 / row.healthz.p99)} | ${perSecond(row.healthzRate)} | ${perSecond(row.publishRate)} |`,
    );
  }
}

async function subscriberCount(broker: BenchBroker, sink: Sink, queueLog: QueueLog) {
  heading(
    `3. Publish with 1 vs ${count(settings.subscribers)} subscribers (filter ${NEVER_MATCHES}; ${count(settings.latencyRequests)} publishes each per concurrency)`,
  );
  const result = await measureSubscriberCount({
    http: broker.http,
    queueLog,
    adminToken: broker.adminToken,
    publishToken: broker.publishToken,
    sinkUrl: sink.url,
    subscribers: settings.subscribers,
    requests: settings.latencyRequests,
    concurrencies: CONCURRENCIES,
    warmup: settings.warmup,
    blocks: settings.latencyBlocks,
  });
  line(`subscribers created through the API: ${perSecond(result.createRate)} (16 in flight)`);
  line(
    `fan-out check on the large topic: matched ${result.check.matched}, filtered ${result.check.filtered}`,
  );
  line(
    "| concurrency | 1 sub p50 | 1 sub p99 | many p50 | many p99 | p50 ratio | p99 ratio | fan-out ms per invocation, 1 / many |",
  );
  line("|---|---|---|---|---|---|---|---|");
  for (const row of result.rows) {
    line(
      `| ${row.concurrency} | ${ms(row.one.p50)} | ${ms(row.one.p99)} | ${ms(row.thousand.p50)} | ${ms(row.thousand.p99)} | ${ratio(row.thousand.p50 / row.one.p50)} | ${ratio(row.thousand.p99 / row.one.p99)} | ${perInvocation(row.fanoutOne)} / ${perInvocation(row.fanoutThousand)} |`,
    );
  }
  if (sink.stats("never").arrivals > 0) {
    line(
      `warning: ${sink.stats("never").arrivals} deliveries reached the never-matching subscribers`,
    );
  }
}

/**
 * The baseline must batch as the broker's delivery queue does, or the ratio compares batch sizes;
 * and a run must fill every batch (see `throughputMessages`).
 */
async function checkThroughputSettings(messages: number): Promise<void> {
  const { fanoutBatch, deliveryBatch } = await readConsumers();
  const baselineBatch = await batchSize("bench/baseline/wrangler.toml", "-tasks");
  if (baselineBatch !== deliveryBatch) {
    throw new Error(
      `bench/baseline/wrangler.toml batches ${baselineBatch}, the delivery queue ${deliveryBatch}`,
    );
  }
  if (messages % fanoutBatch !== 0 || messages % deliveryBatch !== 0) {
    throw new Error(
      `${messages} messages do not fill batches of ${fanoutBatch} and ${deliveryBatch}`,
    );
  }
}

function perInvocation(totals: QueueTotals): string {
  const each = totals.invocations === 0 ? Number.NaN : totals.busyMs / totals.invocations;
  return `${each.toFixed(1)} (${totals.messages} messages in ${totals.invocations})`;
}

async function throughput(broker: BenchBroker, sink: Sink, queueLog: QueueLog) {
  heading(
    `4. End-to-end deliveries per second vs the baseline Worker (${count(settings.throughputMessages)} messages per run)`,
  );
  await checkThroughputSettings(settings.throughputMessages);
  const { started: baseline, cpu: baselineCpu } = await withRuntimeCpu(() =>
    startLocalWorker({
      config: "bench/baseline/wrangler.toml",
      vars: { SINK_URL: `${sink.url}/baseline` },
    }),
  );
  try {
    const result = await measureThroughput({
      broker,
      baselineUrl: baseline.url.origin,
      baselineCpu,
      sink,
      queueLog,
      messages: settings.throughputMessages,
      rounds: settings.throughputRounds,
      warmup: 120,
    });
    line(
      "| run | system | deliveries/s | first publish → last arrival | publishing took | runtime CPU | duplicates | consumer busy (queue: invocations, ms) |",
    );
    line("|---|---|---|---|---|---|---|---|");
    result.runs.forEach((run, index) => {
      const queues = [...run.queues]
        .map(([queue, totals]) => `${queue}: ${totals.invocations}, ${count(totals.busyMs)} ms`)
        .join("; ");
      line(
        `| ${index + 1} | ${run.system} | ${perSecond(run.perSecond)} | ${ms(run.ms)} | ${ms(run.publishMs)} | ${run.cpuMs === undefined ? "n/a" : `${count(run.cpuMs)} ms`} | ${run.duplicates} | ${queues} |`,
      );
    });
    const { systems, ratios } = result;
    const described = {
      broker: "broker (inline fan-out)",
      "broker-fanout": "broker (fan-out queue)",
    } as const;
    for (const path of ["broker", "broker-fanout"] as const) {
      line(
        `${described[path]} ${perSecond(systems[path].perSecond)}, baseline ${perSecond(systems.baseline.perSecond)}; ratio per round ${ratios[path].roundRatios.map(ratio).join(", ")}; median ${ratio(ratios[path].ratio)} (target ≥ 0.80×)`,
      );
    }
    const floorCpu = systems.baseline.cpuPerDelivery;
    if (floorCpu === undefined) {
      line("runtime CPU per delivery: n/a (read from /proc, on Linux only)");
      return;
    }
    const costs = await measureUnitCosts(settings.unitCostRounds);
    if (costs) {
      line(
        `local runtime unit costs (bench/probe, median of ${settings.unitCostRounds}): D1 round trip ${costs.d1RoundTrip.toFixed(3)} ms, D1 row written ${costs.d1RowWritten.toFixed(4)} ms, queue message sent and consumed ${costs.queueMessage.toFixed(3)} ms of CPU`,
      );
    }
    for (const path of ["broker", "broker-fanout"] as const) {
      const own = systems[path].cpuPerDelivery;
      if (own === undefined) continue;
      line(
        `${described[path]}: runtime CPU per delivery ${own.toFixed(3)} ms against the baseline's ${floorCpu.toFixed(3)} ms (baseline / broker ${ratio(floorCpu / own)})`,
      );
      if (!costs) continue;
      const operations = operationCost(result.runs, path, costs, PUBLISH_BATCH);
      line(
        `  its D1 round trips (${operations.d1RoundTripsPerDelivery.toFixed(3)} per delivery) and fan-out tasks (${operations.extraQueueMessagesPerDelivery.toFixed(2)} per delivery) cost ${operations.cpuPerDelivery.toFixed(3)} ms per delivery at these prices: with no CPU of its own beyond them, it would reach at most ${ratio(floorCpu / (floorCpu + operations.cpuPerDelivery))} of the baseline`,
      );
    }
  } finally {
    await baseline.dispose();
  }
}

async function fanoutAndCost(broker: BenchBroker, sink: Sink, queueLog: QueueLog) {
  heading(`5. Fan-out of one message to ${count(settings.fanoutSubscribers)} subscribers`);
  const result = await measureFanout({
    broker,
    sink,
    queueLog,
    subscribers: settings.fanoutSubscribers,
    timeoutMs: FANOUT_TIMEOUT_MS,
  });
  const deliveryRate = (result.distinct / (result.lastArrivalMs - result.firstArrivalMs)) * 1000;
  line(`publish answered: ${ms(result.publishMs)}`);
  line(
    `fan-out invocation done: ${ms(result.fanoutDoneMs)} after publish (the consumer itself: ${ms(result.fanoutInvocationMs)})`,
  );
  line(`first arrival: ${ms(result.firstArrivalMs)}; last arrival: ${ms(result.lastArrivalMs)}`);
  line(
    `arrivals ${count(result.arrivals)} (distinct ${count(result.distinct)}, retries seen ${result.retriesSeen}); ${perSecond(deliveryRate)} between first and last arrival`,
  );
  line(
    `message status: matched ${result.status.matched}, delivered ${count(result.status.delivered)}, other ${result.status.other}`,
  );
  for (const [queue, totals] of result.queues) {
    line(
      `${queue}: ${count(totals.invocations)} invocations, ${count(totals.messages)} messages, ${totals.retried} retried, consumer busy ${count(totals.busyMs)} ms`,
    );
  }

  heading("Cost model: queue operations per delivered message");
  const consumers = await readConsumers();
  line(
    `constants: sendBatch chunk ${SEND_BATCH_MAX_MESSAGES}, fan-out max_batch_size ${consumers.fanoutBatch}, delivery max_batch_size ${consumers.deliveryBatch}, inline fan-out up to ${consumers.inlineMaxSubscribers} subscribers`,
  );
  line(
    "| matching subscribers | fanned out by | producer calls | consumer invocations | billed operations | per delivery |",
  );
  line("|---|---|---|---|---|---|");
  const rows: [number, boolean][] = [
    [1, false],
    [1, true],
    [10, false],
    [10, true],
    [100, false],
    [settings.fanoutSubscribers, false],
  ];
  for (const [n, filtered] of rows) {
    const cost = costFor(n, consumers, filtered);
    const by = cost.inline ? "the publish" : filtered ? "the fan-out (a filter)" : "the fan-out";
    line(
      `| ${count(n)} | ${by} | ${count(cost.producerCalls)} | ${cost.invocations.toFixed(1)} | ${count(cost.operations)} | ${cost.operationsPerDelivery.toFixed(4)} |`,
    );
  }
  const observed = observedCost(result.queues, result.distinct);
  line(
    `observed for the ${count(settings.fanoutSubscribers)} fan-out: fan-out consumed ${observed.fanoutConsumed}, deliveries consumed ${count(observed.deliveryConsumed)} in ${count(observed.deliveryInvocations)} invocations, ${observed.retried} retried → ${count(observed.operations)} operations, ${observed.operationsPerDelivery.toFixed(4)} per delivery`,
  );
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  },
);
