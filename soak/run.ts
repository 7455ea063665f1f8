/**
 * `npm run soak [-- --messages N --concurrency C --seed S --settle-timeout SECONDS]`: runs the
 * soak, prints its table, and exits 1 when anything was lost, misrouted or wrong, or the
 * deliveries did not settle in time. Ctrl-C stops it and everything it started; a second Ctrl-C
 * exits at once.
 */
import { parseArgs } from "node:util";
import { formatTable, soakFailures } from "./report";
import { runSoak, type SoakOptions } from "./soak";

function options(): SoakOptions {
  const { values } = parseArgs({
    options: {
      messages: { type: "string" },
      concurrency: { type: "string" },
      seed: { type: "string" },
      "settle-timeout": { type: "string" },
    },
    strict: true,
  });
  const whole = (name: string, value: string | undefined, min: number) => {
    if (value === undefined) return undefined;
    const parsed = Number(value);
    if (!Number.isSafeInteger(parsed) || parsed < min) {
      throw new Error(`--${name} must be a whole number of at least ${min}, got ${value}`);
    }
    return parsed;
  };
  const settleSeconds = whole("settle-timeout", values["settle-timeout"], 1);
  return {
    messages: whole("messages", values.messages, 1),
    concurrency: whole("concurrency", values.concurrency, 1),
    seed: whole("seed", values.seed, 0),
    settleTimeoutMs: settleSeconds === undefined ? undefined : settleSeconds * 1000,
  };
}

async function main(): Promise<number> {
  // The local queues log every batch at info level: thousands of lines that would bury the table.
  // Set WRANGLER_LOG=info to see them.
  process.env.WRANGLER_LOG ??= "warn";
  let parsed: SoakOptions;
  try {
    parsed = options();
  } catch (error) {
    console.error(`soak: ${error instanceof Error ? error.message : String(error)}`);
    return 2;
  }
  const controller = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    if (controller.signal.aborted) process.exit(130);
    console.error(`soak: ${signal}, stopping the broker and the endpoints (again to exit at once)`);
    controller.abort(new Error(`stopped by ${signal}`));
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);

  const log = (line: string) => console.error(`soak: ${line}`);
  try {
    const figures = await runSoak({ ...parsed, log, signal: controller.signal });
    console.log(formatTable(figures));
    const failures = soakFailures(figures);
    for (const line of [...figures.notes, ...figures.problems]) console.error(`  ${line}`);
    if (failures.length === 0) return 0;
    console.error(`soak failed: ${failures.join("; ")}`);
    return 1;
  } catch (error) {
    if (controller.signal.aborted) return 130;
    console.error("soak: could not run:", error);
    return 1;
  }
}

process.exitCode = await main();
