import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startBroker } from "../node/broker";
import { type LocalWorker, projectRoot, startLocalWorker } from "../node/local-worker";

const probeConfig = "test/node/fixtures/probe.wrangler.toml";

describe("the end-to-end runtime", () => {
  let probe: LocalWorker;
  const get = async (path: string) => (await fetch(new URL(path, probe.url))).json();

  beforeAll(async () => {
    probe = await startLocalWorker({
      config: probeConfig,
      databases: [{ name: "probe", migrationsDir: "migrations" }],
      secrets: { PROBE_SECRET: "from-harness" },
    });
  });
  afterAll(() => probe?.dispose());

  it("runs ordinary code", async () => {
    expect(await get("/plain")).toEqual({ outcome: "returned", value: 6 });
  });

  it.each(["/function", "/eval"])("refuses code generation from strings (%s)", async (path) => {
    expect(await get(path)).toEqual({
      outcome: "threw",
      name: "EvalError",
      message: expect.stringMatching(/code generation from strings disallowed/i),
    });
  });

  it("sees the migrations applied into its persistence folder", async () => {
    expect(await get("/d1")).toEqual({ value: "migrated" });
  });
});

describe("the harness", () => {
  it("ignores a .dev.vars beside the config", async () => {
    const dir = await mkdtemp(join(tmpdir(), "switchboard-devvars-"));
    try {
      const config = (await readFile(join(projectRoot, probeConfig), "utf8")).replace(
        /^main = .*$/m,
        `main = ${JSON.stringify(join(projectRoot, "test/node/fixtures/probe-worker.ts"))}`,
      );
      await writeFile(join(dir, "wrangler.toml"), config);
      await writeFile(
        join(dir, ".dev.vars"),
        'PROBE_SECRET="from-dev-vars"\nPROBE_VAR="from-dev-vars"\n',
      );
      const worker = await startLocalWorker({
        config: join(dir, "wrangler.toml"),
        secrets: { PROBE_SECRET: "from-harness" },
      });
      try {
        const res = await fetch(new URL("/env", worker.url));
        expect(await res.json()).toEqual({
          PROBE_VAR: "from-config",
          PROBE_SECRET: "from-harness",
        });
      } finally {
        await worker.dispose();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("reports a Worker that does not build instead of waiting for it", async () => {
    const dir = await mkdtemp(join(tmpdir(), "switchboard-broken-"));
    try {
      await writeFile(join(dir, "worker.ts"), 'import "./missing-module";\nexport default {};\n');
      await writeFile(
        join(dir, "wrangler.toml"),
        'name = "broken"\nmain = "worker.ts"\ncompatibility_date = "2026-11-01"\n',
      );
      // The build error is expected here; keep wrangler from printing it as well.
      const start = startLocalWorker({ config: join(dir, "wrangler.toml"), logLevel: "none" });
      await expect(start).rejects.toThrow(/did not build.*missing-module/s);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("serves the broker over loopback HTTP", async () => {
    const broker = await startBroker();
    try {
      expect(new URL(broker.url).hostname).toBe("127.0.0.1");
      const res = await broker.request("/healthz", { token: null });
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ ok: true });
    } finally {
      await broker.dispose();
    }
  });
});
