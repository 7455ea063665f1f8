/**
 * Both lists, in a file of their own: storage is isolated per test file, so this one starts empty
 * and every count below is exact.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { SubscriberList } from "../../src/api/schemas/subscribers";
import { TopicList } from "../../src/api/schemas/topics";
import { call, expectJson, expectProblem, seedSubscriber, seedTopic } from "../harness";

const TOPIC_COUNT = 51;
const SUBSCRIBER_COUNT = 5;

let topicNames: string[] = [];
let listedTopic = "";
let subscriberIds: string[] = [];

beforeAll(async () => {
  topicNames = [];
  for (let i = 0; i < TOPIC_COUNT; i++) {
    // Names out of insertion order, so that a list in either order is tested.
    const name = `page-${(i * 37) % TOPIC_COUNT}-${i}`;
    topicNames.push((await seedTopic({ name })).name);
  }
  listedTopic = topicNames[0] ?? "";
  const neighbour = topicNames[1] ?? "";
  subscriberIds = [];
  for (let i = 0; i < SUBSCRIBER_COUNT; i++) {
    subscriberIds.push((await seedSubscriber(listedTopic)).id);
    await seedSubscriber(neighbour);
  }
});

type Page<T> = { items: T[]; nextCursor: string | null };

/** Follows `nextCursor` from the first page to the last, keeping each page. */
async function walk<T>(fetchPage: (cursor: string | null) => Promise<Page<T>>): Promise<Page<T>[]> {
  const pages: Page<T>[] = [];
  let cursor: string | null = null;
  do {
    const page: Page<T> = await fetchPage(cursor);
    pages.push(page);
    cursor = page.nextCursor;
    expect(pages.length).toBeLessThanOrEqual(TOPIC_COUNT + 1);
  } while (cursor !== null);
  return pages;
}

function withCursor(path: string, cursor: string | null): string {
  if (cursor === null) return path;
  const separator = path.includes("?") ? "&" : "?";
  return `${path}${separator}cursor=${encodeURIComponent(cursor)}`;
}

async function topicPage(path: string, cursor: string | null) {
  const page = await expectJson(await call("GET", withCursor(path, cursor)), 200, TopicList);
  return { items: page.topics.map((t) => t.name), nextCursor: page.nextCursor };
}

async function subscriberPage(path: string, cursor: string | null) {
  const page = await expectJson(await call("GET", withCursor(path, cursor)), 200, SubscriberList);
  return { items: page.subscribers.map((s) => s.id), nextCursor: page.nextCursor };
}

describe("GET /v1/topics", () => {
  it("returns 50 topics by default, then the rest with nextCursor null", async () => {
    const pages = await walk((cursor) => topicPage("/v1/topics", cursor));
    expect(pages.map((p) => p.items.length)).toEqual([50, 1]);
    expect(pages[0]?.nextCursor).toEqual(expect.any(String));
    expect(pages.flatMap((p) => p.items).sort()).toEqual([...topicNames].sort());
  });

  it.each([1, 2, 7, 50, TOPIC_COUNT - 1, TOPIC_COUNT, 200])(
    "lists every topic exactly once with limit=%i",
    async (limit) => {
      const pages = await walk((cursor) => topicPage(`/v1/topics?limit=${limit}`, cursor));
      for (const page of pages.slice(0, -1)) expect(page.items).toHaveLength(limit);
      expect(pages.at(-1)?.items.length).toBeGreaterThan(0);
      expect(pages.at(-1)?.items.length).toBeLessThanOrEqual(limit);
      expect(pages).toHaveLength(Math.ceil(TOPIC_COUNT / limit));
      expect(pages.flatMap((p) => p.items).sort()).toEqual([...topicNames].sort());
    },
  );
});

describe("list parameters", () => {
  it("takes an empty limit and an empty cursor as absent", async () => {
    const page = await expectJson(await call("GET", "/v1/topics?limit=&cursor="), 200, TopicList);
    expect(page.topics).toHaveLength(50);
  });

  it.each(["limit=0", "limit=201", "limit=ten", "limit=1.5", "cursor=x", "page=2"])(
    "refuses ?%s with validation_failed",
    async (query) => {
      await expectProblem(await call("GET", `/v1/topics?${query}`), 400, "validation_failed");
    },
  );
});

describe("GET /v1/topics/{topic}/subscribers", () => {
  it("lists only that topic's subscribers, with nextCursor null", async () => {
    const [page, ...rest] = await walk((cursor) =>
      subscriberPage(`/v1/topics/${listedTopic}/subscribers`, cursor),
    );
    expect(rest).toEqual([]);
    expect(page?.items.sort()).toEqual([...subscriberIds].sort());
  });

  it.each([1, 2, 3, SUBSCRIBER_COUNT, 200])(
    "lists every subscriber exactly once with limit=%i",
    async (limit) => {
      const path = `/v1/topics/${listedTopic}/subscribers?limit=${limit}`;
      const pages = await walk((cursor) => subscriberPage(path, cursor));
      for (const page of pages.slice(0, -1)) expect(page.items).toHaveLength(limit);
      expect(pages).toHaveLength(Math.ceil(SUBSCRIBER_COUNT / limit));
      expect(pages.flatMap((p) => p.items).sort()).toEqual([...subscriberIds].sort());
    },
  );

  it("shows no secret in the list", async () => {
    const res = await call("GET", `/v1/topics/${listedTopic}/subscribers`);
    const body = (await res.json()) as { subscribers: object[] };
    for (const subscriber of body.subscribers) expect(subscriber).not.toHaveProperty("secret");
  });

  it("answers 404 for an unknown topic", async () => {
    const res = await call("GET", "/v1/topics/never-created/subscribers");
    await expectProblem(res, 404, "not_found");
  });

  it("keeps a cursor valid after the item it points at is deleted", async () => {
    const topic = await seedTopic();
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) ids.push((await seedSubscriber(topic.name)).id);
    const path = `/v1/topics/${topic.name}/subscribers?limit=2`;
    const first = await subscriberPage(path, null);
    const deleted = first.items.at(-1) ?? "";
    expect((await call("DELETE", `/v1/subscribers/${deleted}`)).status).toBe(204);
    const second = await subscriberPage(path, first.nextCursor);
    expect(second.nextCursor).toBeNull();
    expect([...first.items, ...second.items].sort()).toEqual([...ids].sort());
  });
});

const LIST_PATHS = ["/v1/topics", "/v1/topics/{topic}/subscribers"];

describe.each(LIST_PATHS)("GET %s with a bad page query", (template) => {
  const path = () => template.replace("{topic}", listedTopic);

  it.each(["0", "201", "abc", "-1", "1.5", "1e3"])("refuses limit=%s", async (limit) => {
    const res = await call("GET", `${path()}?limit=${limit}`);
    const problem = await expectProblem(res, 400, "validation_failed");
    expect(problem.errors?.map((e) => e.path)).toContain("limit");
  });

  it.each(["!!!", "not a cursor", "%%%", "____", "\u00e9\u00e9"])(
    "refuses the cursor %s",
    async (cursor) => {
      const res = await call("GET", `${path()}?cursor=${encodeURIComponent(cursor)}`);
      const problem = await expectProblem(res, 400, "validation_failed");
      expect(problem.errors?.map((e) => e.path)).toContain("cursor");
    },
  );
});
