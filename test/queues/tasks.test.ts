import { describe, expect, it } from "vitest";
import {
  chunkForSendBatch,
  type MessageContent,
  parseStoredContent,
  SEND_BATCH_MAX_BYTES,
  SEND_BATCH_MAX_MESSAGES,
  taskSize,
} from "../../src/queues/tasks";

const KB = 1024;
const sizes = (chunks: unknown[][]) => chunks.map((chunk) => chunk.length);

describe("chunkForSendBatch", () => {
  it("splits 250 small tasks into 100, 100 and 50, in order", () => {
    const tasks = Array.from({ length: 250 }, (_, i) => ({ i }));
    const chunks = chunkForSendBatch(tasks);
    expect(sizes(chunks)).toEqual([100, 100, 50]);
    expect(chunks.flat()).toEqual(tasks);
  });

  it.each([
    [0, []],
    [1, [1]],
    [100, [100]],
    [101, [100, 1]],
    [200, [100, 100]],
  ])("splits %i small tasks into %j", (count, expected) => {
    const tasks = Array.from({ length: count }, (_, i) => i);
    expect(sizes(chunkForSendBatch(tasks, () => 10))).toEqual(expected);
  });

  it("keeps each call within the byte limit", () => {
    const tasks = Array.from({ length: 7 }, (_, i) => i);
    expect(sizes(chunkForSendBatch(tasks, () => 100 * KB))).toEqual([2, 2, 2, 1]);
  });

  it("fills a call up to the byte limit exactly", () => {
    const tasks = [1, 2, 3];
    expect(sizes(chunkForSendBatch(tasks, () => SEND_BATCH_MAX_BYTES / 2))).toEqual([2, 1]);
  });

  it("mixes sizes without passing either limit", () => {
    const taskSizes = [200 * KB, 30 * KB, 20 * KB, ...Array.from({ length: 150 }, () => 10)];
    const chunks = chunkForSendBatch(
      taskSizes.map((size, i) => ({ i, size })),
      (task) => task.size,
    );
    for (const chunk of chunks) {
      expect(chunk.length).toBeLessThanOrEqual(SEND_BATCH_MAX_MESSAGES);
      expect(chunk.reduce((sum, task) => sum + task.size, 0)).toBeLessThanOrEqual(
        SEND_BATCH_MAX_BYTES,
      );
    }
    expect(chunks.flat().map((task) => task.i)).toEqual(taskSizes.map((_, i) => i));
  });

  it("stays under the platform's 256 KB and 100 messages per sendBatch", () => {
    expect(SEND_BATCH_MAX_MESSAGES).toBeLessThanOrEqual(100);
    expect(SEND_BATCH_MAX_BYTES).toBeLessThan(256_000);
  });

  it("measures tasks by their JSON with room for metadata", () => {
    const task = { messageId: "msg_1", topic: "é" };
    expect(taskSize(task)).toBe(new TextEncoder().encode(JSON.stringify(task)).byteLength + 128);
  });
});

describe("parseStoredContent", () => {
  const content: MessageContent = {
    body: { kind: "json", value: { a: 1 }, contentType: "application/json" },
    headers: { "x-a": "1" },
    query: { tag: ["a", "b"] },
    pathParams: {},
    method: null,
  };

  it("reads content stored as JSON", () => {
    expect(parseStoredContent(JSON.stringify(content))).toEqual(content);
  });

  it.each([null, undefined, "", "{", '{"body":{"kind":"wat"}}', "[]"])(
    "is undefined for %j",
    (payload) => {
      expect(parseStoredContent(payload)).toBeUndefined();
    },
  );
});
