/**
 * What the soak publishes and who should receive it. Every message is planned up front with the
 * exact request its subscribers must see, and each subscriber carries its filter twice: as the
 * broker's filter expression and as a plain predicate, the oracle the deliveries are checked
 * against.
 */
import { pick, type Random, randomBytes, randomInt } from "./random";

export const MAIN_TOPIC = "soak.main";
export const SIDE_TOPIC = "soak.side";

/** How a subscriber's endpoint answers. */
export type Behaviour = "healthy" | "flaky" | "failing" | "slow";

/** The envelope fields the soak uses, as `POST /v1/topics/{topic}/messages` takes them. */
export interface OutgoingEnvelope {
  body?: unknown;
  bodyText?: string;
  bodyBase64?: string;
  contentType?: string;
  headers?: Record<string, string>;
  query?: Record<string, string | string[]>;
  pathParams: Record<string, string>;
  method?: "PUT";
}

export interface PlannedMessage {
  seq: number;
  topic: string;
  envelope: OutgoingEnvelope;
  /** The bytes every subscriber must receive, and their content type. */
  bytes: Buffer;
  contentType: string;
  /** Text bodies are verified with the Standard Webhooks library, binary ones byte for byte. */
  binary: boolean;
  /** `body` as the broker's filters see it. */
  filterBody: unknown;
}

export interface SubscriberPlan {
  name: string;
  topic: string;
  behaviour: Behaviour;
  /** The URL path, with `:seq` and `{ref}` filled from the message's path params. */
  path: string;
  filter?: string;
  /** The oracle: does `message` match `filter`? */
  matches(message: PlannedMessage): boolean;
  timeoutMs: number;
  retry: { maxAttempts: number; baseDelaySeconds: number; maxDelaySeconds: number };
}

const fast = { maxAttempts: 10, baseDelaySeconds: 1, maxDelaySeconds: 4 };

/**
 * The subscribers. The flaky one fails 30% of its attempts, so it gets enough attempts that
 * running out is rare; the delays stay short so that its retries settle within seconds.
 */
export const SUBSCRIBERS: readonly SubscriberPlan[] = [
  {
    name: "all",
    topic: MAIN_TOPIC,
    behaviour: "healthy",
    path: "/hooks/all/:seq/{ref}",
    matches: () => true,
    timeoutMs: 5000,
    retry: fast,
  },
  {
    name: "kind-a",
    topic: MAIN_TOPIC,
    behaviour: "healthy",
    path: "/hooks/kind-a",
    filter: 'body.kind == "a"',
    matches: (message) => field(message.filterBody, "kind") === "a",
    timeoutMs: 5000,
    retry: fast,
  },
  {
    name: "flaky",
    topic: MAIN_TOPIC,
    behaviour: "flaky",
    path: "/hooks/flaky",
    filter: "body.n mod 3 == 0",
    matches: (message) => numberField(message.filterBody, "n") % 3 === 0,
    timeoutMs: 1000,
    retry: fast,
  },
  {
    name: "failing",
    topic: MAIN_TOPIC,
    behaviour: "failing",
    path: "/hooks/failing",
    filter: 'headers.region == "eu"',
    matches: (message) => message.envelope.headers?.region === "eu",
    timeoutMs: 5000,
    retry: { maxAttempts: 3, baseDelaySeconds: 1, maxDelaySeconds: 4 },
  },
  {
    name: "slow",
    topic: MAIN_TOPIC,
    behaviour: "slow",
    path: "/hooks/slow",
    filter: "body.n mod 100 == 7",
    matches: (message) => numberField(message.filterBody, "n") % 100 === 7,
    timeoutMs: 5000,
    retry: fast,
  },
  {
    name: "side",
    topic: SIDE_TOPIC,
    behaviour: "healthy",
    path: "/hooks/side",
    matches: () => true,
    timeoutMs: 5000,
    retry: fast,
  },
];

/** The attempts the always-failing subscriber makes before a delivery is dead. */
export const FAILING_ATTEMPTS = 3;

function field(value: unknown, name: string): unknown {
  return typeof value === "object" && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)[name]
    : undefined;
}

/** NaN unless the field is a number, so that no `mod` test passes on it. */
function numberField(value: unknown, name: string): number {
  const found = field(value, name);
  return typeof found === "number" ? found : Number.NaN;
}

/** One publish call: a single envelope, or a batch of them, all to one topic. */
export interface PublishUnit {
  topic: string;
  batch: boolean;
  messages: PlannedMessage[];
}

/**
 * Plans `count` messages as publish calls: about half single publishes, the rest batches of 2–50.
 * One in ten calls goes to the side topic, whose subscriber must never see a main-topic message.
 */
export function planPublishes(count: number, random: Random): PublishUnit[] {
  const units: PublishUnit[] = [];
  let seq = 0;
  while (seq < count) {
    const topic = random() < 0.1 ? SIDE_TOPIC : MAIN_TOPIC;
    const batch = random() < 0.5;
    const size = batch ? Math.min(randomInt(random, 2, 50), count - seq) : 1;
    const messages: PlannedMessage[] = [];
    for (let i = 0; i < size; i++) messages.push(planMessage(seq++, topic, random));
    units.push({ topic, batch, messages });
  }
  return units;
}

const KINDS = ["a", "b", "c", "d"] as const;
const REGIONS = ["eu", "us", "ap"] as const;
const WORDS = [
  "plain",
  "café",
  "naïve",
  "日本語",
  "emoji 🚀",
  "tab\tand\nnewline",
  'quote "',
] as const;
/** Above the broker's 96 KB inline limit, so these travel by reference through D1. */
const LARGE_BYTES = 120 * 1024;

function planMessage(seq: number, topic: string, random: Random): PlannedMessage {
  const kind = pick(random, KINDS);
  const envelope: OutgoingEnvelope = { pathParams: { seq: String(seq), ref: `r/${seq} ü?` } };
  if (random() < 0.3) {
    envelope.headers = { region: pick(random, REGIONS), "X-Trace-Id": `trace-${seq}` };
    // The subscriber's own header of the same name must win.
    if (random() < 0.2) envelope.headers["x-subscriber"] = "publisher";
  }
  if (random() < 0.3) {
    envelope.query = { page: String(seq), tag: ["x", "y z"], q: "ü&=?" };
    // The message's query wins over the subscriber's on the same name.
    if (random() < 0.2) envelope.query.sub = "publisher";
  }
  if (random() < 0.05) envelope.method = "PUT";

  const shape = random();
  const large = random() < 0.01;
  if (shape < 0.7) {
    const body = {
      kind,
      n: seq,
      label: pick(random, WORDS),
      ratio: Math.round(random() * 1e6) / 1e3,
      items: Array.from({ length: randomInt(random, 0, 5) }, (_, i) => ({ i, ok: i % 2 === 0 })),
      nested: { deep: { deeper: [null, true, "x"] } },
      ...(large ? { blob: "L".repeat(LARGE_BYTES) } : {}),
    };
    envelope.body = body;
    return message(seq, topic, envelope, Buffer.from(JSON.stringify(body)), "application/json", {
      binary: false,
      filterBody: body,
    });
  }
  if (shape < 0.775) {
    const text = JSON.stringify({ kind, n: seq, note: pick(random, WORDS) }, null, 1);
    envelope.bodyText = text;
    envelope.contentType = "application/json";
    return message(seq, topic, envelope, Buffer.from(text), "application/json", {
      binary: false,
      filterBody: JSON.parse(text),
    });
  }
  if (shape < 0.85) {
    const text = `line ${seq}: ${pick(random, WORDS)}\n`.repeat(randomInt(random, 1, 40));
    envelope.bodyText = text;
    return message(seq, topic, envelope, Buffer.from(text), "text/plain; charset=utf-8", {
      binary: false,
      filterBody: text,
    });
  }
  const bytes = randomBytes(random, large ? LARGE_BYTES : randomInt(random, 1, 4096));
  envelope.bodyBase64 = bytes.toString("base64");
  envelope.contentType = random() < 0.5 ? "application/octet-stream" : "image/png";
  return message(seq, topic, envelope, bytes, envelope.contentType, {
    binary: true,
    filterBody: null,
  });
}

function message(
  seq: number,
  topic: string,
  envelope: OutgoingEnvelope,
  bytes: Buffer,
  contentType: string,
  rest: { binary: boolean; filterBody: unknown },
): PlannedMessage {
  return { seq, topic, envelope, bytes, contentType, ...rest };
}
