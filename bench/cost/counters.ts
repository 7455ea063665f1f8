/**
 * The bench's side of the cost Worker's routes: reading and resetting its counters, waiting until
 * the broker has finished everything a workload started, and running retention to its end.
 */
import type { HttpClient } from "../lib/http";
import type { RuntimeCpu } from "../lib/runtime-cpu";
import type { CostSnapshot } from "./snapshot";

/**
 * How far apart the idle check reads the counters. Each read is a request to the local runtime,
 * whose CPU time counts in the workload's: reading seldom keeps that share small.
 */
const QUIET_MS = 1_000;
/** Retention deletes in capped runs; more runs than this means it is not catching up. */
const MAX_RETENTION_RUNS = 50;
const DAY_MS = 24 * 60 * 60 * 1000;

export async function readCounters(http: HttpClient): Promise<CostSnapshot> {
  return JSON.parse((await http.expect(200, "GET", "/__cost")).body) as CostSnapshot;
}

/**
 * The runtime CPU one read of the counters costs, from `reads` of them while nothing else runs,
 * so that a workload's figure can leave out the reads the bench made during it.
 */
export async function readCost(
  http: HttpClient,
  cpu: RuntimeCpu,
  reads = 100,
): Promise<number | undefined> {
  const before = cpu.readMs();
  for (let i = 0; i < reads; i++) await readCounters(http);
  const after = cpu.readMs();
  return before === undefined || after === undefined ? undefined : (after - before) / reads;
}

export async function resetCounters(http: HttpClient): Promise<void> {
  await http.expect(200, "POST", "/__cost/reset");
}

/** Messages written to a queue and not yet acked there (retries waiting included). */
export function outstanding(snapshot: CostSnapshot): number {
  let count = 0;
  for (const [queue, sent] of Object.entries(snapshot.sent)) {
    count += Math.max(0, sent.messages - (snapshot.consumed[queue]?.ackedDistinct ?? 0));
  }
  return count;
}

/**
 * Resolves with the counters, and how many times it read them, once no invocation runs, every
 * message written has been acked, and nothing changed between two reads {@link QUIET_MS} apart;
 * fails after `timeoutMs`.
 */
export async function waitUntilIdle(
  http: HttpClient,
  timeoutMs: number,
): Promise<{ counters: CostSnapshot; reads: number }> {
  const deadline = performance.now() + timeoutMs;
  let last = await readCounters(http);
  for (let reads = 2; ; reads++) {
    await new Promise((resolve) => setTimeout(resolve, QUIET_MS));
    const now = await readCounters(http);
    const idle = now.active === 0 && outstanding(now) === 0;
    if (idle && now.sequence === last.sequence) return { counters: now, reads };
    last = now;
    if (performance.now() > deadline) {
      throw new Error(
        `the broker did not go idle within ${timeoutMs} ms: ${now.active} running, ${outstanding(now)} queue messages not acked`,
      );
    }
  }
}

export interface RetentionResult {
  runs: number;
  /** Rows deleted, summed over the runs, by what the run reported (a table, usually). */
  deleted: Record<string, number>;
}

/**
 * Runs retention as of `retentionDays` + 1 days from now, when everything published so far is past
 * every retention period, until a run deletes nothing (a run deletes a capped number of rows).
 */
export async function runRetentionToEnd(
  http: HttpClient,
  retentionDays: number,
): Promise<RetentionResult> {
  const at = Date.now() + (retentionDays + 1) * DAY_MS;
  const deleted: Record<string, number> = {};
  for (let runs = 1; runs <= MAX_RETENTION_RUNS; runs++) {
    const result = await http.expect(200, "POST", `/__cost/retention?at=${at}`);
    const counts = (JSON.parse(result.body) as { deleted: unknown }).deleted;
    let total = 0;
    if (typeof counts === "object" && counts !== null) {
      for (const [table, count] of Object.entries(counts)) {
        if (typeof count !== "number") continue;
        deleted[table] = (deleted[table] ?? 0) + count;
        total += count;
      }
    }
    if (total === 0) return { runs, deleted };
  }
  throw new Error(`retention still deleting after ${MAX_RETENTION_RUNS} runs`);
}
