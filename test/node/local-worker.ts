import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { unstable_DevEnv } from "wrangler";
import { projectRoot, runWrangler } from "./wrangler-cli";

export { projectRoot };

/**
 * A D1 database to prepare before the Worker starts: wrangler's local D1 starts empty, so the
 * migrations are applied into the same persistence folder the Worker will use.
 */
export interface LocalDatabase {
  /** `database_name` in the wrangler config. */
  name: string;
  /** The config's `migrations_dir`, relative to the config file. */
  migrationsDir: string;
}

export interface LocalWorkerOptions {
  /** Path to a wrangler config, relative to the repository root or absolute. */
  config: string;
  databases?: LocalDatabase[];
  /** Plain-text variables; they override the config's `[vars]`. */
  vars?: Record<string, string>;
  /** Secrets; giving them here keeps wrangler from looking for them anywhere else. */
  secrets?: Record<string, string>;
  /** wrangler's own messages (the Worker's console output is not affected); default `warn`. */
  logLevel?: "none" | "error" | "warn" | "info" | "debug";
  /** Opens the runtime's inspector (DevTools protocol) on this loopback port; off by default. */
  inspectorPort?: number;
}

export interface LocalWorker {
  url: URL;
  dispose(): Promise<void>;
}

/** The only binding kinds the harness passes; wrangler's own input types do not resolve. */
interface TextBinding {
  type: "plain_text" | "secret_text";
  value: string;
}

/**
 * Runs a Worker the way `wrangler dev` does (workerd, no code generation from strings, local D1
 * and queues) on an ephemeral loopback port, with its own throwaway persistence folder.
 */
export async function startLocalWorker(options: LocalWorkerOptions): Promise<LocalWorker> {
  const config = resolve(projectRoot, options.config);
  // Miniflare would otherwise fetch `Request.cf` from workers.cloudflare.com outside vitest;
  // the tests must not leave loopback, and its placeholder serves them as well.
  process.env.CLOUDFLARE_CF_FETCH_ENABLED ??= "false";
  const persist = await mkdtemp(join(tmpdir(), "switchboard-worker-"));
  const removePersist = () => rm(persist, { recursive: true, force: true, maxRetries: 3 });
  try {
    for (const database of options.databases ?? []) {
      await applyMigrations(config, database, persist);
    }
    const bindings: Record<string, TextBinding> = {};
    for (const [name, value] of Object.entries(options.vars ?? {})) {
      bindings[name] = { type: "plain_text", value };
    }
    for (const [name, value] of Object.entries(options.secrets ?? {})) {
      bindings[name] = { type: "secret_text", value };
    }
    // The dev environment is created first so that no build or start event can pass unseen.
    const devEnv = new unstable_DevEnv();
    const firstLoad = watchFirstLoad(devEnv);
    let worker: StartedWorker;
    try {
      worker = await devEnv.startWorker({
        config,
        bindings,
        // A file that never exists: without it wrangler would read a developer's `.dev.vars`
        // beside the config. Bindings given above win over anything it finds either way.
        envFiles: [join(persist, "no-such.env")],
        dev: {
          server: { hostname: "127.0.0.1", port: 0 },
          inspector:
            options.inspectorPort === undefined
              ? false
              : { hostname: "127.0.0.1", port: options.inspectorPort },
          persist,
          watch: false,
          logLevel: options.logLevel ?? "warn",
        },
      });
    } catch (error) {
      firstLoad.stop();
      throw error;
    }
    let url: URL;
    try {
      await firstLoad.loaded;
      url = await worker.url;
    } catch (error) {
      await disposeBounded(worker);
      throw error;
    }
    return {
      url,
      async dispose() {
        try {
          await disposeBounded(worker);
        } finally {
          await removePersist();
        }
      },
    };
  } catch (error) {
    await removePersist();
    throw error;
  }
}

type StartedWorker = Awaited<ReturnType<unstable_DevEnv["startWorker"]>>;

/** How long a Worker may take to build and start before the test gives up on it. */
const startupTimeoutMs = 60_000;

/**
 * Settles when the Worker's first build is loaded into the runtime, or fails with wrangler's
 * reason. `worker.url` alone is not enough: it resolves as soon as wrangler's proxy listens, and
 * requests then wait forever for a Worker that does not build.
 */
function watchFirstLoad(devEnv: unstable_DevEnv): { loaded: Promise<void>; stop(): void } {
  let stop = () => {};
  const loaded = new Promise<void>((resolveLoaded, reject) => {
    const onLoaded = () => {
      stop();
      resolveLoaded();
    };
    const onBuildFailed = (event: unknown) => {
      stop();
      reject(new Error(`the Worker did not build: ${reasonOf(event)}`));
    };
    const onError = (event: unknown) => {
      stop();
      reject(new Error(`the Worker did not start: ${reasonOf(event)}`));
    };
    const timer = setTimeout(() => {
      stop();
      reject(new Error(`the Worker did not start within ${startupTimeoutMs} ms`));
    }, startupTimeoutMs);
    timer.unref();
    stop = () => {
      clearTimeout(timer);
      devEnv.off("reloadComplete", onLoaded);
      devEnv.off("buildFailed", onBuildFailed);
      devEnv.off("error", onError);
    };
    devEnv.on("reloadComplete", onLoaded);
    devEnv.on("buildFailed", onBuildFailed);
    devEnv.on("error", onError);
  });
  // Observed here so that a start abandoned early never reports an unhandled rejection.
  loaded.catch(() => {});
  return { loaded, stop: () => stop() };
}

/** wrangler's error events carry `reason` and `cause`; anything else is shown as it is. */
function reasonOf(event: unknown): string {
  if (event instanceof Error) return event.message;
  if (typeof event !== "object" || event === null) return String(event);
  const parts: string[] = [];
  if ("reason" in event && typeof event.reason === "string") parts.push(event.reason);
  if ("cause" in event && event.cause instanceof Error) parts.push(event.cause.message);
  return parts.length > 0 ? parts.join(": ") : JSON.stringify(event);
}

/**
 * `dispose()` waits for wrangler's proxy to become ready before tearing down. Bound that wait, so a
 * start that failed in some unforeseen way cannot hang the suite, and tear down directly past it.
 */
async function disposeBounded(worker: StartedWorker) {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<"timed out">((resolveTimeout) => {
    timer = setTimeout(() => resolveTimeout("timed out"), 10_000);
  });
  try {
    const outcome = await Promise.race([worker.dispose(), timedOut]);
    if (outcome === "timed out") await worker.raw.teardown();
  } finally {
    clearTimeout(timer);
  }
}

/** Applies a database's migrations with the real CLI, skipping the call when there are none. */
async function applyMigrations(config: string, database: LocalDatabase, persist: string) {
  const dir = resolve(dirname(config), database.migrationsDir);
  const files = await readdir(dir).catch(() => []);
  if (!files.some((file) => file.endsWith(".sql"))) return;
  await runWrangler(
    ["d1", "migrations", "apply", database.name, "--local", "--persist-to", persist],
    config,
  );
}
