/**
 * The whole pipeline (publish → fan-out queue → delivery queue → subscriber, and dead letters) in
 * the same runtime as `wrangler dev`, delivering to real HTTP servers on loopback. The workerd
 * tests drive each consumer by hand with mocked fetch; only here do the local queues batch, delay
 * and retry on their own, the filters run where code generation from strings is refused, and the
 * requests cross a real socket, so what a subscriber sees is what the runtime actually sent.
 *
 * Every test has its own topic and servers, so they run concurrently against one broker. Retry
 * delays are short (`baseDelaySeconds: 1`), and every wait polls up to a deadline.
 */
import { Buffer } from "node:buffer";
import { createHmac, randomUUID } from "node:crypto";
import { Webhook } from "standardwebhooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type LocalBroker, startBroker } from "../node/broker";
import {
  type ReceivedRequest,
  type RecordingSubscriber,
  type Responder,
  startSubscriber,
} from "../node/subscriber";

interface CreatedSubscriber {
  id: string;
  secret: string;
  active: boolean;
}

interface DeliveryStatus {
  subscriberId: string;
  state: "pending" | "retrying" | "delivered" | "dead" | "cancelled";
  attempts: number;
  lastStatus: number | null;
  lastError: string | null;
  lastAttemptAt: string | null;
  nextAttemptAt: string | null;
}

interface MessageStatus {
  id: string;
  topic: string;
  publishedAt: string;
  state: "queued" | "dispatched";
  matched: number | null;
  filtered: number | null;
  deliveries: DeliveryStatus[];
}

interface DeadLetter {
  id: string;
  messageId: string;
  topic: string;
  subscriberId: string;
  attempts: number;
  lastStatus: number | null;
  lastError: string | null;
  deadAt: string;
}

interface Published {
  id: string;
  topic: string;
  duplicate: boolean;
}

/** Long enough for a few queue batches (1 s each) and short retries, far below the test timeout. */
const DELIVERY_TIMEOUT_MS = 20_000;

let broker: LocalBroker;
const servers: RecordingSubscriber[] = [];

beforeAll(async () => {
  broker = await startBroker();
});

afterAll(async () => {
  await Promise.all(servers.map((server) => server.close()));
  await broker?.dispose();
});

async function subscriberServer(responder?: Responder): Promise<RecordingSubscriber> {
  const server = await startSubscriber(responder);
  servers.push(server);
  return server;
}

async function expectJson<T>(res: Response, status: number): Promise<T> {
  const text = await res.text();
  expect({ status: res.status, body: text }).toMatchObject({ status });
  return JSON.parse(text) as T;
}

let topicCounter = 0;
/** A fresh topic per test, so that concurrent tests never see each other's messages. */
async function createTopic(label: string): Promise<string> {
  topicCounter += 1;
  const name = `pipeline.${label}-${topicCounter}`;
  await expectJson(await broker.request("/v1/topics", { json: { name } }), 201);
  return name;
}

async function subscribe(
  topic: string,
  input: Record<string, unknown>,
): Promise<CreatedSubscriber> {
  const res = await broker.request(`/v1/topics/${topic}/subscribers`, { json: input });
  return expectJson<CreatedSubscriber>(res, 201);
}

async function publish(
  topic: string,
  envelope: Record<string, unknown>,
  headers: Record<string, string> = {},
): Promise<Published> {
  const res = await broker.request(`/v1/topics/${topic}/messages`, {
    token: broker.publishToken,
    json: envelope,
    headers,
  });
  return expectJson<Published>(res, 202);
}

async function messageStatus(id: string): Promise<MessageStatus> {
  const res = await broker.request(`/v1/messages/${id}`, { token: broker.publishToken });
  return expectJson<MessageStatus>(res, 200);
}

async function deadLetters(subscriberId: string): Promise<DeadLetter[]> {
  const res = await broker.request(`/v1/dead-letters?subscriberId=${subscriberId}`);
  return (await expectJson<{ deadLetters: DeadLetter[] }>(res, 200)).deadLetters;
}

/**
 * Reads until `done` holds, every 100 ms, up to a deadline; fails with the last value read, which
 * says far more than a bare timeout.
 */
async function poll<T>(
  read: () => Promise<T>,
  done: (value: T) => boolean,
  what: string,
  timeoutMs = DELIVERY_TIMEOUT_MS,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) {
      throw new Error(`${what} within ${timeoutMs} ms; last seen: ${JSON.stringify(value)}`);
    }
    await sleep(100);
  }
}

function waitForMessage(id: string, done: (status: MessageStatus) => boolean, what: string) {
  return poll(() => messageStatus(id), done, `message ${id}: ${what}`);
}

/** Fanned out, and every delivery it made is delivered. */
function allDelivered(status: MessageStatus): boolean {
  return (
    status.matched !== null &&
    status.deliveries.length === status.matched &&
    status.deliveries.every((delivery) => delivery.state === "delivered")
  );
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function withId(id: string): (request: ReceivedRequest) => boolean {
  return (request) => request.headers["webhook-id"] === id;
}

/** The headers every attempt carries besides the message's and the subscriber's own. */
function expectBrokerHeaders(
  request: ReceivedRequest,
  expected: { id: string; topic: string; attempt: number },
): void {
  expect(request.headers).toMatchObject({
    "webhook-id": expected.id,
    "webhook-signature": expect.stringMatching(/^v1,[A-Za-z0-9+/]+=*( v1,[A-Za-z0-9+/]+=*)*$/),
    "switchboard-topic": expected.topic,
    "switchboard-attempt": String(expected.attempt),
    "user-agent": expect.stringMatching(/^Switchboard\/\d+\.\d+\.\d+/),
  });
  const timestamp = Number(request.headers["webhook-timestamp"]);
  expect(Number.isSafeInteger(timestamp)).toBe(true);
  expect(Math.abs(timestamp - request.receivedAt / 1000)).toBeLessThan(10);
}

/** Checks the signature with the reference verifier; it takes the body as a string. */
function verifySignature(secret: string, request: ReceivedRequest): unknown {
  return new Webhook(secret).verify(request.body.toString("utf8"), request.headers, {
    jsonParse: false,
  });
}

/**
 * Checks the signature over the exact bytes. The reference verifier decodes a body as UTF-8 before
 * signing, which would replace bytes such as 0xFF, so binary bodies are checked with a plain HMAC.
 */
function expectSignedBytes(secret: string, request: ReceivedRequest): void {
  const key = Buffer.from(secret.slice("whsec_".length), "base64");
  const mac = createHmac("sha256", key)
    .update(`${request.headers["webhook-id"]}.${request.headers["webhook-timestamp"]}.`)
    .update(request.body)
    .digest("base64");
  expect(request.headers["webhook-signature"]?.split(" ")).toContain(`v1,${mac}`);
}

/** Path and sorted query pairs, so that the check does not depend on parameter order. */
function splitTarget(target: string): { path: string; query: [string, string][] } {
  const url = new URL(target, "http://subscriber.invalid");
  const query = [...url.searchParams].sort(([a, x], [b, y]) =>
    a === b ? x.localeCompare(y) : a.localeCompare(b),
  );
  return { path: url.pathname, query };
}

describe.concurrent("the pipeline on the wrangler dev runtime", () => {
  it("delivers a message only to the subscribers whose filter matches", async () => {
    const server = await subscriberServer();
    const topic = await createTopic("routing");
    const filters: Record<string, string | undefined> = {
      quietFood: 'body.category == "food" and headers.mode == "quiet"',
      bigTotal: "body.total > 10",
      exampleEmail: 'body.customer.email ~= "@example[.]com$"',
      everything: undefined,
      toys: 'body.category == "toys"',
      hugeTotal: "body.total > 100",
      adminEmail: 'body.customer.email ~= "^admin@"',
      loudFood: 'body.category == "food" and headers.mode == "loud"',
      goldTier: 'body.customer.tier == "gold"',
    };
    const labelOf = new Map<string, string>();
    for (const [label, filter] of Object.entries(filters)) {
      const created = await subscribe(topic, { url: `${server.url}/${label}`, filter });
      labelOf.set(created.id, label);
    }

    const food = await publish(topic, {
      body: { category: "food", total: 12, customer: { email: "ana@example.com" } },
      headers: { mode: "quiet" },
    });
    const toys = await publish(topic, {
      body: { category: "toys", total: 5, customer: { email: "admin@corp.test" } },
      headers: { mode: "loud" },
    });
    const expected = new Map([
      [food.id, ["bigTotal", "everything", "exampleEmail", "quietFood"]],
      [toys.id, ["adminEmail", "everything", "toys"]],
    ]);

    for (const [id, labels] of expected) {
      const status = await waitForMessage(id, allDelivered, "every match delivered");
      expect(status).toMatchObject({
        id,
        topic,
        state: "dispatched",
        matched: labels.length,
        filtered: Object.keys(filters).length - labels.length,
      });
      expect(status.deliveries.map((d) => labelOf.get(d.subscriberId)).sort()).toEqual(labels);
      for (const delivery of status.deliveries) {
        expect(delivery).toMatchObject({
          state: "delivered",
          attempts: 1,
          lastStatus: 200,
          lastError: null,
          nextAttemptAt: null,
        });
      }
      // The fan-out is recorded, so no delivery to another subscriber can still be on its way.
      const paths = server.requests.filter(withId(id)).map((r) => r.target.slice(1));
      expect(paths.sort()).toEqual(labels);
    }
    expect(server.requests).toHaveLength(7);
  });

  it("sends each subscriber the request the contract describes", async () => {
    const server = await subscriberServer();
    const topic = await createTopic("shape");
    const subscriber = await subscribe(topic, {
      url: `${server.url}/orders/:orderId/items/{itemId}?fixed=yes`,
      method: "PUT",
      headers: { "X-Both": "subscriber", "x-sub-only": "s", "content-type": "text/x-replaced" },
      query: { source: "switchboard", page: "1" },
    });

    const jsonBody = { category: "food", note: "crème brûlée ✓", values: [1, 2.5, null, true] };
    const json = await publish(topic, {
      body: jsonBody,
      method: "PATCH",
      pathParams: { orderId: "42/a b", itemId: "7" },
      query: { page: "2", tag: ["a", "b"] },
      headers: { "X-Both": "message", "X-Msg-Only": "m", "Content-Type": "text/x-replaced" },
    });
    const text = await publish(topic, {
      bodyText: "héllo\nwörld",
      pathParams: { orderId: "1", itemId: "2" },
    });
    const bytes = Buffer.from([0x00, 0xff, 0x80, 0x0a, 0x0d, 0xfe, 0x7f, 0x00, 0xc3, 0x28]);
    const binary = await publish(topic, {
      bodyBase64: bytes.toString("base64"),
      pathParams: { orderId: "1", itemId: "3" },
    });
    const get = await publish(topic, {
      body: { ignored: true },
      method: "GET",
      pathParams: { orderId: "1", itemId: "4" },
    });

    const received = await server.waitFor(4, { timeoutMs: DELIVERY_TIMEOUT_MS });
    const byId = (id: string): ReceivedRequest => {
      const [request, ...others] = received.filter(withId(id));
      expect(others).toHaveLength(0);
      if (!request) throw new Error(`no request for message ${id}`);
      expectBrokerHeaders(request, { id, topic, attempt: 1 });
      return request;
    };

    const jsonRequest = byId(json.id);
    expect(jsonRequest.method).toBe("PATCH");
    expect(splitTarget(jsonRequest.target)).toEqual({
      path: "/orders/42%2Fa%20b/items/7",
      query: [
        ["fixed", "yes"],
        ["page", "2"],
        ["source", "switchboard"],
        ["tag", "a"],
        ["tag", "b"],
      ],
    });
    expect(jsonRequest.headers).toMatchObject({
      "x-both": "subscriber",
      "x-sub-only": "s",
      "x-msg-only": "m",
      "content-type": "application/json",
    });
    // Names as they crossed the wire, not as Node reports them. Only the message's and the
    // subscriber's own: the runtime writes standard ones such as Content-Type in its own case.
    for (const name of ["x-both", "x-sub-only", "x-msg-only"]) {
      expect(jsonRequest.rawHeaderNames).toContain(name);
    }
    expect(jsonRequest.body.equals(Buffer.from(JSON.stringify(jsonBody)))).toBe(true);
    expect(
      new Webhook(subscriber.secret).verify(jsonRequest.body.toString("utf8"), jsonRequest.headers),
    ).toEqual(jsonBody);

    const textRequest = byId(text.id);
    expect(textRequest.method).toBe("PUT");
    expect(splitTarget(textRequest.target).path).toBe("/orders/1/items/2");
    expect(textRequest.headers["content-type"]).toBe("text/plain; charset=utf-8");
    expect(textRequest.body.equals(Buffer.from("héllo\nwörld", "utf8"))).toBe(true);
    expect(() => verifySignature(subscriber.secret, textRequest)).not.toThrow();

    const binaryRequest = byId(binary.id);
    expect(binaryRequest.method).toBe("PUT");
    expect(binaryRequest.headers["content-type"]).toBe("application/octet-stream");
    expect(binaryRequest.body.equals(bytes)).toBe(true);
    expectSignedBytes(subscriber.secret, binaryRequest);

    const getRequest = byId(get.id);
    expect(getRequest.method).toBe("GET");
    expect(splitTarget(getRequest.target).path).toBe("/orders/1/items/4");
    expect(getRequest.body).toHaveLength(0);
    expect(getRequest.headers["content-type"]).toBeUndefined();
    expect(getRequest.headers["content-length"] ?? "0").toBe("0");
    expect(getRequest.headers["transfer-encoding"]).toBeUndefined();
    expect(() => verifySignature(subscriber.secret, getRequest)).not.toThrow();

    for (const { id } of [json, text, binary, get]) {
      await waitForMessage(id, allDelivered, "delivered");
    }
  });

  it("delivers a raw publish byte for byte, with its content type, query and forwarded headers", async () => {
    const server = await subscriberServer();
    const topic = await createTopic("raw");
    const subscriber = await subscribe(topic, {
      url: `${server.url}/raw?fixed=yes`,
      headers: { "x-sub-only": "s" },
      query: { a: "subscriber", source: "switchboard" },
    });

    const bytes = Buffer.from([0x00, 0x01, 0xff, 0xfe, 0x0a, 0x00, 0x80, 0xc0, 0xaf]);
    const res = await broker.request(`/v1/topics/${topic}/messages/raw?a=1&b=2&b=3`, {
      token: broker.publishToken,
      body: bytes,
      headers: {
        "content-type": "application/x-thing; v=1",
        "forward-x-thing": "forwarded value",
      },
    });
    const { id } = await expectJson<Published>(res, 202);

    const [request] = await server.waitFor(1, { timeoutMs: DELIVERY_TIMEOUT_MS });
    if (!request) throw new Error("no request");
    expectBrokerHeaders(request, { id, topic, attempt: 1 });
    expect(request.method).toBe("POST");
    expect(splitTarget(request.target)).toEqual({
      path: "/raw",
      query: [
        ["a", "1"],
        ["b", "2"],
        ["b", "3"],
        ["fixed", "yes"],
        ["source", "switchboard"],
      ],
    });
    expect(request.headers).toMatchObject({
      "content-type": "application/x-thing; v=1",
      "x-thing": "forwarded value",
      "x-sub-only": "s",
    });
    expect(request.rawHeaderNames).toContain("x-thing");
    // Only Forward-* headers travel: nothing else of the publisher's request leaks through.
    expect(request.headers["forward-x-thing"]).toBeUndefined();
    expect(request.headers.authorization).toBeUndefined();
    expect(request.body.equals(bytes)).toBe(true);
    expectSignedBytes(subscriber.secret, request);
    await waitForMessage(id, allDelivered, "delivered");
  });

  it("retries a failing subscriber with the same webhook-id until it succeeds", async () => {
    const server = await subscriberServer((_, index) =>
      index < 2 ? { status: 500, body: "temporarily broken" } : { status: 200 },
    );
    const topic = await createTopic("retry");
    const subscriber = await subscribe(topic, {
      url: `${server.url}/hook`,
      retry: { maxAttempts: 5, baseDelaySeconds: 1 },
    });
    const body = { order: 7 };
    const { id } = await publish(topic, { body });

    const attempts = await server.waitFor(3, { timeoutMs: DELIVERY_TIMEOUT_MS });
    attempts.forEach((request, index) => {
      expectBrokerHeaders(request, { id, topic, attempt: index + 1 });
      expect(
        new Webhook(subscriber.secret).verify(request.body.toString(), request.headers),
      ).toEqual(body);
    });
    const [first, second, third] = attempts.map((request) => request.receivedAt);
    // Backoff is at least baseDelaySeconds · 2^(attempt−1): 1 s, then 2 s.
    expect((second ?? 0) - (first ?? 0)).toBeGreaterThanOrEqual(1000);
    expect((third ?? 0) - (second ?? 0)).toBeGreaterThanOrEqual(2000);

    const status = await waitForMessage(id, allDelivered, "delivered");
    expect(status.deliveries).toEqual([
      expect.objectContaining({
        subscriberId: subscriber.id,
        state: "delivered",
        attempts: 3,
        lastStatus: 200,
        lastError: null,
        nextAttemptAt: null,
      }),
    ]);
    expect(server.requests).toHaveLength(3);
  });

  it("waits as long as a 429's Retry-After says, not the backoff", async () => {
    const server = await subscriberServer((_, index) =>
      index === 0
        ? { status: 429, headers: { "retry-after": "1" }, body: "slow down" }
        : { status: 200 },
    );
    const topic = await createTopic("retry-after");
    // The backoff alone would wait 30 s or more, past the deadline below.
    const subscriber = await subscribe(topic, {
      url: `${server.url}/hook`,
      retry: { maxAttempts: 3, baseDelaySeconds: 30 },
    });
    const { id } = await publish(topic, { body: { n: 1 } });

    const [first, second] = await server.waitFor(2, { timeoutMs: 15_000 });
    if (!first || !second) throw new Error("expected two attempts");
    expectBrokerHeaders(first, { id, topic, attempt: 1 });
    expectBrokerHeaders(second, { id, topic, attempt: 2 });
    expect(second.receivedAt - first.receivedAt).toBeGreaterThanOrEqual(1000);

    const status = await waitForMessage(id, allDelivered, "delivered");
    expect(status.deliveries).toEqual([
      expect.objectContaining({
        subscriberId: subscriber.id,
        state: "delivered",
        attempts: 2,
        lastStatus: 200,
      }),
    ]);
  });

  it("dead-letters a subscriber that always fails, then replays to it once it is fixed", async () => {
    const server = await subscriberServer(() => ({ status: 503, body: "down for maintenance" }));
    const topic = await createTopic("dead");
    const subscriber = await subscribe(topic, {
      url: `${server.url}/hook`,
      retry: { maxAttempts: 2, baseDelaySeconds: 1 },
    });
    const one = await publish(topic, { body: { n: 1 } });
    const two = await publish(topic, { body: { n: 2 } });

    const dead = await poll(
      () => deadLetters(subscriber.id),
      (list) => list.length === 2,
      "two dead letters",
    );
    expect(dead.map((letter) => letter.messageId).sort()).toEqual([one.id, two.id].sort());
    for (const letter of dead) {
      expect(letter).toMatchObject({
        id: expect.stringMatching(/^dlq_/),
        topic,
        subscriberId: subscriber.id,
        attempts: 2,
        lastStatus: 503,
        lastError: expect.stringContaining("503"),
      });
      expect(new Date(letter.deadAt).toISOString()).toBe(letter.deadAt);
    }
    for (const { id } of [one, two]) {
      const status = await messageStatus(id);
      expect(status.deliveries).toEqual([
        expect.objectContaining({ state: "dead", attempts: 2, lastStatus: 503 }),
      ]);
      const attempts = server.requests.filter(withId(id));
      expect(attempts.map((r) => r.headers["switchboard-attempt"])).toEqual(["1", "2"]);
    }

    server.respondWith(() => ({ status: 200 }));
    // A replay goes to the subscriber as it is now, so it signs with the rotated secret.
    const rotated = await expectJson<{ secret: string }>(
      await broker.request(`/v1/subscribers/${subscriber.id}/rotate-secret`, { method: "POST" }),
      200,
    );

    const letterOf = (id: string) => dead.find((letter) => letter.messageId === id);
    const single = await broker.request(`/v1/dead-letters/${letterOf(one.id)?.id}/replay`, {
      method: "POST",
    });
    expect(await expectJson(single, 202)).toEqual({ replayed: 1 });
    const replayedOne = (await server.waitFor(3, { where: withId(one.id) }))[2];
    if (!replayedOne) throw new Error("no replayed request");
    expectBrokerHeaders(replayedOne, { id: one.id, topic, attempt: 1 });
    expect(verifySignature(rotated.secret, replayedOne)).toBeUndefined();
    const again = await broker.request(`/v1/dead-letters/${letterOf(one.id)?.id}/replay`, {
      method: "POST",
    });
    expect(again.status).toBe(404);

    const bulk = await broker.request("/v1/dead-letters/replay", {
      json: { subscriberId: subscriber.id },
    });
    expect(await expectJson(bulk, 202)).toEqual({ replayed: 1 });
    const replayedTwo = (await server.waitFor(3, { where: withId(two.id) }))[2];
    if (!replayedTwo) throw new Error("no replayed request");
    expectBrokerHeaders(replayedTwo, { id: two.id, topic, attempt: 1 });
    expect(verifySignature(rotated.secret, replayedTwo)).toBeUndefined();

    for (const { id } of [one, two]) {
      const status = await waitForMessage(id, allDelivered, "delivered after the replay");
      expect(status.deliveries).toEqual([
        expect.objectContaining({ state: "delivered", attempts: 1, lastStatus: 200 }),
      ]);
    }
    expect(await deadLetters(subscriber.id)).toEqual([]);
    expect(server.requests).toHaveLength(6);
  });

  it("dead-letters at once and deactivates a subscriber that answers 410", async () => {
    const server = await subscriberServer(() => ({ status: 410, body: "gone" }));
    const topic = await createTopic("gone");
    const subscriber = await subscribe(topic, {
      url: `${server.url}/hook`,
      retry: { maxAttempts: 5, baseDelaySeconds: 1 },
    });
    const { id } = await publish(topic, { body: { n: 1 } });

    const status = await waitForMessage(
      id,
      (s) => s.deliveries[0]?.state === "dead",
      "dead after the 410",
    );
    expect(status.deliveries).toEqual([
      expect.objectContaining({ state: "dead", attempts: 1, lastStatus: 410, nextAttemptAt: null }),
    ]);
    const [letter, ...others] = await deadLetters(subscriber.id);
    expect(others).toEqual([]);
    expect(letter).toMatchObject({ messageId: id, attempts: 1, lastStatus: 410 });

    const current = await expectJson<CreatedSubscriber>(
      await broker.request(`/v1/subscribers/${subscriber.id}`),
      200,
    );
    expect(current.active).toBe(false);
    const replay = await broker.request(`/v1/dead-letters/${letter?.id}/replay`, {
      method: "POST",
    });
    expect(replay.status).toBe(409);
    expect(server.requests).toHaveLength(1);
  });

  it("fans a message to a small topic without filters out at publish, as wrangler.toml sets", async () => {
    const server = await subscriberServer();
    const topic = await createTopic("inline");
    await subscribe(topic, { url: `${server.url}/hook` });
    const { id } = await publish(topic, { body: { n: 1 } });
    // Through the fan-out queue, matched is null until the fan-out has run; inline, the publish
    // itself recorded it.
    const status = await broker.request(`/v1/messages/${id}`, { token: broker.adminToken });
    expect(await status.json()).toMatchObject({ matched: 1, filtered: 0 });
    await waitForMessage(id, allDelivered, "delivered");
    await server.waitFor(1, { where: withId(id) });
  });

  it("publishes a message once for a repeated Idempotency-Key and delivers it once", async () => {
    const server = await subscriberServer();
    const topic = await createTopic("idempotent");
    await subscribe(topic, { url: `${server.url}/hook` });
    const key = { "idempotency-key": `order-${randomUUID()}` };
    const envelope = { body: { order: 1 } };

    const first = await publish(topic, envelope, key);
    expect(first).toEqual({ id: expect.stringMatching(/^msg_/), topic, duplicate: false });
    const second = await publish(topic, envelope, key);
    expect(second).toEqual({ id: first.id, topic, duplicate: true });
    const conflict = await broker.request(`/v1/topics/${topic}/messages`, {
      token: broker.publishToken,
      json: { body: { order: 2 } },
      headers: key,
    });
    expect(conflict.status).toBe(409);

    // Published after the duplicate: once it has arrived, a second copy would have too.
    const marker = await publish(topic, { body: { marker: true } });
    await waitForMessage(first.id, allDelivered, "delivered");
    await waitForMessage(marker.id, allDelivered, "delivered");
    await server.waitFor(1, { where: withId(marker.id) });
    expect(server.requests.filter(withId(first.id))).toHaveLength(1);
    expect(server.requests).toHaveLength(2);
  });

  it("holds a delayed message back for delaySeconds", async () => {
    const server = await subscriberServer();
    const topic = await createTopic("delayed");
    await subscribe(topic, { url: `${server.url}/hook` });

    const publishedAt = Date.now();
    const { id } = await publish(topic, { body: { later: true }, delaySeconds: 2 });
    const early = await messageStatus(id);
    expect(early).toMatchObject({ matched: null, filtered: null, deliveries: [] });

    const [request] = await server.waitFor(1, { timeoutMs: DELIVERY_TIMEOUT_MS });
    if (!request) throw new Error("no request");
    expectBrokerHeaders(request, { id, topic, attempt: 1 });
    expect(request.receivedAt - publishedAt).toBeGreaterThanOrEqual(2000);
    await waitForMessage(id, allDelivered, "delivered");
  });

  it("delivers every message of a batch publish", async () => {
    const server = await subscriberServer();
    const topic = await createTopic("batch");
    const subscriber = await subscribe(topic, { url: `${server.url}/hook` });
    const res = await broker.request(`/v1/topics/${topic}/messages/batch`, {
      token: broker.publishToken,
      json: {
        messages: [
          { body: { n: 1 } },
          { bodyText: "two" },
          { body: { n: 3 }, idempotencyKey: `batch-${randomUUID()}` },
        ],
      },
    });
    const { messages } = await expectJson<{ messages: { id: string; duplicate: boolean }[] }>(
      res,
      202,
    );
    expect(messages).toHaveLength(3);
    expect(messages.every((m) => !m.duplicate)).toBe(true);
    expect(new Set(messages.map((m) => m.id)).size).toBe(3);

    const expectedBodies = ['{"n":1}', "two", '{"n":3}'];
    await server.waitFor(3, { timeoutMs: DELIVERY_TIMEOUT_MS });
    messages.forEach(({ id }, index) => {
      const requests = server.requests.filter(withId(id));
      expect(requests).toHaveLength(1);
      const [request] = requests;
      if (!request) return;
      expectBrokerHeaders(request, { id, topic, attempt: 1 });
      expect(request.body.toString("utf8")).toBe(expectedBodies[index]);
      expect(() => verifySignature(subscriber.secret, request)).not.toThrow();
    });
    for (const { id } of messages) await waitForMessage(id, allDelivered, "delivered");
  });

  it("delivers a message too large to ride in the queue byte for byte", async () => {
    const server = await subscriberServer();
    const topic = await createTopic("large");
    // The filter proves the fan-out read the content back from storage.
    const subscriber = await subscribe(topic, {
      url: `${server.url}/hook`,
      filter: 'body.kind == "large"',
    });
    const body = {
      kind: "large",
      items: Array.from({ length: 1500 }, (_, i) => ({
        i,
        name: `item ${i}: ünïcödé ✓`,
        pad: "x".repeat(100),
      })),
    };
    const serialized = Buffer.from(JSON.stringify(body));
    expect(serialized.byteLength).toBeGreaterThan(150 * 1024);
    expect(serialized.byteLength).toBeLessThan(300 * 1024);

    const { id } = await publish(topic, { body });
    const [request] = await server.waitFor(1, { timeoutMs: DELIVERY_TIMEOUT_MS });
    if (!request) throw new Error("no request");
    expectBrokerHeaders(request, { id, topic, attempt: 1 });
    expect(request.headers["content-type"]).toBe("application/json");
    expect(request.body.byteLength).toBe(serialized.byteLength);
    expect(request.body.equals(serialized)).toBe(true);
    expect(() => verifySignature(subscriber.secret, request)).not.toThrow();
    const status = await waitForMessage(id, allDelivered, "delivered");
    expect(status).toMatchObject({ matched: 1, filtered: 0 });
  });

  it("stops retrying a subscriber once it is deleted", async () => {
    const retry = { maxAttempts: 5, baseDelaySeconds: 1 };
    const victim = await subscriberServer(() => ({ status: 500 }));
    // Fails once like the victim, so its second attempt shows when the victim's would have come.
    const control = await subscriberServer((_, index) => ({ status: index === 0 ? 500 : 200 }));
    const topic = await createTopic("deleted");
    const doomed = await subscribe(topic, { url: `${victim.url}/hook`, retry });
    const kept = await subscribe(topic, { url: `${control.url}/hook`, retry });
    const { id } = await publish(topic, { body: { n: 1 } });

    await victim.waitFor(1, { timeoutMs: DELIVERY_TIMEOUT_MS });
    const retrying = await waitForMessage(
      id,
      (s) => s.deliveries.find((d) => d.subscriberId === doomed.id)?.state === "retrying",
      "the doomed delivery retrying",
    );
    const nextAttemptAt = Date.parse(
      retrying.deliveries.find((d) => d.subscriberId === doomed.id)?.nextAttemptAt ?? "",
    );
    expect(Number.isFinite(nextAttemptAt)).toBe(true);

    const deleted = await broker.request(`/v1/subscribers/${doomed.id}`, { method: "DELETE" });
    expect(deleted.status).toBe(204);

    await control.waitFor(2, { timeoutMs: DELIVERY_TIMEOUT_MS });
    // The retry was due at nextAttemptAt; a queue batch (1 s) past it, it would have arrived.
    await sleep(Math.max(0, nextAttemptAt + 2500 - Date.now()));
    expect(victim.requests).toHaveLength(1);

    const status = await waitForMessage(
      id,
      (s) => s.deliveries.find((d) => d.subscriberId === kept.id)?.state === "delivered",
      "the kept delivery delivered",
    );
    expect(status.deliveries.find((d) => d.subscriberId === doomed.id)).toMatchObject({
      state: "cancelled",
      attempts: 1,
      nextAttemptAt: null,
    });
  });
});
