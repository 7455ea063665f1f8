/**
 * The bench's wrapper Worker: the broker's own handlers, called with bindings that count what they
 * cost (bench/cost/d1-meter.ts, bench/cost/queue-meter.ts), plus a few routes of its own that the
 * broker never sees:
 *
 * - `GET /__cost`: every counter, as a {@link CostSnapshot};
 * - `POST /__cost/reset`: counting starts again from zero (after a workload's setup);
 * - `POST /__cost/retention?at=<ms>`: one retention run at that time, counted as retention.
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

export type RetentionRun = (env: Env, now: number) => Promise<unknown>;

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

export function costWorker(broker: BrokerHandlers, runRetention: RetentionRun, bindings: Bindings) {
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
        return costRoute(url, request.method, meter, () =>
          runRetention(envFor(env, RETENTION_KIND), Number(url.searchParams.get("at"))),
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
  url: URL,
  method: string,
  meter: Meter,
  retention: () => Promise<unknown>,
): Promise<Response> {
  if (method === "GET" && url.pathname === "/__cost") {
    return Response.json(meter.snapshot() satisfies CostSnapshot);
  }
  if (method === "POST" && url.pathname === "/__cost/reset") {
    meter.reset();
    return Response.json(meter.snapshot());
  }
  if (method === "POST" && url.pathname === "/__cost/retention") {
    if (!Number.isSafeInteger(Number(url.searchParams.get("at")))) {
      return new Response("at must be a time in ms", { status: 400 });
    }
    meter.retentionRun();
    meter.begin();
    try {
      return Response.json({ deleted: await retention() });
    } finally {
      meter.end();
    }
  }
  return new Response("not found", { status: 404 });
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
