/**
 * The management API over real HTTP, in the same runtime as `wrangler dev`: what the workerd tests
 * cannot show is that it works where code generation from strings is refused (the filter compiler
 * above all) and with the configuration a deployment reads from its variables.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type LocalBroker, startBroker } from "../node/broker";

interface Topic {
  name: string;
  description: string | null;
  subscriberCount: number;
  createdAt: string;
}

interface Subscriber {
  id: string;
  url: string;
  filter?: string | null;
  description?: string | null;
  active: boolean;
  secret?: string;
}

interface Problem {
  type: string;
  title: string;
  status: number;
  code: string;
  detail?: string;
}

/** Subscriber URLs only a broker with `ALLOW_PRIVATE_URLS="true"` accepts. */
const privateUrl = "http://127.0.0.1:9/hooks/orders";

let broker: LocalBroker;
let strictBroker: LocalBroker;

beforeAll(async () => {
  [broker, strictBroker] = await Promise.all([
    startBroker(),
    startBroker({ vars: { ALLOW_PRIVATE_URLS: "false" } }),
  ]);
});

afterAll(async () => {
  await Promise.all([broker?.dispose(), strictBroker?.dispose()]);
});

/** Asserts an RFC 9457 answer and returns its body. */
async function expectProblem(res: Response, status: number, code: string): Promise<Problem> {
  const text = await res.text();
  expect({ status: res.status, body: text }).toMatchObject({ status });
  expect(res.headers.get("content-type")).toMatch(/^application\/problem\+json\b/);
  const problem = JSON.parse(text) as Problem;
  expect(problem).toMatchObject({ status, code, title: expect.any(String) });
  return problem;
}

async function expectJson<T>(res: Response, status: number): Promise<T> {
  const text = await res.text();
  expect({ status: res.status, body: text }).toMatchObject({ status });
  expect(res.headers.get("content-type")).toMatch(/^application\/json\b/);
  return JSON.parse(text) as T;
}

async function createTopic(target: LocalBroker, name: string): Promise<Topic> {
  return expectJson<Topic>(await target.request("/v1/topics", { json: { name } }), 201);
}

let topicCounter = 0;
/** Unique per test, so tests sharing a broker do not see each other's topics. */
function topicName(label: string): string {
  topicCounter += 1;
  return `e2e.${label}-${topicCounter}`;
}

describe("public routes", () => {
  it("answers the health check without a token", async () => {
    const res = await broker.request("/healthz", { token: null });
    expect(await expectJson(res, 200)).toEqual({ ok: true });
  });

  it("serves an OpenAPI 3.1 document without a token", async () => {
    const res = await broker.request("/openapi.json", { token: null });
    const doc = await expectJson<{ openapi: string; paths: Record<string, unknown> }>(res, 200);
    expect(doc.openapi.startsWith("3.1")).toBe(true);
    expect(doc.paths).toHaveProperty("/v1/topics");
  });
});

describe("authentication", () => {
  it.each([
    { case: "no token", path: "/v1/topics", token: null, status: 401, code: "unauthorized" },
    {
      case: "a wrong token",
      path: "/v1/topics",
      token: "wrong",
      status: 401,
      code: "unauthorized",
    },
    {
      case: "an unknown /v1 path without a token",
      path: "/v1/nope",
      token: null,
      status: 401,
      code: "unauthorized",
    },
    {
      case: "an unknown /v1 path with a token",
      path: "/v1/nope",
      token: undefined,
      status: 404,
      code: "not_found",
    },
  ])("answers $case with $status $code", async ({ path, token, status, code }) => {
    await expectProblem(await broker.request(path, { token }), status, code);
  });

  it("refuses the publish token on a management route with 403 forbidden", async () => {
    const res = await broker.request("/v1/topics", { token: broker.publishToken });
    await expectProblem(res, 403, "forbidden");
  });
});

describe("topics", () => {
  it("creates, refuses a duplicate, gets and deletes a topic", async () => {
    const name = topicName("lifecycle");
    const res = await broker.request("/v1/topics", { json: { name, description: "orders" } });
    const topic = await expectJson<Topic>(res, 201);
    expect(topic).toMatchObject({ name, description: "orders", subscriberCount: 0 });
    expect(new Date(topic.createdAt).toISOString()).toBe(topic.createdAt);

    await expectProblem(await broker.request("/v1/topics", { json: { name } }), 409, "conflict");

    const path = `/v1/topics/${encodeURIComponent(name)}`;
    expect(await expectJson<Topic>(await broker.request(path), 200)).toEqual(topic);
    const deleted = await broker.request(path, { method: "DELETE" });
    expect(deleted.status).toBe(204);
    expect(await deleted.text()).toBe("");
    await expectProblem(await broker.request(path), 404, "not_found");
  });

  it("lists topics page by page with nextCursor", async () => {
    const names = [topicName("page"), topicName("page"), topicName("page")];
    for (const name of names) await createTopic(broker, name);

    const seen: string[] = [];
    let cursor: string | null = null;
    // Bounded: more pages than topics would mean the cursor does not advance.
    for (let page = 0; page < 20; page++) {
      const query: string = cursor === null ? "" : `&cursor=${encodeURIComponent(cursor)}`;
      const res = await broker.request(`/v1/topics?limit=1${query}`);
      const body = await expectJson<{ topics: Topic[]; nextCursor: string | null }>(res, 200);
      expect(body.topics.length).toBeLessThanOrEqual(1);
      seen.push(...body.topics.map((topic) => topic.name));
      cursor = body.nextCursor;
      if (cursor === null) break;
      expect(typeof cursor).toBe("string");
    }
    expect(cursor).toBeNull();
    expect(seen).toEqual(expect.arrayContaining(names));
    expect(new Set(seen).size).toBe(seen.length);
  });
});

describe("subscribers", () => {
  it("creates, reads, lists, updates, rotates and deletes a subscriber", async () => {
    const topic = await createTopic(broker, topicName("subs"));
    const created = await expectJson<Subscriber>(
      await broker.request(`/v1/topics/${topic.name}/subscribers`, {
        json: { url: privateUrl, filter: 'body.category == "food"', description: "orders service" },
      }),
      201,
    );
    expect(created).toMatchObject({ url: privateUrl, active: true, description: "orders service" });
    expect(created.id).toMatch(/^sub_/);
    expect(created.secret).toMatch(/^whsec_/);

    const path = `/v1/subscribers/${created.id}`;
    const fetched = await expectJson<Subscriber>(await broker.request(path), 200);
    expect(fetched).not.toHaveProperty("secret");
    const { secret: _secret, ...withoutSecret } = created;
    expect(fetched).toEqual(withoutSecret);

    const list = await expectJson<{ subscribers: Subscriber[]; nextCursor: string | null }>(
      await broker.request(`/v1/topics/${topic.name}/subscribers`),
      200,
    );
    expect(list.subscribers.map((subscriber) => subscriber.id)).toEqual([created.id]);
    expect(list.subscribers[0]).not.toHaveProperty("secret");
    expect(list.nextCursor).toBeNull();

    const patched = await expectJson<Subscriber>(
      await broker.request(path, {
        method: "PATCH",
        json: { active: false, description: "paused" },
      }),
      200,
    );
    expect(patched).toMatchObject({
      id: created.id,
      url: privateUrl,
      active: false,
      description: "paused",
    });
    expect(patched).not.toHaveProperty("secret");

    const rotated = await expectJson<{ secret: string }>(
      await broker.request(`${path}/rotate-secret`, { method: "POST" }),
      200,
    );
    expect(rotated.secret).toMatch(/^whsec_/);
    expect(rotated.secret).not.toBe(created.secret);

    const deleted = await broker.request(path, { method: "DELETE" });
    expect(deleted.status).toBe(204);
    await expectProblem(await broker.request(path), 404, "not_found");
  });

  it.each([
    "https://127.0.0.1/hooks/orders",
    "https://localhost/hooks/orders",
    "http://api.example.com/hooks/orders",
  ])("refuses %s with 400 invalid_url unless private URLs are allowed", async (url) => {
    const topic = await createTopic(strictBroker, topicName("strict"));
    const res = await strictBroker.request(`/v1/topics/${topic.name}/subscribers`, {
      json: { url },
    });
    await expectProblem(res, 400, "invalid_url");
  });

  it("accepts a public https URL where private URLs are refused", async () => {
    const topic = await createTopic(strictBroker, topicName("strict"));
    const url = "https://api.example.com/hooks/orders";
    const res = await strictBroker.request(`/v1/topics/${topic.name}/subscribers`, {
      json: { url },
    });
    expect(await expectJson<Subscriber>(res, 201)).toMatchObject({ url });
  });
});

describe("POST /v1/filters/test, compiled without eval", () => {
  const filter = 'body.category == "food" and headers.mode == "quiet"';

  it.each([
    {
      case: "a matching message",
      message: { body: { category: "food" }, headers: { mode: "quiet" } },
      matches: true,
    },
    {
      case: "a message that differs",
      message: { body: { category: "toys" }, headers: { mode: "quiet" } },
      matches: false,
    },
    {
      case: "a message that lacks the field",
      message: { body: {}, headers: { mode: "quiet" } },
      matches: false,
    },
  ])("answers $matches for $case", async ({ message, matches }) => {
    const res = await broker.request("/v1/filters/test", { json: { filter, message } });
    expect(await expectJson(res, 200)).toEqual({ matches });
  });

  it("refuses a filter that does not parse with 400 invalid_filter", async () => {
    const res = await broker.request("/v1/filters/test", {
      json: { filter: 'body.category == "food" and (', message: { body: {} } },
    });
    const problem = await expectProblem(res, 400, "invalid_filter");
    expect(problem.detail).toEqual(expect.any(String));
  });
});
