/**
 * The harness for the workerd API tests: one request helper, JSON and problem assertions checked
 * against the API's own zod schemas, and seeds for a topic and a subscriber.
 *
 * @example
 * const topic = await seedTopic();
 * const res = await call("GET", `/v1/topics/${topic.name}`);
 * const body = await expectJson(res, 200, Topic);
 */
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { afterEach, beforeEach, expect, vi } from "vitest";
import type { z } from "zod";
import { ProblemSchema } from "../src/api/schemas/common";
import {
  Subscriber,
  type SubscriberInput,
  SubscriberList,
  SubscriberWithSecret,
} from "../src/api/schemas/subscribers";
import { Topic, TopicList } from "../src/api/schemas/topics";
import worker from "../src/index";

/**
 * The Worker's own tokens. vitest.config.ts sets `test-admin-token` and `test-publish-token`, but
 * wrangler prefers a `.dev.vars` file when the checkout has one, so read what the Worker got.
 */
export const tokens = { admin: env.ADMIN_TOKEN, publish: env.PUBLISH_TOKEN };

/** The admin token, the publish token, no `Authorization` header, or this exact header value. */
export type Caller = "admin" | "publisher" | "anonymous" | { authorization: string };

/** Configuration a test replaces for one request; `undefined` removes it. */
export type EnvOverrides = { [K in keyof Env]?: Env[K] | undefined };

export interface CallOptions {
  /** Defaults to the admin. */
  as?: Caller;
  /** Serialised and sent with `content-type: application/json`. */
  json?: unknown;
  /** Sent as is, with `contentType` if given. */
  body?: BodyInit;
  contentType?: string;
  headers?: Record<string, string>;
  /** Runs the request against the Worker with these variables or bindings replaced. */
  env?: EnvOverrides;
}

/** One request to the Worker, through its default export. */
export async function call(
  method: string,
  path: string,
  options: CallOptions = {},
): Promise<Response> {
  const headers = new Headers(options.headers);
  const authorization = authorizationOf(options.as ?? "admin");
  if (authorization !== undefined) headers.set("authorization", authorization);
  let body = options.body;
  if (options.json !== undefined) {
    body = JSON.stringify(options.json);
    headers.set("content-type", "application/json");
  }
  if (options.contentType !== undefined) headers.set("content-type", options.contentType);
  const request = new Request(`https://switchboard.test${path}`, { method, headers, body });
  if (options.env === undefined) return exports.default.fetch(request);

  // Object.assign keeps the Env type, which declares every secret present: a missing one is
  // exactly what some overrides simulate.
  const overridden = Object.assign({}, env, options.env);
  const ctx = createExecutionContext();
  const response = await worker.fetch(request, overridden, ctx);
  await waitOnExecutionContext(ctx);
  return response;
}

function authorizationOf(caller: Caller): string | undefined {
  if (caller === "admin") return `Bearer ${tokens.admin}`;
  if (caller === "publisher") return `Bearer ${tokens.publish}`;
  if (caller === "anonymous") return undefined;
  return caller.authorization;
}

/** Asserts the status and a JSON body, and returns the body parsed with `schema`. */
export async function expectJson<S extends z.ZodType>(
  res: Response,
  status: number,
  schema: S,
): Promise<z.infer<S>> {
  const text = await res.text();
  expect(res.status, text).toBe(status);
  expect(res.headers.get("content-type")).toMatch(/^application\/json\b/);
  return schema.parse(JSON.parse(text));
}

/** The raw JSON body, for assertions on keys a zod object would strip. */
export async function rawJson(res: Response): Promise<Record<string, unknown>> {
  const value: unknown = await res.json();
  expect(value).toBeTypeOf("object");
  return Object.fromEntries(Object.entries(value ?? {}));
}

export type Problem = z.infer<typeof ProblemSchema>;

const STACK_TRACE = /\n\s*at |\bat \S+ \(|\.(?:ts|js|mjs):\d+|node_modules/;

/**
 * Asserts a problem+json answer with this status and code: the body matches the problem schema,
 * carries the request id (the same as `x-request-id`), names the field paths of a validation
 * failure, and holds no stack trace.
 */
export async function expectProblem(res: Response, status: number, code: string): Promise<Problem> {
  const text = await res.text();
  expect(res.status, text).toBe(status);
  expect(res.headers.get("content-type")).toMatch(/^application\/problem\+json\b/);
  expect(text).not.toMatch(STACK_TRACE);
  const problem = ProblemSchema.parse(JSON.parse(text));
  expect(problem.code).toBe(code);
  expect(problem.status).toBe(status);
  expect(problem.type).toMatch(new RegExp(`/${code}$`));
  expect(problem.requestId).not.toBe("");
  expect(res.headers.get("x-request-id")).toBe(problem.requestId);
  if (code === "validation_failed") expect(problem.errors?.length).toBeGreaterThan(0);
  return problem;
}

let sequence = 0;

/** A topic name no other test in the file uses. */
export function uniqueName(prefix = "topic"): string {
  sequence += 1;
  return `${prefix}-${sequence}-${crypto.randomUUID().slice(0, 8)}`;
}

/** Creates a topic (a fresh name unless given) and returns it as the API answered. */
export async function seedTopic(input: { name?: string; description?: string } = {}) {
  const res = await call("POST", "/v1/topics", {
    json: { name: input.name ?? uniqueName(), description: input.description },
  });
  return expectJson(res, 201, Topic);
}

/** A public https URL the URL policy accepts. */
export const SUBSCRIBER_URL = "https://hooks.example.com/switchboard";

/** Creates a subscriber on `topic` (seeding a topic when omitted), with its secret. */
export async function seedSubscriber(
  topic?: string,
  input: Partial<SubscriberInput> = {},
): Promise<SubscriberWithSecret> {
  const topicName = topic ?? (await seedTopic()).name;
  const res = await call("POST", `/v1/topics/${topicName}/subscribers`, {
    json: { url: SUBSCRIBER_URL, ...input },
  });
  return expectJson(res, 201, SubscriberWithSecret);
}

// Far more pages than any test file creates; a cursor that keeps repeating a page stops here.
const MAX_PAGES = 500;

/** A subscriber as `GET /v1/subscribers/{id}` shows it; fails the test on anything but 200. */
export async function readSubscriber(id: string): Promise<Subscriber> {
  return expectJson(await call("GET", `/v1/subscribers/${id}`), 200, Subscriber);
}

/** Every item of a listing at `path` (which has a query already), following `nextCursor`. */
async function followPages<Page extends { nextCursor: string | null }, Item>(
  path: string,
  schema: z.ZodType<Page>,
  itemsOf: (page: Page) => Item[],
): Promise<Item[]> {
  const items: Item[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    pages += 1;
    expect(pages, "the cursor never reached null").toBeLessThan(MAX_PAGES);
    const query: string = cursor === null ? "" : `&cursor=${encodeURIComponent(cursor)}`;
    const page: Page = await expectJson(await call("GET", `${path}${query}`), 200, schema);
    items.push(...itemsOf(page));
    cursor = page.nextCursor;
  } while (cursor !== null);
  return items;
}

/** Every topic, following `nextCursor` page by page. */
export function listAllTopics(limit = 200): Promise<Topic[]> {
  return followPages(`/v1/topics?limit=${limit}`, TopicList, (page) => page.topics);
}

/** Every subscriber of a topic, following `nextCursor` page by page. */
export function listAllSubscribers(topic: string, limit = 200) {
  return followPages(
    `/v1/topics/${topic}/subscribers?limit=${limit}`,
    SubscriberList,
    (page) => page.subscribers,
  );
}

/**
 * For a file whose tests provoke failures: the broker logs each one, and the log is not under test,
 * so `console.error` is silenced for each test and restored after it, with every other spy.
 */
export function silenceErrorLog(): void {
  beforeEach(() => {
    vi.spyOn(console, "error").mockImplementation(() => undefined);
  });
  afterEach(() => {
    vi.restoreAllMocks();
  });
}
