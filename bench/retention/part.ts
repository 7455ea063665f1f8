/**
 * `npm run bench -- --only=retention`: whether retention keeps pace with the traffic one database
 * carries, and what that database sustains, measured through the broker's real handlers in the cost
 * Worker (bench/cost/worker.ts) in the local runtime.
 *
 * 1. Retention: old rows for N deliveries that succeeded at once (bench/retention/seed.ts), then
 *    `runRetention` as the cron runs it, run after run until nothing is left: each run's time, D1
 *    statements and rows deleted, whether it logged `retention.behind`, and so the deliveries a
 *    second one run a minute keeps pace with.
 * 2. D1 capacity: statements a second one at a time, from a floor to the hot path's calls (the
 *    publish's record batch, the consumer's read and outcome write), and so the deliveries a second
 *    one database sustains, locally and by Cloudflare's published figure.
 */
import { startCostWorker } from "../cost/local";
import type { Sink } from "../lib/sink";
import { count, ms, perSecond } from "../lib/stats";
import {
  describeCall,
  type FloorFigure,
  measureFloor,
  publishShapes,
  runShape,
  type ShapeRun,
  warmUp,
} from "./capacity";
import { tapRetentionLog } from "./log-tap";
import { D1_THROUGHPUT_SOURCE, PUBLISHED_MS_PER_QUERY, SEVERAL_MS_PER_WRITE } from "./published";
import {
  type RetentionRunResult,
  runRetentionOnce,
  runRetentionUntilEmpty,
  totalDeleted,
} from "./runs";
import { countSeeded, SEED_MIX, type SeededTable, seedDeliveries } from "./seed";
import { type RetentionLimits, readRetentionLimits } from "./sql";

export interface RetentionPartOptions {
  quick: boolean;
  sink: Sink;
  line: (text?: string) => void;
}

/** The issue's target: 600,000 deliveries per 5 minutes. */
const TARGET_PER_SECOND = 2_000;
const DAY_MS = 24 * 60 * 60 * 1000;
const CRON_PERIOD_S = 60;
const D1_QUERIES_PER_INVOCATION = 1_000;
const TABLES: SeededTable[] = [
  "deliveries",
  "messages",
  "idempotency_claims",
  "topic_counts",
  "dead_letters",
];

export async function measureRetentionPart({ quick, sink, line }: RetentionPartOptions) {
  const deliveries = quick ? 20_000 : 600_000;
  const floorCalls = quick ? 500 : 5_000;
  const worker = await startCostWorker();
  const logs = tapRetentionLog();
  try {
    const limits = await readRetentionLimits(worker.http);
    const retention = await measureRetention(worker, logs, limits, deliveries, line);
    line();
    line("#### 7b. D1 capacity: one database, one statement at a time");
    const floor = await measureFloor(worker, floorCalls);
    await warmUp(worker, sink);
    const shapes: ShapeRun[] = [];
    for (const shape of publishShapes(quick)) shapes.push(await runShape(worker, sink, shape));
    printCapacity(line, floor, shapes);
    line();
    line("#### 7c. What one database sustains");
    printSustained(line, floor, shapes, retention);
  } finally {
    logs.stop();
    await worker.dispose();
  }
}

interface RetentionFigures {
  /** Wall ms of the Worker's runs per row deleted. */
  msPerRow: number;
  /** Wall ms per retention statement. */
  msPerStatement: number;
  rowsPerStatement: number;
}

async function measureRetention(
  worker: Awaited<ReturnType<typeof startCostWorker>>,
  logs: ReturnType<typeof tapRetentionLog>,
  limits: RetentionLimits,
  deliveries: number,
  line: (text?: string) => void,
): Promise<RetentionFigures> {
  const { http } = worker;
  const capRows = limits.chunk * limits.maxChunks;
  const mix = SEED_MIX;
  line("#### 7a. Retention throughput: runRetention as the cron runs it");
  line(
    `retention's limits (src/): chunks of ${count(limits.chunk)} rows, at most ${limits.maxChunks} chunks per table per run: ${count(capRows)} rows of each table per run, one run a minute (wrangler.toml crons)`,
  );
  line(
    `seeded: ${count(deliveries)} deliveries that succeeded at once, published at ${count(mix.perSecond)}/s (${(deliveries / mix.perSecond).toFixed(0)} s of traffic) ${worker.retentionDays + 1} days ago, ids from newId("msg", time): each has a messages row with its delivery's record (1 in ${mix.keyedEvery} with an idempotency key and its index entry); 1 in ${mix.retriedEvery} also a deliveries row (retried; 1 in ${mix.deadEvery} of all dead, with a dead letter); 1 in ${mix.claimEvery} an idempotency claim (a keyed publish to a topic recording failures only); topic_counts for ${mix.topics} topics a minute`,
  );
  const from = Date.now() - (worker.retentionDays + 1) * DAY_MS;
  const seeded = await seedDeliveries(http, deliveries, from, mix);
  const perDelivery = Object.fromEntries(
    TABLES.map((table) => [table, seeded.rows[table] / deliveries]),
  ) as Record<SeededTable, number>;
  const seededTotal = TABLES.reduce((sum, table) => sum + seeded.rows[table], 0);
  line(
    `seeding wrote ${count(seededTotal)} rows in ${(seeded.ms / 1000).toFixed(1)} s: ${TABLES.map((table) => `${table} ${count(seeded.rows[table])}`).join(", ")}`,
  );
  const before = await countSeeded(http);
  if (TABLES.some((table) => before[table] !== seeded.rows[table])) {
    throw new Error(`seeded rows differ from the plan: ${JSON.stringify(before)}`);
  }

  line();
  line("runs back to back, each at the time it starts (the cron makes one a minute):");
  line(
    "| run | run time (in the Worker) | D1 statements | rows deleted | deliveries | messages | idempotency_claims | topic_counts | dead_letters | at the cap | retention.behind logged for |",
  );
  line("|---|---|---|---|---|---|---|---|---|---|---|");
  const maxRuns = Math.ceil(seededTotal / capRows) + 5;
  const runs = await runRetentionUntilEmpty(http, logs, capRows, maxRuns, (run, index) =>
    line(runRow(index + 1, run)),
  );
  const after = await countSeeded(http);
  const left = TABLES.filter((table) => after[table] !== 0);
  line(
    left.length === 0
      ? "left after the last run: nothing"
      : `LEFT AFTER THE LAST RUN: ${left.map((table) => `${table} ${after[table]}`).join(", ")}`,
  );

  const working = runs.filter((run) => totalDeleted(run) > 0);
  const deleted = runs.reduce((sum, run) => sum + totalDeleted(run), 0);
  const runMs = working.reduce((sum, run) => sum + run.ms, 0);
  const statements = working.reduce((sum, run) => sum + run.statements, 0);
  const maxStatements = Math.max(...runs.map((run) => run.statements));
  const rowsPerSecond = (deleted / runMs) * 1000;
  const longest = Math.max(...runs.map((run) => run.ms));
  line();
  line(
    `deleted ${count(deleted)} rows in ${working.length} run(s) that found rows (${runs.length} in all, the last finding nothing), ${(runMs / 1000).toFixed(2)} s of run time: ${perSecond(rowsPerSecond)} rows deleted per second of run time, ${ms(runMs / statements)} per statement (${count(deleted / statements)} rows each on average)`,
  );
  line(
    `D1 statements per run: at most ${maxStatements}${maxStatements > D1_QUERIES_PER_INVOCATION ? " — OVER THE LIMIT" : ""} (the platform allows ${count(D1_QUERIES_PER_INVOCATION)} per invocation; the design's bound is 5 tables × ${limits.maxChunks} chunks = ${5 * limits.maxChunks}); the longest run took ${ms(longest)}, against the cron's ${CRON_PERIOD_S} s`,
  );

  line();
  line(
    `Keeping pace: one run a minute deletes at most ${count(capRows)} rows of each table, ${count(capRows / CRON_PERIOD_S)} a second; divided by the rows a delivery leaves in that table:`,
  );
  line(
    "| table | rows per delivery, as seeded | deliveries/s one run a minute keeps pace with | worst case for the table | deliveries/s then |",
  );
  line("|---|---|---|---|---|");
  const worst: Record<SeededTable, [number, string]> = {
    deliveries: [1, "every delivery retried or failed: 1 row each"],
    messages: [1, "1 subscriber per message: 1 row per delivery"],
    idempotency_claims: [
      1,
      "every publish keyed, to a topic recording failures only, 1 subscriber",
    ],
    topic_counts: [Number.NaN, "1 row per topic per minute, whatever the deliveries"],
    dead_letters: [1, "every delivery dead: 1 row each"],
  };
  const pace = (rows: number) => (rows > 0 ? capRows / CRON_PERIOD_S / rows : Infinity);
  for (const table of TABLES) {
    const [worstRows, worstText] = worst[table];
    const seededPace =
      table === "topic_counts"
        ? `up to ${count(capRows)} topics active in a minute`
        : perSecond(pace(perDelivery[table]));
    const worstPace = Number.isNaN(worstRows) ? "n/a" : perSecond(pace(worstRows));
    line(
      `| ${table} | ${perDelivery[table].toFixed(4)} | ${seededPace} | ${worstText} | ${worstPace} |`,
    );
  }
  const binding = pace(1);
  line(
    `so one run a minute keeps pace with ${perSecond(binding)} deliveries (${count(binding * 300)} per 5 minutes) while each leaves at most one row in any one table: ${binding >= TARGET_PER_SECOND ? "at or above" : "BELOW"} the target of ${perSecond(TARGET_PER_SECOND)} (${count(TARGET_PER_SECOND * 300)} per 5 minutes), ${(binding / TARGET_PER_SECOND).toFixed(2)}× it`,
  );
  const seededRowsPerDelivery = seededTotal / deliveries;
  const atTargetRows = TARGET_PER_SECOND * CRON_PERIOD_S * seededRowsPerDelivery;
  const atTargetMs = (atTargetRows / rowsPerSecond) * 1000;
  line(
    `time: at ${perSecond(TARGET_PER_SECOND)} with the seeded mix (${seededRowsPerDelivery.toFixed(3)} rows per delivery) a run has ${count(atTargetRows)} rows to delete, ${(atTargetMs / 1000).toFixed(1)} s at the measured rate: ${((atTargetMs / (CRON_PERIOD_S * 1000)) * 100).toFixed(1)}% of the database's time; deleting without pause, retention would keep up with ${perSecond(rowsPerSecond / seededRowsPerDelivery)} deliveries`,
  );

  // A run that stops at its cap must say so: with the cap lowered to 2 chunks, on 2 chunks + 1 rows.
  line();
  const extra = 2 * limits.chunk + 1;
  await seedDeliveries(http, extra, from, mix, deliveries);
  const lowered = await runRetentionOnce(http, logs, { chunks: 2, capRows: 2 * limits.chunk });
  const rest = await runRetentionUntilEmpty(http, logs, capRows, 5);
  const naturalBehind = runs.filter((run) => run.behindLogged.length > 0).length;
  const naturalAtCap = runs.filter((run) => run.atCap.length > 0).length;
  line(
    naturalAtCap === 0 && naturalBehind === 0
      ? "retention.behind: none of the runs above reached the cap, and none logged it"
      : `retention.behind: ${naturalAtCap} of the runs above stopped at the cap on some table and ${naturalBehind} logged retention.behind${naturalAtCap === naturalBehind ? " (the same runs)" : " (THEY DIFFER)"}`,
  );
  const lastWorking = working.at(-1);
  if (lastWorking && lastWorking.atCap.length > 0 && working.length < runs.length) {
    line(
      `  the last of them (run ${working.length}) deleted exactly the cap and left nothing: a run cannot tell that apart from more to come, so it logs retention.behind and the next run finds nothing`,
    );
  }
  line(
    `  then ${count(extra)} more deliveries' worth, and a run with the cap lowered to 2 chunks (runRetention's third argument): deleted messages ${count(lowered.deleted.messages ?? 0)}, at the cap on [${lowered.atCap.join(", ")}], logged retention.behind for [${lowered.behindLogged.join(", ")}]; the next run at the real cap deleted ${count(totalDeleted(rest[0] as RetentionRunResult))} and logged it for [${rest.flatMap((run) => run.behindLogged).join(", ")}]`,
  );
  const other = [...runs, lowered, ...rest].flatMap((run) => run.otherEvents);
  if (other.length > 0) line(`  OTHER RETENTION EVENTS: ${other.join("; ")}`);
  return {
    msPerRow: runMs / deleted,
    msPerStatement: runMs / statements,
    rowsPerStatement: deleted / statements,
  };
}

function runRow(index: number, run: RetentionRunResult): string {
  const cells = TABLES.map((table) => count(run.deleted[table] ?? 0));
  return `| ${index} | ${ms(run.ms)} | ${run.statements} | ${count(totalDeleted(run))} | ${cells.join(" | ")} | ${run.atCap.join(", ") || "—"} | ${run.behindLogged.join(", ") || "—"} |`;
}

function printCapacity(line: (text?: string) => void, floor: FloorFigure[], shapes: ShapeRun[]) {
  line(
    "wall time of each D1 call as the Worker sees it (the local runtime's clock moves in whole ms, so these are means over many calls); calls one after another",
  );
  line("| floor, repeated in the Worker | calls | ms per call | calls/s |");
  line("|---|---|---|---|");
  for (const figure of floor) {
    line(
      `| ${figure.label} | ${count(figure.calls)} | ${figure.msPerCall.toFixed(3)} | ${perSecond(1000 / figure.msPerCall)} |`,
    );
  }
  line();
  line(
    "sequential publishes from the bench (one request at a time, HTTP on loopback) to a topic with 1 subscriber, fanned out inline; the consumer runs beside them",
  );
  line(
    "| publishes | requests | deliveries | request p50 (mean) | stage | D1 call | calls | statements per call | ms per call | statements/s | calls per delivery | D1 ms per delivery |",
  );
  line("|---|---|---|---|---|---|---|---|---|---|---|---|");
  for (const run of shapes) {
    const calls = [...run.calls].sort((a, b) => b.ms - a.ms);
    calls.forEach((call, i) => {
      const head =
        i === 0
          ? `| ${run.shape.title} | ${count(run.shape.requests)} | ${count(run.deliveries)} | ${ms(run.requestMs.p50)} (${ms(run.requestMs.mean)})`
          : "| | | |";
      const perCall = call.ms / call.calls;
      line(
        `${head} | ${call.kind} | ${describeCall(call.sqls)} | ${count(call.calls)} | ${(call.statements / call.calls).toFixed(0)} | ${perCall.toFixed(3)} | ${perSecond((call.statements / call.ms) * 1000)} | ${(call.calls / run.deliveries).toFixed(3)} | ${(call.ms / run.deliveries).toFixed(3)} |`,
      );
    });
  }
}

interface PerDelivery {
  ms: number;
  statements: number;
  /** Statements that wrote rows (as D1 counted them), and the others (reads, writes of nothing). */
  writing: number;
  other: number;
  roundTrips: number;
  rowsWritten: number;
  rowsLeft: number;
}

function perDeliveryOf(run: ShapeRun): PerDelivery {
  const per = (total: number) => total / run.deliveries;
  const sum = <T>(list: readonly T[], f: (item: T) => number) =>
    list.reduce((total, item) => total + f(item), 0);
  const statements = sum(run.statements, (statement) => statement.calls);
  const writing = sum(run.statements, (statement) =>
    statement.rowsWritten > 0 ? statement.calls : 0,
  );
  return {
    ms: per(sum(run.calls, (call) => call.ms)),
    statements: per(statements),
    writing: per(writing),
    other: per(statements - writing),
    roundTrips: per(sum(run.calls, (call) => call.calls)),
    rowsWritten: per(sum(run.statements, (statement) => statement.rowsWritten)),
    rowsLeft: per(sum(Object.values(run.leftRows), (rows) => rows)),
  };
}

function printSustained(
  line: (text?: string) => void,
  floor: FloorFigure[],
  shapes: ShapeRun[],
  retention: RetentionFigures,
) {
  const insert = floor.find((figure) => figure.label.startsWith("INSERT"));
  line(
    `D1 runs one statement at a time, so a database sustains 1 / (its time per delivery). Per delivery: the D1 calls of the publish and the consumers (measured above), plus retention's deletion of the rows the delivery left (${retention.msPerRow.toFixed(4)} ms per row deleted, measured in 7a).`,
  );
  line();
  line("Locally (this machine, the local runtime's D1 on SQLite):");
  line(
    "| publishes | D1 statements per delivery | round trips per delivery | rows written per delivery | hot path D1 ms per delivery | rows left per delivery | retention ms per delivery | total ms per delivery | deliveries/s one database sustains |",
  );
  line("|---|---|---|---|---|---|---|---|---|");
  for (const run of shapes) {
    const each = perDeliveryOf(run);
    const retentionMs = each.rowsLeft * retention.msPerRow;
    const total = each.ms + retentionMs;
    line(
      `| ${run.shape.title} | ${each.statements.toFixed(3)} | ${each.roundTrips.toFixed(3)} | ${each.rowsWritten.toFixed(3)} | ${each.ms.toFixed(3)} | ${each.rowsLeft.toFixed(3)} | ${retentionMs.toFixed(4)} | ${total.toFixed(3)} | ${perSecond(1000 / total)} (= 1000 / ${total.toFixed(3)}) |`,
    );
  }
  const select = floor.find((figure) => figure.label.startsWith("SELECT"));
  if (insert && select) {
    line(
      `floor: a one-row INSERT took ${insert.msPerCall.toFixed(3)} ms here (${perSecond(1000 / insert.msPerCall)}), a SELECT 1 ${select.msPerCall.toFixed(3)} ms (${perSecond(1000 / select.msPerCall)}): most of a call's time here is the local runtime's round trip, not SQL, so these figures overstate the database's own time per delivery and understate what it sustains; the hot path's calls are batches of several statements in one round trip each`,
    );
  }
  line();
  const source = D1_THROUGHPUT_SOURCE;
  line(`By Cloudflare's published figure (${source.url}, ${source.section}, ${source.updated}):`);
  for (const quote of source.quotes) line(`  "${quote}"`);
  const deleteWeight = insert ? retention.msPerStatement / insert.msPerCall : 1;
  line(
    `Each statement counted as a query. Retention adds 1 statement per ${count(retention.rowsPerStatement)} rows deleted; a statement deleting that many rows took ${retention.msPerStatement.toFixed(2)} ms here, ${deleteWeight.toFixed(1)}× a one-row insert, so it is weighted as ${deleteWeight.toFixed(1)} queries.`,
  );
  line(
    `Two readings: every query ${PUBLISHED_MS_PER_QUERY} ms (the rule of thumb); and every statement that writes rows ${SEVERAL_MS_PER_WRITE} ms ("several milliseconds"), the others (reads, and writes that changed nothing) ${PUBLISHED_MS_PER_QUERY} ms.`,
  );
  line(
    `| publishes | queries per delivery: writing rows + others + retention | at ${PUBLISHED_MS_PER_QUERY} ms per query: deliveries/s | writes at ${SEVERAL_MS_PER_WRITE} ms: ms per delivery | deliveries/s then |`,
  );
  line("|---|---|---|---|---|");
  for (const run of shapes) {
    const each = perDeliveryOf(run);
    const retentionQueries = (each.rowsLeft / retention.rowsPerStatement) * deleteWeight;
    const queries = each.statements + retentionQueries;
    const atOne = 1000 / (queries * PUBLISHED_MS_PER_QUERY);
    const several =
      each.other * PUBLISHED_MS_PER_QUERY +
      (each.writing + retentionQueries) * SEVERAL_MS_PER_WRITE;
    line(
      `| ${run.shape.title} | ${queries.toFixed(3)} = ${each.writing.toFixed(3)} + ${each.other.toFixed(3)} + ${retentionQueries.toFixed(4)} | ${perSecond(atOne)} (= 1000 / ${queries.toFixed(3)}) | ${several.toFixed(3)} | ${perSecond(1000 / several)} (= 1000 / ${several.toFixed(3)}) |`,
    );
  }
}
