import { Webhook } from "standardwebhooks";
import { describe, expect, it } from "vitest";
import packageJson from "../../package.json";
import {
  buildDeliveryRequest,
  type DeliveryRequest,
  type RequestSubscriber,
  signingSecrets,
} from "../../src/delivery/request";
import { generateSecret } from "../../src/delivery/signature";
import type { MessageContent } from "../../src/queues/tasks";

const SECRET = generateSecret();

const subscriber: RequestSubscriber = {
  url: "https://api.example.com/orders/:orderId",
  method: "POST",
  headers: {},
  query: {},
  secrets: [SECRET],
};

const content: MessageContent = {
  body: { kind: "json", value: { category: "food" }, contentType: "application/json" },
  headers: {},
  query: {},
  pathParams: { orderId: "42" },
  method: null,
};

async function build(
  overrides: { content?: Partial<MessageContent>; subscriber?: Partial<RequestSubscriber> } = {},
  now = new Date(),
): Promise<DeliveryRequest> {
  const built = await buildDeliveryRequest({
    messageId: "msg_01JDQ3Y5N6M7P8Q9R0S1T2V3W4",
    topic: "orders",
    content: { ...content, ...overrides.content },
    subscriber: { ...subscriber, ...overrides.subscriber },
    attempt: 3,
    now,
  });
  if (!built.ok) throw new Error(built.error);
  return built.request;
}

const text = (request: DeliveryRequest) =>
  request.body === null ? null : new TextDecoder().decode(request.body);

describe("buildDeliveryRequest method", () => {
  it.each([
    ["the message's method over the subscriber's", "PUT", "PATCH", "PUT"],
    ["the subscriber's method when the message has none", null, "PATCH", "PATCH"],
    ["POST when the subscriber has the default", null, "POST", "POST"],
  ] as const)("uses %s", async (_, messageMethod, subscriberMethod, expected) => {
    const request = await build({
      content: { method: messageMethod },
      subscriber: { method: subscriberMethod },
    });
    expect(request.method).toBe(expected);
  });
});

describe("buildDeliveryRequest URL", () => {
  it("fills path params, URL-encoded", async () => {
    const request = await build({ content: { pathParams: { orderId: "a b/c?" } } });
    expect(request.url).toBe("https://api.example.com/orders/a%20b%2Fc%3F");
  });

  it("fills {name} segments too", async () => {
    const request = await build({
      subscriber: { url: "https://api.example.com/shops/{shop}/orders/{orderId}" },
      content: { pathParams: { shop: "s1", orderId: "42" } },
    });
    expect(request.url).toBe("https://api.example.com/shops/s1/orders/42");
  });

  it("merges the subscriber's query with the message's, the message winning on a name", async () => {
    const request = await build({
      subscriber: { query: { source: "switchboard", page: "1" } },
      content: { query: { page: "2", tag: ["a", "b"] } },
    });
    const url = new URL(request.url);
    expect(url.searchParams.get("source")).toBe("switchboard");
    expect(url.searchParams.getAll("page")).toEqual(["2"]);
    expect(url.searchParams.getAll("tag")).toEqual(["a", "b"]);
  });

  it("fails, naming the parameter, when the message lacks a path param", async () => {
    const built = await buildDeliveryRequest({
      messageId: "msg_1",
      topic: "orders",
      content: { ...content, pathParams: {} },
      subscriber,
      attempt: 1,
      now: new Date(),
    });
    expect(built.ok).toBe(false);
    if (!built.ok) expect(built.error).toContain("orderId");
  });
});

describe("buildDeliveryRequest headers", () => {
  it("merges message headers, then subscriber headers, the subscriber winning", async () => {
    const request = await build({
      content: { headers: { "x-mode": "message", "x-trace": "t1" } },
      subscriber: { headers: { "x-mode": "subscriber", "x-api-key": "k" } },
    });
    expect(request.headers).toMatchObject({
      "x-mode": "subscriber",
      "x-trace": "t1",
      "x-api-key": "k",
    });
  });

  it("sets the broker's headers last, over message and subscriber headers", async () => {
    const now = new Date("2026-11-28T12:00:00.900Z");
    const request = await build(
      {
        content: { headers: { "content-type": "text/evil", "user-agent": "spoofed" } },
        subscriber: { headers: { "user-agent": "also-spoofed" } },
      },
      now,
    );
    expect(request.headers).toMatchObject({
      "content-type": "application/json",
      "webhook-id": "msg_01JDQ3Y5N6M7P8Q9R0S1T2V3W4",
      "webhook-timestamp": String(Math.floor(now.getTime() / 1000)),
      "switchboard-topic": "orders",
      "switchboard-attempt": "3",
      "user-agent": `Switchboard/${packageJson.version}`,
    });
    expect(request.headers["webhook-signature"]).toMatch(/^v1,[A-Za-z0-9+/]+=*$/);
  });

  it.each<[string, MessageContent["body"], string]>([
    ["JSON", { kind: "json", value: 1, contentType: "application/json" }, "application/json"],
    [
      "text",
      { kind: "text", text: "hi", contentType: "text/plain; charset=utf-8" },
      "text/plain; charset=utf-8",
    ],
    ["bytes", { kind: "bytes", base64: "AAE=", contentType: "image/png" }, "image/png"],
  ])("sends the content type of a %s body", async (_, body, expected) => {
    const request = await build({ content: { body } });
    expect(request.headers["content-type"]).toBe(expected);
  });
});

describe("buildDeliveryRequest body", () => {
  it("sends the body as published", async () => {
    expect(text(await build())).toBe('{"category":"food"}');
    const bytes = await build({
      content: { body: { kind: "bytes", base64: "AP8=", contentType: "x/y" } },
    });
    expect([...(bytes.body ?? [])]).toEqual([0, 255]);
  });

  it.each([
    ["the message says GET", { method: "GET" }, {}],
    ["the subscriber says GET", {}, { method: "GET" }],
  ] as const)("sends no body and no content type when %s", async (_, message, sub) => {
    const request = await build({
      content: { ...message, headers: { "content-type": "application/json" } },
      subscriber: sub,
    });
    expect(request.method).toBe("GET");
    expect(request.body).toBeNull();
    expect(request.headers["content-type"]).toBeUndefined();
  });

  it("sends no body and no content type for a message without one", async () => {
    const request = await build({ content: { body: { kind: "none" } } });
    expect(request.body).toBeNull();
    expect(request.headers["content-type"]).toBeUndefined();
  });

  it("encodes a message's body once for the requests that share a map of bodies", async () => {
    const bodies = new Map<string, Uint8Array>();
    const requests = [];
    for (const secret of [generateSecret(), generateSecret()]) {
      const built = await buildDeliveryRequest({
        messageId: "msg_01JDQ3Y5N6M7P8Q9R0S1T2V3W4",
        topic: "orders",
        content,
        subscriber: { ...subscriber, secrets: [secret] },
        attempt: 1,
        now: new Date(),
        bodies,
      });
      if (!built.ok) throw new Error(built.error);
      requests.push(built.request);
    }
    expect([...bodies.keys()]).toEqual(["msg_01JDQ3Y5N6M7P8Q9R0S1T2V3W4"]);
    expect(requests[1]?.body).toBe(requests[0]?.body);
    expect(text(requests[1] as DeliveryRequest)).toBe('{"category":"food"}');
    expect(requests[1]?.headers["webhook-signature"]).not.toBe(
      requests[0]?.headers["webhook-signature"],
    );
  });
});

describe("buildDeliveryRequest signature", () => {
  it("verifies with the standardwebhooks package", async () => {
    const request = await build();
    const payload = text(request) ?? "";
    expect(new Webhook(SECRET).verify(payload, request.headers)).toEqual({ category: "food" });
  });

  it("verifies a text body and an empty GET body", async () => {
    const textRequest = await build({
      content: { body: { kind: "text", text: "grüße", contentType: "text/plain" } },
    });
    expect(() =>
      new Webhook(SECRET).verify("grüße", textRequest.headers, { jsonParse: false }),
    ).not.toThrow();
    const getRequest = await build({ content: { method: "GET" } });
    expect(new Webhook(SECRET).verify("", getRequest.headers)).toBeUndefined();
  });

  it("signs with every secret during a rotation, each verifying", async () => {
    const previous = generateSecret();
    const request = await build({ subscriber: { secrets: [SECRET, previous] } });
    expect(request.headers["webhook-signature"]?.split(" ")).toHaveLength(2);
    const payload = text(request) ?? "";
    expect(() => new Webhook(SECRET).verify(payload, request.headers)).not.toThrow();
    expect(() => new Webhook(previous).verify(payload, request.headers)).not.toThrow();
    expect(() => new Webhook(generateSecret()).verify(payload, request.headers)).toThrow();
  });
});

describe("signingSecrets", () => {
  const now = Date.UTC(2026, 10, 28);
  it.each([
    ["the current secret alone without a previous one", null, null, ["new"]],
    ["both while the previous one is in its overlap", "old", now + 1, ["new", "old"]],
    ["the current secret alone once the overlap ended", "old", now, ["new"]],
    ["the current secret alone long after the overlap", "old", now - 86_400_000, ["new"]],
    ["the current secret alone when the previous one has no expiry", "old", null, ["new"]],
  ])("gives %s", (_, previousSecret, previousSecretExpiresAt, expected) => {
    expect(signingSecrets({ secret: "new", previousSecret, previousSecretExpiresAt }, now)).toEqual(
      expected,
    );
  });
});
