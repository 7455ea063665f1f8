/**
 * Subscribers that misbehave at the network level: refusing or resetting connections, hanging,
 * stalling mid-body, redirecting, asking to be left alone with Retry-After. Each is one attempt
 * that the consumer turns into the contract's retry, never a thrown handler or a stuck batch.
 *
 * Covered elsewhere, in test/pipeline/delivery.test.ts ("what an answer does"): a 302, a 404, one
 * network error, a hung subscriber's timeout, Retry-After in seconds, and 410 (dead at once, the
 * subscriber deactivated, its other deliveries cancelled). The Retry-After parser itself is unit
 * tested in test/delivery/backoff.test.ts.
 */
import { describe, expect, it } from "vitest";
import { seedTopic, silenceErrorLog } from "../harness";
import {
  answering,
  deliver,
  insertSubscribers,
  publishAndFanOut,
  stubFetch,
} from "../pipeline/support";
import { deliveryOf, elapsedSince, hangingFetch, oneDelivery, retryDelay } from "./support";

silenceErrorLog();

// Backoff without jitter: the first retry waits exactly baseDelaySeconds.
const NO_JITTER = () => 0;
const RETRY = { baseDelaySeconds: 7, maxAttempts: 5 };

describe("a subscriber that cannot be reached", () => {
  it.each([
    ["refuses the connection", new TypeError("connect ECONNREFUSED 203.0.113.7:443")],
    ["resets the connection", new TypeError("Network connection lost.")],
    [
      "resets it mid-handshake",
      new TypeError("peer closed connection without sending TLS close_notify"),
    ],
    ["has no DNS record", new TypeError("getaddrinfo ENOTFOUND hooks.example.com")],
  ])("is retried after the backoff when it %s", async (_label, error) => {
    const { messageId, task } = await oneDelivery({ retry: RETRY });
    const fetch = stubFetch(() => Promise.reject(error));
    const { batch } = await deliver([task], fetch.fetch, { random: NO_JITTER });
    expect(fetch.requests).toHaveLength(1);
    expect(retryDelay(batch.messages[0]?.outcome())).toBe(7);
    const delivery = await deliveryOf(messageId);
    expect(delivery).toMatchObject({ state: "retrying", attempts: 1, lastStatus: null });
    expect(delivery.lastError).toBe(`Network error: ${error.message}`);
  });
});

describe("a subscriber that hangs", () => {
  it("times out after its timeoutMs without holding up the rest of the batch", async () => {
    const { name: topic } = await seedTopic();
    const [slow] = await insertSubscribers(topic, 1, {
      url: "https://slow.example.com/",
      timeoutMs: 1000,
    });
    const fast = await insertSubscribers(topic, 2, { timeoutMs: 1000 });
    const { messageId, tasks } = await publishAndFanOut(topic, { body: 1 });
    const hanging = hangingFetch();
    const fetch = stubFetch((request, signal) =>
      new URL(request.url).host === "slow.example.com"
        ? hanging.fetch(request.url, { signal })
        : new Response(null, { status: 204 }),
    );

    const start = Date.now();
    const { batch } = await deliver(tasks, fetch.fetch);
    expect(elapsedSince(start)).toBeLessThan(2500);

    const outcomeOf = (id: string | undefined) =>
      batch.messages[tasks.findIndex((task) => task.subscriberId === id)]?.outcome();
    expect(outcomeOf(slow?.id)?.kind).toBe("retry");
    for (const subscriber of fast) expect(outcomeOf(subscriber.id)).toEqual({ kind: "ack" });
    const delivery = await deliveryOf(messageId, slow?.id);
    expect(delivery).toMatchObject({ state: "retrying", lastStatus: null });
    expect(delivery.lastError).toBe("Timed out after 1000 ms");
  });

  it("times out when the answer's headers arrive but its body never ends", async () => {
    const { messageId, task } = await oneDelivery({ timeoutMs: 1000, retry: RETRY });
    const fetch = stubFetch((_request, signal) => {
      const stalled = new ReadableStream<Uint8Array>({
        start(controller) {
          signal?.addEventListener("abort", () => controller.error(signal.reason));
        },
      });
      return new Response(stalled, { status: 500 });
    });
    const start = Date.now();
    const { batch } = await deliver([task], fetch.fetch, { random: NO_JITTER });
    expect(elapsedSince(start)).toBeLessThan(2500);
    expect(retryDelay(batch.messages[0]?.outcome())).toBe(7);
    expect(await deliveryOf(messageId)).toMatchObject({ state: "retrying", lastStatus: 500 });
  });

  it("is delivered when a 2xx comes with a body that never ends", async () => {
    const { messageId, task } = await oneDelivery({ timeoutMs: 1000 });
    const fetch = stubFetch(() => {
      const endless = new ReadableStream<Uint8Array>({
        pull(controller) {
          controller.enqueue(new Uint8Array(1024));
        },
      });
      return new Response(endless, { status: 200 });
    });
    const start = Date.now();
    const { batch } = await deliver([task], fetch.fetch);
    expect(elapsedSince(start)).toBeLessThan(1000);
    expect(batch.messages[0]?.outcome()).toEqual({ kind: "ack" });
    expect(await deliveryOf(messageId)).toMatchObject({ state: "delivered", lastStatus: 200 });
  });
});

describe("a subscriber that redirects", () => {
  it.each([301, 302, 303, 307, 308])(
    "is not followed on %i: one request, retried, and lastError says why",
    async (status) => {
      const { messageId, task } = await oneDelivery({ retry: RETRY });
      const fetch = answering(status, { location: "https://169.254.169.254/latest/meta-data/" });
      const { batch } = await deliver([task], fetch.fetch, { random: NO_JITTER });
      expect(fetch.requests.map((request) => [request.url, request.redirect])).toEqual([
        ["https://hooks.example.com/switchboard", "manual"],
      ]);
      expect(retryDelay(batch.messages[0]?.outcome())).toBe(7);
      const delivery = await deliveryOf(messageId);
      expect(delivery).toMatchObject({ state: "retrying", lastStatus: status });
      expect(delivery.lastError).toContain(`HTTP ${status} (redirects are not followed)`);
    },
  );
});

describe("a subscriber that sends Retry-After", () => {
  it("is retried at an HTTP date, without jitter", async () => {
    const { messageId, task } = await oneDelivery({ retry: RETRY });
    // An HTTP date has whole seconds, so the wait to it is 90 s give or take one.
    const at = new Date(Math.floor(Date.now() / 1000) * 1000 + 90_000);
    const fetch = answering(429, { "retry-after": at.toUTCString() });
    const { batch } = await deliver([task], fetch.fetch, { random: () => 0.99 });
    const delay = retryDelay(batch.messages[0]?.outcome());
    expect(delay).toBeGreaterThanOrEqual(89);
    expect(delay).toBeLessThanOrEqual(91);
    const delivery = await deliveryOf(messageId);
    expect(delivery).toMatchObject({ state: "retrying", lastStatus: 429 });
    expect(Math.abs(Date.parse(delivery.nextAttemptAt ?? "") - at.getTime())).toBeLessThan(2000);
  });

  it.each([
    ["in seconds on a 503", 503, "120", 120],
    ["beyond the 12-hour cap", 429, "999999", 43200],
    ["as a date in the past", 429, "Wed, 21 Oct 2015 07:28:00 GMT", 0],
  ])("is retried %s", async (_label, status, retryAfter, expected) => {
    const { task } = await oneDelivery({ retry: RETRY });
    const fetch = answering(status, { "retry-after": retryAfter });
    const { batch } = await deliver([task], fetch.fetch, { random: () => 0.99 });
    expect(retryDelay(batch.messages[0]?.outcome())).toBe(expected);
  });

  it("falls back to the backoff when Retry-After cannot be read", async () => {
    const { task } = await oneDelivery({ retry: RETRY });
    const fetch = answering(429, { "retry-after": "soon, please" });
    const { batch } = await deliver([task], fetch.fetch, { random: NO_JITTER });
    expect(retryDelay(batch.messages[0]?.outcome())).toBe(7);
  });

  it("does not keep a delivery alive past its last attempt", async () => {
    const { messageId, task } = await oneDelivery({ retry: { maxAttempts: 1 } });
    const { batch } = await deliver([task], answering(429, { "retry-after": "60" }).fetch);
    expect(batch.messages[0]?.outcome()).toEqual({ kind: "ack" });
    expect(await deliveryOf(messageId)).toMatchObject({ state: "dead", lastStatus: 429 });
  });
});
