import { describe, expect, it } from "vitest";
import { Topic } from "../../src/api/schemas/topics";
import { uniqueName } from "../harness";
import { adminClient, expectSwitchboardError, recording } from "./support";

describe("sb.topics", () => {
  it("creates, reads and deletes a topic", async () => {
    const sb = adminClient();
    const name = uniqueName("orders");
    const created = await sb.topics.create({ name, description: "New orders" });
    expect(Topic.parse(created)).toMatchObject({
      name,
      description: "New orders",
      recording: "full",
      subscriberCount: 0,
    });
    expect(await sb.topics.get(name)).toEqual(created);

    await expect(sb.topics.delete(name)).resolves.toBeUndefined();
    await expectSwitchboardError(sb.topics.get(name), { status: 404, code: "not_found" });
  });

  it("creates a topic that records only failures", async () => {
    const sb = adminClient();
    const name = uniqueName("clicks");
    const created = Topic.parse(await sb.topics.create({ name, recording: "failures" }));
    expect(created).toMatchObject({ name, description: null, recording: "failures" });
    expect(await sb.topics.get(name)).toEqual(created);
  });

  it("updates the settings given with PATCH, and leaves the others", async () => {
    const { fetch, sent } = recording();
    const sb = adminClient({ fetch });
    const name = uniqueName("updated");
    const created = await sb.topics.create({ name, description: "kept" });

    const updated = Topic.parse(await sb.topics.update(name, { recording: "failures" }));
    expect(updated).toEqual({ ...created, recording: "failures" });
    expect(sent.at(-1)).toMatchObject({ method: "PATCH", body: '{"recording":"failures"}' });
    expect(sent.at(-1)?.url.pathname).toBe(`/v1/topics/${name}`);

    const cleared = await sb.topics.update(name, { description: null });
    expect(cleared).toEqual({ ...updated, description: null });
    expect(await sb.topics.update(name, {})).toEqual(cleared);
    expect(await sb.topics.get(name)).toEqual(cleared);
  });

  it("answers not_found for an update of an unknown topic", async () => {
    const name = uniqueName("missing");
    const error = await expectSwitchboardError(
      adminClient().topics.update(name, { recording: "full" }),
      { status: 404, code: "not_found" },
    );
    expect(error.detail).toBe(`Topic ${name} does not exist`);
  });

  it("maps an unknown recording to validation_failed on create and update", async () => {
    const sb = adminClient();
    const name = uniqueName("bad-recording");
    const created = await sb.topics.create({ name });
    for (const call of [
      // @ts-expect-error: not a recording mode
      () => sb.topics.create({ name: uniqueName(), recording: "everything" }),
      // @ts-expect-error: not a recording mode
      () => sb.topics.update(name, { recording: "everything" }),
    ]) {
      const error = await expectSwitchboardError(call(), {
        status: 400,
        code: "validation_failed",
      });
      expect(error.errors.map((field) => field.path)).toEqual(["recording"]);
    }
    expect(await sb.topics.get(name)).toEqual(created);
  });

  it("answers conflict for a name that is taken", async () => {
    const sb = adminClient();
    const name = uniqueName();
    await sb.topics.create({ name });
    const error = await expectSwitchboardError(sb.topics.create({ name }), {
      status: 409,
      code: "conflict",
    });
    expect(error.detail).toContain(name);
  });

  it("maps a validation failure with its field errors", async () => {
    const error = await expectSwitchboardError(adminClient().topics.create({ name: "-bad name" }), {
      status: 400,
      code: "validation_failed",
    });
    expect(error.errors.map((field) => field.path)).toEqual(["name"]);
  });

  it("encodes a name as one path segment", async () => {
    const { fetch, sent } = recording();
    await expectSwitchboardError(adminClient({ fetch }).topics.get("a/b?c"), {
      status: 404,
      code: "not_found",
    });
    expect(sent[0]?.url.pathname).toBe("/v1/topics/a%2Fb%3Fc");
  });

  it("answers not_found for a name or id with a lone surrogate, which encodeURIComponent refuses", async () => {
    const { fetch, sent } = recording();
    const sb = adminClient({ fetch });
    const lone = "a\uD800b";
    for (const call of [
      () => sb.topics.get(lone),
      () => sb.subscribers.get(lone),
      () => sb.messages.get(lone),
      () => sb.deadLetters.delete(lone),
      () => sb.publish(lone, { body: 1 }),
    ]) {
      await expectSwitchboardError(call(), { status: 404, code: "not_found" });
    }
    expect(sent.map((request) => request.url.pathname.split("/")[3])).toEqual(
      Array(5).fill("a%EF%BF%BDb"),
    );
  });

  it("lists one page with its cursor, and every page with listAll", async () => {
    const prefix = uniqueName("paged");
    const names = ["c", "a", "e", "b", "d"].map((suffix) => `${prefix}-${suffix}`);
    const sb = adminClient();
    for (const name of names) await sb.topics.create({ name });

    const first = await sb.topics.list({ limit: 2 });
    expect(first.topics).toHaveLength(2);
    expect(first.nextCursor).toEqual(expect.any(String));
    const second = await sb.topics.list({ limit: 2, cursor: first.nextCursor ?? undefined });
    expect((second.topics[0]?.name ?? "") > (first.topics[1]?.name ?? "")).toBe(true);

    const { fetch, sent } = recording();
    const listed: string[] = [];
    for await (const topic of adminClient({ fetch }).topics.listAll({ limit: 2 })) {
      listed.push(topic.name);
    }
    expect(listed.filter((name) => name.startsWith(prefix))).toEqual([...names].sort());
    expect(listed).toEqual([...listed].sort());
    expect(sent.length).toBeGreaterThanOrEqual(3);
    expect(sent.every((request) => request.url.searchParams.get("limit") === "2")).toBe(true);
  });

  it("stops fetching pages when the loop stops", async () => {
    const sb = adminClient();
    for (let i = 0; i < 3; i += 1) await sb.topics.create({ name: uniqueName("early") });
    const { fetch, sent } = recording();
    for await (const _topic of adminClient({ fetch }).topics.listAll({ limit: 1 })) break;
    expect(sent).toHaveLength(1);
  });
});
