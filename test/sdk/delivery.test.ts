/**
 * The whole path through the SDK: publish with the client, let the Worker's own queues fan the
 * message out and deliver it, verify the delivery as a subscriber would, and see the delivery's
 * state with `messages.get`.
 */
import { afterEach, expect, it, vi } from "vitest";
import { verifyWebhook } from "../../src/sdk";
import { SUBSCRIBER_URL, uniqueName } from "../harness";
import { adminClient, publisherClient } from "./support";

afterEach(() => {
  vi.restoreAllMocks();
});

it("delivers a published message that the subscriber verifies with its secret", async () => {
  // Read while the consumer's request is live: its body belongs to that invocation.
  const received: { url: string; headers: Headers; body: string }[] = [];
  vi.spyOn(globalThis, "fetch").mockImplementation(async (input, init) => {
    const request = new Request(input, init);
    received.push({ url: request.url, headers: request.headers, body: await request.text() });
    return new Response(null, { status: 204 });
  });
  const admin = adminClient();
  const topic = (await admin.topics.create({ name: uniqueName("e2e") })).name;
  const subscriber = await admin.subscribers.create(topic, { url: `${SUBSCRIBER_URL}/:orderId` });

  const { id } = await publisherClient().publish(topic, {
    body: { orderId: 42 },
    pathParams: { orderId: "42" },
  });

  await vi.waitFor(
    async () => {
      const status = await admin.messages.get(id);
      expect(status.deliveries).toMatchObject([
        { subscriberId: subscriber.id, state: "delivered" },
      ]);
    },
    { timeout: 15_000, interval: 200 },
  );
  const [request] = received;
  expect(request?.url).toBe(`${SUBSCRIBER_URL}/42`);
  const payload = await verifyWebhook({
    secret: subscriber.secret,
    headers: request?.headers ?? new Headers(),
    body: request?.body ?? "",
  });
  expect(payload).toEqual({ orderId: 42 });
  expect(request?.headers.get("webhook-id")).toBe(id);
}, 30_000);
