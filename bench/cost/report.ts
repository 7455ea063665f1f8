/**
 * The cost part's tables: per mode, what one delivery cost (per-delivery figures and dollars per
 * million deliveries beside the targets and two hosted services), the exact counts behind them,
 * and the statements that wrote the most rows.
 */
import { count } from "../lib/stats";
import { type Figures, stageName } from "./figures";

type Line = (text?: string) => void;

const fixed = (value: number, digits = 3) => value.toFixed(digits);
const dollars = (value: number) => `$${value.toFixed(value >= 0.1 || value === 0 ? 2 : 4)}`;

export function printCostTable(line: Line, rows: readonly Figures[]): void {
  const stages = rows[0]?.stages.map(stageName).join(" + ") ?? "";
  line(
    `| workload | deliveries | D1 rows written / delivery (${stages}) | rows read / delivery | statements / delivery | queue ops / delivery | invocations / delivery | runtime CPU ms / delivery | $ / M deliveries | D1 writes / D1 reads / queue / invocations / CPU | target | QStash | SNS |`,
  );
  line("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
  for (const row of rows) {
    const { run, cost } = row;
    const per = (total: number) => total / run.deliveries;
    const split = row.stages.map((kind) => fixed(per(row.rowsWrittenBy[kind] ?? 0))).join(" + ");
    const target = run.workload.targets[run.mode.name];
    const verdict = cost.total <= target ? "met" : "missed";
    const parts = [cost.d1Writes, cost.d1Reads, cost.queue, cost.invocations]
      .map(dollars)
      .concat(cost.cpu === undefined ? "n/a" : dollars(cost.cpu))
      .join(" / ");
    line(
      `| (${run.workload.id}) ${run.workload.title} | ${count(run.deliveries)} | ${fixed(per(row.rowsWritten))} (${split}) | ${fixed(per(row.rowsRead))} | ${fixed(per(row.statements))} | ${fixed(per(row.queueOperations))} | ${fixed(per(row.requests + row.consumerInvocations))} | ${run.cpuMs === undefined ? "n/a" : fixed(per(run.cpuMs))} | ${dollars(cost.total)} | ${parts} | ≤ ${dollars(target)} (${verdict}) | ${dollars(row.qstash)} | ${dollars(row.sns)} |`,
    );
  }
}

export function printCountsTable(line: Line, rows: readonly Figures[]): void {
  line(
    "| workload | publish requests | messages | arrived (distinct) | consumer invocations (by queue) | D1 round trips | statements | rows written | rows read | queue messages sent / consumed (retried) | queue ops | runtime CPU ms | retention: runs, rows deleted |",
  );
  line("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
  for (const row of rows) {
    const { run } = row;
    const invocations = Object.entries(row.invocationsBy)
      .map(([queue, n]) => `${stageName(queue)} ${count(n)}`)
      .join(", ");
    const deleted = Object.entries(run.retention.deleted)
      .filter(([, n]) => n > 0)
      .map(([table, n]) => `${table} ${count(n)}`)
      .join(", ");
    line(
      `| (${run.workload.id}) | ${count(row.requests)} | ${count(run.messages)} | ${count(run.arrivals.arrivals)} (${count(run.arrivals.distinct)}) | ${count(row.consumerInvocations)} (${invocations}) | ${count(row.roundTrips)} | ${count(row.statements)} | ${count(row.rowsWritten)} | ${count(row.rowsRead)} | ${count(row.queueMessagesSent)} / ${count(row.consumed)} (${count(row.retried)}) | ${count(row.queueOperations)} | ${run.cpuMs === undefined ? "n/a" : count(run.cpuMs)} | ${run.retention.runs}: ${deleted || "none"} |`,
    );
  }
}

/** The statements that wrote the most rows in each workload, where a delivery's money goes. */
export function printTopStatements(line: Line, rows: readonly Figures[], top = 5): void {
  for (const row of rows) {
    const { run } = row;
    const statements = [...run.counters.statements]
      .sort((a, b) => b.rowsWritten - a.rowsWritten || b.rowsRead - a.rowsRead)
      .slice(0, top);
    line(`(${run.workload.id}) ${run.mode.name}, per delivery: rows written, rows read, calls`);
    for (const statement of statements) {
      const per = (total: number) => fixed(total / run.deliveries);
      line(
        `  ${stageName(statement.kind).padEnd(12)} ${per(statement.rowsWritten).padStart(7)} w ${per(statement.rowsRead).padStart(8)} r ${per(statement.calls).padStart(7)} × ${shortSql(statement.sql)}`,
      );
    }
  }
}

/** Warnings about the counting itself: anything here makes the figures above less than exact. */
export function printChecks(line: Line, rows: readonly Figures[]): void {
  for (const row of rows) {
    const { run } = row;
    const name = `(${run.workload.id}) ${run.mode.name}`;
    if (run.arrivals.distinct !== run.deliveries) {
      line(
        `warning: ${name}: ${run.arrivals.distinct} distinct arrivals, ${run.deliveries} expected`,
      );
    }
    if (row.unmetered > 0) {
      line(`warning: ${name}: ${row.unmetered} statements ran through exec(), rows not reported`);
    }
    for (const [queue, n] of Object.entries(row.invocationsBy)) {
      const logged = run.loggedInvocations[queue];
      if (logged !== undefined && logged !== n) {
        line(
          `warning: ${name}: ${queue}: ${n} invocations counted, ${logged} in the runtime's log`,
        );
      }
    }
  }
}

/** One line of SQL; long column lists shrink to `(…)` so that what differs stays in view. */
function shortSql(sql: string, max = 150): string {
  const flat = sql
    .replace(/\s+/g, " ")
    .replace(/\([^()]{40,}\)/g, "(…)")
    .trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}
