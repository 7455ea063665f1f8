/**
 * `npm run bench -- --only=cost`: what one delivery costs over its whole life (publish, fan-out,
 * delivery, retention) at list prices, counted through the broker's real handlers in the local
 * runtime, for each workload in each mode the broker accepts.
 */
import type { QueueLog } from "../lib/queue-log";
import type { Sink } from "../lib/sink";
import { readCost } from "./counters";
import { type Figures, figuresOf } from "./figures";
import { startCostWorker } from "./local";
import { runWorkload } from "./measure";
import { LIST_PRICES } from "./prices";
import { printChecks, printCostTable, printCountsTable, printTopStatements } from "./report";
import { acceptsMode } from "./traffic";
import { costWorkloads, MODES } from "./workloads";

export interface CostPartOptions {
  quick: boolean;
  sink: Sink;
  queueLog: QueueLog;
  line: (text?: string) => void;
}

export async function measureLifetimeCost(options: CostPartOptions): Promise<void> {
  const { line, quick } = options;
  const worker = await startCostWorker();
  try {
    const p = LIST_PRICES;
    const $ = (value: number) => `$${value.toFixed(value < 0.01 ? 3 : 2)}`;
    line(
      `list prices per million: D1 rows written ${$(p.d1RowWritten)}, rows read ${$(p.d1RowRead)}; queue operations ${$(p.queueOperation)} (each 64 KB written, read or deleted); Worker requests ${$(p.workerRequest)}; CPU ms ${$(p.cpuMs)}`,
    );
    line(
      "counted from the first publish to the end of retention; set-up calls (topics, subscribers) are not counted",
    );
    line(
      `retention: runRetention at now + ${worker.retentionDays + 1} days, repeated until it deletes nothing; its D1 rows count, its runs do not (cron runs come at a fixed rate whatever the traffic)`,
    );
    line(
      "invocations: publish requests + consumer invocations. Runtime CPU is the local runtime's whole CPU time (the Worker, local D1, local queues, the dev proxy): production bills only the Worker's own, so it overstates that share",
    );
    const readCpuMs = await readCost(worker.http, worker.cpu);
    line(
      `runtime CPU of one read of the counters by the bench: ${readCpuMs === undefined ? "n/a" : `${readCpuMs.toFixed(2)} ms`}, left out of each workload's CPU (a few reads each)`,
    );
    const context = { worker, sink: options.sink, queueLog: options.queueLog, readCpuMs };
    for (const mode of MODES) {
      line(`\n#### ${mode.name}${describeMode(mode.topic)}`);
      if (!(await acceptsMode(worker, mode))) {
        if (mode.name === "default") throw new Error("the broker refused a plain topic");
        line(`${mode.name}: not available (POST /v1/topics answered 400 to the setting)`);
        continue;
      }
      const started = performance.now();
      const rows: Figures[] = [];
      for (const workload of costWorkloads(quick)) {
        const run = await runWorkload(context, workload, mode);
        rows.push(figuresOf(run, worker.queues));
      }
      printCostTable(line, rows);
      line();
      printCountsTable(line, rows);
      line();
      printTopStatements(line, rows);
      printChecks(line, rows);
      line(`(${mode.name}: ${((performance.now() - started) / 1000).toFixed(0)} s)`);
    }
  } finally {
    await worker.dispose();
  }
}

function describeMode(topic: Record<string, unknown>): string {
  const fields = Object.entries(topic).map(([key, value]) => `${key}: ${JSON.stringify(value)}`);
  return fields.length === 0
    ? " (topics as created by default)"
    : ` (topics with ${fields.join(", ")})`;
}
