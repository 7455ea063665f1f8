import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { uniqueName } from "../harness";
import { adminClient, expectSwitchboardError, publisherClient } from "./support";

beforeEach(() => {
  vi.spyOn(globalThis, "fetch").mockImplementation(async () => new Response(null, { status: 204 }));
});

afterEach(() => {
  vi.restoreAllMocks();
});

describe("sb.messages", () => {
  it("shows a published message to the publisher", async () => {
    const name = (await adminClient().topics.create({ name: uniqueName() })).name;
    const sb = publisherClient();
    const { id } = await sb.publish(name, { body: { orderId: 42 } });
    const status = await sb.messages.get(id);
    expect(status).toMatchObject({ id, topic: name, deliveries: [] });
    expect(["queued", "dispatched"]).toContain(status.state);
    expect(Date.parse(status.publishedAt)).not.toBeNaN();
  });

  it("answers not_found for an unknown id", async () => {
    await expectSwitchboardError(adminClient().messages.get("msg_unknown"), {
      status: 404,
      code: "not_found",
    });
  });
});

describe("sb.filters", () => {
  it.each([
    ['body.category == "food"', true],
    ['body.category == "toys"', false],
    ['headers.mode == "quiet" and query.page == "2"', true],
  ])("tests %s", async (filter, matches) => {
    const result = await adminClient().filters.test({
      filter,
      message: { body: { category: "food" }, headers: { mode: "quiet" }, query: { page: "2" } },
    });
    expect(result).toEqual({ matches });
  });

  it("maps a filter that does not compile to invalid_filter, with the position", async () => {
    const error = await expectSwitchboardError(
      adminClient().filters.test({ filter: "body.a == ", message: { body: {} } }),
      { status: 400, code: "invalid_filter" },
    );
    expect(error.detail).toMatch(/\d/);
  });
});
