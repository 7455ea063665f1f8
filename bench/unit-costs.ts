/**
 * What the local runtime itself charges, in CPU time, for the operations the broker's pipeline is
 * made of: a D1 round trip, a D1 row written, a queue message sent and consumed. Measured on the
 * probe Worker (bench/probe), which does nothing else, so that the throughput figure can be
 * explained as a sum: the baseline pays one queue message and one `fetch` per delivery, the broker
 * pays those and the operations its contract needs.
 */
import { startLocalWorker } from "../test/node/local-worker";
import { HttpClient } from "./lib/http";
import { type RuntimeCpu, withCpuTime, withRuntimeCpu } from "./lib/runtime-cpu";
import { median } from "./lib/stats";
import type { BrokerPath, ThroughputRun } from "./throughput";

export interface UnitCosts {
  /** CPU ms of one D1 round trip (a batch of one `SELECT 1`). */
  d1RoundTrip: number;
  /** CPU ms per row of a batch inserting 100 rows bound as one JSON list, round trip excluded. */
  d1RowWritten: number;
  /** CPU ms per task-sized message sent with `sendBatch` (100 at a time) and consumed. */
  queueMessage: number;
}

const ROWS = 100;
const SETTLE_MS = 300;
const CONSUME_TIMEOUT_MS = 60_000;

/** Medians over `rounds` of each measurement; undefined where the runtime's CPU is unreadable. */
export async function measureUnitCosts(rounds: number): Promise<UnitCosts | undefined> {
  const { started: probe, cpu } = await withRuntimeCpu(() =>
    startLocalWorker({
      config: "bench/probe/wrangler.toml",
      databases: [{ name: "probe", migrationsDir: "migrations" }],
    }),
  );
  const http = new HttpClient(probe.url.origin, 1);
  try {
    if (cpu.readMs() === undefined) return undefined;
    const perCall = async (path: string, repeats: number) =>
      (await cpuOf(cpu, () => http.expect(200, "GET", `${path}n=${repeats}`))) / repeats;
    const queue = async (batches: number) => {
      const before = await consumed(http);
      const spent = await cpuOf(cpu, async () => {
        await http.expect(200, "GET", `/queue?rows=${ROWS}&n=${batches}`);
        await waitForConsumed(http, before + batches * ROWS);
      });
      return spent / (batches * ROWS);
    };

    // Warm-up: the first calls compile code and open the database.
    await perCall("/d1?", 50);
    await perCall(`/rows?rows=${ROWS}&`, 20);
    await queue(5);

    const roundTrips: number[] = [];
    const rowBatches: number[] = [];
    const messages: number[] = [];
    for (let round = 0; round < rounds; round++) {
      roundTrips.push(await perCall("/d1?", 500));
      rowBatches.push(await perCall(`/rows?rows=${ROWS}&`, 200));
      messages.push(await queue(24));
    }
    const d1RoundTrip = median(roundTrips);
    return {
      d1RoundTrip,
      d1RowWritten: Math.max(0, median(rowBatches) - d1RoundTrip) / ROWS,
      queueMessage: median(messages),
    };
  } finally {
    http.close();
    await probe.dispose();
  }
}

/** The runtime's CPU time over `work`, and over a short settle after it for work left running. */
async function cpuOf(cpu: RuntimeCpu, work: () => Promise<unknown>): Promise<number> {
  return (await withCpuTime(cpu, work, SETTLE_MS)).cpuMs ?? Number.NaN;
}

async function consumed(http: HttpClient): Promise<number> {
  const { body } = await http.expect(200, "GET", "/consumed");
  return (JSON.parse(body) as { consumed: number }).consumed;
}

async function waitForConsumed(http: HttpClient, target: number): Promise<void> {
  const deadline = performance.now() + CONSUME_TIMEOUT_MS;
  while ((await consumed(http)) < target) {
    if (performance.now() > deadline) throw new Error(`the probe consumed fewer than ${target}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** What the broker's own storage and queue operations cost per delivery, at the probe's prices. */
export interface OperationCost {
  d1RoundTripsPerDelivery: number;
  /** Queue messages besides the delivery task itself: the fan-out task. */
  extraQueueMessagesPerDelivery: number;
  cpuPerDelivery: number;
}

/**
 * The D1 round trips and queue messages the broker's runs on one path made, priced: one D1 batch
 * per publish call (two with inline fan-out: the record, then the marking after the send), one
 * read and one write per consumer invocation (fan-out and delivery), and each fan-out task. Rows
 * written are left out: a few per delivery, at a fraction of a round trip.
 */
export function operationCost(
  runs: readonly ThroughputRun[],
  path: BrokerPath,
  costs: UnitCosts,
  publishBatch: number,
): OperationCost {
  const own = runs.filter((run) => run.system === path);
  const deliveries = own.reduce((sum, run) => sum + run.messages, 0);
  let roundTrips = 0;
  let fanoutTasks = 0;
  for (const run of own) {
    const publishCalls = Math.ceil(run.messages / publishBatch);
    roundTrips += path === "broker" ? 2 * publishCalls : publishCalls;
    for (const [queue, totals] of run.queues) {
      if (queue.endsWith("-fanout")) fanoutTasks += totals.messages;
      if (queue.endsWith("-fanout") || queue.endsWith("-deliveries")) {
        roundTrips += 2 * totals.invocations;
      }
    }
  }
  const d1RoundTripsPerDelivery = roundTrips / deliveries;
  const extraQueueMessagesPerDelivery = fanoutTasks / deliveries;
  return {
    d1RoundTripsPerDelivery,
    extraQueueMessagesPerDelivery,
    cpuPerDelivery:
      d1RoundTripsPerDelivery * costs.d1RoundTrip +
      extraQueueMessagesPerDelivery * costs.queueMessage,
  };
}
