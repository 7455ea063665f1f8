import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { seedSubscriber, seedTopic } from "../harness";
import { answering, deliver, publishAndFanOut } from "../pipeline/support";
import { adminClient, expectSwitchboardError } from "./support";

/** A topic with one subscriber that failed `count` messages for good. */
async function deadLetters(count: number) {
  const topic = (await seedTopic()).name;
  const subscriber = await seedSubscriber(topic, { retry: { maxAttempts: 1 } });
  for (let i = 0; i < count; i += 1) {
    const { tasks } = await publishAndFanOut(topic, { body: { i } });
    await deliver(tasks, answering(500).fetch);
  }
  return { topic, subscriber };
}

beforeEach(() => {
  // Replays go to the Worker's own delivery queue, whose consumer calls the subscriber.
  vi.spyOn(globalThis, "fetch").mockImplementation(async () => new Response(null, { status: 204 }));
});

afterEach(() => {
  vi.restoreAllMocks();
});

describe("sb.deadLetters", () => {
  it("lists a topic's dead letters by page and all of them with listAll", async () => {
    const { topic, subscriber } = await deadLetters(3);
    const sb = adminClient();
    const page = await sb.deadLetters.list({ topic, limit: 2 });
    expect(page.deadLetters).toHaveLength(2);
    expect(page.deadLetters[0]).toMatchObject({
      topic,
      subscriberId: subscriber.id,
      attempts: 1,
      lastStatus: 500,
    });
    expect(page.nextCursor).toEqual(expect.any(String));

    const all = [];
    for await (const dead of sb.deadLetters.listAll({ subscriberId: subscriber.id, limit: 2 })) {
      all.push(dead.id);
    }
    expect(all).toHaveLength(3);
    expect(all.slice(0, 2)).toEqual(page.deadLetters.map((dead) => dead.id));
  });

  it("replays one, then the rest of a topic", async () => {
    const { topic } = await deadLetters(3);
    const sb = adminClient();
    const [first] = (await sb.deadLetters.list({ topic })).deadLetters;
    expect(await sb.deadLetters.replay(first?.id ?? "")).toEqual({ replayed: 1 });
    expect((await sb.deadLetters.list({ topic })).deadLetters).toHaveLength(2);
    expect(await sb.deadLetters.replayAll({ topic })).toEqual({ replayed: 2 });
    expect((await sb.deadLetters.list({ topic })).deadLetters).toEqual([]);
  });

  it("answers conflict when the subscriber is inactive", async () => {
    const { topic, subscriber } = await deadLetters(1);
    const sb = adminClient();
    await sb.subscribers.update(subscriber.id, { active: false });
    const [dead] = (await sb.deadLetters.list({ topic })).deadLetters;
    await expectSwitchboardError(sb.deadLetters.replay(dead?.id ?? ""), {
      status: 409,
      code: "conflict",
    });
    expect(await sb.deadLetters.replayAll({ topic })).toEqual({ replayed: 0 });
  });

  it("deletes a dead letter", async () => {
    const { topic } = await deadLetters(1);
    const sb = adminClient();
    const [dead] = (await sb.deadLetters.list({ topic })).deadLetters;
    const id = dead?.id ?? "";
    await expect(sb.deadLetters.delete(id)).resolves.toBeUndefined();
    await expectSwitchboardError(sb.deadLetters.delete(id), { status: 404, code: "not_found" });
    await expectSwitchboardError(sb.deadLetters.replay(id), { status: 404, code: "not_found" });
  });
});
