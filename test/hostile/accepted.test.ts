/**
 * Hostile-looking input that is valid: prototype keys that are only data, filters that probe for
 * prototype properties or look like code, SQL in lookups, and Unicode oddities in free text. Each
 * is accepted, stored and delivered exactly as sent (or, for `__proto__` in a string map, dropped
 * before it is stored), and never reaches a prototype.
 */
import { env } from "cloudflare:workers";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { FilterTestResult } from "../../src/api/filters";
import { Replayed } from "../../src/api/schemas/dead-letters";
import { FanoutTaskSchema } from "../../src/queues/tasks";
import { call, expectJson, expectProblem, seedSubscriber, seedTopic } from "../harness";
import {
  answering,
  deliver,
  fanOut,
  publishAndFanOut,
  rowsOf,
  stubFetch,
} from "../pipeline/support";
import {
  expectNoPollution,
  hostileCall,
  queuedCalls,
  rawJson,
  rowCounts,
  snapshotTables,
} from "./support";

const HOOK = "https://hooks.example.com/hook";

beforeAll(() => {
  vi.spyOn(console, "error").mockImplementation(() => undefined);
});

afterAll(() => {
  vi.restoreAllMocks();
});

/** The response body parsed without a schema, so that own keys a zod object drops stay visible. */
async function ownJson(res: Response, status: number): Promise<Record<string, unknown>> {
  const text = await res.text();
  expect(res.status, text).toBe(status);
  return JSON.parse(text);
}

function ownKeys(value: unknown): string[] {
  return Object.keys(value ?? {}).sort();
}

describe("prototype keys that are only data", () => {
  it("keeps constructor and prototype in a subscriber's headers and query, and drops __proto__", async () => {
    const { name: topic } = await seedTopic();
    const { res } = await hostileCall(
      "POST",
      `/v1/topics/${topic}/subscribers`,
      rawJson(
        `{"url":"${HOOK}","headers":{"__proto__":{"polluted":1},"constructor":"c","prototype":"p"},` +
          `"query":{"__proto__":"q","constructor":["a","b"]}}`,
      ),
    );
    const created = await ownJson(res, 201);
    const read = await ownJson(await call("GET", `/v1/subscribers/${String(created.id)}`), 200);
    for (const view of [created, read]) {
      expect(ownKeys(view.headers)).toEqual(["constructor", "prototype"]);
      expect(view.headers).toMatchObject({ constructor: "c", prototype: "p" });
      expect(ownKeys(view.query)).toEqual(["constructor"]);
      expect(view.query).toMatchObject({ constructor: ["a", "b"] });
    }
    const [row] = (
      await env.DB.prepare("select headers, query from subscribers where id = ?")
        .bind(String(created.id))
        .all()
    ).results;
    expect(ownKeys(JSON.parse(String(row?.headers)))).toEqual(["constructor", "prototype"]);
    expect(ownKeys(JSON.parse(String(row?.query)))).toEqual(["constructor"]);
    expectNoPollution();
  });

  it("delivers a message whose body, headers, query and path params are full of prototype keys", async () => {
    const { name: topic } = await seedTopic();
    const subscriber = await seedSubscriber(topic, {
      url: "https://hooks.example.com/:constructor/{prototype}",
    });
    const body =
      '{"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}},"toString":"x"}';
    const { res, queues } = await hostileCall(
      "POST",
      `/v1/topics/${topic}/messages`,
      rawJson(
        `{"body":${body},"headers":{"constructor":"c","__proto__":"h"},` +
          `"query":{"prototype":"p","__proto__":"q"},` +
          `"pathParams":{"constructor":"c1","prototype":"p1","__proto__":"x"}}`,
      ),
    );
    expect(res.status, await res.text()).toBe(202);
    const { tasks } = await fanOut(queues.fanout.bodies());
    const fetch = answering(200);
    await deliver(tasks, fetch.fetch);

    const [request] = fetch.requests;
    expect(request?.url).toBe("https://hooks.example.com/c1/p1?prototype=p");
    expect(request?.body).toBe(body);
    expect(request?.headers.constructor).toBe("c");
    expect(Object.hasOwn(request?.headers ?? {}, "__proto__")).toBe(false);
    expect(tasks.map((task) => task.subscriberId)).toEqual([subscriber.id]);
    expectNoPollution();
  });

  it("keeps prototype keys of a raw publish's query and forwarded headers as own data", async () => {
    const { name: topic } = await seedTopic();
    await seedSubscriber(topic);
    const { res, queues } = await hostileCall(
      "POST",
      `/v1/topics/${topic}/messages/raw?constructor=y&prototype=z&__proto__=x`,
      { body: "hi", contentType: "text/plain", headers: { "forward-constructor": "c" } },
    );
    expect(res.status, await res.text()).toBe(202);
    const task = FanoutTaskSchema.parse(queues.fanout.bodies()[0]);
    expect(task.content?.headers).toEqual({ constructor: "c" });
    expect(task.content?.query).toMatchObject({ constructor: "y", prototype: "z" });

    const { tasks } = await fanOut([task]);
    const fetch = answering(200);
    await deliver(tasks, fetch.fetch);
    const url = new URL(fetch.requests[0]?.url ?? "");
    expect(url.searchParams.get("constructor")).toBe("y");
    expect(url.searchParams.get("prototype")).toBe("z");
    expect(fetch.requests[0]?.headers.constructor).toBe("c");
    expectNoPollution();
  });
});

describe("filters that probe for prototypes or look like code", () => {
  it.each<[label: string, filter: string, message: string, matches: boolean]>([
    ["body.constructor", "body.constructor == 1", '{"body":{}}', false],
    ["exists(body.constructor)", "exists(body.constructor)", '{"body":{}}', false],
    ["exists(body.__proto__)", "exists(body.__proto__)", '{"body":{}}', false],
    ["exists(body.toString)", "exists(body.toString)", '{"body":{}}', false],
    ["exists(body.hasOwnProperty)", "exists(body.hasOwnProperty)", '{"body":[]}', false],
    ["a number's constructor", "exists(body.a.constructor)", '{"body":{"a":1}}', false],
    ["a header's constructor", "exists(headers.constructor)", '{"headers":{"x-a":"1"}}', false],
    ["a polluted prototype", "exists(body.__proto__.polluted)", '{"body":{}}', false],
    [
      "an own __proto__ key, which is data",
      "body.__proto__.polluted == 1",
      '{"body":{"__proto__":{"polluted":1}}}',
      true,
    ],
    [
      "a template in a string literal",
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a template that must stay text
      'body.a == "${process.exit()}"',
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a template that must stay text
      '{"body":{"a":"${process.exit()}"}}',
      true,
    ],
    // A string literal is the whole filter, truthy as in filtrex; nothing runs.
    ["code inside a string literal", '"); process.exit(); ("', '{"body":{}}', true],
    ["NUL inside a string literal", 'body.a == "\u0000"', '{"body":{"a":"\\u0000"}}', true],
    [
      "an RTL override inside a string literal",
      'body.a == "\u202e"',
      '{"body":{"a":"\u202e"}}',
      true,
    ],
    [
      "a safe pattern against a long input",
      'body.a ~= "^a+$"',
      `{"body":{"a":"${"a".repeat(50_000)}!"}}`,
      false,
    ],
  ])("evaluates %s without side effects", async (_label, filter, message, matches) => {
    const before = await snapshotTables();
    const { res, queues } = await hostileCall(
      "POST",
      "/v1/filters/test",
      rawJson(`{"filter":${JSON.stringify(filter)},"message":${message}}`),
    );
    expect(await expectJson(res, 200, FilterTestResult)).toEqual({ matches });
    expect(queuedCalls(queues)).toEqual([]);
    expect(await snapshotTables()).toEqual(before);
    expectNoPollution();
  });
});

describe("SQL in lookups", () => {
  let topic = "";
  let deadLetterId = "";

  beforeAll(async () => {
    topic = (await seedTopic()).name;
    await seedSubscriber(topic, { retry: { maxAttempts: 1 } });
    const { tasks } = await publishAndFanOut(topic, { body: 1 });
    await deliver(tasks, answering(500).fetch);
    deadLetterId = String((await rowsOf("dead_letters", topic))[0]?.id);
  });

  it.each([
    "/v1/dead-letters?topic=%27%20OR%20%271%27%3D%271",
    "/v1/dead-letters?subscriberId=%25%27%20OR%201%3D1%20--",
    "/v1/dead-letters?topic=%25",
  ])("finds nothing for %s", async (path) => {
    const list = await ownJson(await call("GET", path), 200);
    expect(list).toEqual({ deadLetters: [], nextCursor: null });
  });

  it.each(["/v1/topics/%27%20OR%20%271%27%3D%271", "/v1/messages/msg_%25"])(
    "answers 404 for %s",
    async (path) => {
      await expectProblem(await call("GET", path), 404, "not_found");
    },
  );

  it.each([
    ["a quote that closes the string", { topic: "' OR 1=1 --" }],
    ["a LIKE wildcard", { subscriberId: "%" }],
    ["a NUL", { topic: "\u0000" }],
  ])("replays nothing for %s", async (_label, filter) => {
    const before = await snapshotTables();
    const { res, queues } = await hostileCall("POST", "/v1/dead-letters/replay", {
      json: filter,
    });
    expect(await expectJson(res, 202, Replayed)).toEqual({ replayed: 0 });
    expect(queuedCalls(queues)).toEqual([]);
    expect(rowCounts(await snapshotTables())).toEqual(rowCounts(before));
    expect((await rowsOf("dead_letters", topic)).map((row) => row.id)).toEqual([deadLetterId]);
  });

  it("stores a description that is SQL exactly as written", async () => {
    const description = "'); DROP TABLE topics; --";
    const { name } = await seedTopic({ description });
    const read = await ownJson(await call("GET", `/v1/topics/${name}`), 200);
    expect(read.description).toBe(description);
    expect((await call("GET", "/v1/topics")).status).toBe(200);
  });
});

describe("Unicode oddities in free text and bodies", () => {
  const ODD = "rtl\u202e zwsp\u200b nul\u0000 bom\ufeff emoji🦜 combining e\u0301 ls\u2028";

  it("stores and echoes a topic and a subscriber description exactly", async () => {
    const { name } = await seedTopic({ description: ODD });
    expect((await ownJson(await call("GET", `/v1/topics/${name}`), 200)).description).toBe(ODD);
    const subscriber = await seedSubscriber(name, { description: ODD });
    expect(subscriber.description).toBe(ODD);
    const read = await ownJson(await call("GET", `/v1/subscribers/${subscriber.id}`), 200);
    expect(read.description).toBe(ODD);
  });

  it("delivers a JSON body with a lone surrogate as an ASCII escape, and bodyText as U+FFFD", async () => {
    const { name: topic } = await seedTopic();
    await seedSubscriber(topic);
    const fetch = stubFetch(() => new Response(null, { status: 204 }));
    for (const envelope of ['{"body":{"a":"x\\ud800y"}}', '{"bodyText":"x\\ud800y"}']) {
      const { res, queues } = await hostileCall(
        "POST",
        `/v1/topics/${topic}/messages`,
        rawJson(envelope),
      );
      expect(res.status, await res.text()).toBe(202);
      const { tasks } = await fanOut(queues.fanout.bodies());
      await deliver(tasks, fetch.fetch);
    }
    const [json, text] = fetch.requests;
    expect(json?.body).toBe('{"a":"x\\ud800y"}');
    expect([...(text?.bytes ?? [])]).toEqual([0x78, 0xef, 0xbf, 0xbd, 0x79]);
  });
});

describe("JSON media types beyond application/json", () => {
  it.each([
    "application/merge-patch+json",
    "application/json;charset=utf-8",
    'Application/JSON; charset="utf-8"',
    "application/vnd.example.orders+json; version=2",
  ])("takes %s on a publish and a management route alike", async (contentType) => {
    const { name: topic } = await seedTopic();
    const published = await hostileCall("POST", `/v1/topics/${topic}/messages`, {
      body: '{"body":{"a":1}}',
      contentType,
    });
    expect(published.res.status, await published.res.text()).toBe(202);
    const task = FanoutTaskSchema.parse(published.queues.fanout.bodies()[0]);
    expect(task.content?.body).toMatchObject({ value: { a: 1 } });

    const created = await hostileCall("POST", `/v1/topics/${topic}/subscribers`, {
      body: JSON.stringify({ url: HOOK, description: "media type" }),
      contentType,
    });
    expect((await ownJson(created.res, 201)).description).toBe("media type");
  });
});
