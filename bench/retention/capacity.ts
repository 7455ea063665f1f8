/**
 * What one D1 database does one statement at a time in the local runtime, for the broker's hot
 * path: a floor (`SELECT 1` and a single-row insert, repeated inside the Worker), then sequential
 * publishes of the shapes that cost the most per delivery, each timed per D1 call by the metered
 * binding (the wall time of each round trip as the Worker sees it) down to the consumer's outcome
 * write, so that the database's time per delivery can be added up call by call.
 */
import { readCounters, resetCounters, waitUntilIdle } from "../cost/counters";
import type { CostWorker } from "../cost/local";
import type { CallTally, StatementTally } from "../cost/snapshot";
import { messageBody } from "../cost/workloads";
import type { Sink } from "../lib/sink";
import { summarize } from "../lib/stats";
import { runSql } from "./sql";

export interface FloorFigure {
  label: string;
  calls: number;
  /** Wall time per call inside the Worker (the runtime's clock ticks in whole ms: a mean). */
  msPerCall: number;
}

/** `SELECT 1` and a one-row insert, `calls` times each, one after another inside the Worker. */
export async function measureFloor(worker: CostWorker, calls: number): Promise<FloorFigure[]> {
  const { http } = worker;
  await runSql(http, {
    statements: [
      { sql: "CREATE TABLE IF NOT EXISTS bench_floor (id INTEGER PRIMARY KEY, v TEXT NOT NULL)" },
    ],
  });
  const probes = [
    { label: "SELECT 1 (a round trip)", sql: "SELECT 1", params: [] },
    {
      label: "INSERT of one row (bench_floor, no index)",
      sql: "INSERT INTO bench_floor (v) VALUES (?1)",
      params: ["a row of the floor"],
    },
  ];
  const figures: FloorFigure[] = [];
  for (const { label, sql, params } of probes) {
    await runSql(http, { statements: [{ sql, params }], repeat: Math.min(200, calls) });
    const result = await runSql(http, { statements: [{ sql, params }], repeat: calls });
    figures.push({ label, calls: result.calls, msPerCall: result.ms / result.calls });
  }
  await runSql(http, { statements: [{ sql: "DROP TABLE bench_floor" }] });
  return figures;
}

export interface PublishShape {
  slug: string;
  title: string;
  requests: number;
  /** 1: `POST …/messages`; more: `POST …/messages/batch`. */
  messagesPerRequest: number;
  keyed: boolean;
  /** Added to the topic's creation body. */
  topic?: Record<string, unknown>;
}

export function publishShapes(quick: boolean): PublishShape[] {
  const singles = quick ? 100 : 1_000;
  return [
    {
      slug: "one",
      title: "1 message per publish, no key",
      requests: singles,
      messagesPerRequest: 1,
      keyed: false,
    },
    {
      slug: "keyed",
      title: "1 message per publish, Idempotency-Key",
      requests: singles,
      messagesPerRequest: 1,
      keyed: true,
    },
    {
      slug: "batch",
      title: "batches of 100 messages, no key",
      requests: quick ? 2 : 20,
      messagesPerRequest: 100,
      keyed: false,
    },
    {
      slug: "lean",
      title: "1 message per publish, no key, topic recording failures only",
      requests: singles,
      messagesPerRequest: 1,
      keyed: false,
      topic: { recording: "failures" },
    },
  ];
}

export interface ShapeRun {
  shape: PublishShape;
  deliveries: number;
  /** Each publish request's time, as the bench saw it over HTTP. */
  requestMs: { p50: number; mean: number };
  /** Every D1 call the run made (publishes and consumers), by kind and statements. */
  calls: CallTally[];
  /** Every statement it ran, with the rows each wrote. */
  statements: StatementTally[];
  /** Rows the run left for retention to delete, per table. */
  leftRows: Record<string, number>;
}

const IDLE_TIMEOUT_MS = 120_000;
const WARMUP_PUBLISHES = 50;

async function createTopic(
  worker: CostWorker,
  topic: string,
  sinkUrl: string,
  settings: Record<string, unknown> = {},
): Promise<void> {
  const { http, adminToken: token } = worker;
  await http.expect(201, "POST", "/v1/topics", { token, json: { name: topic, ...settings } });
  await http.expect(201, "POST", `/v1/topics/${topic}/subscribers`, {
    token,
    json: { url: `${sinkUrl}/${topic}` },
  });
}

async function publish(worker: CostWorker, shape: PublishShape, topic: string, request: number) {
  const { http, publishToken: token } = worker;
  if (shape.messagesPerRequest === 1) {
    return http.expect(202, "POST", `/v1/topics/${topic}/messages`, {
      token,
      json: { body: messageBody(request) },
      ...(shape.keyed ? { headers: { "idempotency-key": `${topic}-${request}` } } : {}),
    });
  }
  const first = request * shape.messagesPerRequest;
  return http.expect(202, "POST", `/v1/topics/${topic}/messages/batch`, {
    token,
    json: {
      messages: Array.from({ length: shape.messagesPerRequest }, (_, i) => ({
        body: messageBody(first + i),
        ...(shape.keyed ? { idempotencyKey: `${topic}-${first + i}` } : {}),
      })),
    },
  });
}

/** Compiles and warms the broker's paths once, uncounted. */
export async function warmUp(worker: CostWorker, sink: Sink): Promise<void> {
  const topic = "capacity-warmup";
  await createTopic(worker, topic, sink.url);
  for (let i = 0; i < WARMUP_PUBLISHES; i++) {
    await publish(worker, publishShapes(true)[i % 2] as PublishShape, topic, i);
  }
  await sink.waitFor(topic, WARMUP_PUBLISHES, 60_000);
  await waitUntilIdle(worker.http, IDLE_TIMEOUT_MS);
}

/** One shape's publishes, one after another, to a fresh topic with one subscriber. */
export async function runShape(
  worker: CostWorker,
  sink: Sink,
  shape: PublishShape,
): Promise<ShapeRun> {
  const { http } = worker;
  const topic = `capacity-${shape.slug}`;
  await createTopic(worker, topic, sink.url, shape.topic);
  await waitUntilIdle(http, IDLE_TIMEOUT_MS);
  sink.reset(topic);
  await resetCounters(http);
  const times: number[] = [];
  for (let request = 0; request < shape.requests; request++) {
    times.push((await publish(worker, shape, topic, request)).ms);
  }
  const deliveries = shape.requests * shape.messagesPerRequest;
  await sink.waitFor(topic, deliveries, 60_000 + 20 * deliveries);
  await waitUntilIdle(http, IDLE_TIMEOUT_MS);
  const counters = await readCounters(http);
  const left = await runSql(http, {
    statements: [
      { sql: "SELECT count(*) AS n FROM messages WHERE topic = ?1", params: [topic] },
      { sql: "SELECT count(*) AS n FROM deliveries WHERE topic = ?1", params: [topic] },
      { sql: "SELECT count(*) AS n FROM idempotency_claims WHERE topic = ?1", params: [topic] },
      { sql: "SELECT count(*) AS n FROM topic_counts WHERE topic = ?1", params: [topic] },
    ],
  });
  const n = (i: number) => Number((left.rows[i]?.[0] as { n?: number } | undefined)?.n ?? 0);
  const summary = summarize(times);
  return {
    shape,
    deliveries,
    requestMs: { p50: summary.p50, mean: summary.mean },
    calls: counters.calls,
    statements: counters.statements,
    leftRows: { messages: n(0), deliveries: n(1), idempotency_claims: n(2), topic_counts: n(3) },
  };
}

/** A short name for a statement: its verb and the table it acts on. */
export function describeSql(sql: string): string {
  const text = sql.replace(/\s+/g, " ").trim();
  const write = /^(?:WITH .*?\) )?(INSERT INTO|UPDATE|DELETE FROM) (\w+)/i.exec(text);
  if (write?.[1] && write[2]) {
    return `${write[1].split(" ")[0]?.toLowerCase()} ${write[2]}`;
  }
  const tables = [...text.matchAll(/\b(?:FROM|JOIN) (\w+)/gi)]
    .map((match) => match[1] ?? "")
    .filter((table) => table !== "" && table.toLowerCase() !== "json_each");
  return `select ${tables[0] ?? "?"}`;
}

/** A call's statements, named, with repeats folded: `select topics + insert messages ×2`. */
export function describeCall(sqls: readonly string[]): string {
  const names = sqls.map(describeSql);
  const folded: string[] = [];
  for (let i = 0; i < names.length; ) {
    let j = i;
    while (j < names.length && names[j] === names[i]) j++;
    folded.push(j - i > 1 ? `${names[i]} ×${j - i}` : (names[i] ?? ""));
    i = j;
  }
  return `${sqls.length > 1 ? "batch: " : ""}${folded.join(" + ")}`;
}
