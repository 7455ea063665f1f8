/**
 * The bench's wrapper Worker: the broker's own handlers, called with bindings that count what they
 * cost (bench/cost/d1-meter.ts, bench/cost/queue-meter.ts), plus a few routes of its own that the
 * broker never sees:
 *
 * - `GET /__cost`: every counter, as a {@link CostSnapshot};
 * - `POST /__cost/reset`: counting starts again from zero (after a workload's setup);
 * - `POST /__cost/retention?at=<ms>[&chunks=<n>]`: one retention run at that time (at most `n`
 *   chunks per table, else the broker's own cap), counted as retention; answers the rows it deleted
 *   and how long it took as the Worker saw it;
 * - `GET /__cost/constants`: the broker's constants the entry file handed over (retention's chunk
 *   and cap), for the bench's arithmetic;
 * - `POST /__cost/sql`: statements run on the database binding itself, uncounted, for the bench's
 *   own set-up and probes (see {@link SqlRequest}); answers their rows and timings.
 *
 * The entry file that bench/cost/local.ts generates imports the broker and passes it here, so this
 * file depends on nothing under src/ but the shape of its exports.
 */
import { type Database, meterDatabase } from "./d1-meter";
import { createMeter, type Meter } from "./meter";
import { passThrough } from "./pass-through";
import { type Batch, meterBatch, meterProducer, type Producer } from "./queue-meter";
import type { CostSnapshot } from "./snapshot";

type Env = Record<string, unknown>;
interface Context {
  waitUntil(promise: Promise<unknown>): void;
}

/** The broker's default export, as far as the wrapper calls it. */
export interface BrokerHandlers {
  fetch(request: Request, env: Env, ctx: Context): Response | Promise<Response>;
  queue(batch: Batch, env: Env, ctx: Context): Promise<void>;
  scheduled?(controller: unknown, env: Env, ctx: Context): Promise<void> | void;
}

export type RetentionRun = (env: Env, now: number, maxChunksPerTable?: number) => Promise<unknown>;

/** The bindings to meter, by name, as the generated config declares them. */
export interface Bindings {
  databases: readonly string[];
  /** Producer binding → queue name. */
  producers: Readonly<Record<string, string>>;
}

/** What invocations of each kind are counted under; a queue's consumer counts under its name. */
export const PUBLISH_KIND = "publish";
export const RETENTION_KIND = "retention";

type EnvFor = (env: Env, kind: string) => Env;

export function costWorker(
  broker: BrokerHandlers,
  runRetention: RetentionRun,
  bindings: Bindings,
  constants: Readonly<Record<string, unknown>> = {},
) {
  const meter = createMeter();
  const envFor = envCache(bindings, meter);

  /** Work the broker leaves running after it answers still belongs to its invocation. */
  const tracked = (ctx: Context): Context =>
    passThrough(ctx, {
      waitUntil(promise: Promise<unknown>) {
        meter.begin();
        ctx.waitUntil(promise.finally(() => meter.end()));
      },
    });

  return {
    async fetch(request: Request, env: Env, ctx: Context): Promise<Response> {
      const url = new URL(request.url);
      if (url.pathname.startsWith("/__cost")) {
        const database = env[bindings.databases[0] ?? ""] as Database | undefined;
        if (request.method === "GET" && url.pathname === "/__cost/constants") {
          return Response.json(constants);
        }
        return costRoute(request, url, meter, database, (at, chunks) =>
          runRetention(envFor(env, RETENTION_KIND), at, chunks),
        );
      }
      meter.request();
      meter.begin();
      try {
        return await broker.fetch(request, envFor(env, PUBLISH_KIND), tracked(ctx));
      } finally {
        meter.end();
      }
    },

    async queue(batch: Batch, env: Env, ctx: Context): Promise<void> {
      const metered = meterBatch(batch, meter);
      meter.begin();
      try {
        await broker.queue(metered.batch, envFor(env, batch.queue), tracked(ctx));
        metered.settle(true);
      } catch (error) {
        metered.settle(false);
        throw error;
      } finally {
        meter.end();
      }
    },

    async scheduled(controller: unknown, env: Env, ctx: Context): Promise<void> {
      meter.scheduled();
      await broker.scheduled?.(controller, envFor(env, RETENTION_KIND), tracked(ctx));
    },
  };
}

async function costRoute(
  request: Request,
  url: URL,
  meter: Meter,
  database: Database | undefined,
  retention: (at: number, chunks: number | undefined) => Promise<unknown>,
): Promise<Response> {
  const { method } = request;
  if (method === "GET" && url.pathname === "/__cost") {
    return Response.json(meter.snapshot() satisfies CostSnapshot);
  }
  if (method === "POST" && url.pathname === "/__cost/reset") {
    meter.reset();
    return Response.json(meter.snapshot());
  }
  if (method === "POST" && url.pathname === "/__cost/retention") {
    const at = Number(url.searchParams.get("at"));
    const chunksParam = url.searchParams.get("chunks");
    const chunks = chunksParam === null ? undefined : Number(chunksParam);
    if (!Number.isSafeInteger(at)) return new Response("at must be a time in ms", { status: 400 });
    if (chunks !== undefined && !(Number.isSafeInteger(chunks) && chunks > 0)) {
      return new Response("chunks must be a positive integer", { status: 400 });
    }
    meter.retentionRun();
    meter.begin();
    try {
      const started = performance.now();
      const deleted = await retention(at, chunks);
      return Response.json({ deleted, ms: performance.now() - started });
    } finally {
      meter.end();
    }
  }
  if (method === "POST" && url.pathname === "/__cost/sql") {
    if (!database) return new Response("no D1 binding", { status: 404 });
    const body = parseSqlRequest(await request.json().catch(() => undefined));
    if (typeof body === "string") return new Response(body, { status: 400 });
    try {
      return Response.json(await runSql(database, body));
    } catch (error) {
      return new Response(String(error), { status: 500 });
    }
  }
  return new Response("not found", { status: 404 });
}

/**
 * Statements for `POST /__cost/sql`: run as one call (a single statement on its own, several as a
 * batch, so one transaction), `repeat` times one call after another. Each statement stays under
 * D1's limits (100 KB of SQL, 100 parameters, 2 MB per value) as the caller makes it.
 */
export interface SqlRequest {
  statements: { sql: string; params?: unknown[] }[];
  /** 1 unless told; at most {@link MAX_SQL_REPEAT}. */
  repeat?: number;
}

/** What `POST /__cost/sql` answers. */
export interface SqlResult {
  calls: number;
  /** Wall time of all the calls as the Worker saw them. */
  ms: number;
  /** The statements' SQL time as D1 reported it (`meta.duration`), summed. */
  sqlMs: number;
  /** Rows changed and rows written, summed over every statement of every call. */
  changes: number;
  rowsWritten: number;
  /** Each statement's rows, from the last call. */
  rows: unknown[][];
}

const MAX_SQL_REPEAT = 100_000;

function parseSqlRequest(value: unknown): SqlRequest | string {
  if (typeof value !== "object" || value === null) return "a JSON object is expected";
  const { statements, repeat } = value as Record<string, unknown>;
  if (!Array.isArray(statements) || statements.length === 0) return "statements: a list";
  for (const statement of statements as unknown[]) {
    if (typeof statement !== "object" || statement === null) return "a statement is an object";
    const { sql, params } = statement as Record<string, unknown>;
    if (typeof sql !== "string") return "a statement has its sql";
    if (params !== undefined && !Array.isArray(params)) return "params: a list";
  }
  if (
    repeat !== undefined &&
    !(Number.isSafeInteger(repeat) && Number(repeat) >= 1 && Number(repeat) <= MAX_SQL_REPEAT)
  ) {
    return `repeat: 1..${MAX_SQL_REPEAT}`;
  }
  return value as SqlRequest;
}

interface RunMeta {
  duration?: number;
  changes?: number;
  rows_written?: number;
}

async function runSql(db: Database, request: SqlRequest): Promise<SqlResult> {
  const prepared = () =>
    request.statements.map(({ sql, params }) => db.prepare(sql).bind(...(params ?? [])));
  const result: SqlResult = { calls: 0, ms: 0, sqlMs: 0, changes: 0, rowsWritten: 0, rows: [] };
  for (let i = 0; i < (request.repeat ?? 1); i++) {
    const statements = prepared();
    const started = performance.now();
    const [only] = statements;
    const answers =
      statements.length === 1 && only ? [await only.all()] : await db.batch(statements);
    result.ms += performance.now() - started;
    result.calls++;
    for (const answer of answers) {
      const meta = answer.meta as RunMeta | undefined;
      result.sqlMs += meta?.duration ?? 0;
      result.changes += meta?.changes ?? 0;
      result.rowsWritten += meta?.rows_written ?? 0;
    }
    result.rows = answers.map((answer) => answer.results ?? []);
  }
  return result;
}

/**
 * One metered `env` per kind of invocation, made once and reused, so that the broker's own caches
 * keyed by a binding (its query builder is made once per D1 binding) behave as in production.
 */
function envCache(bindings: Bindings, meter: Meter): EnvFor {
  const byEnv = new WeakMap<Env, Map<string, Env>>();
  return (env, kind) => {
    let kinds = byEnv.get(env);
    if (!kinds) {
      kinds = new Map();
      byEnv.set(env, kinds);
    }
    let metered = kinds.get(kind);
    if (!metered) {
      const overrides: Env = {};
      for (const name of bindings.databases) {
        overrides[name] = meterDatabase(env[name] as Database, kind, meter);
      }
      for (const [name, queue] of Object.entries(bindings.producers)) {
        overrides[name] = meterProducer(env[name] as Producer, queue, meter);
      }
      metered = passThrough(env, overrides);
      kinds.set(kind, metered);
    }
    return metered;
  };
}
