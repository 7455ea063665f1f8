import { beforeAll, describe, expect, it } from "vitest";
import { Subscriber } from "../../src/api/schemas/subscribers";
import { Topic } from "../../src/api/schemas/topics";
import {
  type Caller,
  type CallOptions,
  call,
  expectJson,
  expectProblem,
  readSubscriber,
  seedSubscriber,
  tokens,
} from "../harness";

/** Management routes; `{topic}` and `{id}` stand for a seeded topic and subscriber. */
const MANAGEMENT_ROUTES: [method: string, path: string, json?: unknown][] = [
  ["POST", "/v1/topics", { name: "created-by-a-refused-caller" }],
  ["GET", "/v1/topics"],
  ["GET", "/v1/topics/{topic}"],
  ["PATCH", "/v1/topics/{topic}", { recording: "failures", description: "changed" }],
  ["DELETE", "/v1/topics/{topic}"],
  ["POST", "/v1/topics/{topic}/subscribers", { url: "https://hooks.example.com/refused" }],
  ["GET", "/v1/topics/{topic}/subscribers"],
  ["GET", "/v1/subscribers/{id}"],
  ["PATCH", "/v1/subscribers/{id}", { active: false, description: "changed" }],
  ["DELETE", "/v1/subscribers/{id}"],
  ["POST", "/v1/subscribers/{id}/rotate-secret"],
  ["POST", "/v1/filters/test", { filter: 'body.a == "b"', message: { body: { a: "b" } } }],
];

const UNAUTHORIZED: [label: string, caller: Caller][] = [
  ["no Authorization header", "anonymous"],
  ["a Basic credential", { authorization: "Basic YWRtaW46YWRtaW4=" }],
  ["Bearer with no token", { authorization: "Bearer" }],
  ["Bearer and a space", { authorization: "Bearer " }],
  ["two tokens", { authorization: `Bearer ${tokens.admin} ${tokens.admin}` }],
  ["two Bearer credentials", { authorization: `Bearer ${tokens.admin}, Bearer ${tokens.admin}` }],
  ["the admin token without a scheme", { authorization: tokens.admin }],
  ["another scheme with the admin token", { authorization: `Token ${tokens.admin}` }],
  ["a wrong token", { authorization: "Bearer not-the-token" }],
  ["the admin token plus a character", { authorization: `Bearer ${tokens.admin}x` }],
  ["a prefix of the admin token", { authorization: `Bearer ${tokens.admin.slice(0, -1)}` }],
];

let topic = "";
let subscriber: Subscriber;

beforeAll(async () => {
  subscriber = Subscriber.parse(await seedSubscriber());
  topic = subscriber.topic;
});

function send(method: string, path: string, json: unknown, options: CallOptions) {
  const resolved = path.replace("{topic}", topic).replace("{id}", subscriber.id);
  return call(method, resolved, { json, ...options });
}

describe.each(UNAUTHORIZED)("with %s", (_label, caller) => {
  it.each(MANAGEMENT_ROUTES)("%s %s answers 401", async (method, path, json) => {
    await expectProblem(await send(method, path, json, { as: caller }), 401, "unauthorized");
  });
});

describe("the publish token", () => {
  it.each(MANAGEMENT_ROUTES)("is forbidden on %s %s", async (method, path, json) => {
    await expectProblem(await send(method, path, json, { as: "publisher" }), 403, "forbidden");
  });
});

describe("refused callers", () => {
  it("changed nothing", async () => {
    const current = await readSubscriber(subscriber.id);
    expect(current).toEqual(subscriber);
    const stored = await expectJson(await call("GET", `/v1/topics/${topic}`), 200, Topic);
    expect(stored).toMatchObject({ subscriberCount: 1, description: null, recording: "full" });
    await expectProblem(
      await call("GET", "/v1/topics/created-by-a-refused-caller"),
      404,
      "not_found",
    );
  });
});

describe("the admin token", () => {
  it("is accepted with the scheme in any case", async () => {
    const res = await call("GET", "/v1/topics", {
      as: { authorization: `bearer ${tokens.admin}` },
    });
    expect(res.status).toBe(200);
  });

  it("gets a Bearer challenge with a 401", async () => {
    const res = await call("GET", "/v1/topics", { as: "anonymous" });
    expect(res.headers.get("www-authenticate")).toMatch(/^Bearer\b/);
    await expectProblem(res, 401, "unauthorized");
  });
});

describe("authentication comes first", () => {
  it.each<[string, string, CallOptions, number, string]>([
    ["GET", "/v1/nope", { as: "anonymous" }, 401, "unauthorized"],
    ["GET", "/v1", { as: "anonymous" }, 401, "unauthorized"],
    ["POST", "/v1/topics/x/nope", { as: "anonymous" }, 401, "unauthorized"],
    ["GET", "/v1/nope", { as: "admin" }, 404, "not_found"],
    ["GET", "/v1", { as: "admin" }, 404, "not_found"],
    ["POST", "/v1/topics/x/nope", { as: "admin" }, 404, "not_found"],
    ["GET", "/v1/nope", { as: "publisher" }, 404, "not_found"],
    ["PUT", "/v1/topics", { as: "anonymous" }, 401, "unauthorized"],
    ["GET", "/v1/topics?limit=0", { as: "anonymous" }, 401, "unauthorized"],
    [
      "POST",
      "/v1/topics",
      { as: "anonymous", body: "name=x", contentType: "text/plain" },
      401,
      "unauthorized",
    ],
    [
      "POST",
      "/v1/topics",
      { as: "publisher", body: "{", contentType: "application/json" },
      403,
      "forbidden",
    ],
  ])("%s %s %o answers %i", async (method, path, options, status, code) => {
    await expectProblem(await call(method, path, options), status, code);
  });
});

describe("a secret that is not configured", () => {
  const noAdmin = { ADMIN_TOKEN: undefined };
  const neither = { ADMIN_TOKEN: undefined, PUBLISH_TOKEN: undefined };

  it.each(MANAGEMENT_ROUTES)(
    "makes %s %s answer 503 without ADMIN_TOKEN, before looking at the token",
    async (method, path, json) => {
      for (const as of ["anonymous", "admin", "publisher"] as const) {
        const res = await send(method, path, json, { as, env: noAdmin });
        await expectProblem(res, 503, "not_configured");
      }
    },
  );

  it("counts an empty ADMIN_TOKEN as missing", async () => {
    const res = await call("GET", "/v1/topics", {
      as: { authorization: "Bearer " },
      env: { ADMIN_TOKEN: "" },
    });
    await expectProblem(res, 503, "not_configured");
  });

  it("leaves unknown /v1 paths to the publish token while it is configured", async () => {
    const anonymous = await call("GET", "/v1/nope", { as: "anonymous", env: noAdmin });
    await expectProblem(anonymous, 401, "unauthorized");
    const publisher = await call("GET", "/v1/nope", { as: "publisher", env: noAdmin });
    await expectProblem(publisher, 404, "not_found");
  });

  it("closes every /v1 path when neither secret is configured", async () => {
    for (const as of ["anonymous", "admin", "publisher"] as const) {
      await expectProblem(
        await call("GET", "/v1/nope", { as, env: neither }),
        503,
        "not_configured",
      );
      await expectProblem(
        await call("GET", "/v1/topics", { as, env: neither }),
        503,
        "not_configured",
      );
    }
  });

  it("keeps the admin routes open without PUBLISH_TOKEN, and the old publish token out", async () => {
    const env = { PUBLISH_TOKEN: undefined };
    expect((await call("GET", "/v1/topics", { env })).status).toBe(200);
    await expectProblem(
      await call("GET", "/v1/topics", { as: "publisher", env }),
      401,
      "unauthorized",
    );
  });

  it("leaves /healthz and /openapi.json open", async () => {
    for (const path of ["/healthz", "/openapi.json"]) {
      const res = await call("GET", path, { as: "anonymous", env: neither });
      expect(res.status).toBe(200);
    }
  });
});
