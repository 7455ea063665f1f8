import { describe, expect, it } from "vitest";
import {
  BUNDLE_MAX_BYTES,
  BUNDLE_MAX_DELIVERIES,
  bundle,
  chunkForSendBatch,
  type DeliveryBundle,
  type MessageContent,
  parseStoredContent,
  SEND_BATCH_MAX_BYTES,
  SEND_BATCH_MAX_MESSAGES,
  taskSize,
  unbundle,
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

describe("bundle", () => {
  type BundledMessage = DeliveryBundle["messages"][number];
  const OPENED_AT = 1_765_000_000_000;

  /** `count` messages whose bodies are `text` (empty unless given). */
  function messages(count: number, text = ""): BundledMessage[] {
    return Array.from({ length: count }, (_, i) => ({
      messageId: `msg_${String(i).padStart(26, "0")}`,
      publishedAt: OPENED_AT - i,
      content: {
        body: { kind: "text", text, contentType: "text/plain" },
        headers: {},
        query: {},
        pathParams: {},
        method: null,
      },
    }));
  }

  const subscribers = (count: number) =>
    Array.from({ length: count }, (_, i) => `sub_${String(i).padStart(26, "0")}`);

  /** Bundles as the fan-out does: each message's share is its own size as the queue counts it. */
  const bundleOf = (items: BundledMessage[], subscriberIds: string[]) =>
    bundle("orders", OPENED_AT, items, subscriberIds, taskSize);

  /** Every delivery the bundles carry, as "message subscriber". */
  const pairsOf = (bundles: DeliveryBundle[]) =>
    bundles.flatMap(unbundle).map((task) => `${task.messageId} ${task.subscriberId}`);

  /** Every pair of `items` and `subscriberIds`, each once. */
  const everyPair = (items: BundledMessage[], subscriberIds: string[]) =>
    items.flatMap((message) => subscriberIds.map((id) => `${message.messageId} ${id}`));

  it("splits 100 messages for one subscriber into ten bundles of ten, in order", () => {
    const items = messages(100);
    const bundles = bundleOf(items, ["sub_a"]);
    expect(bundles.map((b) => b.messages.length)).toEqual(Array(10).fill(10));
    expect(bundles.flatMap((b) => b.messages)).toEqual(items);
    for (const b of bundles) {
      expect(b).toMatchObject({ kind: "bundle", topic: "orders", openedAt: OPENED_AT });
      expect(b.subscriberIds).toEqual(["sub_a"]);
    }
  });

  it("splits one message for 25 subscribers into bundles of 10, 10 and 5", () => {
    const items = messages(1);
    const ids = subscribers(25);
    const bundles = bundleOf(items, ids);
    expect(bundles.map((b) => b.subscriberIds)).toEqual([
      ids.slice(0, 10),
      ids.slice(10, 20),
      ids.slice(20),
    ]);
    for (const b of bundles) expect(b.messages).toEqual(items);
  });

  it.each([
    [1, 1],
    [3, 10],
    [7, 4],
    [10, 10],
    [11, 3],
    [23, 7],
  ])(
    "carries each of %i subscribers' deliveries of %i messages once, ten at most to a bundle",
    (subscriberCount, messageCount) => {
      const items = messages(messageCount);
      const ids = subscribers(subscriberCount);
      const bundles = bundleOf(items, ids);
      for (const b of bundles) {
        expect(b.messages.length * b.subscriberIds.length).toBeLessThanOrEqual(
          BUNDLE_MAX_DELIVERIES,
        );
      }
      const pairs = pairsOf(bundles);
      expect(pairs).toHaveLength(messageCount * subscriberCount);
      expect(new Set(pairs)).toEqual(new Set(everyPair(items, ids)));
    },
  );

  it("puts a message larger than a bundle's bytes in a bundle of its own", () => {
    const [before, large, after] = [
      ...messages(1, "a"),
      ...messages(1, "x".repeat(80 * 1024)),
      ...messages(1, "b"),
    ];
    if (!before || !large || !after) throw new Error("no messages");
    const bundles = bundleOf([before, large, after], ["sub_a"]);
    expect(bundles.map((b) => b.messages)).toEqual([[before], [large], [after]]);
  });

  it("keeps each bundle within its bytes, as the queue counts them", () => {
    const items = messages(30, "x".repeat(10 * 1024));
    const bundles = bundleOf(items, subscribers(1));
    // Ten would fit the count, but not the bytes: six of some 10 KB each do.
    expect(bundles.map((b) => b.messages.length)).toEqual([6, 6, 6, 6, 6]);
    for (const b of bundles) expect(taskSize(b)).toBeLessThanOrEqual(BUNDLE_MAX_BYTES);
    expect(bundles.flatMap((b) => b.messages)).toEqual(items);
  });

  it("counts the subscriber ids against the bytes too", () => {
    const longIds = Array.from({ length: 5 }, (_, i) => `sub_${String(i).padStart(2000, "0")}`);
    const items = messages(2, "x".repeat(28 * 1024));
    const bundles = bundleOf(items, longIds);
    // Two messages of 28 KB fit 63 KB alone, but not beside 10 KB of subscriber ids.
    expect(bundles.map((b) => b.messages.length)).toEqual([1, 1]);
    for (const b of bundles) expect(taskSize(b)).toBeLessThanOrEqual(BUNDLE_MAX_BYTES);
  });

  it("makes no bundle without subscribers or without messages", () => {
    expect(bundleOf(messages(3), [])).toEqual([]);
    expect(bundleOf([], subscribers(3))).toEqual([]);
  });

  it("stays within one 64 KB unit of the queue's billing", () => {
    expect(BUNDLE_MAX_BYTES).toBeLessThanOrEqual(64 * 1024);
    expect(BUNDLE_MAX_DELIVERIES).toBe(10);
  });
});

describe("unbundle", () => {
  it("gives every message to every subscriber, as first attempts opened with the bundle", () => {
    const content: MessageContent = {
      body: { kind: "none" },
      headers: {},
      query: {},
      pathParams: {},
      method: null,
    };
    const tasks = unbundle({
      kind: "bundle",
      topic: "orders",
      openedAt: 5,
      messages: [
        { messageId: "m1", publishedAt: 1, content },
        { messageId: "m2", publishedAt: 2, content: null },
      ],
      subscriberIds: ["s1", "s2"],
    });
    const base = { topic: "orders", openedAt: 5 };
    expect(tasks).toEqual([
      { ...base, messageId: "m1", publishedAt: 1, content, subscriberId: "s1" },
      { ...base, messageId: "m1", publishedAt: 1, content, subscriberId: "s2" },
      { ...base, messageId: "m2", publishedAt: 2, content: null, subscriberId: "s1" },
      { ...base, messageId: "m2", publishedAt: 2, content: null, subscriberId: "s2" },
    ]);
  });
});
