import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root, so tests behave the same whatever directory vitest was started from. */
export const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

/** Keeps the wrangler CLI off the network: no metrics, no error reports, no update check. */
const quietWranglerEnv = {
  WRANGLER_SEND_METRICS: "false",
  WRANGLER_SEND_ERROR_REPORTS: "false",
  WRANGLER_HIDE_BANNER: "true",
};

const wranglerBin = await resolveWranglerBin();

/**
 * Runs the project's wrangler CLI on the Node that runs the tests: wrangler needs Node 22, which
 * vitest already runs on (npm and npx put the `node` devDependency first on PATH). With stdin
 * closed and CI set, every confirmation takes its default instead of waiting for an answer.
 */
export function runWrangler(args: string[], config: string): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    const child = execFile(
      process.execPath,
      [wranglerBin, ...args, "--config", config],
      {
        cwd: projectRoot,
        env: { ...process.env, ...quietWranglerEnv, CI: "true" },
        maxBuffer: 16 * 1024 * 1024,
        timeout: 120_000,
      },
      (error, stdout, stderr) => {
        if (error) {
          reject(
            new Error(`wrangler ${args.join(" ")} failed: ${error.message}\n${stdout}${stderr}`),
          );
        } else {
          resolvePromise(stdout);
        }
      },
    );
    child.stdin?.end();
  });
}

async function resolveWranglerBin(): Promise<string> {
  const require = createRequire(join(projectRoot, "package.json"));
  const manifestPath = require.resolve("wrangler/package.json");
  const manifest: unknown = JSON.parse(await readFile(manifestPath, "utf8"));
  const bin = binOf(manifest);
  if (bin === undefined) throw new Error(`no wrangler bin in ${manifestPath}`);
  return join(dirname(manifestPath), bin);
}

function binOf(manifest: unknown): string | undefined {
  if (typeof manifest !== "object" || manifest === null || !("bin" in manifest)) return undefined;
  const { bin } = manifest;
  if (typeof bin === "string") return bin;
  if (typeof bin === "object" && bin !== null && "wrangler" in bin) {
    return typeof bin.wrangler === "string" ? bin.wrangler : undefined;
  }
  return undefined;
}
