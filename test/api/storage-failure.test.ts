/**
 * When D1 fails, the API answers 503 `unavailable` and nothing changes. The failing database is
 * the real one behind a proxy, so reads before the write still see the seeded rows.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { Topic } from "../../src/api/schemas/topics";
import {
  call,
  expectJson,
  expectProblem,
  listAllSubscribers,
  readSubscriber,
  SUBSCRIBER_URL,
  seedSubscriber,
  seedTopic,
  silenceErrorLog,
  uniqueName,
} from "../harness";

// What the D1 binding throws when its storage cannot be reached.
const D1_FAILURE = "D1_ERROR: Network connection lost.";
const WRITE = /^\s*(?:insert|update|delete|replace)\b/i;

function failure(): Promise<never> {
  return Promise.reject(new Error(D1_FAILURE));
}

/** A statement whose every execution fails. */
function failingStatement(statement: D1PreparedStatement): D1PreparedStatement {
  const proxy: D1PreparedStatement = new Proxy(statement, {
    get(target, property) {
      if (property === "bind") return () => proxy;
      if (property === "first" || property === "run" || property === "all" || property === "raw") {
        return failure;
      }
      return Reflect.get(target, property);
    },
  });
  return proxy;
}

/** The real database, except that the statements `fails` picks, and every batch, fail. */
function failingDatabase(db: D1Database, fails: (sql: string) => boolean): D1Database {
  return new Proxy(db, {
    get(target, property) {
      if (property === "batch") return failure;
      if (property === "prepare") {
        return (sql: string) => {
          const statement = target.prepare(sql);
          return fails(sql) ? failingStatement(statement) : statement;
        };
      }
      const value: unknown = Reflect.get(target, property);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

const failingWrites = () => ({ DB: failingDatabase(env.DB, (sql) => WRITE.test(sql)) });
const failingEverything = () => ({ DB: failingDatabase(env.DB, () => true) });

async function expectUnavailable(res: Response): Promise<void> {
  const problem = await expectProblem(res, 503, "unavailable");
  expect(JSON.stringify(problem)).not.toContain("D1_ERROR");
}

silenceErrorLog();

describe("a storage failure during a write", () => {
  it("answers 503 to POST /v1/topics and creates nothing", async () => {
    const name = uniqueName();
    const res = await call("POST", "/v1/topics", { json: { name }, env: failingWrites() });
    await expectUnavailable(res);
    await expectProblem(await call("GET", `/v1/topics/${name}`), 404, "not_found");
  });

  it("answers 503 to DELETE /v1/topics/{topic} and keeps the topic", async () => {
    const subscriber = await seedSubscriber();
    const res = await call("DELETE", `/v1/topics/${subscriber.topic}`, { env: failingWrites() });
    await expectUnavailable(res);
    const topic = await expectJson(await call("GET", `/v1/topics/${subscriber.topic}`), 200, Topic);
    expect(topic.subscriberCount).toBe(1);
  });

  it("answers 503 to POST /v1/topics/{topic}/subscribers and stores nothing", async () => {
    const topic = await seedTopic();
    const res = await call("POST", `/v1/topics/${topic.name}/subscribers`, {
      json: { url: SUBSCRIBER_URL },
      env: failingWrites(),
    });
    await expectUnavailable(res);
    expect(await listAllSubscribers(topic.name)).toEqual([]);
  });

  it.each([
    ["PATCH", { json: { description: "changed" } }],
    ["PATCH", { json: { active: false } }],
    ["DELETE", {}],
  ] as const)(
    "answers 503 to %s /v1/subscribers/{id} %o and changes nothing",
    async (method, options) => {
      const { secret: _secret, ...before } = await seedSubscriber();
      const res = await call(method, `/v1/subscribers/${before.id}`, {
        ...options,
        env: failingWrites(),
      });
      await expectUnavailable(res);
      const after = await readSubscriber(before.id);
      expect(after).toEqual(before);
    },
  );

  it("answers 503 to rotate-secret and changes nothing", async () => {
    const { secret: _secret, ...before } = await seedSubscriber();
    const res = await call("POST", `/v1/subscribers/${before.id}/rotate-secret`, {
      env: failingWrites(),
    });
    await expectUnavailable(res);
    const after = await readSubscriber(before.id);
    expect(after).toEqual(before);
  });
});

describe("a storage failure during a read", () => {
  it.each([
    ["GET", "/v1/topics"],
    ["GET", "/v1/topics/some-topic"],
    ["GET", "/v1/topics/some-topic/subscribers"],
    ["GET", "/v1/subscribers/sub_x"],
    // Read with plain SQL on the binding (the record and the rows merged), not through drizzle.
    ["GET", "/v1/messages/msg_x"],
  ])("answers 503 to %s %s", async (method, path) => {
    await expectUnavailable(await call(method, path, { env: failingEverything() }));
  });
});

describe("an unexpected error", () => {
  it("answers 500 internal without a stack trace or the error's text", async () => {
    const broken = failingDatabase(env.DB, () => true);
    const db = new Proxy(broken, {
      get(target, property) {
        if (property === "prepare") {
          return () => {
            throw new TypeError("secret internals at Object.prepare (src/db/client.ts:10:3)");
          };
        }
        return Reflect.get(target, property);
      },
    });
    const res = await call("GET", "/v1/topics", { env: { DB: db } });
    const problem = await expectProblem(res, 500, "internal");
    expect(JSON.stringify(problem)).not.toContain("secret internals");
  });
});

describe("a missing D1 binding", () => {
  it("answers 503 not_configured", async () => {
    await expectProblem(
      await call("GET", "/v1/topics", { env: { DB: undefined } }),
      503,
      "not_configured",
    );
  });
});

describe("health", () => {
  it("does not touch storage", async () => {
    const res = await call("GET", "/healthz", { as: "anonymous", env: failingEverything() });
    expect(res.status).toBe(200);
  });
});
