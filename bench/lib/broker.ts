/**
 * Starts the broker for the measurements: `wrangler.toml` and `migrations/` as they are, in the
 * runtime `wrangler dev` uses, plus an optional seed of many subscribers written into the local D1
 * before the Worker starts. Creating 10,000 subscribers through the API would take minutes of the
 * run; the seed is one SQL statement applied with the real `wrangler d1 migrations apply`, after
 * the schema, into the same persistence folder the Worker then uses.
 */
import { randomBytes } from "node:crypto";
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { projectRoot, startLocalWorker } from "../../test/node/local-worker";
import { HttpClient } from "./http";
import { type RuntimeCpu, withRuntimeCpu } from "./runtime-cpu";

export interface Seed {
  topic: string;
  subscribers: number;
  /** Seeded subscriber `i` gets `<url>/<i>`; no filter, so each one matches every message. */
  url: string;
}

export interface BenchBroker {
  url: string;
  adminToken: string;
  publishToken: string;
  http: HttpClient;
  /** CPU time of the runtime processes behind it. */
  cpu: RuntimeCpu;
  dispose(): Promise<void>;
}

export interface BrokerOptions {
  /** Opens the runtime's inspector on this loopback port. */
  inspectorPort?: number;
  /** A checkout of the project to run instead of this one (its config, migrations and source). */
  root?: string;
}

export async function startBenchBroker(
  seed?: Seed,
  options: BrokerOptions = {},
): Promise<BenchBroker> {
  const root = options.root ?? projectRoot;
  const dir = await mkdtemp(join(tmpdir(), "switchboard-bench-"));
  try {
    const config = (await readFile(join(root, "wrangler.toml"), "utf8")).replace(
      /^main = .*$/m,
      `main = ${JSON.stringify(join(root, "src/index.ts"))}`,
    );
    await writeFile(join(dir, "wrangler.toml"), config);
    const migrations = join(dir, "migrations");
    await mkdir(migrations);
    const sources = (await readdir(join(root, "migrations"))).filter((name) =>
      name.endsWith(".sql"),
    );
    for (const name of sources) {
      await copyFile(join(root, "migrations", name), join(migrations, name));
    }
    if (seed) await writeFile(join(migrations, "9999_bench_seed.sql"), seedSql(seed));

    const adminToken = `admin_${randomBytes(24).toString("base64url")}`;
    const publishToken = `publish_${randomBytes(24).toString("base64url")}`;
    const { started: worker, cpu } = await withRuntimeCpu(() =>
      startLocalWorker({
        config: join(dir, "wrangler.toml"),
        databases: [{ name: "switchboard", migrationsDir: "migrations" }],
        vars: { ALLOW_PRIVATE_URLS: "true" },
        secrets: { ADMIN_TOKEN: adminToken, PUBLISH_TOKEN: publishToken },
        ...(options.inspectorPort === undefined ? {} : { inspectorPort: options.inspectorPort }),
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

/**
 * The topic and its subscribers as the API would create them (defaults for everything), each
 * with its own secret, so that signing costs what it costs with distinct subscribers. The secret
 * is `whsec_` and 64 hex digits: valid base64 of 48 random bytes.
 */
function seedSql({ topic, subscribers, url }: Seed): string {
  const now = Date.now();
  const text = (value: string) => `'${value.replaceAll("'", "''")}'`;
  return `INSERT INTO topics (name, description, created_at) VALUES (${text(topic)}, NULL, ${now});
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${subscribers})
INSERT INTO subscribers (id, topic, url, filter, method, headers, query, timeout_ms, max_attempts,
  base_delay_seconds, max_delay_seconds, active, description, secret, previous_secret,
  previous_secret_expires_at, version, created_at, updated_at)
SELECT printf('sub_%026d', i), ${text(topic)}, ${text(url)} || '/' || i, NULL, 'POST', '{}', '{}', 15000, 15,
  5, 43200, 1, NULL, 'whsec_' || hex(randomblob(32)), NULL, NULL, 1, ${now}, ${now} FROM n;
`;
}
