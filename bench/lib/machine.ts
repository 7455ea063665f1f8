/** What the figures were measured on, printed at the top of the run. */
import { createRequire } from "node:module";
import { cpus, release, totalmem } from "node:os";
import { join } from "node:path";
import { projectRoot } from "../../test/node/local-worker";

export interface Machine {
  cpus: number;
  cpuModel: string;
  memoryGiB: number;
  os: string;
  node: string;
  wrangler: string;
}

export function describeMachine(): Machine {
  const require = createRequire(join(projectRoot, "package.json"));
  const wrangler = require("wrangler/package.json") as { version: string };
  const list = cpus();
  return {
    cpus: list.length,
    cpuModel: list[0]?.model.trim() ?? "unknown",
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    os: `${process.platform} ${release()}`,
    node: process.version,
    wrangler: wrangler.version,
  };
}
