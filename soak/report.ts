/** The soak's one table, and the verdict: what makes the run fail. */
import type { SoakFigures } from "./soak";

/** Why the soak failed; empty when it passed. */
export function soakFailures(figures: SoakFigures): string[] {
  const failures: string[] = [];
  if (!figures.settled) failures.push("the deliveries did not settle before the deadline");
  if (figures.rejected > 0) failures.push(`${figures.rejected} messages were refused at publish`);
  if (figures.lost > 0) failures.push(`${figures.lost} deliveries were lost`);
  if (figures.misrouted > 0) failures.push(`${figures.misrouted} requests were misrouted`);
  if (figures.wrong > 0) failures.push(`${figures.wrong} requests were signed or shaped wrong`);
  if (figures.replayed !== figures.dead) {
    failures.push(`${figures.replayed} of ${figures.dead} dead letters were replayed`);
  }
  if (figures.statusMismatches > 0) {
    failures.push(`${figures.statusMismatches} message statuses disagree with the deliveries`);
  }
  if (figures.problems.some((problem) => problem.startsWith("dead letter:"))) {
    failures.push("the dead letters are not what the failures should have left");
  }
  return failures;
}

/** The figures as one two-column Markdown table, readable in a terminal too. */
export function formatTable(figures: SoakFigures): string {
  const ms = (value: number) => (Number.isNaN(value) ? "-" : `${Math.round(value)} ms`);
  const rows: [string, string][] = [
    ["published", `${figures.published} of ${figures.messages}`],
    ["expected deliveries", String(figures.expectedDeliveries)],
    ["delivered (after de-duplication)", String(figures.delivered)],
    ["duplicates", String(figures.duplicates)],
    ["dead (then replayed)", `${figures.dead} (${figures.replayed})`],
    ["lost", String(figures.lost)],
    ["misrouted", String(figures.misrouted)],
    ["wrong signature or content", String(figures.wrong)],
    [
      "publish latency p50 / p99 (per call)",
      `${ms(figures.publishLatencyMs.p50)} / ${ms(figures.publishLatencyMs.p99)}`,
    ],
    [
      "publish-to-delivery p50 / p99",
      `${ms(figures.deliveryLatencyMs.p50)} / ${ms(figures.deliveryLatencyMs.p99)}`,
    ],
    ["deliveries per second", figures.deliveriesPerSecond.toFixed(1)],
    ["requests to subscribers (all attempts)", String(figures.requests)],
    ["run time", `${(figures.durationMs / 1000).toFixed(0)} s`],
  ];
  const width = Math.max(...rows.map(([name]) => name.length));
  const valueWidth = Math.max(...rows.map(([, value]) => value.length));
  const line = (name: string, value: string) =>
    `| ${name.padEnd(width)} | ${value.padStart(valueWidth)} |`;
  return [
    line("metric", "value"),
    `|${"-".repeat(width + 2)}|${"-".repeat(valueWidth + 1)}:|`,
    ...rows.map(([name, value]) => line(name, value)),
  ].join("\n");
}
