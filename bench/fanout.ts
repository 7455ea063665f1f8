/**
 * One message to a topic with 10,000 subscribers (seeded in D1 before the Worker started, no
 * filters, all pointing at the sink): how long until the fan-out is recorded and every delivery
 * has arrived, and which queue operations it took.
 */
import type { BenchBroker } from "./lib/broker";
import { pollUntil } from "./lib/http";
import { type QueueLog, type QueueTotals, totalsByQueue } from "./lib/queue-log";
import type { Sink } from "./lib/sink";

export const FANOUT_TOPIC = "bench-fanout";
export const FANOUT_CHANNEL = "fanout";

export interface FanoutResult {
  subscribers: number;
  publishMs: number;
  /** From the publish until the fan-out consumer's invocation for the message ended. */
  fanoutDoneMs: number;
  /** The fan-out consumer's own duration for that invocation. */
  fanoutInvocationMs: number;
  firstArrivalMs: number;
  lastArrivalMs: number;
  arrivals: number;
  distinct: number;
  retriesSeen: number;
  queues: Map<string, QueueTotals>;
  status: { matched: number | null; delivered: number; other: number };
}

export interface FanoutOptions {
  broker: BenchBroker;
  sink: Sink;
  queueLog: QueueLog;
  subscribers: number;
  timeoutMs: number;
}

/** After the last arrival, how long to keep watching for late retries and duplicates. */
const SETTLE_MS = 3000;

export async function measureFanout(options: FanoutOptions): Promise<FanoutResult> {
  const { broker, sink, queueLog } = options;
  sink.reset(FANOUT_CHANNEL);
  const mark = queueLog.mark();
  const started = performance.now();
  const published = await broker.http.expect(202, "POST", `/v1/topics/${FANOUT_TOPIC}/messages`, {
    token: broker.publishToken,
    json: { body: { orderId: 1, category: "food", total: 12.5, currency: "EUR" } },
    headers: { "idempotency-key": "fanout-1" },
  });
  const publishMs = performance.now() - started;
  const { id } = JSON.parse(published.body) as { id: string };

  const stats = await sink.waitFor(FANOUT_CHANNEL, options.subscribers, options.timeoutMs);
  // Let the last delivery batch finish and report before counting the queues' work.
  await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
  const batches = queueLog.since(mark);
  const fanout = batches.find((batch) => batch.queue.endsWith("-fanout"));
  const after = sink.stats(FANOUT_CHANNEL);

  let status = { matched: null as number | null, delivered: 0, other: 0 };
  await pollUntil(
    "every delivery recorded",
    async () => {
      const result = await broker.http.expect(200, "GET", `/v1/messages/${id}`, {
        token: broker.adminToken,
      });
      const body = JSON.parse(result.body) as {
        matched: number | null;
        deliveries: { state: string }[];
      };
      const delivered = body.deliveries.filter((d) => d.state === "delivered").length;
      status = { matched: body.matched, delivered, other: body.deliveries.length - delivered };
      return delivered >= options.subscribers;
    },
    30_000,
    500,
  );

  return {
    subscribers: options.subscribers,
    publishMs,
    fanoutDoneMs: (fanout?.at ?? Number.NaN) - started,
    fanoutInvocationMs: fanout?.ms ?? Number.NaN,
    firstArrivalMs: (stats.firstAt ?? Number.NaN) - started,
    lastArrivalMs: (stats.lastAt ?? Number.NaN) - started,
    arrivals: after.arrivals,
    distinct: after.distinct,
    retriesSeen: after.retries,
    queues: totalsByQueue(batches),
    status,
  };
}
