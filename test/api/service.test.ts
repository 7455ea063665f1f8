import { describe, expect, it } from "vitest";
import { z } from "zod";
import { call, expectJson, expectProblem, seedTopic } from "../harness";

const OpenApiDocument = z.object({
  openapi: z.string(),
  info: z.object({ title: z.string(), version: z.string() }),
  paths: z.record(z.string(), z.record(z.string(), z.unknown())),
  components: z.object({
    securitySchemes: z.record(z.string(), z.object({ type: z.string(), scheme: z.string() })),
    schemas: z.record(z.string(), z.unknown()),
  }),
});

const MANAGEMENT_OPERATIONS = [
  ["post", "/v1/topics"],
  ["get", "/v1/topics"],
  ["get", "/v1/topics/{topic}"],
  ["patch", "/v1/topics/{topic}"],
  ["delete", "/v1/topics/{topic}"],
  ["post", "/v1/topics/{topic}/subscribers"],
  ["get", "/v1/topics/{topic}/subscribers"],
  ["get", "/v1/subscribers/{id}"],
  ["patch", "/v1/subscribers/{id}"],
  ["delete", "/v1/subscribers/{id}"],
  ["post", "/v1/subscribers/{id}/rotate-secret"],
  ["post", "/v1/filters/test"],
] as const;

describe("GET /healthz", () => {
  it("answers ok without a token", async () => {
    const body = await expectJson(
      await call("GET", "/healthz", { as: "anonymous" }),
      200,
      z.object({ ok: z.literal(true) }),
    );
    expect(body).toEqual({ ok: true });
  });
});

describe("GET /openapi.json", () => {
  it("is an OpenAPI 3.1 document served without a token", async () => {
    const doc = await expectJson(
      await call("GET", "/openapi.json", { as: "anonymous" }),
      200,
      OpenApiDocument,
    );
    expect(doc.openapi).toMatch(/^3\.1\./);
  });

  it.each(MANAGEMENT_OPERATIONS)("documents %s %s", async (method, path) => {
    const doc = OpenApiDocument.parse(await (await call("GET", "/openapi.json")).json());
    expect(Object.keys(doc.paths[path] ?? {})).toContain(method);
  });

  it("declares both bearer tokens as security schemes", async () => {
    const doc = OpenApiDocument.parse(await (await call("GET", "/openapi.json")).json());
    const schemes = Object.values(doc.components.securitySchemes);
    expect(schemes).toHaveLength(2);
    for (const scheme of schemes) expect(scheme).toMatchObject({ type: "http", scheme: "bearer" });
  });

  it("documents the recording modes and what each keeps", async () => {
    const doc = OpenApiDocument.parse(await (await call("GET", "/openapi.json")).json());
    expect(doc.components.schemas.RecordingMode).toMatchObject({
      enum: ["full", "failures"],
      description: expect.stringContaining("GET /v1/messages/{id} answers 404"),
    });
  });

  it("documents the problem shape that errors use", async () => {
    const doc = OpenApiDocument.parse(await (await call("GET", "/openapi.json")).json());
    expect(doc.components.schemas).toHaveProperty("Problem");
  });
});

describe("x-request-id", () => {
  it("is set on successes and failures, and differs between requests", async () => {
    const topic = await seedTopic();
    const ok = await call("GET", `/v1/topics/${topic.name}`);
    const missing = await call("GET", "/v1/topics/no-such-topic");
    const health = await call("GET", "/healthz", { as: "anonymous" });
    const ids = [ok, missing, health].map((res) => res.headers.get("x-request-id"));
    for (const id of ids) expect(id).toMatch(/\S/);
    expect(new Set(ids).size).toBe(ids.length);
    await expectProblem(missing, 404, "not_found");
  });
});

describe("routing", () => {
  it("answers an unknown path outside /v1 with 404 without asking for a token", async () => {
    await expectProblem(await call("GET", "/nope", { as: "anonymous" }), 404, "not_found");
  });

  it.each([
    ["PUT", "/v1/topics", ["GET", "POST"]],
    ["PATCH", "/v1/topics", ["GET", "POST"]],
    ["DELETE", "/v1/topics", ["GET", "POST"]],
    ["POST", "/v1/topics/some-topic", ["DELETE", "GET", "PATCH"]],
    ["PUT", "/v1/topics/some-topic", ["DELETE", "GET", "PATCH"]],
    ["PUT", "/v1/topics/some-topic/subscribers", ["GET", "POST"]],
    ["PUT", "/v1/subscribers/sub_x", ["DELETE", "GET", "PATCH"]],
    ["POST", "/v1/subscribers/sub_x", ["DELETE", "GET", "PATCH"]],
    ["GET", "/v1/subscribers/sub_x/rotate-secret", ["POST"]],
    ["GET", "/v1/filters/test", ["POST"]],
  ])("answers %s %s with 405 and an Allow header", async (method, path, allowed) => {
    const res = await call(method, path);
    const allow = (res.headers.get("allow") ?? "").split(",").map((m) => m.trim());
    await expectProblem(res, 405, "method_not_allowed");
    for (const m of allowed) expect(allow).toContain(m);
    expect(allow).not.toContain(method);
  });

  // Paths are exact: a trailing slash names no route, so it is a 404, never a 405 that lists the
  // very method that was used.
  it.each([
    ["GET", "/v1/topics/"],
    ["POST", "/v1/topics/"],
    ["GET", "/v1/subscribers/sub_x/"],
  ])("answers %s %s (trailing slash) with 404", async (method, path) => {
    await expectProblem(await call(method, path), 404, "not_found");
  });
});
