/**
 * The request function against a scripted fetch: which failures are retried, how long it waits,
 * and that a publish carries one idempotency key through every try.
 */
import { describe, expect, it } from "vitest";
import { type FetchLike, Switchboard, type SwitchboardOptions } from "../../src/sdk";
import { backoffDelay, MAX_DELAY_MS, retryAfterMs } from "../../src/sdk/backoff";
import { expectSwitchboardError } from "./support";

type Step = Response | Error | "hang";

interface Scripted {
  fetch: FetchLike;
  /** Each try's request, and the signal it was given. */
  tries: { request: Request; signal: AbortSignal | undefined; at: number }[];
}

/** A fetch that plays `steps` in order, one per try; a "hang" waits for its signal. */
function scripted(...steps: Step[]): Scripted {
  const tries: Scripted["tries"] = [];
  return {
    tries,
    fetch: async (input, init) => {
      const signal = init.signal ?? undefined;
      tries.push({ request: new Request(input, init), signal, at: Date.now() });
      const step = steps[tries.length - 1] ?? new Error("no more steps");
      if (step === "hang") {
        return new Promise((_, reject) => {
          signal?.addEventListener("abort", () =>
            reject(new DOMException("aborted", "AbortError")),
          );
        });
      }
      if (step instanceof Error) throw step;
      return step;
    },
  };
}

function problem(status: number, code: string, headers: Record<string, string> = {}): Response {
  return Response.json(
    {
      type: `https://switchboard.dev/errors/${code}`,
      title: code,
      status,
      code,
      detail: `${code}!`,
      requestId: "req_1",
    },
    { status, headers: { "content-type": "application/problem+json", ...headers } },
  );
}

const accepted = () =>
  Response.json({ id: "msg_1", topic: "t", duplicate: false }, { status: 202 });

function client(fetch: FetchLike, options: Partial<SwitchboardOptions> = {}): Switchboard {
  return new Switchboard({ baseUrl: "https://sb.test/", token: "t", fetch, ...options });
}

describe("retries", () => {
  it("publishes once through network errors and a 503, with one idempotency key", async () => {
    const { fetch, tries } = scripted(
      new TypeError("fetch failed"),
      problem(503, "unavailable"),
      new TypeError("connection reset"),
      accepted(),
    );
    expect(await client(fetch).publish("t", { body: 1 })).toEqual({
      id: "msg_1",
      topic: "t",
      duplicate: false,
    });
    expect(tries).toHaveLength(4);
    const keys = new Set(tries.map((t) => t.request.headers.get("idempotency-key")));
    expect(keys.size).toBe(1);
    expect([...keys][0]).toMatch(/^[0-9a-f-]{36}$/);
    expect(tries.map((t) => t.request.url)).toEqual(
      Array(4).fill("https://sb.test/v1/topics/t/messages"),
    );
  });

  it("keeps each batch envelope's key the same on every try", async () => {
    const { fetch, tries } = scripted(
      new TypeError("fetch failed"),
      Response.json({ messages: [{ id: "m", duplicate: false }] }, { status: 202 }),
    );
    await client(fetch).publishBatch("t", [{ body: 1 }]);
    const bodies = await Promise.all(tries.map((t) => t.request.text()));
    expect(bodies[0]).toBe(bodies[1]);
  });

  it("backs off exponentially between tries", async () => {
    const { fetch, tries } = scripted(
      new TypeError("down"),
      new TypeError("down"),
      new TypeError("down"),
      accepted(),
    );
    await client(fetch).publish("t", { body: 1 });
    const gaps = tries.slice(1).map((t, i) => t.at - (tries[i]?.at ?? 0));
    expect(gaps[0]).toBeGreaterThanOrEqual(125 - 5);
    expect(gaps[1]).toBeGreaterThanOrEqual(250 - 5);
    expect(gaps[2]).toBeGreaterThanOrEqual(500 - 5);
  });

  it.each([400, 401, 403, 404, 409, 413])("does not retry a %i", async (status) => {
    const { fetch, tries } = scripted(problem(status, "validation_failed"), accepted());
    await expectSwitchboardError(client(fetch).publish("t", { body: 1 }), {
      status,
      code: "validation_failed",
    });
    expect(tries).toHaveLength(1);
  });

  it("waits as long as Retry-After asks on a 429", async () => {
    const { fetch, tries } = scripted(
      problem(429, "rate_limited", { "retry-after": "1" }),
      accepted(),
    );
    await client(fetch).publish("t", { body: 1 });
    expect(tries).toHaveLength(2);
    expect((tries[1]?.at ?? 0) - (tries[0]?.at ?? 0)).toBeGreaterThanOrEqual(1000 - 5);
  });

  it("reads Retry-After as an HTTP date", async () => {
    const { fetch, tries } = scripted(
      problem(503, "unavailable", { "retry-after": new Date(Date.now() + 2000).toUTCString() }),
      accepted(),
    );
    await client(fetch).publish("t", { body: 1 });
    // HTTP dates have whole seconds: the wait is 1–2 s.
    expect((tries[1]?.at ?? 0) - (tries[0]?.at ?? 0)).toBeGreaterThanOrEqual(1000 - 5);
  });

  it("gives up at once when Retry-After is longer than a minute", async () => {
    const { fetch, tries } = scripted(problem(429, "rate_limited", { "retry-after": "3600" }));
    await expectSwitchboardError(client(fetch).publish("t", { body: 1 }), {
      status: 429,
      code: "rate_limited",
    });
    expect(tries).toHaveLength(1);
  });

  it("stops after `retries` retries with the last error", async () => {
    const { fetch, tries } = scripted(
      problem(503, "unavailable"),
      problem(503, "unavailable"),
      problem(500, "internal"),
    );
    await expectSwitchboardError(client(fetch, { retries: 2 }).topics.list(), {
      status: 500,
      code: "internal",
    });
    expect(tries).toHaveLength(3);
  });

  it("resolves a delete that finds nothing after a try whose answer was lost", async () => {
    const lost = scripted(new TypeError("connection reset"), problem(404, "not_found"));
    await expect(client(lost.fetch).topics.delete("orders")).resolves.toBeUndefined();
    expect(lost.tries.map((t) => t.request.method)).toEqual(["DELETE", "DELETE"]);

    // Without such a try, or after a 503 (which changes nothing), not_found is the answer.
    await expectSwitchboardError(
      client(scripted(problem(404, "not_found")).fetch).topics.delete("x"),
      { status: 404, code: "not_found" },
    );
    const refused = scripted(problem(503, "unavailable"), problem(404, "not_found"));
    await expectSwitchboardError(client(refused.fetch).subscribers.delete("sub_1"), {
      status: 404,
      code: "not_found",
    });
    // A read is not a delete: not_found after a lost answer is still not_found.
    const read = scripted(new TypeError("connection reset"), problem(404, "not_found"));
    await expectSwitchboardError(client(read.fetch).topics.get("orders"), {
      status: 404,
      code: "not_found",
    });
  });

  it("does not repeat a create after a failure that may have created it", async () => {
    for (const failure of [new TypeError("reset"), problem(500, "internal")]) {
      const { fetch, tries } = scripted(failure, accepted());
      await expect(
        client(fetch).subscribers.create("t", { url: "https://x.test" }),
      ).rejects.toThrow();
      expect(tries).toHaveLength(1);
    }
  });

  it("repeats a create after a 503 or 429, which change nothing", async () => {
    const created = () => Response.json({ secret: "whsec_x" }, { status: 201 });
    const { fetch, tries } = scripted(problem(503, "unavailable"), created());
    await client(fetch).subscribers.create("t", { url: "https://x.test" });
    expect(tries).toHaveLength(2);
  });

  it("retries a proxy's 502 that is not problem+json, and reports it", async () => {
    const badGateway = () =>
      new Response("<html>Bad gateway</html>", {
        status: 502,
        headers: { "x-request-id": "req_p" },
      });
    const { fetch, tries } = scripted(badGateway(), badGateway());
    const error = await expectSwitchboardError(client(fetch, { retries: 1 }).topics.list(), {
      status: 502,
      code: "unexpected_response",
    });
    expect(error.detail).toContain("Bad gateway");
    expect(error.requestId).toBe("req_p");
    expect(tries).toHaveLength(2);
  });
});

describe("timeouts and aborts", () => {
  it("aborts a try that takes longer than timeoutMs", async () => {
    const { fetch, tries } = scripted("hang");
    const started = Date.now();
    await expectSwitchboardError(client(fetch, { timeoutMs: 50, retries: 0 }).topics.list(), {
      status: undefined,
      code: "timeout",
    });
    expect(Date.now() - started).toBeLessThan(1000);
    expect(tries[0]?.signal?.aborted).toBe(true);
  });

  it("times out a fetch that ignores its signal", async () => {
    const fetch: FetchLike = () => new Promise(() => {});
    await expectSwitchboardError(client(fetch, { timeoutMs: 30, retries: 0 }).topics.list(), {
      status: undefined,
      code: "timeout",
    });
  });

  it("retries a timed-out publish with the same key", async () => {
    const { fetch, tries } = scripted("hang", accepted());
    await client(fetch, { timeoutMs: 50 }).publish("t", { body: 1 });
    expect(tries).toHaveLength(2);
    expect(tries[0]?.request.headers.get("idempotency-key")).toBe(
      tries[1]?.request.headers.get("idempotency-key"),
    );
  });

  it("takes a per-call timeout over the client's", async () => {
    const { fetch } = scripted("hang");
    await expectSwitchboardError(client(fetch, { retries: 0 }).topics.get("t", { timeoutMs: 20 }), {
      status: undefined,
      code: "timeout",
    });
  });

  it("stops at the caller's signal, in a try or between tries", async () => {
    const during = scripted("hang");
    const controller = new AbortController();
    const call = client(during.fetch).topics.list({}, { signal: controller.signal });
    setTimeout(() => controller.abort(new Error("user left")), 20);
    const error = await expectSwitchboardError(call, { status: undefined, code: "aborted" });
    expect(error.cause).toEqual(new Error("user left"));

    const between = scripted(new TypeError("down"), accepted());
    const later = new AbortController();
    const publish = client(between.fetch).publish("t", { body: 1 }, { signal: later.signal });
    setTimeout(() => later.abort(), 20);
    await expectSwitchboardError(publish, { status: undefined, code: "aborted" });
    expect(between.tries).toHaveLength(1);
  });
});

describe("arguments that cannot make a request", () => {
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;

  it.each<[string, (sb: Switchboard) => Promise<unknown>]>([
    ["a BigInt in the body", (sb) => sb.publish("t", { body: { total: 10n } })],
    ["a cycle in the body", (sb) => sb.publish("t", { body: cyclic })],
    ["a BigInt in a batch", (sb) => sb.publishBatch("t", [{ body: 1 }, { body: 2n }])],
    ["a key outside Latin-1", (sb) => sb.publish("t", { body: 1 }, { idempotencyKey: "€1" })],
    [
      "a forwarded header value with a line break",
      (sb) => sb.publishRaw("t", "x", { forwardHeaders: { "x-a": "1\r\nx-b: 2" } }),
    ],
    [
      "a forwarded header name that is not a token",
      (sb) => sb.publishRaw("t", "x", { forwardHeaders: { "x a": "1" } }),
    ],
    ["a content type outside Latin-1", (sb) => sb.publishRaw("t", "x", { contentType: "text/€" })],
  ])("rejects %s with invalid_request, sending nothing", async (_, call) => {
    const { fetch, tries } = scripted(accepted(), accepted());
    await expectSwitchboardError(call(client(fetch)), {
      status: undefined,
      code: "invalid_request",
    });
    expect(tries).toHaveLength(0);
  });

  it("names the header, not its value", async () => {
    const { fetch } = scripted();
    const error = await expectSwitchboardError(
      client(fetch).publishRaw("t", "x", { forwardHeaders: { "x-city": "Zürich 東京" } }),
      { status: undefined, code: "invalid_request" },
    );
    expect(error.detail).toContain('"forward-x-city"');
    expect(error.detail).not.toContain("東京");
  });

  it("still retries a TypeError that fetch throws for the network", async () => {
    const { fetch, tries } = scripted(new TypeError("fetch failed"), accepted());
    await client(fetch).publish("t", { body: 1 });
    expect(tries).toHaveLength(2);
  });

  it("refuses a token no header can carry when the client is made, without naming it", () => {
    const make = () => client(scripted().fetch, { token: "s3cr€t" });
    expect(make).toThrow(TypeError);
    expect(make).not.toThrow(/s3cr/);
  });
});

describe("answers", () => {
  it("maps a problem with its field errors and request id", async () => {
    const body = {
      type: "https://switchboard.dev/errors/validation_failed",
      title: "Validation failed",
      status: 400,
      code: "validation_failed",
      detail: "retry.maxAttempts: must be at most 100",
      requestId: "req_42",
      errors: [{ path: "retry.maxAttempts", message: "must be at most 100" }],
    };
    const { fetch } = scripted(
      new Response(JSON.stringify(body), {
        status: 400,
        headers: { "content-type": "application/problem+json" },
      }),
    );
    const error = await expectSwitchboardError(
      client(fetch).subscribers.update("sub_1", { retry: { maxAttempts: 1000 } }),
      { status: 400, code: "validation_failed" },
    );
    expect(error).toMatchObject({
      name: "SwitchboardError",
      message: body.detail,
      detail: body.detail,
      requestId: "req_42",
      errors: body.errors,
    });
  });

  it("reports a success whose body is not JSON", async () => {
    const { fetch } = scripted(new Response("<html>", { status: 200 }));
    await expectSwitchboardError(client(fetch).topics.get("t"), {
      status: 200,
      code: "unexpected_response",
    });
  });

  it("resolves a 204 to undefined", async () => {
    const { fetch, tries } = scripted(new Response(null, { status: 204 }));
    await expect(client(fetch).topics.delete("t")).resolves.toBeUndefined();
    expect(tries[0]?.request.method).toBe("DELETE");
  });

  it("joins the base URL's path and drops its trailing slash", async () => {
    const { fetch, tries } = scripted(Response.json({ topics: [], nextCursor: null }));
    await client(fetch, { baseUrl: "https://proxy.test/switchboard/" }).topics.list({ limit: 5 });
    expect(tries[0]?.request.url).toBe("https://proxy.test/switchboard/v1/topics?limit=5");
  });

  it("refuses a base URL that is not absolute", () => {
    expect(() => client(scripted().fetch, { baseUrl: "switchboard.example.com" })).toThrow(
      TypeError,
    );
  });
});

describe("backoff", () => {
  it("doubles from 250 ms, with equal jitter, up to the cap", () => {
    expect([1, 2, 3].map((retry) => backoffDelay(retry, () => 0))).toEqual([125, 250, 500]);
    expect([1, 2, 3].map((retry) => backoffDelay(retry, () => 1))).toEqual([250, 500, 1000]);
    expect(backoffDelay(30, () => 1)).toBe(MAX_DELAY_MS);
  });

  it.each([
    ["2", 2000],
    [" 0 ", 0],
    ["soon", undefined],
    [null, undefined],
    [new Date(1_000_000 + 3000).toUTCString(), 3000],
    [new Date(1_000_000 - 3000).toUTCString(), 0],
  ])("reads Retry-After %s as %s ms", (header, expected) => {
    expect(retryAfterMs(header, 1_000_000)).toBe(expected);
  });
});

describe("listAll", () => {
  it("stops when a page points back at itself", async () => {
    const page = () => Response.json({ topics: [{ name: "a" }], nextCursor: "c1" });
    const { fetch, tries } = scripted(page(), page(), page());
    const names: string[] = [];
    await expectSwitchboardError(
      (async () => {
        for await (const topic of client(fetch).topics.listAll()) names.push(topic.name);
      })(),
      { status: undefined, code: "unexpected_response" },
    );
    expect(names).toEqual(["a", "a"]);
    expect(tries).toHaveLength(2);
  });
});
