/**
 * Deleting or deactivating a subscriber, or deleting its topic, stops its open deliveries: `GET
 * /v1/messages/{id}` shows each pending or retrying one as `cancelled`, whether it waits in its
 * message's compact record or in a row of its own, and leaves finished ones as they were. The
 * deliveries are written to D1 directly, one of each form storage gives them, and read back through
 * the API.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { Delivery } from "../../src/api/schemas/messages";
import { openDatabase } from "../../src/db/client";
import type { RecordEntry } from "../../src/db/delivery-record";
import { newId } from "../../src/db/ids";
import { deliveries } from "../../src/db/schema";
import { call, seedSubscriber, seedTopic } from "../harness";
import { fanOut, messageStatus, publishTask } from "../pipeline/support";

const db = openDatabase(env.DB);

type Seeded = Pick<Delivery, "state" | "lastError">;

/** Each form storage gives a delivery: an entry of its message's record, or a row of its own. */
const FORMS: {
  label: string;
  entry?: RecordEntry;
  row?: Partial<typeof deliveries.$inferInsert>;
}[] = [
  { label: "pending in the record", entry: 0 },
  { label: "delivered in the record", entry: [1, 200, 1] },
  { label: "pending in a row (a replay)", row: { state: "pending", attempts: 0 } },
  {
    label: "retrying in a row",
    row: { state: "retrying", attempts: 1, lastStatus: 503, lastError: "HTTP 503" },
  },
  { label: "dead in a row", row: { state: "dead", attempts: 1, lastError: "HTTP 500" } },
  { label: "cancelled in a row", row: { state: "cancelled", lastError: "Subscriber is inactive" } },
];

/** FORMS as `GET /v1/messages/{id}` shows them while the subscriber is there and active. */
const OPEN: Seeded[] = [
  { state: "pending", lastError: null },
  { state: "delivered", lastError: null },
  { state: "pending", lastError: null },
  { state: "retrying", lastError: "HTTP 503" },
  { state: "dead", lastError: "HTTP 500" },
  { state: "cancelled", lastError: "Subscriber is inactive" },
];

/** OPEN once the subscriber's open deliveries are cancelled for `reason`. */
function cancelled(reason: string): Seeded[] {
  return [
    { state: "cancelled", lastError: reason },
    { state: "delivered", lastError: null },
    { state: "cancelled", lastError: reason },
    { state: "cancelled", lastError: "HTTP 503" },
    { state: "dead", lastError: "HTTP 500" },
    { state: "cancelled", lastError: "Subscriber is inactive" },
  ];
}

/** One delivery to the subscriber in each of FORMS, each on a message of its own; their ids. */
async function seedDeliveries(subscriber: { id: string; topic: string }): Promise<string[]> {
  const now = Date.now();
  const messageIds = FORMS.map(() => newId("msg", now));
  await env.DB.batch(
    FORMS.map(({ entry }, i) =>
      env.DB.prepare(
        `insert into messages (id, topic, state, matched, filtered, published_at, opened_at, delivery_record)
        values (?, ?, 'dispatched', 1, 0, ?, ?, ?)`,
      ).bind(
        messageIds[i],
        subscriber.topic,
        now,
        now,
        entry === undefined ? "{}" : JSON.stringify({ [subscriber.id]: entry }),
      ),
    ),
  );
  await db.insert(deliveries).values(
    FORMS.flatMap(({ row }, i) =>
      row
        ? [
            {
              messageId: messageIds[i] ?? "",
              subscriberId: subscriber.id,
              state: "pending" as const,
              attempts: 1,
              nextAttemptAt: row.state === "pending" || row.state === "retrying" ? now : null,
              createdAt: now,
              ...row,
            },
          ]
        : [],
    ),
  );
  return messageIds;
}

/** The subscriber's delivery of each message, as `GET /v1/messages/{id}` shows it. */
async function deliveriesOf(messageIds: string[], subscriberId: string): Promise<Delivery[]> {
  const found: Delivery[] = [];
  for (const id of messageIds) {
    const { deliveries: all } = await messageStatus(id);
    expect(all.map((delivery) => delivery.subscriberId)).toEqual([subscriberId]);
    found.push(...all);
  }
  return found;
}

async function statesOf(messageIds: string[], subscriberId: string): Promise<Seeded[]> {
  return (await deliveriesOf(messageIds, subscriberId)).map(({ state, lastError }) => ({
    state,
    lastError,
  }));
}

describe("pending deliveries", () => {
  type Act = (subscriber: { id: string; topic: string }) => Promise<Response>;
  it.each<[string, Act, string, boolean]>([
    [
      "deleting the subscriber",
      (s) => call("DELETE", `/v1/subscribers/${s.id}`),
      "Subscriber was deleted",
      false,
    ],
    [
      "deactivating the subscriber",
      (s) => call("PATCH", `/v1/subscribers/${s.id}`, { json: { active: false } }),
      "Subscriber is inactive",
      false,
    ],
    [
      "deleting the topic",
      (s) => call("DELETE", `/v1/topics/${s.topic}`),
      "Subscriber was deleted",
      true,
    ],
  ])("are cancelled by %s, and no one else's", async (_label, act, reason, wholeTopic) => {
    const topic = await seedTopic();
    const subscriber = await seedSubscriber(topic.name);
    const neighbour = await seedSubscriber(topic.name);
    const stranger = await seedSubscriber();
    const seeded = new Map<string, string[]>();
    for (const s of [subscriber, neighbour, stranger]) seeded.set(s.id, await seedDeliveries(s));
    const messagesOf = (id: string) => seeded.get(id) ?? [];
    expect(await statesOf(messagesOf(subscriber.id), subscriber.id)).toEqual(OPEN);

    expect((await act(subscriber)).status).toBeLessThan(300);

    expect(await statesOf(messagesOf(subscriber.id), subscriber.id)).toEqual(cancelled(reason));
    expect(await statesOf(messagesOf(neighbour.id), neighbour.id)).toEqual(
      wholeTopic ? cancelled(reason) : OPEN,
    );
    expect(await statesOf(messagesOf(stranger.id), stranger.id)).toEqual(OPEN);
    for (const delivery of await deliveriesOf(messagesOf(subscriber.id), subscriber.id)) {
      expect(delivery.nextAttemptAt).toBeNull();
    }
  });

  it("stay cancelled when the subscriber is active again", async () => {
    const subscriber = await seedSubscriber();
    const messageIds = await seedDeliveries(subscriber);
    const patch = (active: boolean) =>
      call("PATCH", `/v1/subscribers/${subscriber.id}`, { json: { active } });
    expect((await patch(false)).status).toBe(200);
    expect((await patch(true)).status).toBe(200);
    expect(await statesOf(messageIds, subscriber.id)).toEqual(
      cancelled("Subscriber was deactivated after this delivery was opened"),
    );
  });

  it("opened after the subscriber is active again are not cancelled", async () => {
    const topic = await seedTopic();
    const subscriber = await seedSubscriber(topic.name);
    const patch = (active: boolean) =>
      call("PATCH", `/v1/subscribers/${subscriber.id}`, { json: { active } });
    expect((await patch(false)).status).toBe(200);
    expect((await patch(true)).status).toBe(200);
    // The deactivation cancels what was opened up to its millisecond, itself included.
    await new Promise((resolve) => setTimeout(resolve, 5));

    const task = await publishTask(topic.name, { body: 1 });
    await fanOut([task]);
    expect((await messageStatus(task.messageId)).deliveries).toEqual([
      expect.objectContaining({ subscriberId: subscriber.id, state: "pending", lastError: null }),
    ]);
  });

  it("are untouched by other changes", async () => {
    const subscriber = await seedSubscriber();
    const messageIds = await seedDeliveries(subscriber);
    const res = await call("PATCH", `/v1/subscribers/${subscriber.id}`, {
      json: { description: "renamed", timeoutMs: 2000 },
    });
    expect(res.status).toBe(200);
    expect(await statesOf(messageIds, subscriber.id)).toEqual(OPEN);
  });
});
