/**
 * Retention runs as the cron makes them, one after another through the cost Worker's
 * `POST /__cost/retention`, each at the time it starts: how long each took, the D1 statements it
 * made (counted by the metered binding), what it deleted, and whether it said it fell behind.
 */
import { readCounters, resetCounters } from "../cost/counters";
import { RETENTION_KIND } from "../cost/worker";
import type { HttpClient } from "../lib/http";
import type { RetentionLogTap } from "./log-tap";

/** How long one run may take before the bench gives up on it. */
const RUN_TIMEOUT_MS = 600_000;

export interface RetentionRunResult {
  /** Wall time of the run inside the Worker, and of the request around it. */
  ms: number;
  requestMs: number;
  statements: number;
  roundTrips: number;
  rowsWritten: number;
  deleted: Record<string, number>;
  /** Tables whose deletions reached the cap: chunks × chunk rows. */
  atCap: string[];
  /** Tables the run's `retention.behind` log lines named. */
  behindLogged: string[];
  /** Other retention events it logged (failures), as `event table`. */
  otherEvents: string[];
}

export interface RetentionRunOptions {
  /** Chunks per table in this run; the broker's own cap unless told. */
  chunks?: number;
  /** The cap, to tell which tables reached it: rows a run deletes per table at most. */
  capRows: number;
}

export async function runRetentionOnce(
  http: HttpClient,
  logs: RetentionLogTap,
  options: RetentionRunOptions,
): Promise<RetentionRunResult> {
  await resetCounters(http);
  const mark = logs.mark();
  const query = options.chunks === undefined ? "" : `&chunks=${options.chunks}`;
  const answer = await http.expect(200, "POST", `/__cost/retention?at=${Date.now()}${query}`, {
    timeoutMs: RUN_TIMEOUT_MS,
  });
  const body = JSON.parse(answer.body) as { deleted: Record<string, number>; ms: number };
  const counters = await readCounters(http);
  // stderr reaches this process a moment after the answer; the next run's mark keeps them apart.
  await new Promise((resolve) => setTimeout(resolve, 200));
  const events = logs.since(mark);
  const tally = counters.d1[RETENTION_KIND];
  return {
    ms: body.ms,
    requestMs: answer.ms,
    statements: tally?.statements ?? 0,
    roundTrips: tally?.roundTrips ?? 0,
    rowsWritten: tally?.rowsWritten ?? 0,
    deleted: body.deleted,
    atCap: Object.entries(body.deleted)
      .filter(([, rows]) => rows >= options.capRows)
      .map(([table]) => table),
    behindLogged: events
      .filter((event) => event.event === "retention.behind")
      .map((event) => String(event.fields.table)),
    otherEvents: events
      .filter((event) => event.event !== "retention.behind" && event.event !== "retention.done")
      .map((event) => `${event.event} ${String(event.fields.table ?? "")}`.trim()),
  };
}

export const totalDeleted = (run: RetentionRunResult) =>
  Object.values(run.deleted).reduce((sum, rows) => sum + rows, 0);

/** Runs until one deletes nothing; fails after `maxRuns`. */
export async function runRetentionUntilEmpty(
  http: HttpClient,
  logs: RetentionLogTap,
  capRows: number,
  maxRuns: number,
  onRun: (run: RetentionRunResult, index: number) => void = () => {},
): Promise<RetentionRunResult[]> {
  const runs: RetentionRunResult[] = [];
  for (let i = 0; i < maxRuns; i++) {
    const run = await runRetentionOnce(http, logs, { capRows });
    runs.push(run);
    onRun(run, i);
    if (totalDeleted(run) === 0) return runs;
  }
  throw new Error(`retention still deleting after ${maxRuns} runs`);
}
