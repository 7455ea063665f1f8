import { describe, expect, it } from "vitest";
import { SUBSCRIBER_URL, uniqueName } from "../harness";
import { adminClient, expectSwitchboardError, recording } from "./support";

async function topic(): Promise<string> {
  return (await adminClient().topics.create({ name: uniqueName() })).name;
}

describe("sb.subscribers", () => {
  it("creates a subscriber with its secret, and reads it back without", async () => {
    const sb = adminClient();
    const name = await topic();
    const created = await sb.subscribers.create(name, {
      url: `${SUBSCRIBER_URL}/:orderId`,
      filter: 'body.category == "food"',
      headers: { "X-Api-Key": "k" },
      retry: { maxAttempts: 3 },
    });
    expect(created).toMatchObject({
      topic: name,
      method: "POST",
      headers: { "x-api-key": "k" },
      retry: { maxAttempts: 3, baseDelaySeconds: 5, maxDelaySeconds: 43200 },
      active: true,
    });
    expect(created.secret).toMatch(/^whsec_/);
    const { secret: _secret, ...withoutSecret } = created;
    expect(await sb.subscribers.get(created.id)).toEqual(withoutSecret);
    expect((await sb.topics.get(name)).subscriberCount).toBe(1);
  });

  it("updates a subset, merging retry settings", async () => {
    const sb = adminClient();
    const created = await sb.subscribers.create(await topic(), {
      url: SUBSCRIBER_URL,
      retry: { maxAttempts: 3, baseDelaySeconds: 1 },
    });
    const updated = await sb.subscribers.update(created.id, {
      active: false,
      retry: { maxAttempts: 7 },
    });
    expect(updated).toMatchObject({
      id: created.id,
      url: SUBSCRIBER_URL,
      active: false,
      retry: { maxAttempts: 7, baseDelaySeconds: 1 },
    });
  });

  it("rotates the secret", async () => {
    const sb = adminClient();
    const created = await sb.subscribers.create(await topic(), { url: SUBSCRIBER_URL });
    const { secret } = await sb.subscribers.rotateSecret(created.id);
    expect(secret).toMatch(/^whsec_/);
    expect(secret).not.toBe(created.secret);
  });

  it("deletes a subscriber", async () => {
    const sb = adminClient();
    const created = await sb.subscribers.create(await topic(), { url: SUBSCRIBER_URL });
    await expect(sb.subscribers.delete(created.id)).resolves.toBeUndefined();
    await expectSwitchboardError(sb.subscribers.get(created.id), {
      status: 404,
      code: "not_found",
    });
    await expectSwitchboardError(sb.subscribers.delete(created.id), {
      status: 404,
      code: "not_found",
    });
  });

  it("lists a topic's subscribers page by page, and all of them with listAll", async () => {
    const sb = adminClient();
    const name = await topic();
    const ids: string[] = [];
    for (let i = 0; i < 5; i += 1) {
      ids.push((await sb.subscribers.create(name, { url: `${SUBSCRIBER_URL}/${i}` })).id);
    }
    const page = await sb.subscribers.list(name, { limit: 3 });
    expect(page.subscribers.map((s) => s.id)).toEqual(ids.slice(0, 3));
    expect(page.subscribers.every((s) => !("secret" in s))).toBe(true);

    const { fetch, sent } = recording();
    const listed: string[] = [];
    for await (const s of adminClient({ fetch }).subscribers.listAll(name, { limit: 2 })) {
      listed.push(s.id);
    }
    expect(listed).toEqual(ids);
    expect(sent).toHaveLength(3);
  });

  it.each([
    [
      "a filter that does not compile",
      { url: SUBSCRIBER_URL, filter: "body.a ==" },
      "invalid_filter",
    ],
    ["a URL of another scheme", { url: "ftp://example.com/" }, "invalid_url"],
    ["a timeout out of range", { url: SUBSCRIBER_URL, timeoutMs: 10 }, "validation_failed"],
  ])("refuses %s", async (_label, input, code) => {
    const sb = adminClient();
    const name = await topic();
    const error = await expectSwitchboardError(sb.subscribers.create(name, input), {
      status: 400,
      code,
    });
    if (code === "invalid_filter") expect(error.detail).toMatch(/\d/);
    if (code === "validation_failed") expect(error.errors[0]?.path).toBe("timeoutMs");
    expect((await sb.subscribers.list(name)).subscribers).toEqual([]);
  });

  it("answers not_found for a topic that does not exist", async () => {
    await expectSwitchboardError(
      adminClient().subscribers.create(uniqueName("missing"), { url: SUBSCRIBER_URL }),
      { status: 404, code: "not_found" },
    );
  });
});
