/**
 * Every size limit from both sides: the largest request that is accepted, and the same request
 * one byte (or one item) over, which is refused cleanly and leaves no trace. The message body
 * limit (1 MiB as delivered) is checked for each way a body can be published, in bytes, not
 * characters.
 */
import { env } from "cloudflare:workers";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import type { Envelope } from "../../src/api/schemas/envelope";
import { messageBodyOf, requestPartsOf } from "../../src/publish/envelope";
import { MAX_STORED_CONTENT_BYTES } from "../../src/publish/prepare";
import { FanoutTaskSchema, parseStoredContent } from "../../src/queues/tasks";
import { type CallOptions, seedTopic } from "../harness";
import { expectRefusedCleanly, hostileCall, nested, rawJson, snapshotTables } from "./support";

const MiB = 1024 * 1024;

interface Sized {
  /** `{topic}` stands for a fresh topic. */
  path: string;
  request: CallOptions;
}

type Pair = [
  label: string,
  exact: Sized,
  over: Sized,
  refusal: { status: number; code: string },
  /** Bytes the accepted message's body has as delivered, read back from what was stored. */
  deliveredBytes?: number,
];

const MESSAGES = "/v1/topics/{topic}/messages";
const TOO_LARGE = { status: 413, code: "payload_too_large" };
const INVALID = { status: 400, code: "validation_failed" };

const envelope = (json: unknown): Sized => ({ path: MESSAGES, request: { json } });
const zeros = (bytes: number) => btoa("\0".repeat(bytes));

/** The bytes a message's content takes in storage: its body, headers, query and params as JSON. */
const storedBytes = (message: Envelope) =>
  JSON.stringify({ body: messageBodyOf(message), ...requestPartsOf(message) }).length;

/**
 * An envelope whose content takes exactly `bytes` in storage, under every other limit: a 1 MiB
 * body as base64, 64 header values of 8 KiB, and query values of up to 2 KiB to make up the rest.
 */
function storedContentOf(bytes: number): Sized {
  const headers = Object.fromEntries(
    Array.from({ length: 64 }, (_, i) => [`x-h${i}`, "v".repeat(8192)]),
  );
  const values: string[] = [];
  const message = () => {
    const query: Record<string, string[]> = {};
    values.forEach((value, i) => {
      const name = `q${Math.floor(i / 64)}`;
      query[name] = [...(query[name] ?? []), value];
    });
    return { bodyBase64: zeros(MiB), headers, query };
  };
  while (bytes - storedBytes(message()) > 2000) values.push("q".repeat(2048));
  values.push("");
  let gap = bytes - storedBytes(message());
  while (gap < 0) {
    values[values.length - 2] = "q".repeat(2000);
    gap = bytes - storedBytes(message());
  }
  values[values.length - 1] = "q".repeat(gap);
  const sized = message();
  expect(storedBytes(sized)).toBe(bytes);
  // Under the envelope's own 2 MiB, so that only the stored size can refuse it.
  expect(JSON.stringify(sized).length).toBeLessThan(2 * MiB);
  return envelope(sized);
}

const PAIRS: Pair[] = [
  [
    "a JSON body (its serialised bytes)",
    // The quotes of a JSON string are part of the body as delivered.
    envelope({ body: "x".repeat(MiB - 2) }),
    envelope({ body: "x".repeat(MiB - 1) }),
    TOO_LARGE,
    MiB,
  ],
  [
    "a JSON body of two-byte characters",
    envelope({ body: "é".repeat((MiB - 2) / 2) }),
    envelope({ body: `${"é".repeat((MiB - 2) / 2)}a` }),
    TOO_LARGE,
    MiB,
  ],
  [
    "bodyText",
    envelope({ bodyText: "t".repeat(MiB) }),
    envelope({ bodyText: "t".repeat(MiB + 1) }),
    TOO_LARGE,
    MiB,
  ],
  [
    "bodyText of two-byte characters, counted in bytes",
    envelope({ bodyText: "é".repeat(MiB / 2) }),
    envelope({ bodyText: `${"é".repeat(MiB / 2)}a` }),
    TOO_LARGE,
    MiB,
  ],
  [
    "bodyBase64 (its decoded bytes)",
    envelope({ bodyBase64: zeros(MiB) }),
    envelope({ bodyBase64: zeros(MiB + 1) }),
    TOO_LARGE,
    MiB,
  ],
  [
    "a raw body",
    { path: `${MESSAGES}/raw`, request: { body: new Uint8Array(MiB) } },
    { path: `${MESSAGES}/raw`, request: { body: new Uint8Array(MiB + 1) } },
    TOO_LARGE,
    MiB,
  ],
  [
    "one body of a batch",
    {
      path: `${MESSAGES}/batch`,
      request: { json: { messages: [{ bodyText: "t".repeat(MiB) }] } },
    },
    {
      path: `${MESSAGES}/batch`,
      request: { json: { messages: [{ body: 1 }, { bodyText: "t".repeat(MiB + 1) }] } },
    },
    TOO_LARGE,
    MiB,
  ],
  [
    "a message's content as stored (body, headers and query together)",
    storedContentOf(MAX_STORED_CONTENT_BYTES),
    storedContentOf(MAX_STORED_CONTENT_BYTES + 1),
    TOO_LARGE,
    MiB,
  ],
  [
    "the nesting of a JSON body",
    { path: MESSAGES, request: rawJson(`{"body":${nested(128, "array")}}`) },
    { path: MESSAGES, request: rawJson(`{"body":${nested(129, "array")}}`) },
    INVALID,
  ],
  [
    "an Idempotency-Key",
    {
      path: MESSAGES,
      request: { json: { body: 1 }, headers: { "idempotency-key": "k".repeat(255) } },
    },
    {
      path: MESSAGES,
      request: { json: { body: 1 }, headers: { "idempotency-key": "k".repeat(256) } },
    },
    INVALID,
  ],
  [
    "a header value",
    envelope({ body: 1, headers: { "x-a": "v".repeat(8192) } }),
    envelope({ body: 1, headers: { "x-a": "v".repeat(8193) } }),
    INVALID,
  ],
  [
    "a batch",
    {
      path: `${MESSAGES}/batch`,
      request: { json: { messages: Array.from({ length: 100 }, (_, i) => ({ body: i })) } },
    },
    {
      path: `${MESSAGES}/batch`,
      request: { json: { messages: Array.from({ length: 101 }, (_, i) => ({ body: i })) } },
    },
    INVALID,
  ],
  [
    "a topic name",
    { path: "/v1/topics", request: { json: { name: "n".repeat(128) } } },
    { path: "/v1/topics", request: { json: { name: "n".repeat(129) } } },
    INVALID,
  ],
  [
    "a subscriber filter (4,096 bytes)",
    {
      path: "/v1/topics/{topic}/subscribers",
      request: {
        json: { url: "https://hooks.example.com/", filter: `body.a == "${"é".repeat(2042)}"` },
      },
    },
    {
      path: "/v1/topics/{topic}/subscribers",
      request: {
        json: { url: "https://hooks.example.com/", filter: `body.a == "${"é".repeat(2042)}x"` },
      },
    },
    { status: 400, code: "invalid_filter" },
  ],
];

beforeAll(() => {
  vi.spyOn(console, "error").mockImplementation(() => undefined);
});

afterAll(() => {
  vi.restoreAllMocks();
});

/** The body's delivered size, from the content stored with the message (it is too large to ride inline). */
async function storedBodyBytes(messageId: string): Promise<number> {
  const row = await env.DB.prepare("select payload from messages where id = ?")
    .bind(messageId)
    .first<{ payload: string | null }>();
  const body = parseStoredContent(row?.payload)?.body;
  if (body?.kind === "text") return new TextEncoder().encode(body.text).byteLength;
  if (body?.kind === "bytes") return atob(body.base64).length;
  if (body?.kind === "json") return new TextEncoder().encode(JSON.stringify(body.value)).byteLength;
  return -1;
}

function withTopic(sized: Sized, topic: string): [string, CallOptions] {
  return [sized.path.replaceAll("{topic}", topic), sized.request];
}

describe("size limits", () => {
  it.each(PAIRS)(
    "%s: refuses one over, accepts the limit",
    async (_label, exact, over, refusal, deliveredBytes) => {
      const { name: topic } = await seedTopic();

      const before = await snapshotTables();
      const refused = await hostileCall("POST", ...withTopic(over, topic));
      await expectRefusedCleanly(refused.res, refusal.status, refusal.code, {
        before,
        queues: refused.queues,
      });

      const accepted = await hostileCall("POST", ...withTopic(exact, topic));
      const text = await accepted.res.text();
      expect(accepted.res.status, text).toBeLessThan(300);
      if (deliveredBytes !== undefined) {
        const sent = accepted.queues.fanout.bodies();
        expect(sent).toHaveLength(1);
        const { messageId } = FanoutTaskSchema.parse(sent[0]);
        expect(await storedBodyBytes(messageId)).toBe(deliveredBytes);
      }
      // Megabyte payloads would make every later snapshot slow to read. A message's idempotency
      // key is on its row, and goes with it.
      await env.DB.prepare("delete from messages where topic = ?").bind(topic).run();
    },
  );
});
