/**
 * The soak: a local broker (the same runtime as `npm run dev`), local subscriber endpoints that
 * are healthy, flaky, always failing or slow, thousands of published messages, and then the
 * checks that every matching subscriber got every message exactly once after de-duplication,
 * unchanged and signed, that nothing went elsewhere, and that what died can be replayed.
 *
 * @example
 * const figures = await runSoak({ messages: 200 });
 * console.log(formatTable(figures), soakFailures(figures));
 */
import type { DeadLetter } from "../src/api/schemas/dead-letters";
import { type LocalBroker, startBroker } from "../test/node/broker";
import { createSubscriber, createTopic, listDeadLetters, replayDeadLetters } from "./api";
import { checkDeadLetters, type DeadLetterCheck } from "./dead-letters";
import { type Endpoint, startEndpoint } from "./endpoint";
import { MAIN_TOPIC, planPublishes, SIDE_TOPIC, SUBSCRIBERS } from "./plan";
import { type PublishReport, publishAll } from "./publish";
import { seededRandom } from "./random";
import { checkStatuses, type StatusCheck } from "./status";
import { acceptedIds, expectedPairs, type Tally, tally, type Wired } from "./tally";
import { percentile, sleep } from "./util";

export interface SoakOptions {
  /** Messages to publish; default 5,000. */
  messages?: number;
  /** Publish calls in flight at once; default 32. */
  concurrency?: number;
  /** Seeds the message mix and the flaky endpoint's failures; default 1. */
  seed?: number;
  /** Time for all deliveries and replays to settle after publishing; default scales with `messages`. */
  settleTimeoutMs?: number;
  /** How long the slow endpoint takes to answer; default 2,000 ms (inside its 5 s timeout). */
  slowMs?: number;
  /** Progress lines; default silent. */
  log?: (line: string) => void;
  /** Stops the soak early; everything it started is still stopped. */
  signal?: AbortSignal;
}

/** What a soak measured and found. */
export interface SoakFigures {
  seed: number;
  messages: number;
  published: number;
  /** Messages whose publish call was not answered 202. */
  rejected: number;
  subscribers: number;
  expectedDeliveries: number;
  /** Expected (message, subscriber) pairs delivered at least once, replays included. */
  delivered: number;
  /** Requests answered 2xx for a pair that had already been delivered. */
  duplicates: number;
  /** Dead letters after the first wave; all of them are replayed. */
  dead: number;
  replayed: number;
  lost: number;
  misrouted: number;
  /** Requests with a bad signature, or a body, header, query, path or method that differs. */
  wrong: number;
  /** Requests the endpoints received, retries and replays included. */
  requests: number;
  /** Messages whose status (`GET /v1/messages/{id}`) disagrees with what was delivered. */
  statusMismatches: number;
  publishLatencyMs: { p50: number; p99: number };
  deliveryLatencyMs: { p50: number; p99: number };
  /** First deliveries per second, from the first publish to the last first delivery before replays. */
  deliveriesPerSecond: number;
  settled: boolean;
  durationMs: number;
  /** Samples of everything that went wrong, for the report. */
  problems: string[];
  /** How some duplicates came about, for the report; duplicates alone do not fail the soak. */
  notes: string[];
}

const POLL_MS = 1000;
const PROGRESS_MS = 5000;
/** After everything arrived, extra time for late duplicates or stray requests to show up. */
const QUIET_MS = 2000;
const STATUS_CONCURRENCY = 16;

interface Context {
  broker: LocalBroker;
  wired: Wired[];
  expected: Map<string, Set<string>>;
  expectedCount: number;
  deadline: number;
  log: (line: string) => void;
  signal: AbortSignal | undefined;
}

export async function runSoak(options: SoakOptions = {}): Promise<SoakFigures> {
  const messages = options.messages ?? 5000;
  const seed = options.seed ?? 1;
  const concurrency = options.concurrency ?? 32;
  const log = options.log ?? (() => {});
  const { signal } = options;
  const startedAt = Date.now();

  const endpoints: Endpoint[] = [];
  const brokerStarting = startBroker();
  // Observed at once: a failed start must not be reported as unhandled before it is awaited.
  brokerStarting.catch(() => {});
  try {
    for (const [index, plan] of SUBSCRIBERS.entries()) {
      endpoints.push(
        await startEndpoint({
          behaviour: plan.behaviour,
          random: seededRandom(seed * 7919 + index),
          timeoutMs: plan.timeoutMs,
          slowMs: options.slowMs ?? 2000,
        }),
      );
    }
    const broker = await brokerStarting;
    signal?.throwIfAborted();
    log(`broker at ${broker.url}; ${endpoints.length} subscriber endpoints on loopback`);
    const wired = await wire(broker, endpoints);

    const units = planPublishes(messages, seededRandom(seed));
    log(`publishing ${messages} messages in ${units.length} calls, ${concurrency} at a time`);
    const publish = await publishAll(broker, units, concurrency, signal);
    const refused = publish.rejected.length > 0 ? `; ${publish.rejected.length} refused` : "";
    log(`published ${publish.published.size} in ${seconds(publish.startedAt)}${refused}`);

    const expected = expectedPairs(wired, publish.published);
    const context: Context = {
      broker,
      wired,
      expected,
      expectedCount: [...expected.values()].reduce((sum, ids) => sum + ids.size, 0),
      deadline: Date.now() + (options.settleTimeoutMs ?? 120_000 + messages * 60),
      log,
      signal,
    };
    const firstWaveSettled = await firstWave(context);
    log(
      `first wave ${firstWaveSettled ? "settled" : "did not settle"} ${seconds(publish.finishedAt)} after publishing`,
    );
    const replayStartedAt = Date.now();
    const replay = await replayWave(context, firstWaveSettled);
    if (!replay.settled) log("the settle deadline passed");
    await sleep(QUIET_MS, signal);

    const statusStartedAt = Date.now();
    const status = await checkStatuses(
      broker,
      wired,
      publish.published,
      expected,
      replay.fixedPairs,
      STATUS_CONCURRENCY,
      signal,
    );
    log(`checked ${status.checked} message statuses in ${seconds(statusStartedAt)}`);
    const counts = tally(wired, publish.published, replayStartedAt);
    return figuresOf({ seed, messages, startedAt, publish, replay, status, counts });
  } finally {
    // Even when the soak stopped early, the broker it began starting is waited for and stopped.
    const broker = await brokerStarting.catch(() => undefined);
    await Promise.allSettled([...endpoints.map((endpoint) => endpoint.close()), broker?.dispose()]);
  }
}

async function wire(broker: LocalBroker, endpoints: readonly Endpoint[]): Promise<Wired[]> {
  await createTopic(broker, MAIN_TOPIC);
  await createTopic(broker, SIDE_TOPIC);
  const wired: Wired[] = [];
  for (const [index, plan] of SUBSCRIBERS.entries()) {
    const endpoint = endpoints[index];
    if (!endpoint) throw new Error(`no endpoint for ${plan.name}`);
    const { id, secret } = await createSubscriber(broker, plan, endpoint.url);
    endpoint.setSecret(secret);
    wired.push({ plan, id, endpoint });
  }
  return wired;
}

/** Waits until every pair is delivered, or dead after its last attempt. */
function firstWave(context: Context): Promise<boolean> {
  return settle(context, async () => {
    const letters = await listDeadLetters(context.broker);
    const deadKeys = new Set(letters.map((letter) => `${letter.subscriberId} ${letter.messageId}`));
    const done = countDone(context, deadKeys);
    return {
      remaining: context.expectedCount - done.delivered - done.dead,
      line: `settling: ${done.delivered} delivered, ${done.dead} dead, of ${context.expectedCount}`,
    };
  });
}

interface ReplayResult {
  settled: boolean;
  dead: number;
  replayed: number;
  check: DeadLetterCheck;
  /** `subscriberId messageId` of deliveries replayed to the endpoint that was fixed. */
  fixedPairs: Set<string>;
}

/**
 * Checks the dead letters, fixes the always-failing endpoint, replays every subscriber's dead
 * letters in bulk and waits until they are all delivered. Nothing is replayed when the first wave
 * did not settle: its figures are reported as they are.
 */
async function replayWave(context: Context, firstWaveSettled: boolean): Promise<ReplayResult> {
  const { broker, wired, expected, expectedCount, log } = context;
  const before = Date.now();
  const letters = await listDeadLetters(broker);
  const bySubscriber = new Map<string, DeadLetter[]>();
  for (const { id } of wired) {
    bySubscriber.set(id, await listDeadLetters(broker, { subscriberId: id, pageSize: 10 }));
  }
  const check = checkDeadLetters(letters, bySubscriber, wired, expected, before);
  const failing = wired.filter(({ plan }) => plan.behaviour === "failing");
  const fixedPairs = new Set(
    failing.flatMap(({ id }) => (bySubscriber.get(id) ?? []).map((l) => `${id} ${l.messageId}`)),
  );
  const result = { settled: false, dead: letters.length, replayed: 0, check, fixedPairs };
  if (!firstWaveSettled) return result;

  for (const { endpoint } of failing) endpoint.fix();
  for (const subscriberId of check.bySubscriber.keys()) {
    result.replayed += await replayDeadLetters(broker, subscriberId);
  }
  log(`${letters.length} dead letters; fixed the failing endpoint and replayed ${result.replayed}`);
  result.settled = await settle(context, async () => {
    const done = countDone(context, new Set());
    const left = (await listDeadLetters(broker)).length;
    return {
      remaining: expectedCount - done.delivered + left,
      line: `after replay: ${done.delivered} of ${expectedCount} delivered, ${left} dead letters left`,
    };
  });
  log(
    `replays ${result.settled ? "settled" : "did not settle"} ${seconds(before)} after the replay`,
  );
  return result;
}

function figuresOf(input: {
  seed: number;
  messages: number;
  startedAt: number;
  publish: PublishReport;
  replay: ReplayResult;
  status: StatusCheck;
  counts: Tally;
}): SoakFigures {
  const { publish, replay, status, counts } = input;
  const span = (counts.lastFirstDeliveryAt - publish.startedAt) / 1000;
  return {
    seed: input.seed,
    messages: input.messages,
    published: publish.published.size,
    rejected: publish.rejected.length,
    subscribers: SUBSCRIBERS.length,
    expectedDeliveries: counts.expected,
    delivered: counts.delivered,
    duplicates: counts.duplicates,
    dead: replay.dead,
    replayed: replay.replayed,
    lost: counts.lost,
    misrouted: counts.misrouted,
    wrong: counts.wrong,
    requests: counts.requests,
    statusMismatches: status.mismatches,
    publishLatencyMs: {
      p50: percentile(publish.callLatenciesMs, 50),
      p99: percentile(publish.callLatenciesMs, 99),
    },
    deliveryLatencyMs: {
      p50: percentile(counts.latenciesMs, 50),
      p99: percentile(counts.latenciesMs, 99),
    },
    deliveriesPerSecond: span > 0 ? counts.latenciesMs.length / span : 0,
    settled: replay.settled,
    durationMs: Date.now() - input.startedAt,
    problems: [
      ...publish.rejected
        .slice(0, 5)
        .map(({ seq, reason }) => `publish of #${seq} refused: ${reason}`),
      ...replay.check.problems,
      ...status.problems,
      ...counts.problems,
    ],
    notes: counts.duplicateNotes,
  };
}

function countDone(context: Context, deadKeys: ReadonlySet<string>) {
  let delivered = 0;
  let dead = 0;
  for (const { id, endpoint } of context.wired) {
    const accepted = acceptedIds(endpoint);
    for (const messageId of context.expected.get(id) ?? []) {
      if (accepted.has(messageId)) delivered += 1;
      else if (deadKeys.has(`${id} ${messageId}`)) dead += 1;
    }
  }
  return { delivered, dead };
}

/** Polls `probe` until nothing remains or the deadline passes; true when nothing remains. */
async function settle(
  context: Context,
  probe: () => Promise<{ remaining: number; line: string }>,
): Promise<boolean> {
  const rounds = Math.ceil(Math.max(0, context.deadline - Date.now()) / POLL_MS) + 1;
  let lastProgress = Date.now();
  for (let round = 0; round < rounds && Date.now() <= context.deadline; round++) {
    const { remaining, line } = await probe();
    if (remaining <= 0) return true;
    if (Date.now() - lastProgress >= PROGRESS_MS) {
      context.log(line);
      lastProgress = Date.now();
    }
    await sleep(POLL_MS, context.signal);
  }
  return false;
}

function seconds(since: number): string {
  return `${((Date.now() - since) / 1000).toFixed(1)} s`;
}
