/** The Hono middleware in a tiny subscriber app. */
import { Hono } from "hono";
import { describe, expect, it } from "vitest";
import { generateSecret, signatureHeader } from "../../src/delivery/signature";
import { switchboardWebhook } from "../../src/sdk/hono";

const SECRET = generateSecret();

type AppEnv = { Bindings: { SWITCHBOARD_SECRET: string } };

function app() {
  const calls: unknown[] = [];
  const hono = new Hono<AppEnv>();
  hono.post(
    "/hooks/orders",
    switchboardWebhook<AppEnv>({ secret: (c) => c.env.SWITCHBOARD_SECRET }),
    async (c) => {
      calls.push(c.get("webhookPayload"));
      // The body is still readable after verification.
      return c.json({ payload: c.get("webhookPayload"), text: await c.req.text() });
    },
  );
  return { hono, calls };
}

async function delivery(body: string, secret = SECRET, timestamp = Math.floor(Date.now() / 1000)) {
  const id = "msg_01JDQ3Y5N6M7P8Q9R0S1T2V3W4";
  return new Request("https://subscriber.test/hooks/orders", {
    method: "POST",
    headers: {
      "content-type": "application/json",
      "webhook-id": id,
      "webhook-timestamp": String(timestamp),
      "webhook-signature": await signatureHeader(
        [secret],
        id,
        timestamp,
        new TextEncoder().encode(body),
      ),
    },
    body,
  });
}

const bindings = { SWITCHBOARD_SECRET: SECRET };

describe("switchboardWebhook", () => {
  it("puts the verified payload on the context and leaves the body readable", async () => {
    const { hono, calls } = app();
    const res = await hono.request(await delivery('{"orderId":42}'), undefined, bindings);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ payload: { orderId: 42 }, text: '{"orderId":42}' });
    expect(calls).toHaveLength(1);
  });

  it.each([
    ["a wrong secret", () => delivery("{}", generateSecret()), "no_matching_signature"],
    [
      "a stale timestamp",
      () => delivery("{}", SECRET, Math.floor(Date.now() / 1000) - 600),
      "timestamp_too_old",
    ],
    [
      "no signature",
      async () =>
        new Request("https://subscriber.test/hooks/orders", { method: "POST", body: "{}" }),
      "missing_header",
    ],
  ])("answers 401 to %s without calling the handler", async (_label, make, reason) => {
    const { hono, calls } = app();
    const res = await hono.request(await make(), undefined, bindings);
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ error: "invalid_webhook", reason });
    expect(calls).toEqual([]);
  });

  it("takes a fixed secret or a rotation pair", async () => {
    const next = generateSecret();
    const hono = new Hono();
    hono.post("/hook", switchboardWebhook({ secret: [next, SECRET] }), (c) =>
      c.json(c.get("webhookPayload")),
    );
    const request = await delivery('"hello"');
    const res = await hono.request("/hook", {
      method: "POST",
      headers: request.headers,
      body: '"hello"',
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toBe("hello");
  });
});
