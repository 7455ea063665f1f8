/**
 * A small soak in the test suite: the same code as `npm run soak`, with few messages, so that a
 * lost, misrouted or altered delivery, or a dead letter that cannot be replayed, fails `npm test`.
 */
import { afterAll, expect, it, vi } from "vitest";
import { soakFailures } from "../soak/report";
import { runSoak } from "../soak/soak";

afterAll(() => {
  vi.unstubAllEnvs();
});

it("delivers every message exactly once after de-duplication, and replays every dead letter", async () => {
  // The local queues log every batch at info level; the figures say what matters.
  vi.stubEnv("WRANGLER_LOG", "warn");
  const figures = await runSoak({ messages: 200, settleTimeoutMs: 60_000 });

  expect(figures.problems).toEqual([]);
  expect(soakFailures(figures)).toEqual([]);
  expect(figures).toMatchObject({
    settled: true,
    published: 200,
    rejected: 0,
    lost: 0,
    misrouted: 0,
    wrong: 0,
    statusMismatches: 0,
  });
  expect(figures.delivered).toBe(figures.expectedDeliveries);
  expect(figures.dead).toBeGreaterThan(0);
  expect(figures.replayed).toBe(figures.dead);
}, 120_000);
