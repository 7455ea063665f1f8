/**
 * The publishing patterns whose cost per delivery the bench measures, and the two ways a topic can
 * be set up for them. A mode is only a difference in the topic's creation body, so the lean run is
 * the same workload on a topic that asks to record failures only.
 */

export type WorkloadId = "a" | "b" | "b′" | "c" | "d";

export interface Workload {
  id: WorkloadId;
  /** Also the topic's and the sink channel's name part: ASCII only. */
  slug: string;
  title: string;
  /** Publish requests, sent one after another. */
  publishes: number;
  /** 1: `POST …/messages`; more: `POST …/messages/batch` with that many envelopes. */
  messagesPerPublish: number;
  subscribers: number;
  /** Each subscriber's filter; every message matches it. */
  filter?: string;
  /** `header`: an `Idempotency-Key` per request; `envelope`: an `idempotencyKey` per message. */
  keys: "header" | "envelope" | "none";
  /** $ per million deliveries the design aims at, per mode. */
  targets: Record<ModeName, number>;
}

export type ModeName = "default" | "lean";

export interface Mode {
  name: ModeName;
  /** Added to the topic's creation body. */
  topic: Record<string, unknown>;
}

export const MODES: readonly Mode[] = [
  { name: "default", topic: {} },
  { name: "lean", topic: { recording: "failures" } },
];

export function costWorkloads(quick: boolean): Workload[] {
  return [
    {
      id: "a",
      slug: "a",
      title: "1 message per publish, Idempotency-Key, 1 subscriber",
      publishes: quick ? 30 : 300,
      messagesPerPublish: 1,
      subscribers: 1,
      keys: "header",
      targets: { default: 6, lean: 4 },
    },
    {
      id: "b",
      slug: "b",
      title: "batches of 100, no keys, 1 subscriber",
      publishes: quick ? 2 : 10,
      messagesPerPublish: 100,
      subscribers: 1,
      keys: "none",
      targets: { default: 4, lean: 1.1 },
    },
    {
      id: "b′",
      slug: "b2",
      title: "batches of 100, an idempotencyKey per message, 1 subscriber",
      publishes: quick ? 2 : 10,
      messagesPerPublish: 100,
      subscribers: 1,
      keys: "envelope",
      targets: { default: 6, lean: 3 },
    },
    {
      id: "c",
      slug: "c",
      title: "1 message per publish, no key, 10 subscribers with matching filters",
      publishes: quick ? 10 : 100,
      messagesPerPublish: 1,
      subscribers: 10,
      filter: "body.n >= 0",
      keys: "none",
      targets: { default: 2, lean: 1.1 },
    },
    {
      id: "d",
      slug: "d",
      title: `1 message, no key, ${quick ? "1,000" : "10,000"} subscribers without filters`,
      publishes: 1,
      messagesPerPublish: 1,
      subscribers: quick ? 1_000 : 10_000,
      keys: "none",
      targets: { default: 1.5, lean: 0.6 },
    },
  ];
}

/** The body of message `n`: the shape the other benches publish, and `n` for the filters. */
export function messageBody(n: number) {
  return { n, orderId: n, category: "food", total: 12.5, currency: "EUR" };
}
