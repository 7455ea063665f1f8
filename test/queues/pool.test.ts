import { describe, expect, it } from "vitest";
import { mapWithLimit } from "../../src/queues/pool";

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("mapWithLimit", () => {
  it("never runs more than the limit at once, and uses all of it", async () => {
    let running = 0;
    let most = 0;
    await mapWithLimit(
      Array.from({ length: 20 }, (_, i) => i),
      6,
      async (i) => {
        running += 1;
        most = Math.max(most, running);
        await pause(1 + (i % 3));
        running -= 1;
      },
    );
    expect(most).toBe(6);
  });

  it("returns results in the order of the items, whatever order they finish in", async () => {
    const results = await mapWithLimit([30, 1, 20, 2], 4, async (ms, index) => {
      await pause(ms);
      return `${index}:${ms}`;
    });
    expect(results).toEqual(["0:30", "1:1", "2:20", "3:2"]);
  });

  it("handles fewer items than the limit, and none", async () => {
    await expect(mapWithLimit([1], 6, async (n) => n * 2)).resolves.toEqual([2]);
    await expect(mapWithLimit([], 6, async (n: number) => n)).resolves.toEqual([]);
  });

  it("rejects when a work item throws", async () => {
    await expect(
      mapWithLimit([1, 2], 2, async (n) => {
        if (n === 2) throw new Error("boom");
        return n;
      }),
    ).rejects.toThrow("boom");
  });
});
