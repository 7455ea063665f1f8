import { describe, expect, it } from "vitest";
import { FilterTestResult } from "../../src/api/filters";
import { type CallOptions, call, expectJson, expectProblem } from "../harness";

async function matches(filter: string, message: unknown): Promise<boolean> {
  const res = await call("POST", "/v1/filters/test", { json: { filter, message } });
  return (await expectJson(res, 200, FilterTestResult)).matches;
}

const base64 = (text: string) => btoa(text);

describe("POST /v1/filters/test", () => {
  it.each<[string, string, unknown, boolean]>([
    ["a matching body", 'body.category == "food"', { body: { category: "food" } }, true],
    [
      "a body that does not match",
      'body.category == "food"',
      { body: { category: "toys" } },
      false,
    ],
    [
      "nested fields",
      'body.customer.tier == "gold" and body.total > 100',
      { body: { customer: { tier: "gold" }, total: 250 } },
      true,
    ],
    ["a missing deep field", "body.missing.deep == 1", { body: {} }, false],
    ["a missing deep field under a scalar", "body.n.deep == 1", { body: { n: 3 } }, false],
    ["no body", "body.a == 1", {}, false],
    [
      "a header, by its lower-case name",
      'headers.mode == "quiet"',
      { headers: { Mode: "quiet" } },
      true,
    ],
    [
      "a header under another value",
      'headers.mode == "quiet"',
      { headers: { mode: "loud" } },
      false,
    ],
    ["the query", 'query.page == "2"', { query: { page: "2" } }, true],
    ["the path params", 'pathParams.orderId == "42"', { pathParams: { orderId: "42" } }, true],
    ["the method", 'method == "PUT"', { method: "PUT" }, true],
    ["a pattern", 'body.sku ~= "^AB-[0-9]+$"', { body: { sku: "AB-123" } }, true],
    ["membership", 'body.category in ("food", "drink")', { body: { category: "drink" } }, true],
    [
      "bodyText with a JSON content type, parsed",
      "body.a == 1",
      { bodyText: '{"a":1}', contentType: "application/json" },
      true,
    ],
    [
      "bodyText with a +json content type, parsed",
      "body.a == 1",
      { bodyText: '{"a":1}', contentType: "application/cloudevents+json; charset=utf-8" },
      true,
    ],
    [
      "bodyText with a JSON content type that does not parse, as text",
      'body == "{not json"',
      { bodyText: "{not json", contentType: "application/json" },
      true,
    ],
    ["bodyText as text", 'body == "hello"', { bodyText: "hello", contentType: "text/plain" }, true],
    [
      "bodyText as text, not parsed",
      "body.a == 1",
      { bodyText: '{"a":1}', contentType: "text/plain" },
      false,
    ],
    [
      "a binary bodyBase64, as null",
      "not exists(body)",
      { bodyBase64: base64('{"a":1}'), contentType: "application/octet-stream" },
      true,
    ],
    [
      "a binary bodyBase64, not parsed",
      "body.a == 1",
      { bodyBase64: base64('{"a":1}'), contentType: "image/png" },
      false,
    ],
  ])("evaluates %s", async (_label, filter, message, expected) => {
    expect(await matches(filter, message)).toBe(expected);
  });

  it("treats an evaluation error as a non-match", async () => {
    expect(await matches("body.a + 1 > 0", { body: { a: "text" } })).toBe(false);
  });

  it("keeps header values as sent", async () => {
    expect(await matches('headers.mode == "Quiet"', { headers: { MODE: "Quiet" } })).toBe(true);
  });
});

const VALID = { filter: 'body.a == "b"', message: { body: { a: "b" } } };

describe("POST /v1/filters/test with bad input", () => {
  it.each<[string, CallOptions, number, string, string?]>([
    [
      "malformed JSON",
      { body: '{"filter": ', contentType: "application/json" },
      400,
      "invalid_json",
    ],
    ["an empty body", { body: "", contentType: "application/json" }, 400, "invalid_json"],
    [
      "text/plain",
      { body: JSON.stringify(VALID), contentType: "text/plain" },
      415,
      "unsupported_media_type",
    ],
    ["no filter", { json: { message: VALID.message } }, 400, "validation_failed", "filter"],
    ["no message", { json: { filter: VALID.filter } }, 400, "validation_failed", "message"],
    ["a numeric filter", { json: { ...VALID, filter: 1 } }, 400, "validation_failed", "filter"],
    ["an unknown field", { json: { ...VALID, extra: true } }, 400, "validation_failed", "extra"],
    [
      "two bodies",
      { json: { ...VALID, message: { body: 1, bodyText: "1" } } },
      400,
      "validation_failed",
    ],
    [
      "bodyBase64 that is not base64",
      { json: { ...VALID, message: { bodyBase64: "***" } } },
      400,
      "validation_failed",
      "message.bodyBase64",
    ],
    [
      "a refused header",
      { json: { ...VALID, message: { headers: { host: "x" } } } },
      400,
      "validation_failed",
      "message.headers.host",
    ],
    [
      "a body over the size limit",
      { json: { ...VALID, message: { body: "x".repeat(2 * 1024 * 1024) } } },
      413,
      "payload_too_large",
    ],
  ])("refuses %s", async (_label, options, status, code, path) => {
    const problem = await expectProblem(
      await call("POST", "/v1/filters/test", options),
      status,
      code,
    );
    if (path !== undefined) expect(problem.errors?.map((e) => e.path)).toContain(path);
  });

  it.each([
    ["an unfinished comparison", "body.a =="],
    ["an unknown function", "launch(body.a)"],
    ["a catastrophic pattern", 'body.a ~= "(a+)+$"'],
  ])("refuses a filter with %s, naming the position", async (_label, filter) => {
    const res = await call("POST", "/v1/filters/test", { json: { ...VALID, filter } });
    const problem = await expectProblem(res, 400, "invalid_filter");
    expect(problem.detail).toMatch(/position\D*\d+/i);
  });

  // 4 KB is counted in UTF-8 bytes; `body.name == "…"` is 15 bytes around the string.
  const sized = (repeat: number, char = "x") => `body.name == "${char.repeat(repeat)}"`;
  const nested = (depth: number) => `${"(".repeat(depth)}body.a == "b"${")".repeat(depth)}`;

  it.each([
    ["of exactly 4096 bytes", sized(4096 - 15), false],
    ["nested 64 parentheses deep", nested(64), true],
  ])("accepts a filter %s", async (_label, filter, expected) => {
    const res = await call("POST", "/v1/filters/test", { json: { ...VALID, filter } });
    expect((await expectJson(res, 200, FilterTestResult)).matches).toBe(expected);
  });

  it.each([
    ["of 4097 bytes", sized(4097 - 15)],
    ["of 2057 characters but 4099 bytes", sized(2042, "é")],
    ["nested 65 parentheses deep", nested(65)],
  ])("refuses a filter %s, naming the position", async (_label, filter) => {
    const res = await call("POST", "/v1/filters/test", { json: { ...VALID, filter } });
    expect((await expectProblem(res, 400, "invalid_filter")).detail).toMatch(/position\D*\d+/i);
  });

  it("is forbidden to the publish token", async () => {
    const res = await call("POST", "/v1/filters/test", { json: VALID, as: "publisher" });
    await expectProblem(res, 403, "forbidden");
  });
});
