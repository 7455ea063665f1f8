/**
 * Publish latency on a topic with 1 subscriber against one with 1,000. Publishing never reads the
 * subscribers (the fan-out consumer does, later), so the ratio should be about 1. The subscribers
 * are active and carry a filter that matches nothing: every publish makes the fan-out consumer
 * load and evaluate all of them, as with real subscribers, but nothing is delivered, so delivery
 * traffic does not muddy the publish timings.
 */
import { closedLoop, type HttpClient, pollUntil } from "./lib/http";
import { type QueueLog, type QueueTotals, totalsByQueue } from "./lib/queue-log";
import { type LatencySummary, summarize } from "./lib/stats";
import { publishBody } from "./publish-latency";

export const NEVER_MATCHES = "body.never == 1";

export interface SubscriberCountRow {
  concurrency: number;
  one: LatencySummary;
  thousand: LatencySummary;
  /** The fan-out consumer's work while each topic's blocks ran (and drained). */
  fanoutOne: QueueTotals;
  fanoutThousand: QueueTotals;
}

export interface SubscriberCountResult {
  rows: SubscriberCountRow[];
  /** Subscribers created through the API per second, at the creation concurrency. */
  createRate: number;
  /** The fan-out's own account of the last message on the large topic. */
  check: { matched: number | null; filtered: number | null };
}

export interface SubscriberCountOptions {
  http: HttpClient;
  queueLog: QueueLog;
  adminToken: string;
  publishToken: string;
  /** Where the subscribers point; never called, since the filter never matches. */
  sinkUrl: string;
  subscribers: number;
  requests: number;
  concurrencies: readonly number[];
  warmup: number;
  blocks: number;
}

const SMALL = "bench-subs-1" as const;
const LARGE = "bench-subs-1000" as const;
const CREATE_CONCURRENCY = 16;
const DRAIN_TIMEOUT_MS = 120_000;

export async function measureSubscriberCount(
  options: SubscriberCountOptions,
): Promise<SubscriberCountResult> {
  const { http, adminToken, publishToken } = options;
  for (const name of [SMALL, LARGE]) {
    await http.expect(201, "POST", "/v1/topics", { token: adminToken, json: { name } });
  }
  const subscriber = { url: `${options.sinkUrl}/never`, filter: NEVER_MATCHES };
  await http.expect(201, "POST", `/v1/topics/${SMALL}/subscribers`, {
    token: adminToken,
    json: subscriber,
  });
  const createStarted = performance.now();
  await closedLoop(options.subscribers, CREATE_CONCURRENCY, async () => {
    const result = await http.expect(201, "POST", `/v1/topics/${LARGE}/subscribers`, {
      token: adminToken,
      json: subscriber,
    });
    return result.ms;
  });
  const createRate = (options.subscribers / (performance.now() - createStarted)) * 1000;

  let sequence = 0;
  let lastId = "";
  const publishTo = (topic: string) => async () => {
    const index = sequence++;
    const result = await http.expect(202, "POST", `/v1/topics/${topic}/messages`, {
      token: publishToken,
      json: publishBody(index),
      headers: { "idempotency-key": `subs-${index}` },
    });
    lastId = (JSON.parse(result.body) as { id: string }).id;
    return result.ms;
  };
  const status = async (id: string) => {
    const result = await http.expect(200, "GET", `/v1/messages/${id}`, { token: adminToken });
    return JSON.parse(result.body) as {
      state: string;
      matched: number | null;
      filtered: number | null;
    };
  };
  // Each block starts with the fan-out queue empty, so a block pays for its own fan-out work
  // (which runs beside it, as it would under steady publishing) and not for the previous one's.
  const drain = () =>
    pollUntil(
      "fan-out of the last message",
      async () => lastId === "" || (await status(lastId)).state === "dispatched",
      DRAIN_TIMEOUT_MS,
    );

  for (const topic of [SMALL, LARGE]) {
    await closedLoop(options.warmup, 4, publishTo(topic));
    await drain();
  }

  const rows: SubscriberCountRow[] = [];
  for (const concurrency of options.concurrencies) {
    const samples: Record<typeof SMALL | typeof LARGE, number[]> = { [SMALL]: [], [LARGE]: [] };
    const fanout: Record<typeof SMALL | typeof LARGE, QueueTotals[]> = { [SMALL]: [], [LARGE]: [] };
    const perBlock = Math.ceil(options.requests / options.blocks);
    for (let block = 0; block < options.blocks; block++) {
      const order = block % 2 === 0 ? ([SMALL, LARGE] as const) : ([LARGE, SMALL] as const);
      for (const topic of order) {
        await drain();
        const mark = options.queueLog.mark();
        samples[topic].push(...(await closedLoop(perBlock, concurrency, publishTo(topic))));
        await drain();
        const totals = totalsByQueue(options.queueLog.since(mark));
        for (const [queue, entry] of totals)
          if (queue.endsWith("-fanout")) fanout[topic].push(entry);
      }
    }
    rows.push({
      concurrency,
      one: summarize(samples[SMALL]),
      thousand: summarize(samples[LARGE]),
      fanoutOne: sumTotals(fanout[SMALL]),
      fanoutThousand: sumTotals(fanout[LARGE]),
    });
  }

  // The last message of the last block went to the large topic only if the block order says so;
  // publish one more there to read the fan-out's counts.
  await publishTo(LARGE)();
  await drain();
  const { matched, filtered } = await status(lastId);
  return { rows, createRate, check: { matched, filtered } };
}

function sumTotals(entries: readonly QueueTotals[]): QueueTotals {
  const sum = { invocations: 0, messages: 0, retried: 0, busyMs: 0 };
  for (const entry of entries) {
    sum.invocations += entry.invocations;
    sum.messages += entry.messages;
    sum.retried += entry.retried;
    sum.busyMs += entry.busyMs;
  }
  return sum;
}
