/**
 * `npm run bench:ab -- --base <rev>`: the throughput workload (bench/throughput.ts) against two
 * builds of the broker at once, to tell whether a change makes it cheaper. The working tree runs
 * beside a checkout of `--base` (default `HEAD`, so uncommitted changes are what is compared),
 * both started in this process, in rounds that alternate which goes first. On a shared machine
 * two runs apart can differ by 10 % with the same code; two brokers measured turn about in the
 * same minutes drift alike.
 *
 * Prints each run, then the ratio of the two builds (working tree / base) in each round and their
 * median: time from the first publish to the last arrival, and the runtime's CPU time (Linux
 * only).
 *
 * `--rounds N` (default 5), `--messages N` (default 2,400: a multiple of both consumers' batches).
 */
import { execFileSync } from "node:child_process";
import { mkdtemp, rm, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { projectRoot } from "../test/node/local-worker";
import { type BenchBroker, startBenchBroker } from "./lib/broker";
import { withCpuTime } from "./lib/runtime-cpu";
import { startSink } from "./lib/sink";
import { median, ratio } from "./lib/stats";
import { INLINE_WORKLOAD, prepareWorkload, publishAndDeliver, type Workload } from "./throughput";

const { values } = parseArgs({
  options: {
    base: { type: "string", default: "HEAD" },
    rounds: { type: "string", default: "5" },
    messages: { type: "string", default: "2400" },
  },
});
const rounds = Number(values.rounds);
const messages = Number(values.messages);
const WARMUP = 240;
const SETTLE_MS = 1_000;

interface Contender {
  name: "base" | "this";
  broker: BenchBroker;
  runs: { ms: number; cpuMs: number | undefined }[];
}

/** The throughput bench's inline workload, with a sink channel of each build's own. */
const workloadOf = (name: Contender["name"]): Workload => ({ ...INLINE_WORKLOAD, channel: name });

const git = (...args: string[]) =>
  execFileSync("git", args, { cwd: projectRoot, encoding: "utf8" }).trim();

async function main(): Promise<void> {
  const revision = git("rev-parse", "--verify", `${values.base}^{commit}`);
  const checkout = join(await mkdtemp(join(tmpdir(), "switchboard-ab-")), "base");
  git("worktree", "add", "--detach", checkout, revision);
  const sink = await startSink();
  const contenders: Contender[] = [];
  try {
    await symlink(join(projectRoot, "node_modules"), join(checkout, "node_modules"), "dir");
    for (const [name, root] of [
      ["base", checkout],
      ["this", projectRoot],
    ] as const) {
      const broker = await startBenchBroker(undefined, { root });
      contenders.push({ name, broker, runs: [] });
      await prepareWorkload(broker, sink, workloadOf(name));
      await publishAndDeliver(broker, sink, workloadOf(name), WARMUP);
    }
    console.log(`base ${values.base} (${revision.slice(0, 12)}) vs the working tree`);
    console.log(`${messages} messages per run, ${rounds} rounds\n`);
    console.log("| round | build | first publish → last arrival | runtime CPU |");
    console.log("|---|---|---|---|");
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 === 0 ? contenders : [...contenders].reverse();
      for (const contender of order) {
        const { result, cpuMs } = await withCpuTime(
          contender.broker.cpu,
          () => publishAndDeliver(contender.broker, sink, workloadOf(contender.name), messages),
          SETTLE_MS,
        );
        const ms = (result.stats.lastAt ?? Number.NaN) - result.started;
        contender.runs.push({ ms, cpuMs });
        console.log(
          `| ${round + 1} | ${contender.name} | ${ms.toFixed(0)} ms | ${cpuMs === undefined ? "n/a" : `${cpuMs} ms`} |`,
        );
      }
    }
    const [base, mine] = contenders;
    if (!base || !mine) return;
    // Paired by round: the machine's drift moves both builds of a round alike, not two medians.
    const paired = (pick: (run: Contender["runs"][number]) => number | undefined) =>
      mine.runs.map((run, round) => {
        const other = base.runs[round];
        const ours = pick(run);
        const theirs = other && pick(other);
        return ours === undefined || theirs === undefined ? Number.NaN : ours / theirs;
      });
    const summary = (ratios: number[]) =>
      ratios.some(Number.isNaN)
        ? "n/a"
        : `${ratio(median(ratios))} (rounds ${ratios.map(ratio).join(", ")})`;
    console.log("\nworking tree / base, median of the rounds' ratios:");
    console.log(`  time        ${summary(paired((run) => run.ms))}`);
    console.log(`  runtime CPU ${summary(paired((run) => run.cpuMs))}`);
  } finally {
    for (const { broker } of contenders) await broker.dispose();
    await sink.close();
    git("worktree", "remove", "--force", checkout);
    await rm(join(checkout, ".."), { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
