/**
 * What the subscriber endpoints refuse. Every row also checks that nothing was stored: no new
 * subscriber after a refused create, an unchanged subscriber after a refused PATCH.
 */
import { describe, expect, it } from "vitest";
import { SubscriberWithSecret } from "../../src/api/schemas/subscribers";
import { Topic } from "../../src/api/schemas/topics";
import {
  type CallOptions,
  call,
  expectJson,
  expectProblem,
  listAllSubscribers,
  readSubscriber,
  SUBSCRIBER_URL,
  seedSubscriber,
  seedTopic,
} from "../harness";

// wrangler.toml sets "false", but a local .dev.vars may turn it on; these rows test the policy
// for public deployments, so they say which one they mean.
const PUBLIC_ONLY = { ALLOW_PRIVATE_URLS: "false" };
const PRIVATE_ALLOWED = { ALLOW_PRIVATE_URLS: "true" };

const TOO_LARGE = 2 * 1024 * 1024;
const OK = { url: SUBSCRIBER_URL };

type Row = [label: string, options: CallOptions, status: number, code: string, path?: string];

const malformed = (body: string, contentType = "application/json"): CallOptions => ({
  body,
  contentType,
});

/** Bodies both create and PATCH refuse the same way. */
const BAD_BODIES: Row[] = [
  ["malformed JSON", malformed('{"url": "https://hooks.example.com/x"'), 400, "invalid_json"],
  ["an empty body", malformed(""), 400, "invalid_json"],
  ["text/plain", malformed(JSON.stringify(OK), "text/plain"), 415, "unsupported_media_type"],
  [
    "a form",
    malformed(`url=${SUBSCRIBER_URL}`, "application/x-www-form-urlencoded"),
    415,
    "unsupported_media_type",
  ],
  ["a JSON array", { json: [OK] }, 400, "validation_failed"],
  ["JSON null", { json: null }, 400, "validation_failed"],
  [
    "an unknown field",
    { json: { ...OK, callback: "https://x.example.com" } },
    400,
    "validation_failed",
    "callback",
  ],
  ["a numeric url", { json: { url: 42 } }, 400, "validation_failed", "url"],
  ["a null url", { json: { url: null } }, 400, "validation_failed", "url"],
  [
    "a 10,000-character url",
    { json: { url: `https://example.com/${"a".repeat(10_000)}` } },
    400,
    "validation_failed",
    "url",
  ],
  ["a numeric filter", { json: { ...OK, filter: 42 } }, 400, "validation_failed", "filter"],
  ["method HEAD", { json: { ...OK, method: "HEAD" } }, 400, "validation_failed", "method"],
  ["method CONNECT", { json: { ...OK, method: "CONNECT" } }, 400, "validation_failed", "method"],
  ["a null method", { json: { ...OK, method: null } }, 400, "validation_failed", "method"],
  [
    "headers as an array",
    { json: { ...OK, headers: ["x-a: 1"] } },
    400,
    "validation_failed",
    "headers",
  ],
  [
    "a numeric header value",
    { json: { ...OK, headers: { "x-a": 1 } } },
    400,
    "validation_failed",
    "headers.x-a",
  ],
  [
    "CRLF in a header value",
    { json: { ...OK, headers: { "x-a": "a\r\nx-injected: 1" } } },
    400,
    "validation_failed",
    "headers.x-a",
  ],
  [
    "LF in a header value",
    { json: { ...OK, headers: { "x-a": "a\nb" } } },
    400,
    "validation_failed",
    "headers.x-a",
  ],
  [
    "NUL in a header value",
    { json: { ...OK, headers: { "x-a": "a\u0000b" } } },
    400,
    "validation_failed",
    "headers.x-a",
  ],
  [
    "a space in a header name",
    { json: { ...OK, headers: { "x a": "1" } } },
    400,
    "validation_failed",
    "headers.x a",
  ],
  [
    "a colon in a header name",
    { json: { ...OK, headers: { "x:a": "1" } } },
    400,
    "validation_failed",
    "headers.x:a",
  ],
  ["an empty header name", { json: { ...OK, headers: { "": "1" } } }, 400, "validation_failed"],
  [
    "a non-ASCII header name",
    { json: { ...OK, headers: { "x-é": "1" } } },
    400,
    "validation_failed",
    "headers.x-é",
  ],
  ...[
    "host",
    "content-length",
    "Content-Length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
    "proxy-authorization",
    "webhook-id",
    "Webhook-Signature",
    "switchboard-x",
    "Switchboard-Topic",
  ].map(
    (name): Row => [
      `the header ${name}`,
      { json: { ...OK, headers: { [name]: "1" } } },
      400,
      "validation_failed",
      `headers.${name}`,
    ],
  ),
  [
    "a numeric query value",
    { json: { ...OK, query: { a: 1 } } },
    400,
    "validation_failed",
    "query.a",
  ],
  [
    "a nested query value",
    { json: { ...OK, query: { a: { b: "c" } } } },
    400,
    "validation_failed",
    "query.a",
  ],
  ["timeoutMs 999", { json: { ...OK, timeoutMs: 999 } }, 400, "validation_failed", "timeoutMs"],
  ["timeoutMs 30001", { json: { ...OK, timeoutMs: 30001 } }, 400, "validation_failed", "timeoutMs"],
  [
    "a fractional timeoutMs",
    { json: { ...OK, timeoutMs: 1500.5 } },
    400,
    "validation_failed",
    "timeoutMs",
  ],
  [
    "timeoutMs as a string",
    { json: { ...OK, timeoutMs: "15000" } },
    400,
    "validation_failed",
    "timeoutMs",
  ],
  [
    "retry.maxAttempts 0",
    { json: { ...OK, retry: { maxAttempts: 0 } } },
    400,
    "validation_failed",
    "retry.maxAttempts",
  ],
  [
    "retry.maxAttempts 101",
    { json: { ...OK, retry: { maxAttempts: 101 } } },
    400,
    "validation_failed",
    "retry.maxAttempts",
  ],
  [
    "a fractional retry.maxAttempts",
    { json: { ...OK, retry: { maxAttempts: 2.5 } } },
    400,
    "validation_failed",
    "retry.maxAttempts",
  ],
  [
    "retry.baseDelaySeconds -1",
    { json: { ...OK, retry: { baseDelaySeconds: -1 } } },
    400,
    "validation_failed",
    "retry.baseDelaySeconds",
  ],
  [
    "retry.baseDelaySeconds 3601",
    { json: { ...OK, retry: { baseDelaySeconds: 3601 } } },
    400,
    "validation_failed",
    "retry.baseDelaySeconds",
  ],
  [
    "retry.maxDelaySeconds 43201",
    { json: { ...OK, retry: { maxDelaySeconds: 43201 } } },
    400,
    "validation_failed",
    "retry.maxDelaySeconds",
  ],
  [
    "an unknown retry field",
    { json: { ...OK, retry: { attempts: 3 } } },
    400,
    "validation_failed",
    "retry.attempts",
  ],
  ["retry as a string", { json: { ...OK, retry: "fast" } }, 400, "validation_failed", "retry"],
  ["active as a string", { json: { ...OK, active: "yes" } }, 400, "validation_failed", "active"],
  [
    "a 100,000-character description",
    { json: { ...OK, description: "d".repeat(100_000) } },
    400,
    "validation_failed",
    "description",
  ],
  [
    "a body over the size limit",
    { json: { ...OK, description: "x".repeat(TOO_LARGE) } },
    413,
    "payload_too_large",
  ],
];

/** Filters that do not compile; each answer names the position. */
const BAD_FILTERS: [label: string, filter: string][] = [
  ["an unfinished comparison", "body.category =="],
  ["an unterminated string", 'body.category == "food'],
  ["an unbalanced parenthesis", '(body.category == "food"'],
  ["a stray operator", "and body.a == 1"],
  ["an unknown function", "launch(body.a) == 1"],
  ["a pattern that does not compile", 'body.name ~= "["'],
  ["a nested quantifier", 'body.name ~= "(a+)+$"'],
  ["an alternation under a star", 'body.name ~= "(a|a)*$"'],
  ["a filter over 4 KB", `body.name == "${"x".repeat(4100)}"`],
  ["nesting 65 levels deep", `${"(".repeat(65)}body.a == 1${")".repeat(65)}`],
];

const FILTER_ROWS: Row[] = BAD_FILTERS.map(([label, filter]) => [
  `a filter with ${label}`,
  { json: { ...OK, filter } },
  400,
  "invalid_filter",
]);

/** URLs refused when only public https hosts are allowed. */
const REFUSED_URLS = [
  "file:///etc/passwd",
  "ftp://example.com/hook",
  "javascript:alert(1)",
  "data:text/plain,hello",
  "ws://example.com/hook",
  "not a url",
  "/relative/hook",
  "https://user:pass@example.com/hook",
  "https://user@example.com/hook",
  "http://example.com/hook",
  "http://127.0.0.1/",
  "https://127.0.0.1/",
  "https://localhost/",
  "https://LOCALHOST/",
  "https://localhost./",
  "https://api.localhost/",
  "https://10.0.0.1/",
  "https://172.16.0.1/",
  "https://192.168.1.1/",
  "https://169.254.169.254/latest/meta-data",
  "https://100.64.0.1/",
  "https://0.0.0.0/",
  "https://224.0.0.1/",
  "https://255.255.255.255/",
  "https://2130706433/",
  "https://0x7f000001/",
  "https://0177.0.0.1/",
  "https://127.1/",
  "https://[::1]/",
  "https://[::]/",
  "https://[::ffff:127.0.0.1]/",
  "https://[::ffff:a00:1]/",
  "https://[fe80::1]/",
  "https://[fc00::1]/",
  "https://[ff02::1]/",
  "https://foo.localhost./",
  "https://127.0.0.1./",
  "https://0/",
  "https://0x7f.0x0.0x0.0x1/",
  "https://10.1/",
  "https://192.0.2.1/",
  "https://198.18.0.1/",
  "https://240.0.0.1/",
  "https://[0:0:0:0:0:0:0:1]/",
  "https://[::ffff:192.168.0.1]/",
  "https://[::ffff:169.254.169.254]/",
  "https://[2001:db8::1]/",
];

const URL_ROWS: Row[] = REFUSED_URLS.map((url) => [
  `the URL ${url}`,
  { json: { url } },
  400,
  "invalid_url",
]);

/** A fresh topic, so that "nothing stored" means an empty list. */
async function emptyTopic(): Promise<string> {
  return (await seedTopic()).name;
}

describe("POST /v1/topics/{topic}/subscribers with bad input", () => {
  it.each([...BAD_BODIES, ...FILTER_ROWS, ...URL_ROWS])(
    "refuses %s and stores nothing",
    async (_label, options, status, code, path) => {
      const topic = await emptyTopic();
      const res = await call("POST", `/v1/topics/${topic}/subscribers`, {
        ...options,
        env: PUBLIC_ONLY,
      });
      const problem = await expectProblem(res, status, code);
      if (path !== undefined) expect(problem.errors?.map((e) => e.path)).toContain(path);
      if (code === "invalid_filter") expect(problem.detail).toMatch(/position\D*\d+/i);
      expect(await listAllSubscribers(topic)).toEqual([]);
      const stored = await expectJson(await call("GET", `/v1/topics/${topic}`), 200, Topic);
      expect(stored.subscriberCount).toBe(0);
    },
  );

  it("checks the topic before anything is stored", async () => {
    const res = await call("POST", "/v1/topics/never-created/subscribers", {
      json: { url: SUBSCRIBER_URL, filter: "body.a == 1" },
    });
    await expectProblem(res, 404, "not_found");
  });
});

describe("the URL policy for public deployments", () => {
  it.each([
    "https://example.com/hook",
    "https://example.com:8443/hook?via=switchboard",
    "https://8.8.8.8/hook",
    "https://[2606:4700:4700::1111]/hook",
    "https://api.example.co.uk/orders/:orderId",
    "https://api.example.com/orders/{orderId}/lines",
    // Host names are judged as written, not resolved: these only look private.
    "https://localhost.example.com/hook",
    "https://127.0.0.1.nip.io/hook",
  ])("accepts %s as written", async (url) => {
    const topic = await emptyTopic();
    const res = await call("POST", `/v1/topics/${topic}/subscribers`, {
      json: { url },
      env: PUBLIC_ONLY,
    });
    expect((await expectJson(res, 201, SubscriberWithSecret)).url).toBe(url);
  });
});

describe("the URL policy with ALLOW_PRIVATE_URLS=true", () => {
  it.each(["http://127.0.0.1:8787/hook", "http://localhost:3000/", "https://10.0.0.1/hook"])(
    "accepts %s",
    async (url) => {
      const topic = await emptyTopic();
      const res = await call("POST", `/v1/topics/${topic}/subscribers`, {
        json: { url },
        env: PRIVATE_ALLOWED,
      });
      expect((await expectJson(res, 201, SubscriberWithSecret)).url).toBe(url);
    },
  );

  it.each(["file:///etc/passwd", "ftp://example.com/", "http://user:pass@localhost:3000/"])(
    "still refuses %s",
    async (url) => {
      const topic = await emptyTopic();
      const res = await call("POST", `/v1/topics/${topic}/subscribers`, {
        json: { url },
        env: PRIVATE_ALLOWED,
      });
      await expectProblem(res, 400, "invalid_url");
      expect(await listAllSubscribers(topic)).toEqual([]);
    },
  );
});

/** PATCH bodies: a subset may omit `url`, so the create rows that only lack it do not apply. */
const BAD_PATCHES: Row[] = [
  ...BAD_BODIES,
  ...FILTER_ROWS,
  ...URL_ROWS,
  [
    "a change beside a bad timeout",
    { json: { description: "must not stick", timeoutMs: 999 } },
    400,
    "validation_failed",
    "timeoutMs",
  ],
  [
    "a change beside a refused URL",
    { json: { description: "must not stick", url: "https://127.0.0.1/" } },
    400,
    "invalid_url",
  ],
  [
    "a change beside a bad filter",
    { json: { description: "must not stick", filter: "body.a ==" } },
    400,
    "invalid_filter",
  ],
  ["a null active", { json: { active: null } }, 400, "validation_failed", "active"],
  ["a null timeoutMs", { json: { timeoutMs: null } }, 400, "validation_failed", "timeoutMs"],
  ["a null retry", { json: { retry: null } }, 400, "validation_failed", "retry"],
  ["a null headers map", { json: { headers: null } }, 400, "validation_failed", "headers"],
];

describe("PATCH /v1/subscribers/{id} with bad input", () => {
  it.each(BAD_PATCHES)(
    "refuses %s and leaves the subscriber unchanged",
    async (_label, options, status, code, path) => {
      const { secret: _secret, ...before } = await seedSubscriber(undefined, {
        filter: 'body.kind == "a"',
        description: "as created",
      });
      const res = await call("PATCH", `/v1/subscribers/${before.id}`, {
        ...options,
        env: PUBLIC_ONLY,
      });
      const problem = await expectProblem(res, status, code);
      if (path !== undefined) expect(problem.errors?.map((e) => e.path)).toContain(path);
      if (code === "invalid_filter") expect(problem.detail).toMatch(/position\D*\d+/i);
      const after = await readSubscriber(before.id);
      expect(after).toEqual(before);
    },
  );

  it("answers 404 for an unknown subscriber even with a valid body", async () => {
    const res = await call("PATCH", "/v1/subscribers/sub_missing", { json: { timeoutMs: 2000 } });
    await expectProblem(res, 404, "not_found");
  });
});
