import { describe, expect, it } from "vitest";
import { type AttemptResult, decide, sendAttempt } from "../../src/delivery/attempt";
import type { RetryPolicy } from "../../src/delivery/backoff";
import type { DeliveryRequest } from "../../src/delivery/request";

const request: DeliveryRequest = {
  method: "POST",
  url: "https://hooks.example.com/in",
  headers: { "content-type": "application/json", "webhook-id": "msg_1" },
  body: new TextEncoder().encode('{"a":1}'),
};

interface Seen {
  url: string;
  init: RequestInit | undefined;
}

/** A fetch that records its calls and answers with `answer`. */
function fetchAnswering(answer: (init: RequestInit | undefined) => Promise<Response>) {
  const calls: Seen[] = [];
  const fetcher: typeof fetch = async (input, init) => {
    calls.push({ url: String(input), init });
    return answer(init);
  };
  return { fetcher, calls };
}

const respond = (
  status: number,
  headers: Record<string, string> = {},
  body: string | null = null,
) => fetchAnswering(async () => new Response(body, { status, headers }));

describe("sendAttempt", () => {
  it("sends the request as built, without following redirects, with a timeout signal", async () => {
    const { fetcher, calls } = respond(200);
    await sendAttempt(request, 5000, fetcher);
    expect(calls).toHaveLength(1);
    const [call] = calls;
    expect(call?.url).toBe(request.url);
    expect(call?.init).toMatchObject({
      method: "POST",
      headers: request.headers,
      body: request.body,
      redirect: "manual",
    });
    expect(call?.init?.signal).toBeInstanceOf(AbortSignal);
  });

  it.each([200, 201, 202, 204, 299])("counts %i as delivered", async (status) => {
    expect(await sendAttempt(request, 5000, respond(status).fetcher)).toEqual({
      kind: "delivered",
      status,
    });
  });

  /** A body that records whether it was read to the end or cancelled. */
  function trackedBody(bytes: number) {
    const seen = { read: false, cancelled: false };
    let sent = false;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent) {
          seen.read = true;
          controller.close();
          return;
        }
        sent = true;
        controller.enqueue(new Uint8Array(bytes));
      },
      cancel() {
        seen.cancelled = true;
      },
    });
    return { body, seen };
  }

  it.each([
    ["reads a small answer to the end, so the connection can be reused", 2, "2", "read"],
    ["cancels an answer larger than 64 KiB", 70_000, "70000", "cancelled"],
    ["reads a small answer without a Content-Length to the end", 2, undefined, "read"],
    ["cancels an answer without a Content-Length once past 64 KiB", 70_000, undefined, "cancelled"],
  ] as const)("%s", async (_, bytes, length, expected) => {
    const { body, seen } = trackedBody(bytes);
    const headers: Record<string, string> =
      length === undefined ? {} : { "content-length": length };
    const fetcher = fetchAnswering(async () => new Response(body, { status: 200, headers }));
    expect(await sendAttempt(request, 5000, fetcher.fetcher)).toEqual({
      kind: "delivered",
      status: 200,
    });
    expect(seen).toEqual({ read: expected === "read", cancelled: expected === "cancelled" });
  });

  it("stays delivered when the answer's body fails after the status", async () => {
    const body = new ReadableStream({
      pull(controller) {
        controller.error(new Error("connection reset"));
      },
    });
    const fetcher = fetchAnswering(
      async () => new Response(body, { status: 200, headers: { "content-length": "10" } }),
    );
    expect(await sendAttempt(request, 5000, fetcher.fetcher)).toEqual({
      kind: "delivered",
      status: 200,
    });
  });

  it("counts 410 as gone", async () => {
    expect(await sendAttempt(request, 5000, respond(410).fetcher)).toEqual({
      kind: "gone",
      status: 410,
    });
  });

  it("fails with 'Timed out' when the subscriber does not answer in time", async () => {
    const { fetcher } = fetchAnswering(
      (init) =>
        new Promise<Response>((_, reject) => {
          const signal = init?.signal;
          signal?.addEventListener("abort", () => reject(signal.reason));
        }),
    );
    const started = Date.now();
    const result = await sendAttempt(request, 50, fetcher);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(result).toMatchObject({ kind: "failed", status: null });
    expect(result.kind === "failed" && result.error).toMatch(/^Timed out/);
  });

  it("fails with the network error when fetch throws", async () => {
    const { fetcher } = fetchAnswering(() =>
      Promise.reject(new TypeError("Network connection lost.")),
    );
    const result = await sendAttempt(request, 5000, fetcher);
    expect(result).toMatchObject({ kind: "failed", status: null });
    expect(result.kind === "failed" && result.error).toContain("Network connection lost.");
  });

  it("fails on a redirect, without following it", async () => {
    const { fetcher, calls } = respond(302, { location: "https://elsewhere.example.com/" });
    const result = await sendAttempt(request, 5000, fetcher);
    expect(calls).toHaveLength(1);
    expect(result).toMatchObject({ kind: "failed", status: 302 });
    expect(result.kind === "failed" && result.error).toMatch(/^HTTP 302/);
  });

  it.each([400, 404, 429, 500, 503])("fails on %i with the status as its error", async (status) => {
    const result = await sendAttempt(request, 5000, respond(status).fetcher);
    expect(result).toMatchObject({ kind: "failed", status });
    expect(result.kind === "failed" && result.error).toMatch(new RegExp(`^HTTP ${status}`));
  });

  it("keeps the start of the error body in the error", async () => {
    const result = await sendAttempt(request, 5000, respond(500, {}, "database\n  down").fetcher);
    expect(result.kind === "failed" && result.error).toBe("HTTP 500: database down");
  });

  it("reads Retry-After in seconds", async () => {
    const result = await sendAttempt(request, 5000, respond(429, { "retry-after": "120" }).fetcher);
    expect(result).toMatchObject({ kind: "failed", status: 429, retryAfterSeconds: 120 });
  });

  it("reads Retry-After as an HTTP date", async () => {
    const now = new Date("2026-10-21T07:27:00Z");
    const result = await sendAttempt(
      request,
      5000,
      respond(503, { "retry-after": "Wed, 21 Oct 2026 07:28:00 GMT" }).fetcher,
      () => now,
    );
    expect(result).toMatchObject({ kind: "failed", status: 503, retryAfterSeconds: 60 });
  });

  it("caps Retry-After at 43200 seconds", async () => {
    const result = await sendAttempt(
      request,
      5000,
      respond(503, { "retry-after": "999999" }).fetcher,
    );
    expect(result).toMatchObject({ kind: "failed", retryAfterSeconds: 43200 });
  });

  it("ignores a Retry-After it cannot read", async () => {
    const result = await sendAttempt(
      request,
      5000,
      respond(429, { "retry-after": "soon" }).fetcher,
    );
    expect(result).toMatchObject({ kind: "failed", status: 429 });
    expect(result.kind === "failed" && result.retryAfterSeconds).toBeUndefined();
  });
});

describe("decide", () => {
  const policy: RetryPolicy = { maxAttempts: 5, baseDelaySeconds: 10, maxDelaySeconds: 43200 };
  const failed: AttemptResult = { kind: "failed", status: 500, error: "HTTP 500" };
  const noJitter = () => 0;
  const mostJitter = () => 0.999999;

  it("delivers on 2xx, even on the last attempt", () => {
    expect(decide({ kind: "delivered", status: 200 }, 1, policy)).toEqual({ action: "delivered" });
    expect(decide({ kind: "delivered", status: 204 }, 5, policy)).toEqual({ action: "delivered" });
  });

  it("is dead at once on 410", () => {
    expect(decide({ kind: "gone", status: 410 }, 1, policy)).toEqual({ action: "dead" });
  });

  it("is dead after the last attempt fails", () => {
    expect(decide(failed, 5, policy)).toEqual({ action: "dead" });
    expect(decide({ ...failed, retryAfterSeconds: 1 }, 5, policy)).toEqual({ action: "dead" });
  });

  it("is dead after one failure with maxAttempts 1", () => {
    expect(decide(failed, 1, { ...policy, maxAttempts: 1 })).toEqual({ action: "dead" });
  });

  it.each([
    [1, 10],
    [2, 20],
    [3, 40],
    [4, 80],
  ])("retries after attempt %i with the backoff, %i s before jitter", (attempt, delay) => {
    expect(decide(failed, attempt, policy, noJitter)).toEqual({
      action: "retry",
      delaySeconds: delay,
    });
    const jittered = decide(failed, attempt, policy, mostJitter);
    expect(jittered.action).toBe("retry");
    if (jittered.action === "retry") {
      expect(jittered.delaySeconds).toBeGreaterThanOrEqual(delay);
      expect(jittered.delaySeconds).toBeLessThanOrEqual(Math.ceil(delay * 1.2));
    }
  });

  it("retries after the subscriber's Retry-After, without jitter", () => {
    const result: AttemptResult = { ...failed, status: 429, retryAfterSeconds: 120 };
    expect(decide(result, 1, policy, mostJitter)).toEqual({ action: "retry", delaySeconds: 120 });
    expect(decide({ ...result, retryAfterSeconds: 0 }, 1, policy, mostJitter)).toEqual({
      action: "retry",
      delaySeconds: 0,
    });
  });

  it("retries timeouts and network errors like other failures", () => {
    const timeout: AttemptResult = { kind: "failed", status: null, error: "Timed out" };
    expect(decide(timeout, 2, policy, noJitter)).toEqual({ action: "retry", delaySeconds: 20 });
  });
});
