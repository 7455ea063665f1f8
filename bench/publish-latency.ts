/**
 * Publish latency against `GET /healthz` on the same local Worker: the difference is what
 * publishing adds (validation, one D1 batch, one queue send) on top of the runtime's own request
 * path. The two are measured in alternating blocks, so drift on a shared machine hits both alike.
 *
 * The topic has one subscriber whose filter never matches: each publish then queues a fan-out
 * task (a filter keeps the fan-out out of the publish), and nothing is delivered to compete with
 * the publishes for the Worker's thread.
 */
import { closedLoop, type HttpClient } from "./lib/http";
import { type LatencySummary, summarize } from "./lib/stats";
import { NEVER_MATCHES } from "./subscriber-count";

export interface LatencyPair {
  concurrency: number;
  healthz: LatencySummary;
  publish: LatencySummary;
  /** Requests per second over the time each spent in its own blocks. */
  healthzRate: number;
  publishRate: number;
}

export interface PublishLatencyOptions {
  http: HttpClient;
  publishToken: string;
  adminToken: string;
  /** Where the topic's subscriber points; never called, since its filter never matches. */
  sinkUrl: string;
  requests: number;
  concurrencies: readonly number[];
  warmup: number;
  blocks: number;
}

export const LATENCY_TOPIC = "bench-latency";

/** A small order event, as a typical publisher sends. */
export function publishBody(index: number) {
  return { body: { orderId: index, category: "food", total: 12.5, currency: "EUR" } };
}

export async function measurePublishLatency(
  options: PublishLatencyOptions,
): Promise<LatencyPair[]> {
  const { http, publishToken, adminToken } = options;
  await http.expect(201, "POST", "/v1/topics", {
    token: adminToken,
    json: { name: LATENCY_TOPIC },
  });
  await http.expect(201, "POST", `/v1/topics/${LATENCY_TOPIC}/subscribers`, {
    token: adminToken,
    json: { url: `${options.sinkUrl}/never`, filter: NEVER_MATCHES },
  });
  let sequence = 0;
  // Each publish carries its own idempotency key, as the SDK sends one with every call.
  const publish = async () => {
    const index = sequence++;
    const result = await http.expect(202, "POST", `/v1/topics/${LATENCY_TOPIC}/messages`, {
      token: publishToken,
      json: publishBody(index),
      headers: { "idempotency-key": `latency-${index}` },
    });
    return result.ms;
  };
  const healthz = async () => (await http.expect(200, "GET", "/healthz")).ms;

  await closedLoop(options.warmup, 4, healthz);
  await closedLoop(options.warmup, 4, publish);

  const results: LatencyPair[] = [];
  for (const concurrency of options.concurrencies) {
    const samples = { healthz: [] as number[], publish: [] as number[] };
    const busy = { healthz: 0, publish: 0 };
    const perBlock = Math.ceil(options.requests / options.blocks);
    for (let block = 0; block < options.blocks; block++) {
      const order =
        block % 2 === 0 ? (["healthz", "publish"] as const) : (["publish", "healthz"] as const);
      for (const kind of order) {
        const started = performance.now();
        const durations = await closedLoop(
          perBlock,
          concurrency,
          kind === "healthz" ? healthz : publish,
        );
        busy[kind] += performance.now() - started;
        samples[kind].push(...durations);
      }
    }
    results.push({
      concurrency,
      healthz: summarize(samples.healthz),
      publish: summarize(samples.publish),
      healthzRate: (samples.healthz.length / busy.healthz) * 1000,
      publishRate: (samples.publish.length / busy.publish) * 1000,
    });
  }
  return results;
}
