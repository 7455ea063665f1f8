import { describe, expect, it } from "vitest";
import { Topic } from "../../src/api/schemas/topics";
import {
  type CallOptions,
  call,
  expectJson,
  expectProblem,
  listAllTopics,
  seedSubscriber,
  seedTopic,
  uniqueName,
} from "../harness";

/** Over the 256 KB cap on management bodies. */
const TOO_LARGE = 2 * 1024 * 1024;

describe("POST /v1/topics", () => {
  it("creates a topic with no subscribers", async () => {
    const name = uniqueName("orders.created");
    const before = Date.now();
    const topic = await expectJson(
      await call("POST", "/v1/topics", { json: { name, description: "New orders" } }),
      201,
      Topic,
    );
    expect(topic).toEqual({
      name,
      description: "New orders",
      recording: "full",
      subscriberCount: 0,
      createdAt: expect.any(String),
    });
    expect(Date.parse(topic.createdAt)).toBeGreaterThanOrEqual(before - 1000);
    expect(topic.createdAt).toMatch(/Z$/);
  });

  it("defaults the description to null and the recording to full", async () => {
    const topic = await seedTopic();
    expect(topic.description).toBeNull();
    expect(topic.recording).toBe("full");
  });

  it.each(["full", "failures"] as const)(
    "stores recording %s, which reads and lists back",
    async (recording) => {
      const name = uniqueName("recorded");
      const created = await expectJson(
        await call("POST", "/v1/topics", { json: { name, recording } }),
        201,
        Topic,
      );
      expect(created).toMatchObject({ name, recording, description: null });
      expect(await readTopic(name)).toEqual(created);
      expect((await listAllTopics()).find((topic) => topic.name === name)).toEqual(created);
    },
  );

  it.each(["a", "A1", "orders.created", "orders_created-v2", "9lives", `x${"y".repeat(127)}`])(
    "accepts the name %s",
    async (base) => {
      // Storage is shared by the file, so the longest name cannot take a suffix; it is used once.
      const name = base.length === 128 ? base : `${base}-${uniqueName("n")}`;
      const topic = await seedTopic({ name });
      expect(topic.name).toBe(name);
    },
  );

  it("refuses a name that is taken with 409", async () => {
    const topic = await seedTopic({ description: "first" });
    const res = await call("POST", "/v1/topics", {
      json: { name: topic.name, description: "second" },
    });
    await expectProblem(res, 409, "conflict");
    const stored = await expectJson(await call("GET", `/v1/topics/${topic.name}`), 200, Topic);
    expect(stored.description).toBe("first");
  });

  it("accepts a JSON content type with parameters", async () => {
    const name = uniqueName();
    const res = await call("POST", "/v1/topics", {
      body: JSON.stringify({ name }),
      contentType: "application/json; charset=utf-8",
    });
    expect((await expectJson(res, 201, Topic)).name).toBe(name);
  });
});

describe("GET /v1/topics/{topic}", () => {
  it("reads a topic as it was created", async () => {
    const topic = await seedTopic({ description: "read me" });
    const read = await expectJson(await call("GET", `/v1/topics/${topic.name}`), 200, Topic);
    expect(read).toEqual(topic);
  });

  it.each(["no-such-topic", "a%20b", "%F0%9F%98%80", "x".repeat(300)])(
    "answers 404 for the unknown topic %s",
    async (name) => {
      await expectProblem(await call("GET", `/v1/topics/${name}`), 404, "not_found");
    },
  );

  it("counts the topic's subscribers", async () => {
    const topic = await seedTopic();
    const first = await seedSubscriber(topic.name);
    await seedSubscriber(topic.name, { active: false });
    const other = await seedTopic();
    await seedSubscriber(other.name);
    const counted = async () =>
      (await expectJson(await call("GET", `/v1/topics/${topic.name}`), 200, Topic)).subscriberCount;
    expect(await counted()).toBe(2);
    expect((await call("DELETE", `/v1/subscribers/${first.id}`)).status).toBe(204);
    expect(await counted()).toBe(1);
  });
});

/** PATCHes a topic by name with `options` (a JSON body, unless they say otherwise). */
function patchTopic(name: string, options: CallOptions): Promise<Response> {
  return call("PATCH", `/v1/topics/${name}`, options);
}

/** A topic as GET answers it; fails the test on anything but 200. */
async function readTopic(name: string): Promise<Topic> {
  return expectJson(await call("GET", `/v1/topics/${name}`), 200, Topic);
}

describe("PATCH /v1/topics/{topic}", () => {
  it("changes the recording, and only the recording", async () => {
    const topic = await seedTopic({ description: "kept" });
    await seedSubscriber(topic.name);
    const updated = await expectJson(
      await patchTopic(topic.name, { json: { recording: "failures" } }),
      200,
      Topic,
    );
    expect(updated).toEqual({ ...topic, recording: "failures", subscriberCount: 1 });
    expect(await readTopic(topic.name)).toEqual(updated);
    expect((await listAllTopics()).find((t) => t.name === topic.name)).toEqual(updated);

    const back = await patchTopic(topic.name, { json: { recording: "full" } });
    expect(await expectJson(back, 200, Topic)).toEqual({ ...updated, recording: "full" });
  });

  it("changes the description, and null clears it", async () => {
    const topic = await seedTopic({ description: "before" });
    const changed = await expectJson(
      await patchTopic(topic.name, { json: { description: "after" } }),
      200,
      Topic,
    );
    expect(changed).toEqual({ ...topic, description: "after" });
    const cleared = await expectJson(
      await patchTopic(topic.name, { json: { description: null } }),
      200,
      Topic,
    );
    expect(cleared).toEqual({ ...topic, description: null });
    expect(await readTopic(topic.name)).toEqual(cleared);
  });

  it("changes both at once", async () => {
    const topic = await seedTopic();
    const res = await patchTopic(topic.name, {
      json: { description: "both", recording: "failures" },
    });
    const updated = await expectJson(res, 200, Topic);
    expect(updated).toEqual({ ...topic, description: "both", recording: "failures" });
  });

  it("answers the topic unchanged for an empty object", async () => {
    const topic = await seedTopic({ description: "as it was" });
    const same = await expectJson(await patchTopic(topic.name, { json: {} }), 200, Topic);
    expect(same).toEqual(topic);
    expect(await readTopic(topic.name)).toEqual(topic);
  });

  it.each([{ recording: "failures" }, {}])(
    "answers 404 for an unknown topic, with %o",
    async (json) => {
      const name = uniqueName("never-created");
      const problem = await expectProblem(await patchTopic(name, { json }), 404, "not_found");
      expect(problem.detail).toBe(`Topic ${name} does not exist`);
      await expectProblem(await call("GET", `/v1/topics/${name}`), 404, "not_found");
    },
  );

  it.each<[label: string, options: CallOptions, status: number, code: string, path?: string]>([
    ["an unknown field", { json: { color: "red" } }, 400, "validation_failed", "color"],
    ["a new name", { json: { name: "renamed" } }, 400, "validation_failed", "name"],
    [
      "an unknown recording",
      { json: { recording: "some" } },
      400,
      "validation_failed",
      "recording",
    ],
    ["a null recording", { json: { recording: null } }, 400, "validation_failed", "recording"],
    [
      "a numeric description",
      { json: { description: 7 } },
      400,
      "validation_failed",
      "description",
    ],
    [
      "a 1,025-character description",
      { json: { description: "d".repeat(1025) } },
      400,
      "validation_failed",
      "description",
    ],
    ["a JSON array", { json: [{ recording: "full" }] }, 400, "validation_failed"],
    ["JSON null", { json: null }, 400, "validation_failed"],
    ["an empty body", { body: "", contentType: "application/json" }, 400, "invalid_json"],
    ["no body at all", {}, 415, "unsupported_media_type"],
    [
      "malformed JSON",
      { body: '{"recording": "failures"', contentType: "application/json" },
      400,
      "invalid_json",
    ],
    [
      "text/plain",
      { body: '{"recording":"failures"}', contentType: "text/plain" },
      415,
      "unsupported_media_type",
    ],
    [
      "a form",
      { body: "recording=failures", contentType: "application/x-www-form-urlencoded" },
      415,
      "unsupported_media_type",
    ],
    [
      "a body over the size limit",
      { json: { description: "x".repeat(TOO_LARGE) } },
      413,
      "payload_too_large",
    ],
    ["the publish token", { as: "publisher", json: { recording: "failures" } }, 403, "forbidden"],
    ["no token", { as: "anonymous", json: { recording: "failures" } }, 401, "unauthorized"],
  ])("refuses %s and changes nothing", async (_label, options, status, code, path) => {
    const topic = await seedTopic({ description: "untouched" });
    const problem = await expectProblem(await patchTopic(topic.name, options), status, code);
    if (path !== undefined) expect(problem.errors?.map((e) => e.path)).toContain(path);
    expect(await readTopic(topic.name)).toEqual(topic);
  });
});

describe("DELETE /v1/topics/{topic}", () => {
  it("deletes the topic, then answers 404", async () => {
    const topic = await seedTopic();
    const res = await call("DELETE", `/v1/topics/${topic.name}`);
    expect(res.status).toBe(204);
    expect(await res.text()).toBe("");
    await expectProblem(await call("GET", `/v1/topics/${topic.name}`), 404, "not_found");
    await expectProblem(await call("DELETE", `/v1/topics/${topic.name}`), 404, "not_found");
    expect((await listAllTopics()).map((t) => t.name)).not.toContain(topic.name);
  });

  it("deletes the topic's subscribers and no one else's", async () => {
    const topic = await seedTopic();
    const doomed = [await seedSubscriber(topic.name), await seedSubscriber(topic.name)];
    const survivor = await seedSubscriber();
    expect((await call("DELETE", `/v1/topics/${topic.name}`)).status).toBe(204);
    for (const subscriber of doomed) {
      await expectProblem(await call("GET", `/v1/subscribers/${subscriber.id}`), 404, "not_found");
    }
    expect((await call("GET", `/v1/subscribers/${survivor.id}`)).status).toBe(200);
  });

  it("lets the name be used again, without the old subscribers or settings", async () => {
    const topic = await seedTopic({ description: "old" });
    await patchTopic(topic.name, { json: { recording: "failures" } });
    await seedSubscriber(topic.name);
    expect((await call("DELETE", `/v1/topics/${topic.name}`)).status).toBe(204);
    const again = await seedTopic({ name: topic.name });
    expect(again).toMatchObject({
      name: topic.name,
      description: null,
      recording: "full",
      subscriberCount: 0,
    });
    const listed = await call("GET", `/v1/topics/${topic.name}/subscribers`);
    expect(((await listed.json()) as { subscribers: unknown[] }).subscribers).toEqual([]);
  });

  it("answers 404 for an unknown topic", async () => {
    await expectProblem(await call("DELETE", "/v1/topics/never-created"), 404, "not_found");
  });
});

/** Bodies POST /v1/topics must refuse; `name` is the topic name the body would create, if any. */
const BAD_TOPIC_BODIES: [label: string, options: CallOptions, status: number, code: string][] = [
  [
    "malformed JSON",
    { body: '{"name": "bad-json"', contentType: "application/json" },
    400,
    "invalid_json",
  ],
  [
    "JSON with single quotes",
    { body: "{'name': 'bad-quotes'}", contentType: "application/json" },
    400,
    "invalid_json",
  ],
  [
    "JSON followed by garbage",
    { body: '{"name": "trailing-garbage"} x', contentType: "application/json" },
    400,
    "invalid_json",
  ],
  ["an empty body", { body: "", contentType: "application/json" }, 400, "invalid_json"],
  ["a blank body", { body: "  \n", contentType: "application/json" }, 400, "invalid_json"],
  [
    "text/plain",
    { body: '{"name":"as-text"}', contentType: "text/plain" },
    415,
    "unsupported_media_type",
  ],
  [
    "a form",
    { body: "name=as-form", contentType: "application/x-www-form-urlencoded" },
    415,
    "unsupported_media_type",
  ],
  [
    "multipart",
    { body: "--b\r\n\r\nname\r\n--b--", contentType: "multipart/form-data; boundary=b" },
    415,
    "unsupported_media_type",
  ],
  ["JSON null", { json: null }, 400, "validation_failed"],
  ["a JSON array", { json: [{ name: "in-array" }] }, 400, "validation_failed"],
  ["a JSON string", { json: "as-string" }, 400, "validation_failed"],
  ["no name", { json: { description: "nameless" } }, 400, "validation_failed"],
  ["a numeric name", { json: { name: 42 } }, 400, "validation_failed"],
  ["a null name", { json: { name: null } }, 400, "validation_failed"],
  ["an unknown field", { json: { name: "with-extra", color: "red" } }, 400, "validation_failed"],
  [
    "a numeric description",
    { json: { name: "numeric-description", description: 7 } },
    400,
    "validation_failed",
  ],
  [
    "a 100,000-character description",
    { json: { name: "long-description", description: "d".repeat(100_000) } },
    400,
    "validation_failed",
  ],
  [
    "an unknown recording",
    { json: { name: "unknown-recording", recording: "some" } },
    400,
    "validation_failed",
  ],
  [
    "a recording in capitals",
    { json: { name: "capital-recording", recording: "FULL" } },
    400,
    "validation_failed",
  ],
  [
    "an empty recording",
    { json: { name: "empty-recording", recording: "" } },
    400,
    "validation_failed",
  ],
  [
    "a null recording",
    { json: { name: "null-recording", recording: null } },
    400,
    "validation_failed",
  ],
  [
    "a boolean recording",
    { json: { name: "boolean-recording", recording: true } },
    400,
    "validation_failed",
  ],
  ["an empty name", { json: { name: "" } }, 400, "validation_failed"],
  ["a name with a leading dot", { json: { name: ".hidden" } }, 400, "validation_failed"],
  ["a name with a leading dash", { json: { name: "-dash" } }, 400, "validation_failed"],
  ["a name with a leading underscore", { json: { name: "_under" } }, 400, "validation_failed"],
  ["a name with a space", { json: { name: "two words" } }, 400, "validation_failed"],
  ["a name of 129 characters", { json: { name: `x${"y".repeat(128)}` } }, 400, "validation_failed"],
  ["a unicode name", { json: { name: "café" } }, 400, "validation_failed"],
  ["a path traversal name", { json: { name: "../x" } }, 400, "validation_failed"],
  ["a name with a slash", { json: { name: "a/b" } }, 400, "validation_failed"],
  ["a name with a trailing newline", { json: { name: "trailing\n" } }, 400, "validation_failed"],
  [
    "a body over the size limit",
    { json: { name: "too-large", description: "x".repeat(TOO_LARGE) } },
    413,
    "payload_too_large",
  ],
];

describe("POST /v1/topics with bad input", () => {
  it.each(BAD_TOPIC_BODIES)(
    "refuses %s and stores nothing",
    async (_label, options, status, code) => {
      const before = await listAllTopics();
      const problem = await expectProblem(await call("POST", "/v1/topics", options), status, code);
      if (code === "validation_failed") {
        for (const error of problem.errors ?? []) expect(error.message).not.toBe("");
      }
      expect(await listAllTopics()).toEqual(before);
    },
  );

  it.each([
    [{ name: 42 }, "name"],
    [{ name: "fine", color: "red" }, "color"],
    [{ name: "fine", description: 7 }, "description"],
    [{}, "name"],
    [{ name: "fine", recording: "none" }, "recording"],
    [{ name: "fine", recording: null }, "recording"],
  ])("names the field path of %o", async (json, path) => {
    const problem = await expectProblem(
      await call("POST", "/v1/topics", { json }),
      400,
      "validation_failed",
    );
    expect(problem.errors?.map((e) => e.path)).toContain(path);
  });
});
