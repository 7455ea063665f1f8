/**
 * verifyWebhook against the reference Standard Webhooks library, which needs Node's Buffer and so
 * runs here rather than in workerd.
 */
import { randomBytes } from "node:crypto";
import { Webhook } from "standardwebhooks";
import { describe, expect, it } from "vitest";
import { verifyWebhook, WebhookVerificationError } from "../../src/sdk/webhook";

const secret = () => `whsec_${randomBytes(32).toString("base64")}`;

function headersFor(signer: string[], id: string, at: Date, body: string) {
  const signatures = signer.map((s) => new Webhook(s).sign(id, at, body));
  return {
    "webhook-id": id,
    "webhook-timestamp": String(Math.floor(at.getTime() / 1000)),
    "webhook-signature": signatures.join(" "),
  };
}

describe("verifyWebhook and the standardwebhooks package", () => {
  it("accepts what the package signs", async () => {
    const key = secret();
    const body = JSON.stringify({ hello: "world" });
    const headers = headersFor([key], "msg_1", new Date(), body);
    expect(await verifyWebhook({ secret: key, headers, body: Buffer.from(body) })).toEqual({
      hello: "world",
    });
  });

  it("accepts the package's signature in a two-signature rotation header", async () => {
    const [old, next] = [secret(), secret()];
    const headers = headersFor([next, old], "msg_2", new Date(), "{}");
    expect(await verifyWebhook({ secret: old, headers, body: "{}" })).toEqual({});
    expect(await verifyWebhook({ secret: next, headers, body: "{}" })).toEqual({});
  });

  it("agrees with the package on what to refuse", async () => {
    const key = secret();
    const body = '{"n":1}';
    const stale = headersFor([key], "msg_3", new Date(Date.now() - 10 * 60_000), body);
    const fresh = headersFor([key], "msg_3", new Date(), body);
    for (const [headers, payload, verifier] of [
      [stale, body, key],
      [fresh, '{"n":2}', key],
      [fresh, body, secret()],
    ] as const) {
      expect(() => new Webhook(verifier).verify(payload, headers)).toThrow();
      await expect(verifyWebhook({ secret: verifier, headers, body: payload })).rejects.toThrow(
        WebhookVerificationError,
      );
    }
  });

  it("signs the spec's example the way the package verifies", async () => {
    // The example of the Standard Webhooks specification, verified by both at its own time.
    const key = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const headers = {
      "webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
      "webhook-timestamp": "1614265330",
      "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
    };
    const body = '{"test": 2432232314}';
    const tolerance = Math.ceil(Date.now() / 1000) - 1614265330 + 60;
    expect(
      await verifyWebhook({ secret: key, headers, body, toleranceSeconds: tolerance }),
    ).toEqual({ test: 2432232314 });
  });
});
