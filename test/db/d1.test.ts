import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { jsonChunks } from "../../src/db/d1";

describe("jsonChunks", () => {
  it("keeps every run's JSON within the bound, in order, losing nothing", () => {
    fc.assert(
      fc.property(
        fc.array(fc.string({ unit: "grapheme-ascii", maxLength: 40 }), { maxLength: 200 }),
        fc.integer({ min: 50, max: 400 }),
        (items, maxChars) => {
          const runs = jsonChunks(items, (item) => JSON.stringify(item).length, maxChars);
          expect(runs.flat()).toEqual(items);
          for (const run of runs) {
            expect(run.length).toBeGreaterThan(0);
            expect(JSON.stringify(run).length).toBeLessThanOrEqual(maxChars);
          }
        },
      ),
      { seed: 7, numRuns: 500 },
    );
  });

  it("gives an item longer than the bound a run of its own", () => {
    const long = "x".repeat(100);
    expect(jsonChunks(["a", long, "b"], (item) => item.length + 2, 20)).toEqual([
      ["a"],
      [long],
      ["b"],
    ]);
  });
});
