import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import {
  RotatedSecret,
  Subscriber,
  type SubscriberInput,
  type SubscriberPatch,
  SubscriberWithSecret,
} from "../../src/api/schemas/subscribers";
import {
  call,
  expectJson,
  expectProblem,
  rawJson,
  readSubscriber,
  SUBSCRIBER_URL,
  seedSubscriber,
  seedTopic,
} from "../harness";

/** `whsec_` and the base64 of 32 bytes. */
const SECRET = /^whsec_[A-Za-z0-9+/]{43}=$/;

async function patch(id: string, json: unknown): Promise<Subscriber> {
  return expectJson(await call("PATCH", `/v1/subscribers/${id}`, { json }), 200, Subscriber);
}

describe("POST /v1/topics/{topic}/subscribers", () => {
  it("creates a subscriber from a URL alone, with the defaults", async () => {
    const topic = await seedTopic();
    const before = Date.now();
    const res = await call("POST", `/v1/topics/${topic.name}/subscribers`, {
      json: { url: SUBSCRIBER_URL },
    });
    const created = await expectJson(res, 201, SubscriberWithSecret);
    expect(created).toEqual({
      id: expect.stringMatching(/^sub_\S+$/),
      topic: topic.name,
      url: SUBSCRIBER_URL,
      filter: null,
      method: "POST",
      headers: {},
      query: {},
      timeoutMs: 15000,
      retry: { maxAttempts: 15, baseDelaySeconds: 5, maxDelaySeconds: 43200 },
      active: true,
      description: null,
      createdAt: expect.any(String),
      updatedAt: expect.any(String),
      secret: expect.stringMatching(SECRET),
    });
    expect(Date.parse(created.createdAt)).toBeGreaterThanOrEqual(before - 1000);
  });

  it("issues a secret of 32 random bytes", async () => {
    const { secret } = await seedSubscriber();
    const bytes = Uint8Array.from(atob(secret.slice("whsec_".length)), (c) => c.charCodeAt(0));
    expect(bytes).toHaveLength(32);
    expect((await seedSubscriber()).secret).not.toBe(secret);
  });

  it("stores every field of the input", async () => {
    const input = {
      url: "https://api.example.com/orders/:orderId/{lineId}",
      filter: 'body.category == "food"',
      method: "PUT",
      headers: { "x-api-key": "k-123", authorization: "Bearer downstream" },
      query: { source: "switchboard", tag: ["a", "b"] },
      timeoutMs: 30000,
      retry: { maxAttempts: 100, baseDelaySeconds: 0, maxDelaySeconds: 60 },
      active: false,
      description: "orders service",
    } satisfies SubscriberInput;
    const created = await seedSubscriber(undefined, input);
    expect(created).toMatchObject(input);
    expect(await readSubscriber(created.id)).toMatchObject(input);
  });

  it.each<[Partial<SubscriberInput>, Partial<Subscriber>]>([
    [{ timeoutMs: 1000 }, { timeoutMs: 1000 }],
    [
      { retry: { maxAttempts: 1 } },
      { retry: { maxAttempts: 1, baseDelaySeconds: 5, maxDelaySeconds: 43200 } },
    ],
    [
      { retry: { baseDelaySeconds: 3600 } },
      { retry: { maxAttempts: 15, baseDelaySeconds: 3600, maxDelaySeconds: 43200 } },
    ],
    [{ retry: {} }, { retry: { maxAttempts: 15, baseDelaySeconds: 5, maxDelaySeconds: 43200 } }],
    [{ filter: "" }, { filter: null }],
    [{ filter: null }, { filter: null }],
    [{ method: "GET" }, { method: "GET" }],
    [{ method: "DELETE" }, { method: "DELETE" }],
    [{ description: null }, { description: null }],
  ])("accepts %o", async (input, expected) => {
    expect(await seedSubscriber(undefined, input)).toMatchObject(expected);
  });

  it("stores header names lower-case", async () => {
    const created = await seedSubscriber(undefined, {
      headers: { "X-Api-Key": "k", "X-Trace": "Mixed Case Value" },
    });
    const expected = { "x-api-key": "k", "x-trace": "Mixed Case Value" };
    expect(created.headers).toEqual(expected);
    expect((await readSubscriber(created.id)).headers).toEqual(expected);
  });

  // Names are case-insensitive, so two spellings of one name are one header.
  it("keeps one header for names that differ only in case", async () => {
    const created = await seedSubscriber(undefined, { headers: { "X-Mode": "a", "x-mode": "b" } });
    expect(Object.keys(created.headers)).toEqual(["x-mode"]);
  });

  it("issues ids that sort by creation time", async () => {
    const topic = await seedTopic();
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await seedSubscriber(topic.name)).id);
    expect([...ids].sort()).toEqual(ids);
  });

  it("answers 404 under an unknown topic and creates nothing", async () => {
    const res = await call("POST", "/v1/topics/never-created/subscribers", {
      json: { url: SUBSCRIBER_URL },
    });
    await expectProblem(res, 404, "not_found");
    await expectProblem(
      await call("GET", "/v1/topics/never-created/subscribers"),
      404,
      "not_found",
    );
  });

  it("counts towards the topic's subscriberCount", async () => {
    const topic = await seedTopic();
    await seedSubscriber(topic.name);
    const res = await call("GET", `/v1/topics/${topic.name}`);
    expect(((await res.json()) as { subscriberCount: number }).subscriberCount).toBe(1);
  });
});

describe("GET /v1/subscribers/{id}", () => {
  it("reads the subscriber without its secret", async () => {
    const { secret, ...created } = await seedSubscriber();
    const res = await call("GET", `/v1/subscribers/${created.id}`);
    expect(res.status).toBe(200);
    const body = await rawJson(res);
    expect(body).not.toHaveProperty("secret");
    expect(JSON.stringify(body)).not.toContain(secret);
    expect(Subscriber.parse(body)).toEqual(created);
  });

  it.each(["sub_00000000000000000000000000", "nope", "msg_01JDQ3Y5N6M7P8Q9R0S1T2V3W4"])(
    "answers 404 for %s",
    async (id) => {
      await expectProblem(await call("GET", `/v1/subscribers/${id}`), 404, "not_found");
    },
  );
});

describe("PATCH /v1/subscribers/{id}", () => {
  it("changes only the fields it names", async () => {
    const created = await seedSubscriber(undefined, {
      filter: 'body.kind == "a"',
      headers: { "x-a": "1" },
      description: "before",
    });
    const { secret: _secret, ...before } = created;
    const updated = await patch(created.id, { description: "after" });
    expect(updated).toEqual({ ...before, description: "after", updatedAt: expect.any(String) });
    expect(Date.parse(updated.updatedAt)).toBeGreaterThanOrEqual(Date.parse(before.updatedAt));
    expect(await readSubscriber(created.id)).toEqual(updated);
  });

  it("answers without the secret", async () => {
    const created = await seedSubscriber();
    const res = await call("PATCH", `/v1/subscribers/${created.id}`, { json: { active: false } });
    expect(res.status).toBe(200);
    expect(await rawJson(res)).not.toHaveProperty("secret");
  });

  it("merges retry fields with the current ones", async () => {
    const created = await seedSubscriber(undefined, {
      retry: { maxAttempts: 7, baseDelaySeconds: 9, maxDelaySeconds: 900 },
    });
    expect((await patch(created.id, { retry: { maxAttempts: 3 } })).retry).toEqual({
      maxAttempts: 3,
      baseDelaySeconds: 9,
      maxDelaySeconds: 900,
    });
    expect((await patch(created.id, { retry: { maxDelaySeconds: 43200 } })).retry).toEqual({
      maxAttempts: 3,
      baseDelaySeconds: 9,
      maxDelaySeconds: 43200,
    });
    expect((await readSubscriber(created.id)).retry).toEqual({
      maxAttempts: 3,
      baseDelaySeconds: 9,
      maxDelaySeconds: 43200,
    });
  });

  it.each([null, ""])("clears the filter with %o", async (filter) => {
    const created = await seedSubscriber(undefined, { filter: 'body.kind == "a"' });
    expect((await patch(created.id, { filter })).filter).toBeNull();
    expect((await readSubscriber(created.id)).filter).toBeNull();
  });

  it("deactivates and reactivates", async () => {
    const created = await seedSubscriber();
    expect((await patch(created.id, { active: false })).active).toBe(false);
    expect((await readSubscriber(created.id)).active).toBe(false);
    expect((await patch(created.id, { active: true })).active).toBe(true);
  });

  it("replaces the URL, method, timeout, query and filter", async () => {
    const created = await seedSubscriber();
    const changes = {
      url: "https://other.example.com/hook/{id}",
      method: "PATCH",
      timeoutMs: 2000,
      query: { v: "2" },
      filter: "body.n > 3",
    } satisfies SubscriberPatch;
    expect(await patch(created.id, changes)).toMatchObject(changes);
    expect(await readSubscriber(created.id)).toMatchObject(changes);
  });

  // The contract merges only `retry`; a headers map in a PATCH is the new map.
  it("replaces the headers, storing names lower-case", async () => {
    const created = await seedSubscriber(undefined, { headers: { "x-old": "1" } });
    const updated = await patch(created.id, { headers: { "X-New": "2" } });
    expect(updated.headers).toEqual({ "x-new": "2" });
    expect((await readSubscriber(created.id)).headers).toEqual({ "x-new": "2" });
  });

  it("clears the description with null", async () => {
    const created = await seedSubscriber(undefined, { description: "gone soon" });
    expect((await patch(created.id, { description: null })).description).toBeNull();
  });

  it("accepts an empty patch and changes nothing but possibly updatedAt", async () => {
    const { secret: _secret, ...created } = await seedSubscriber();
    expect(await patch(created.id, {})).toEqual({ ...created, updatedAt: expect.any(String) });
  });

  it("answers 404 for an unknown subscriber", async () => {
    const res = await call("PATCH", "/v1/subscribers/sub_00000000000000000000000000", {
      json: { active: false },
    });
    await expectProblem(res, 404, "not_found");
  });
});

describe("DELETE /v1/subscribers/{id}", () => {
  it("deletes the subscriber, then answers 404 everywhere", async () => {
    const created = await seedSubscriber();
    const res = await call("DELETE", `/v1/subscribers/${created.id}`);
    expect(res.status).toBe(204);
    expect(await res.text()).toBe("");
    const gone = `/v1/subscribers/${created.id}`;
    await expectProblem(await call("GET", gone), 404, "not_found");
    await expectProblem(await call("DELETE", gone), 404, "not_found");
    await expectProblem(await call("PATCH", gone, { json: { active: true } }), 404, "not_found");
    await expectProblem(await call("POST", `${gone}/rotate-secret`), 404, "not_found");
    const listed = await call("GET", `/v1/topics/${created.topic}/subscribers`);
    expect(((await listed.json()) as { subscribers: unknown[] }).subscribers).toEqual([]);
  });
});

describe("POST /v1/subscribers/{id}/rotate-secret", () => {
  it("issues a different secret each time, without a body or content type", async () => {
    const created = await seedSubscriber();
    const secrets = [created.secret];
    for (let i = 0; i < 3; i++) {
      const res = await call("POST", `/v1/subscribers/${created.id}/rotate-secret`);
      const { secret } = await expectJson(res, 200, RotatedSecret);
      expect(secret).toMatch(SECRET);
      secrets.push(secret);
    }
    expect(new Set(secrets).size).toBe(secrets.length);
  });

  it("answers with the secret alone and keeps it out of reads", async () => {
    const created = await seedSubscriber();
    const res = await call("POST", `/v1/subscribers/${created.id}/rotate-secret`);
    const body = await rawJson(res);
    expect(Object.keys(body)).toEqual(["secret"]);
    const read = await rawJson(await call("GET", `/v1/subscribers/${created.id}`));
    expect(JSON.stringify(read)).not.toContain(String(body.secret));
  });

  it("accepts an empty JSON body", async () => {
    const created = await seedSubscriber();
    const res = await call("POST", `/v1/subscribers/${created.id}/rotate-secret`, {
      body: "",
      contentType: "application/json",
    });
    expect((await expectJson(res, 200, RotatedSecret)).secret).not.toBe(created.secret);
  });

  it("leaves the rest of the subscriber as it was", async () => {
    const { secret: _secret, ...created } = await seedSubscriber();
    await call("POST", `/v1/subscribers/${created.id}/rotate-secret`);
    expect(await readSubscriber(created.id)).toEqual({ ...created, updatedAt: expect.any(String) });
  });

  it("keeps every secret it returned signing when two rotations run at once", async () => {
    const created = await seedSubscriber();
    const rotate = async () => {
      const res = await call("POST", `/v1/subscribers/${created.id}/rotate-secret`);
      return (await expectJson(res, 200, RotatedSecret)).secret;
    };
    const returned = await Promise.all([rotate(), rotate()]);
    const row = await env.DB.prepare(
      "SELECT secret, previous_secret AS previous FROM subscribers WHERE id = ?",
    )
      .bind(created.id)
      .first<{ secret: string; previous: string }>();
    // One rotation replaced the other's secret, which stays as the previous one.
    expect([row?.previous, row?.secret].sort()).toEqual([...returned].sort());
  });

  it("answers 404 for an unknown subscriber", async () => {
    const res = await call("POST", "/v1/subscribers/sub_00000000000000000000000000/rotate-secret");
    await expectProblem(res, 404, "not_found");
  });
});
