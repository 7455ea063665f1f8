/**
 * Starts the cost Worker (bench/cost/worker.ts around the broker) in the runtime `wrangler dev`
 * uses. Its config is the repository's wrangler.toml as it is at the time of the run (the same
 * queues, consumers, batch sizes, vars, D1 and crons), with only `main` pointing at a generated
 * entry that imports the broker's handlers, its retention run and retention's limits, and hands
 * them to the wrapper.
 */
import { randomBytes } from "node:crypto";
import { cp, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { experimental_readRawConfig } from "wrangler";
import { projectRoot, startLocalWorker } from "../../test/node/local-worker";
import { HttpClient } from "../lib/http";
import { type RuntimeCpu, withRuntimeCpu } from "../lib/runtime-cpu";
import type { Bindings } from "./worker";

export interface CostWorker {
  url: string;
  adminToken: string;
  publishToken: string;
  http: HttpClient;
  cpu: RuntimeCpu;
  /** The consumers' queues, in the config's order. */
  queues: string[];
  /** The longest of RETENTION_DAYS and DEAD_LETTER_RETENTION_DAYS in wrangler.toml. */
  retentionDays: number;
  dispose(): Promise<void>;
}

interface D1Config {
  binding: string;
  databaseName: string;
  migrationsDir: string;
}

/** Starts the wrapper around the broker in `root` (this checkout unless told otherwise). */
export async function startCostWorker(root = projectRoot): Promise<CostWorker> {
  const { rawConfig } = experimental_readRawConfig({ config: join(root, "wrangler.toml") });
  const config: Record<string, unknown> = { ...rawConfig };
  const databases = d1Of(config);
  const bindings: Bindings = {
    databases: databases.map((db) => db.binding),
    producers: producersOf(config),
  };
  const dir = await mkdtemp(join(tmpdir(), "switchboard-cost-"));
  try {
    for (const db of databases) {
      await cp(resolve(root, db.migrationsDir), join(dir, db.migrationsDir), { recursive: true });
    }
    await writeFile(join(dir, "entry.ts"), entrySource(root, bindings));
    await writeFile(join(dir, "wrangler.json"), JSON.stringify({ ...config, main: "entry.ts" }));

    const adminToken = `admin_${randomBytes(24).toString("base64url")}`;
    const publishToken = `publish_${randomBytes(24).toString("base64url")}`;
    const { started: worker, cpu } = await withRuntimeCpu(() =>
      startLocalWorker({
        config: join(dir, "wrangler.json"),
        databases: databases.map((db) => ({
          name: db.databaseName,
          migrationsDir: db.migrationsDir,
        })),
        vars: { ALLOW_PRIVATE_URLS: "true" },
        secrets: { ADMIN_TOKEN: adminToken, PUBLISH_TOKEN: publishToken },
      }),
    );
    const url = worker.url.origin;
    const http = new HttpClient(url);
    return {
      url,
      adminToken,
      publishToken,
      http,
      cpu,
      queues: consumersOf(config),
      retentionDays: retentionDaysOf(config),
      async dispose() {
        http.close();
        try {
          await worker.dispose();
        } finally {
          await rm(dir, { recursive: true, force: true, maxRetries: 3 });
        }
      },
    };
  } catch (error) {
    await rm(dir, { recursive: true, force: true, maxRetries: 3 });
    throw error;
  }
}

function entrySource(root: string, bindings: Bindings): string {
  const path = (file: string) => JSON.stringify(file);
  const wrapper = fileURLToPath(new URL("./worker.ts", import.meta.url));
  // Namespace imports: a constant the broker no longer exports is undefined, not a failed build.
  return `import broker from ${path(join(root, "src/index.ts"))};
import * as scheduled from ${path(join(root, "src/retention/scheduled.ts"))};
import * as retention from ${path(join(root, "src/db/retention.ts"))};
import { costWorker } from ${path(wrapper)};

export default costWorker(broker, scheduled.runRetention, ${JSON.stringify(bindings)}, {
  RETENTION_CHUNK: retention.RETENTION_CHUNK,
  MAX_CHUNKS_PER_TABLE: scheduled.MAX_CHUNKS_PER_TABLE,
});
`;
}

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

const records = (value: unknown): Record<string, unknown>[] =>
  Array.isArray(value) ? value.filter(isRecord) : [];

function d1Of(config: Record<string, unknown>): D1Config[] {
  return records(config.d1_databases).map((db) => {
    const { binding, database_name: databaseName, migrations_dir: migrationsDir } = db;
    if (typeof binding !== "string" || typeof databaseName !== "string") {
      throw new Error("wrangler.toml: a D1 database without binding or database_name");
    }
    return {
      binding,
      databaseName,
      migrationsDir: typeof migrationsDir === "string" ? migrationsDir : "migrations",
    };
  });
}

function producersOf(config: Record<string, unknown>): Record<string, string> {
  const queues = isRecord(config.queues) ? config.queues : {};
  const producers: Record<string, string> = {};
  for (const { binding, queue } of records(queues.producers)) {
    if (typeof binding === "string" && typeof queue === "string") producers[binding] = queue;
  }
  return producers;
}

function consumersOf(config: Record<string, unknown>): string[] {
  const queues = isRecord(config.queues) ? config.queues : {};
  return records(queues.consumers).flatMap(({ queue }) =>
    typeof queue === "string" ? [queue] : [],
  );
}

function retentionDaysOf(config: Record<string, unknown>): number {
  const vars = isRecord(config.vars) ? config.vars : {};
  const days = [vars.RETENTION_DAYS, vars.DEAD_LETTER_RETENTION_DAYS].map(Number);
  if (days.some((value) => !Number.isFinite(value))) {
    throw new Error("wrangler.toml sets no RETENTION_DAYS or DEAD_LETTER_RETENTION_DAYS");
  }
  return Math.max(...days);
}
