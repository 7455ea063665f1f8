/**
 * Deleting or deactivating a subscriber, or deleting its topic, stops its pending attempts: their
 * deliveries become `cancelled`. Publishing has no API yet, so the deliveries are written to D1
 * directly and read back from it.
 */
import { env } from "cloudflare:workers";
import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { openDatabase } from "../../src/db/client";
import { type DeliveryState, deliveries } from "../../src/db/schema";
import { call, seedSubscriber, seedTopic } from "../harness";

const db = openDatabase(env.DB);
const STATES: DeliveryState[] = ["pending", "retrying", "delivered", "dead", "cancelled"];

/** One delivery in each state for the subscriber, each of its own message. */
async function seedDeliveries(subscriberId: string): Promise<void> {
  const now = Date.now();
  await db.insert(deliveries).values(
    STATES.map((state, i) => ({
      messageId: `msg_${subscriberId}_${i}`,
      subscriberId,
      state,
      attempts: state === "pending" ? 0 : 1,
      nextAttemptAt: state === "pending" || state === "retrying" ? now + 60_000 : null,
      createdAt: now,
    })),
  );
}

async function statesOf(subscriberId: string): Promise<string[]> {
  const rows = await db
    .select({ messageId: deliveries.messageId, state: deliveries.state })
    .from(deliveries)
    .where(eq(deliveries.subscriberId, subscriberId))
    .orderBy(deliveries.messageId);
  return rows.map((row) => row.state);
}

const CANCELLED_OPEN = ["cancelled", "cancelled", "delivered", "dead", "cancelled"];

describe("pending deliveries", () => {
  type Act = (subscriber: { id: string; topic: string }) => Promise<Response>;
  it.each<[string, Act, boolean]>([
    ["deleting the subscriber", (s) => call("DELETE", `/v1/subscribers/${s.id}`), false],
    [
      "deactivating the subscriber",
      (s) => call("PATCH", `/v1/subscribers/${s.id}`, { json: { active: false } }),
      false,
    ],
    ["deleting the topic", (s) => call("DELETE", `/v1/topics/${s.topic}`), true],
  ])("are cancelled by %s, and no one else's", async (_label, act, wholeTopic) => {
    const topic = await seedTopic();
    const subscriber = await seedSubscriber(topic.name);
    const neighbour = await seedSubscriber(topic.name);
    const stranger = await seedSubscriber();
    for (const s of [subscriber, neighbour, stranger]) await seedDeliveries(s.id);

    expect((await act(subscriber)).status).toBeLessThan(300);

    expect(await statesOf(subscriber.id)).toEqual(CANCELLED_OPEN);
    expect(await statesOf(neighbour.id)).toEqual(wholeTopic ? CANCELLED_OPEN : STATES);
    expect(await statesOf(stranger.id)).toEqual(STATES);
  });

  it("stay cancelled when the subscriber is active again", async () => {
    const subscriber = await seedSubscriber();
    await seedDeliveries(subscriber.id);
    const patch = (active: boolean) =>
      call("PATCH", `/v1/subscribers/${subscriber.id}`, { json: { active } });
    expect((await patch(false)).status).toBe(200);
    expect((await patch(true)).status).toBe(200);
    expect(await statesOf(subscriber.id)).toEqual(CANCELLED_OPEN);
  });

  it("are untouched by other changes", async () => {
    const subscriber = await seedSubscriber();
    await seedDeliveries(subscriber.id);
    const res = await call("PATCH", `/v1/subscribers/${subscriber.id}`, {
      json: { description: "renamed", timeoutMs: 2000 },
    });
    expect(res.status).toBe(200);
    expect(await statesOf(subscriber.id)).toEqual(STATES);
  });
});
