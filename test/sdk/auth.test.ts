/** How the broker's refusals to the caller reach it: auth, roles and missing configuration. */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { uniqueName } from "../harness";
import {
  adminClient,
  expectSwitchboardError,
  publisherClient,
  recording,
  workerFetchWith,
} from "./support";

describe("errors about the caller", () => {
  it("maps a wrong token to unauthorized", async () => {
    await expectSwitchboardError(adminClient({ token: "wrong" }).topics.list(), {
      status: 401,
      code: "unauthorized",
    });
  });

  it("maps the publish token on a management call to forbidden", async () => {
    const error = await expectSwitchboardError(
      publisherClient().topics.create({ name: uniqueName() }),
      { status: 403, code: "forbidden" },
    );
    expect(error.errors).toEqual([]);
  });

  it("maps a missing secret to not_configured, and does not retry it", async () => {
    const { fetch, sent } = recording(workerFetchWith(() => ({ ADMIN_TOKEN: undefined })));
    await expectSwitchboardError(adminClient({ fetch }).topics.list(), {
      status: 503,
      code: "not_configured",
    });
    expect(sent).toHaveLength(1);
  });

  it("sends the token as a bearer and asks for JSON", async () => {
    const { fetch, sent } = recording();
    await adminClient({ fetch }).topics.list({ limit: 1 });
    expect(sent[0]?.headers.get("authorization")).toBe(`Bearer ${env.ADMIN_TOKEN}`);
    expect(sent[0]?.headers.get("accept")).toContain("application/json");
  });
});
