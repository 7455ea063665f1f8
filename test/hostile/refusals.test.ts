/**
 * Hostile input on every endpoint: each row is refused with the contract's problem, and leaves no
 * trace. The fixtures (a topic, a subscriber, a message, a dead letter) exist throughout, so a row
 * that tried to reach one of them through a traversal, a prototype key or a forged token would
 * show up as a changed row, a queue send or a polluted prototype.
 *
 * Paths name the fixtures as `{topic}`, `{sub}`, `{msg}` and `{dlq}`.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { type CallOptions, seedSubscriber, seedTopic, tokens } from "../harness";
import { answering, deliver, publishAndFanOut, rowsOf } from "../pipeline/support";
import {
  expectNoPollution,
  expectRefusedCleanly,
  hostileCall,
  nested,
  rawJson,
  snapshotTables,
} from "./support";

interface Hostile {
  method: string;
  path: string;
  request?: CallOptions;
  status: number;
  code: string;
  /** A field path the problem's `errors[]` must name. */
  field?: string;
  /** Text the problem's `detail` must contain. */
  detail?: string;
}

type Row = [label: string, hostile: Hostile];

const KiB = 1024;
const MiB = 1024 * KiB;
const HOOK = "https://hooks.example.com/hook";

const TOPICS = "/v1/topics";
const SUBSCRIBERS = "/v1/topics/{topic}/subscribers";
const SUBSCRIBER = "/v1/subscribers/{sub}";
const MESSAGES = "/v1/topics/{topic}/messages";
const BATCH = "/v1/topics/{topic}/messages/batch";
const RAW = "/v1/topics/{topic}/messages/raw";
const FILTER_TEST = "/v1/filters/test";
const REPLAY_ALL = "/v1/dead-letters/replay";

const refuse = (
  method: string,
  path: string,
  request: CallOptions,
  status: number,
  code: string,
  field?: string,
): Hostile => ({ method, path, request, status, code, field });

const invalid = (method: string, path: string, request: CallOptions, field?: string) =>
  refuse(method, path, request, 400, "validation_failed", field);

const envelope = (fields: Record<string, unknown>) =>
  invalid("POST", MESSAGES, { json: { body: 1, ...fields } });

const MALFORMED_JSON: Row[] = (
  [
    ["an object cut after a key", TOPICS, '{"name":'],
    ["a string cut short", TOPICS, '{"name":"orders'],
    ["a trailing comma", TOPICS, '{"name":"a",}'],
    ["single quotes", TOPICS, "{'name':'a'}"],
    ["NaN", TOPICS, '{"name":NaN}'],
    ["garbage after the value", TOPICS, '{"name":"a"} {}'],
    ["10,000 unclosed brackets", TOPICS, "[".repeat(10_000)],
    ["a bare word", SUBSCRIBERS, "url"],
    ["a subscriber cut inside its headers", SUBSCRIBERS, `{"url":"${HOOK}","headers":{"x-a":`],
    ["an array cut short", MESSAGES, '{"body":[1,2'],
    ["undefined", MESSAGES, '{"body":undefined}'],
    ["a comment", MESSAGES, '{"body":1 /* x */}'],
    ["whitespace only", MESSAGES, " \n\t "],
    ["10,000 unclosed objects", MESSAGES, `{"body":${'{"a":'.repeat(10_000)}`],
    ["a batch cut after an envelope", BATCH, '{"messages":[{"body":1},'],
    ["a filter test cut inside its message", FILTER_TEST, '{"filter":"body.a == 1","message":{'],
    ["an empty filter test", FILTER_TEST, ""],
    ["a replay filter cut after a key", REPLAY_ALL, '{"topic":'],
  ] as const
).map(
  ([label, path, text]): Row => [
    `malformed JSON: ${label} (${path})`,
    refuse("POST", path, rawJson(text), 400, "invalid_json"),
  ],
);

MALFORMED_JSON.push(
  [
    "malformed JSON: a lone brace (PATCH subscriber)",
    refuse("PATCH", SUBSCRIBER, rawJson("{"), 400, "invalid_json"),
  ],
  [
    "malformed JSON: bytes that are not UTF-8",
    refuse(
      "POST",
      TOPICS,
      { body: new Uint8Array([0xff, 0xfe, 0x7b]), contentType: "application/json" },
      400,
      "invalid_json",
    ),
  ],
);

const DEEP_NESTING: Row[] = [
  ["10,000 nested arrays as a topic", invalid("POST", TOPICS, rawJson(nested(10_000, "array")))],
  ["10,000 nested objects as a topic", invalid("POST", TOPICS, rawJson(nested(10_000, "object")))],
  [
    "10,000 nested arrays as a message body",
    invalid("POST", MESSAGES, rawJson(`{"body":${nested(10_000, "array")}}`), "body"),
  ],
  [
    "10,000 nested objects as a message body",
    invalid("POST", MESSAGES, rawJson(`{"body":${nested(10_000, "object")}}`), "body"),
  ],
  [
    "129 nested arrays as a message body (one over the limit)",
    invalid("POST", MESSAGES, rawJson(`{"body":${nested(129, "array")}}`), "body"),
  ],
  [
    "10,000 nested objects as a body in a batch",
    invalid(
      "POST",
      BATCH,
      rawJson(`{"messages":[{"body":1},{"body":${nested(10_000, "object")}}]}`),
      "messages.1.body",
    ),
  ],
  [
    "10,000 nested arrays as a filter test message",
    invalid(
      "POST",
      FILTER_TEST,
      rawJson(`{"filter":"body.a == 1","message":{"body":${nested(10_000, "array")}}}`),
      "message.body",
    ),
  ],
  [
    "10,000 nested objects as subscriber headers",
    invalid(
      "POST",
      SUBSCRIBERS,
      rawJson(`{"url":"${HOOK}","headers":${nested(10_000, "object")}}`),
    ),
  ],
  [
    "10,000 nested objects as a PATCH retry",
    invalid("PATCH", SUBSCRIBER, rawJson(`{"retry":${nested(10_000, "object")}}`)),
  ],
  [
    "10,000 nested objects as a replay filter",
    invalid("POST", REPLAY_ALL, rawJson(nested(10_000, "object"))),
  ],
  [
    "2,000 nested parentheses in a filter",
    refuse(
      "POST",
      FILTER_TEST,
      { json: { filter: `${"(".repeat(2000)}1${")".repeat(2000)}`, message: {} } },
      400,
      "invalid_filter",
    ),
  ],
  [
    "100 stacked 'not' in a subscriber filter",
    refuse(
      "POST",
      SUBSCRIBERS,
      { json: { url: HOOK, filter: `${"not ".repeat(100)}true` } },
      400,
      "invalid_filter",
    ),
  ],
];

const longQuery = Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`q${i}`, "v"]));
const longHeaders = Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`x-h${i}`, "v"]));
const longParams = Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`p${i}`, "v"]));

const HUGE: Row[] = [
  [
    "a 129-character topic name",
    invalid("POST", TOPICS, { json: { name: "a".repeat(129) } }, "name"),
  ],
  [
    "a 200 KiB topic name",
    invalid("POST", TOPICS, { json: { name: "a".repeat(200 * KiB) } }, "name"),
  ],
  [
    "a 1,025-character topic description",
    invalid("POST", TOPICS, { json: { name: "ok", description: "d".repeat(1025) } }, "description"),
  ],
  [
    "a topic body over 256 KiB",
    refuse(
      "POST",
      TOPICS,
      { json: { name: "ok", description: "d".repeat(256 * KiB) } },
      413,
      "payload_too_large",
    ),
  ],
  [
    "a subscriber body over 256 KiB",
    refuse(
      "POST",
      SUBSCRIBERS,
      { json: { url: HOOK, description: "d".repeat(256 * KiB) } },
      413,
      "payload_too_large",
    ),
  ],
  [
    "a PATCH body over 256 KiB",
    refuse(
      "PATCH",
      SUBSCRIBER,
      rawJson(`{"description":"x"}${" ".repeat(256 * KiB)}`),
      413,
      "payload_too_large",
    ),
  ],
  [
    "a filter test body over 256 KiB",
    refuse(
      "POST",
      FILTER_TEST,
      { json: { filter: "true", message: { bodyText: "t".repeat(256 * KiB) } } },
      413,
      "payload_too_large",
    ),
  ],
  [
    "a replay filter body over 256 KiB",
    refuse("POST", REPLAY_ALL, rawJson(`{}${" ".repeat(256 * KiB)}`), 413, "payload_too_large"),
  ],
  [
    "an envelope request over 2 MiB with a tiny body",
    refuse("POST", MESSAGES, rawJson(`{"body":1}${" ".repeat(2 * MiB)}`), 413, "payload_too_large"),
  ],
  [
    "a batch request over 8 MiB",
    refuse(
      "POST",
      BATCH,
      rawJson(`{"messages":[{"body":1}]}${" ".repeat(8 * MiB)}`),
      413,
      "payload_too_large",
    ),
  ],
  [
    "a batch of 101 messages",
    invalid(
      "POST",
      BATCH,
      { json: { messages: Array.from({ length: 101 }, () => ({ body: 1 })) } },
      "messages",
    ),
  ],
  [
    "a batch of 100,000 messages",
    invalid("POST", BATCH, rawJson(`{"messages":[${Array(100_000).fill("{}").join(",")}]}`)),
  ],
  ["65 headers", envelope({ headers: longHeaders })],
  ["65 query parameters", envelope({ query: longQuery })],
  ["33 path parameters", envelope({ pathParams: longParams })],
  ["an 8,193-character header value", envelope({ headers: { "x-a": "v".repeat(8193) } })],
  ["a 257-character header name", envelope({ headers: { [`x-${"n".repeat(255)}`]: "v" } })],
  ["a 2,049-character query value", envelope({ query: { q: "v".repeat(2049) } })],
  ["a 65-value query array", envelope({ query: { q: Array(65).fill("v") } })],
  ["a 2,049-character path parameter", envelope({ pathParams: { p: "v".repeat(2049) } })],
  [
    "a 257-character content type",
    envelope({ body: undefined, bodyText: "t", contentType: `text/${"x".repeat(252)}` }),
  ],
  [
    "a 2,049-character subscriber URL",
    invalid("POST", SUBSCRIBERS, { json: { url: `${HOOK}/${"a".repeat(2049)}` } }, "url"),
  ],
  [
    "a 100,000-character subscriber description",
    invalid("POST", SUBSCRIBERS, { json: { url: HOOK, description: "d".repeat(100_000) } }),
  ],
  [
    "a filter over 4,096 bytes",
    refuse(
      "POST",
      FILTER_TEST,
      { json: { filter: `body.a == "${"x".repeat(4100)}"`, message: {} } },
      400,
      "invalid_filter",
    ),
  ],
  [
    "a filter over 4,096 bytes only in UTF-8",
    refuse(
      "POST",
      SUBSCRIBERS,
      { json: { url: HOOK, filter: `body.a == "${"é".repeat(2100)}"` } },
      400,
      "invalid_filter",
    ),
  ],
  [
    "a 257-character replay topic",
    invalid("POST", REPLAY_ALL, { json: { topic: "t".repeat(257) } }, "topic"),
  ],
  [
    "a 257-character dead-letter topic query",
    invalid("GET", `/v1/dead-letters?topic=${"t".repeat(257)}`, {}, "topic"),
  ],
  ["a 513-character cursor", invalid("GET", `${TOPICS}?cursor=${"c".repeat(513)}`, {}, "cursor")],
];

const WRONG_TYPES: Row[] = [
  ["a topic that is a string", invalid("POST", TOPICS, { json: "orders" })],
  ["a topic that is null", invalid("POST", TOPICS, { json: null })],
  ["a numeric topic name", invalid("POST", TOPICS, { json: { name: 42 } }, "name")],
  ["a topic name in an array", invalid("POST", TOPICS, { json: { name: ["orders"] } }, "name")],
  [
    "a topic name as a query operator",
    invalid("POST", TOPICS, { json: { name: { $gt: "" } } }, "name"),
  ],
  [
    "a boolean description",
    invalid("POST", TOPICS, { json: { name: "ok", description: true } }, "description"),
  ],
  [
    "a timeout as a string",
    invalid("POST", SUBSCRIBERS, { json: { url: HOOK, timeoutMs: "15000" } }, "timeoutMs"),
  ],
  [
    "a timeout of 1e400",
    invalid("POST", SUBSCRIBERS, rawJson(`{"url":"${HOOK}","timeoutMs":1e400}`), "timeoutMs"),
  ],
  ["retry as an array", invalid("POST", SUBSCRIBERS, { json: { url: HOOK, retry: [3] } }, "retry")],
  ["active as 1", invalid("PATCH", SUBSCRIBER, { json: { active: 1 } }, "active")],
  ["a lower-case method", invalid("PATCH", SUBSCRIBER, { json: { method: "post" } }, "method")],
  [
    "headers as a string",
    invalid("POST", SUBSCRIBERS, { json: { url: HOOK, headers: "x-a: 1" } }, "headers"),
  ],
  [
    "a filter as an object",
    invalid("POST", SUBSCRIBERS, { json: { url: HOOK, filter: { $where: "1" } } }, "filter"),
  ],
  [
    "messages as an object",
    invalid("POST", BATCH, { json: { messages: { 0: { body: 1 } } } }, "messages"),
  ],
  ["an envelope that is an array", invalid("POST", MESSAGES, { json: [{ body: 1 }] })],
  ["delaySeconds as a string", envelope({ delaySeconds: "5" })],
  [
    "delaySeconds of 1e400",
    invalid("POST", MESSAGES, rawJson('{"body":1,"delaySeconds":1e400}'), "delaySeconds"),
  ],
  ["a header value in an array", envelope({ headers: { "x-a": ["1"] } })],
  ["a numeric query value in an array", envelope({ query: { q: [1] } })],
  ["a numeric bodyBase64", envelope({ body: undefined, bodyBase64: 123 })],
  ["a null method", envelope({ method: null })],
  [
    "a batch idempotency key as a number",
    invalid("POST", BATCH, { json: { messages: [{ body: 1, idempotencyKey: 7 }] } }),
  ],
  [
    "a null filter to test",
    invalid("POST", FILTER_TEST, { json: { filter: null, message: {} } }, "filter"),
  ],
  [
    "a filter test message as a string",
    invalid("POST", FILTER_TEST, { json: { filter: "true", message: "body" } }, "message"),
  ],
  [
    "a filter test topic with a path",
    invalid("POST", FILTER_TEST, { json: { filter: "true", message: {}, topic: "../x" } }, "topic"),
  ],
  ["a replay filter that is an array", invalid("POST", REPLAY_ALL, rawJson("[]"))],
  ["a replay filter that is null", invalid("POST", REPLAY_ALL, rawJson("null"))],
  [
    "a numeric replay subscriber",
    invalid("POST", REPLAY_ALL, { json: { subscriberId: 1 } }, "subscriberId"),
  ],
  [
    "a replay topic as a query operator",
    invalid("POST", REPLAY_ALL, { json: { topic: { $ne: null } } }, "topic"),
  ],
  ["limit=abc", invalid("GET", `${TOPICS}?limit=abc`, {}, "limit")],
  ["limit=-1", invalid("GET", `${TOPICS}?limit=-1`, {}, "limit")],
  ["limit=1e3", invalid("GET", "/v1/dead-letters?limit=1e3", {}, "limit")],
  ["limit=Infinity", invalid("GET", "/v1/topics/{topic}/subscribers?limit=Infinity", {}, "limit")],
  ["a repeated limit", invalid("GET", `${TOPICS}?limit=1&limit=2`, {}, "limit")],
  [
    "a cursor the broker did not make",
    invalid("GET", "/v1/topics/{topic}/subscribers?cursor=%%%", {}, "cursor"),
  ],
];

WRONG_TYPES.push(
  [
    "a body number beyond a double (1e400)",
    invalid("POST", MESSAGES, rawJson('{"body":{"total":1e400}}'), "body"),
  ],
  [
    "a batch body number below a double (-1e400)",
    invalid("POST", BATCH, rawJson('{"messages":[{"body":[1,-1e400]}]}'), "messages.0.body"),
  ],
  [
    "a filter test body number beyond a double",
    invalid(
      "POST",
      FILTER_TEST,
      rawJson('{"filter":"true","message":{"body":2e308}}'),
      "message.body",
    ),
  ],
);

const UNICODE: Row[] = [
  [
    "an RTL override in a topic name",
    invalid("POST", TOPICS, { json: { name: "evil\u202egpj.exe" } }, "name"),
  ],
  [
    "a zero-width space in a topic name",
    invalid("POST", TOPICS, { json: { name: "or\u200bders" } }, "name"),
  ],
  ["a NUL in a topic name", invalid("POST", TOPICS, { json: { name: "orders\u0000" } }, "name")],
  [
    "a lone surrogate in a topic name",
    invalid("POST", TOPICS, rawJson('{"name":"a\\ud800"}'), "name"),
  ],
  [
    "fullwidth letters in a topic name",
    invalid("POST", TOPICS, { json: { name: "ｏｒｄｅｒｓ" } }, "name"),
  ],
  [
    "a Cyrillic homograph in a topic name",
    invalid("POST", TOPICS, { json: { name: "оrders" } }, "name"),
  ],
  [
    "a lone surrogate in a topic description",
    invalid("POST", TOPICS, rawJson('{"name":"ok","description":"\\udfff"}'), "description"),
  ],
  [
    "a lone surrogate in a subscriber description",
    invalid("PATCH", SUBSCRIBER, rawJson('{"description":"x\\ud800y"}'), "description"),
  ],
  [
    "a lone surrogate in a subscriber URL path",
    refuse("POST", SUBSCRIBERS, rawJson(`{"url":"${HOOK}/\\ud800"}`), 400, "invalid_url", "url"),
  ],
  [
    "CRLF in a subscriber URL",
    refuse("POST", SUBSCRIBERS, { json: { url: `${HOOK}/a\r\nb` } }, 400, "invalid_url", "url"),
  ],
  [
    "a zero-width space in a subscriber URL's host",
    refuse(
      "PATCH",
      SUBSCRIBER,
      { json: { url: "https://ho\u200bok.example.com/" } },
      400,
      "invalid_url",
      "url",
    ),
  ],
  [
    "a right-to-left override in a subscriber URL",
    refuse(
      "POST",
      SUBSCRIBERS,
      { json: { url: `${HOOK}/\u202egnp.exe` } },
      400,
      "invalid_url",
      "url",
    ),
  ],
  [
    "a lone surrogate in a subscriber filter",
    refuse(
      "POST",
      SUBSCRIBERS,
      rawJson(`{"url":"${HOOK}","filter":"body.a == \\"\\ud800\\""}`),
      400,
      "invalid_filter",
      "filter",
    ),
  ],
  ["a zero-width space in a header name", envelope({ headers: { "x-\u200ba": "1" } })],
  ["a NUL in a header name", envelope({ headers: { "x-a\u0000": "1" } })],
  ["an RTL override in a header value", envelope({ headers: { "x-a": "abc\u202edef" } })],
  ["a zero-width joiner in a header value", envelope({ headers: { "x-a": "a\u200db" } })],
  [
    "a lone surrogate in a header value",
    invalid(
      "POST",
      SUBSCRIBERS,
      rawJson(`{"url":"${HOOK}","headers":{"x-a":"\\ud800"}}`),
      "headers.x-a",
    ),
  ],
  [
    "a NUL in a content type",
    envelope({ body: undefined, bodyText: "t", contentType: "text/plain\u0000" }),
  ],
  ["a zero-width space in a path parameter name", envelope({ pathParams: { "id\u200b": "1" } })],
  [
    "a NUL outside a string in a filter",
    refuse(
      "POST",
      FILTER_TEST,
      { json: { filter: "body.a\u0000 == 1", message: {} } },
      400,
      "invalid_filter",
    ),
  ],
  [
    "a lone surrogate as a filter",
    refuse(
      "POST",
      FILTER_TEST,
      rawJson('{"filter":"\\ud800","message":{}}'),
      400,
      "invalid_filter",
    ),
  ],
  [
    "an RTL override between filter tokens",
    refuse(
      "POST",
      FILTER_TEST,
      { json: { filter: "body.a \u202e== 1", message: {} } },
      400,
      "invalid_filter",
    ),
  ],
  [
    "a zero-width space between filter tokens",
    refuse(
      "POST",
      SUBSCRIBERS,
      { json: { url: HOOK, filter: "body.a\u200b == 1" } },
      400,
      "invalid_filter",
    ),
  ],
  [
    "a lone surrogate in a URL host",
    refuse(
      "POST",
      SUBSCRIBERS,
      rawJson('{"url":"https://\\ud800.example.com/"}'),
      400,
      "invalid_url",
    ),
  ],
];

const CRLF: Row[] = [
  ["CRLF in a header name", envelope({ headers: { "x-a\r\nx-b": "1" } })],
  ["CRLF in a header value", envelope({ headers: { "x-a": "a\r\nx-injected: 1" } })],
  ["a bare CR in a header value", envelope({ headers: { "x-a": "a\rb" } })],
  ["a DEL in a header value", envelope({ headers: { "x-a": "a\u007fb" } })],
  ["a leading space in a header value", envelope({ headers: { "x-a": " a" } })],
  ["a trailing tab in a header value", envelope({ headers: { "x-a": "a\t" } })],
  ["a line separator in a header value", envelope({ headers: { "x-a": "a\u2028b" } })],
  [
    "CRLF in a content type",
    envelope({ body: undefined, bodyText: "t", contentType: "text/plain\r\nx-injected: 1" }),
  ],
  [
    "LF in a batch header value",
    invalid("POST", BATCH, { json: { messages: [{ body: 1, headers: { "x-a": "a\nb" } }] } }),
  ],
  [
    "LF in a subscriber header name",
    invalid("POST", SUBSCRIBERS, { json: { url: HOOK, headers: { "x-a\n": "1" } } }),
  ],
  [
    "CRLF in a subscriber header value",
    invalid(
      "POST",
      SUBSCRIBERS,
      { json: { url: HOOK, headers: { "x-a": "\r\nx" } } },
      "headers.x-a",
    ),
  ],
  [
    "CRLF in a PATCH header value",
    invalid(
      "PATCH",
      SUBSCRIBER,
      { json: { headers: { "x-a": "1\r\n\r\nGET / HTTP/1.1" } } },
      "headers.x-a",
    ),
  ],
  [
    "CRLF in a filter test message header",
    invalid("POST", FILTER_TEST, {
      json: { filter: "true", message: { headers: { "x-a": "a\r\nb" } } },
    }),
  ],
  [
    "a non-ASCII forwarded header value",
    invalid("POST", RAW, { body: "x", headers: { "forward-x-name": "caf\u00e9" } }),
  ],
];

const FORBIDDEN_HEADERS: Row[] = [
  ["Host in an envelope", envelope({ headers: { Host: "internal.example" } })],
  ["Content-Length in an envelope", envelope({ headers: { "content-length": "0" } })],
  ["Webhook-Signature in an envelope", envelope({ headers: { "Webhook-Signature": "v1,forged" } })],
  [
    "Switchboard-Attempt in a batch",
    invalid("POST", BATCH, {
      json: { messages: [{ body: 1, headers: { "switchboard-attempt": "99" } }] },
    }),
  ],
  [
    "TE in a filter test message",
    invalid("POST", FILTER_TEST, {
      json: { filter: "true", message: { headers: { te: "trailers" } } },
    }),
  ],
  [
    "Transfer-Encoding on a subscriber",
    invalid("POST", SUBSCRIBERS, {
      json: { url: HOOK, headers: { "Transfer-Encoding": "chunked" } },
    }),
  ],
  [
    "Proxy-Authorization on a subscriber",
    invalid("PATCH", SUBSCRIBER, { json: { headers: { "proxy-authorization": "Basic x" } } }),
  ],
  [
    "a forwarded Host",
    invalid("POST", RAW, { body: "x", headers: { "forward-host": "169.254.169.254" } }),
  ],
  [
    "a forwarded Content-Length",
    invalid("POST", RAW, { body: "x", headers: { "forward-content-length": "0" } }),
  ],
  [
    "a forwarded Connection",
    invalid("POST", RAW, { body: "x", headers: { "forward-connection": "close" } }),
  ],
  [
    "a forwarded Webhook-Id",
    invalid("POST", RAW, { body: "x", headers: { "forward-webhook-id": "msg_forged" } }),
  ],
  [
    "a forwarded Switchboard-Topic",
    invalid("POST", RAW, { body: "x", headers: { "forward-switchboard-topic": "other" } }),
  ],
];

const PROTOTYPE_KEYS: Row[] = [
  [
    "__proto__ beside a topic name",
    invalid("POST", TOPICS, rawJson('{"name":"ok","__proto__":{"polluted":1}}'), "__proto__"),
  ],
  [
    "constructor.prototype beside a topic name",
    invalid(
      "POST",
      TOPICS,
      rawJson('{"name":"ok","constructor":{"prototype":{"polluted":1}}}'),
      "constructor",
    ),
  ],
  [
    "prototype beside a topic name",
    invalid("POST", TOPICS, rawJson('{"name":"ok","prototype":{"polluted":1}}'), "prototype"),
  ],
  [
    "__proto__ in a subscriber",
    invalid(
      "POST",
      SUBSCRIBERS,
      rawJson(`{"url":"${HOOK}","__proto__":{"active":false,"polluted":1}}`),
      "__proto__",
    ),
  ],
  [
    "__proto__ in a PATCH",
    invalid(
      "PATCH",
      SUBSCRIBER,
      rawJson('{"__proto__":{"url":"https://127.0.0.1/","polluted":1}}'),
      "__proto__",
    ),
  ],
  [
    "__proto__ in a retry policy",
    invalid(
      "PATCH",
      SUBSCRIBER,
      rawJson('{"retry":{"__proto__":{"maxAttempts":0}}}'),
      "retry.__proto__",
    ),
  ],
  [
    "__proto__ in an envelope",
    invalid(
      "POST",
      MESSAGES,
      rawJson('{"body":1,"__proto__":{"delaySeconds":5,"polluted":1}}'),
      "__proto__",
    ),
  ],
  [
    "constructor in a batch envelope",
    invalid(
      "POST",
      BATCH,
      rawJson('{"messages":[{"body":1,"constructor":{"prototype":{"polluted":1}}}]}'),
      "messages.0.constructor",
    ),
  ],
  [
    "__proto__ beside the batch",
    invalid(
      "POST",
      BATCH,
      rawJson('{"messages":[{"body":1}],"__proto__":{"polluted":1}}'),
      "__proto__",
    ),
  ],
  [
    "__proto__ in a filter test",
    invalid(
      "POST",
      FILTER_TEST,
      rawJson('{"filter":"true","message":{},"__proto__":{"topic":"x","polluted":1}}'),
      "__proto__",
    ),
  ],
  [
    "__proto__ in a replay filter",
    invalid("POST", REPLAY_ALL, rawJson('{"__proto__":{"topic":"x","polluted":1}}'), "__proto__"),
  ],
  ["__proto__[polluted] in a list query", invalid("GET", `${TOPICS}?__proto__[polluted]=1`, {})],
  ["__proto__ in a list query", invalid("GET", `${TOPICS}?__proto__=1`, {}, "__proto__")],
  [
    "constructor in a dead-letter query",
    invalid("GET", "/v1/dead-letters?constructor=1", {}, "constructor"),
  ],
  [
    "prototype in a subscriber list query",
    invalid("GET", "/v1/topics/{topic}/subscribers?prototype=1", {}, "prototype"),
  ],
  ["an object as a header value", envelope({ headers: { "x-a": { polluted: 1 } } })],
];

const BAD_FILTERS: Row[] = [
  ["toString()", "toString(body)"],
  ["constructor()", "constructor(body)"],
  ["__proto__()", "__proto__(1)"],
  ["import()", 'import("node:child_process")'],
  ["a statement after the filter", "body.a; process.exit()"],
  ["an injection that closes a string", 'body.a == "x"); process.exit(); ("'],
  // biome-ignore lint/suspicious/noTemplateCurlyInString: JavaScript template syntax is the attack
  ["backticks", "body.a == `${process.exit()}`"],
  // biome-ignore lint/suspicious/noTemplateCurlyInString: JavaScript template syntax is the attack
  ["a bare template expression", "${process.exit()}"],
  ["a chained constructor call", 'constructor.constructor("return process")()'],
  ["bracket access to constructor", 'body["constructor"] == 1'],
  ["a catastrophic pattern (a+)+$", 'body.a ~= "(a+)+$"'],
  ["a catastrophic pattern ^(a|a)*$", 'body.a ~= "^(a|a)*$"'],
  ["a catastrophic pattern (.*a){12}", 'body.a ~= "(.*a){12}"'],
  ["a case-insensitive group ^(?i:a|A)*$", 'body.a ~= "^(?i:a|A)*$"'],
  ["a chain of bounded quantifiers ^a{0,16}…b", `body.a ~= "^${"a{0,16}".repeat(8)}b"`],
  ["a chain of ambiguous alternatives ^(?:aa|a)…c", `body.a ~= "^${"(?:aa|a)".repeat(26)}c"`],
  ["a pattern that does not compile", 'body.a ~= "(?<"'],
].flatMap(([label, filter]): Row[] => [
  [
    `a filter with ${label} (test)`,
    refuse(
      "POST",
      FILTER_TEST,
      { json: { filter, message: { body: { a: "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!" } } } },
      400,
      "invalid_filter",
      "filter",
    ),
  ],
  [
    `a filter with ${label} (subscriber)`,
    refuse("POST", SUBSCRIBERS, { json: { url: HOOK, filter } }, 400, "invalid_filter", "filter"),
  ],
]);
BAD_FILTERS.push([
  "a PATCH filter with a catastrophic pattern",
  refuse(
    "PATCH",
    SUBSCRIBER,
    { json: { filter: 'body.a ~= "(x+x+)+y"' } },
    400,
    "invalid_filter",
    "filter",
  ),
]);

/** Every spelling of a subscriber URL that reaches something other than a public https host. */
const SSRF_URLS = [
  "https://127.0.0.1/",
  "https://127.0.0.1:8443/admin",
  "https://localhost/",
  "https://localhost./",
  "https://LocalHost:443/",
  "https://api.localhost/",
  "https://api.localhost./",
  "https://10.0.0.1/",
  "https://172.16.0.1/",
  "https://192.168.1.1/",
  "https://100.64.0.1/",
  "https://169.254.1.1/",
  "https://169.254.169.254/latest/meta-data/",
  "https://169.254.169.254./",
  "https://0.0.0.0/",
  "https://0/",
  "https://2130706433/",
  "https://017700000001/",
  "https://0x7f000001/",
  "https://0x7f.0.0.1/",
  "https://0177.0.0.1/",
  "https://127.1/",
  "https://2852039166/",
  "https://0251.0376.0251.0376/",
  "https://0xa9.0xfe.0xa9.0xfe/",
  "https://169.254.43518/",
  "https://①②⑦.⓪.⓪.①/",
  "https://１２７．０．０．１/",
  "https://127。0。0。1/",
  "https:\\\\127.0.0.1\\hook",
  "  https://127.0.0.1/  ",
  "https://[::1]/",
  "https://[::]/",
  "https://[0:0:0:0:0:0:0:1]/",
  "https://[::ffff:127.0.0.1]/",
  "https://[::ffff:7f00:1]/",
  "https://[::ffff:169.254.169.254]/",
  "https://[64:ff9b::a9fe:a9fe]/",
  "https://[2002:7f00:1::]/",
  "https://[fe80::1]/",
  "https://[fd00:ec2::254]/",
  "https://[::1%25eth0]/",
  "https://user:pass@hooks.example.com/",
  "https://user@hooks.example.com/",
  "https://hooks.example.com@127.0.0.1/",
  "http://hooks.example.com/",
  "http://127.0.0.1:8787/",
  "file:///etc/passwd",
  "ftp://hooks.example.com/",
  "gopher://127.0.0.1:6379/_SET%20x%201",
  "javascript:alert(1)",
  "data:text/html,<script>alert(1)</script>",
  "blob:https://hooks.example.com/x",
  "ws://hooks.example.com/",
  "not a url",
  "//hooks.example.com/hook",
];

const SSRF: Row[] = SSRF_URLS.map(
  (url): Row => [
    `the subscriber URL ${JSON.stringify(url)}`,
    refuse("POST", SUBSCRIBERS, { json: { url } }, 400, "invalid_url", "url"),
  ],
);
SSRF.push(
  ...["https://169.254.169.254/", "https://[::ffff:a9fe:a9fe]/", "file:///etc/passwd"].map(
    (url): Row => [
      `a PATCH to the URL ${url}`,
      refuse(
        "PATCH",
        SUBSCRIBER,
        { json: { url, description: "must not stick" } },
        400,
        "invalid_url",
        "url",
      ),
    ],
  ),
);

/** Every route with an id or a topic in its path, and a body it would accept. */
const ID_ROUTES: [method: string, path: string, request: CallOptions, fixture: string][] = [
  ["GET", "/v1/topics/@", {}, "{topic}"],
  ["DELETE", "/v1/topics/@", {}, "{topic}"],
  ["POST", "/v1/topics/@/subscribers", { json: { url: HOOK } }, "{topic}"],
  ["GET", "/v1/topics/@/subscribers", {}, "{topic}"],
  ["POST", "/v1/topics/@/messages", { json: { body: 1 } }, "{topic}"],
  ["POST", "/v1/topics/@/messages/batch", { json: { messages: [{ body: 1 }] } }, "{topic}"],
  ["POST", "/v1/topics/@/messages/raw", { body: "x" }, "{topic}"],
  ["GET", "/v1/subscribers/@", {}, "{sub}"],
  ["PATCH", "/v1/subscribers/@", { json: { active: false } }, "{sub}"],
  ["DELETE", "/v1/subscribers/@", {}, "{sub}"],
  ["POST", "/v1/subscribers/@/rotate-secret", {}, "{sub}"],
  ["GET", "/v1/messages/@", {}, "{msg}"],
  ["POST", "/v1/dead-letters/@/replay", {}, "{dlq}"],
  ["DELETE", "/v1/dead-letters/@", {}, "{dlq}"],
];

/** Ways to write "the parent of" a real id in one path segment. */
const TRAVERSALS: [label: string, spell: (fixture: string) => string][] = [
  ["%2e%2e%2f", (id) => `%2e%2e%2f${id}`],
  ["..%2F..%2F", (id) => `..%2F..%2F${id}`],
  ["a trailing %2F..", (id) => `${id}%2F..`],
  ["double-encoded", (id) => `%252e%252e%252f${id}`],
];

const TRAVERSAL: Row[] = ID_ROUTES.flatMap(([method, path, request, fixture]) =>
  TRAVERSALS.map(
    ([label, spell]): Row => [
      `${label} in ${method} ${path.replace("@", fixture)}`,
      refuse(method, path.replace("@", spell(fixture)), request, 404, "not_found"),
    ],
  ),
);
TRAVERSAL.push(
  ["an overlong UTF-8 slash", refuse("GET", "/v1/subscribers/..%c0%af{sub}", {}, 404, "not_found")],
  ["an encoded backslash", refuse("DELETE", "/v1/topics/..%5c{topic}", {}, 404, "not_found")],
  ["a truncated escape", refuse("GET", "/v1/messages/%E0%A4%A", {}, 404, "not_found")],
  ["an encoded NUL", refuse("DELETE", "/v1/subscribers/{sub}%00", {}, 404, "not_found")],
  [
    "dot segments that climb out of /v1",
    refuse("GET", "/v1/dead-letters/%2e%2e/%2e%2e/%2e%2e/etc/passwd", {}, 404, "not_found"),
  ],
);

const IDEMPOTENCY: Row[] = [
  [
    "a 256-character Idempotency-Key",
    invalid(
      "POST",
      MESSAGES,
      { json: { body: 1 }, headers: { "idempotency-key": "k".repeat(256) } },
      "idempotency-key",
    ),
  ],
  [
    "a 64 KiB Idempotency-Key",
    invalid(
      "POST",
      MESSAGES,
      { json: { body: 1 }, headers: { "idempotency-key": "k".repeat(64 * KiB) } },
      "idempotency-key",
    ),
  ],
  [
    "a blank Idempotency-Key",
    invalid(
      "POST",
      MESSAGES,
      { json: { body: 1 }, headers: { "idempotency-key": "   " } },
      "idempotency-key",
    ),
  ],
  [
    "a 256-character raw Idempotency-Key",
    invalid(
      "POST",
      RAW,
      { body: "x", headers: { "idempotency-key": "k".repeat(256) } },
      "idempotency-key",
    ),
  ],
  [
    "a 256-character batch idempotencyKey",
    invalid(
      "POST",
      BATCH,
      { json: { messages: [{ body: 1, idempotencyKey: "k".repeat(256) }] } },
      "messages.0.idempotencyKey",
    ),
  ],
  [
    "an empty batch idempotencyKey",
    invalid(
      "POST",
      BATCH,
      { json: { messages: [{ body: 1, idempotencyKey: "" }] } },
      "messages.0.idempotencyKey",
    ),
  ],
];

const as = (authorization: string): CallOptions => ({ as: { authorization } });

const TOKENS: Row[] = [
  [
    "no token on a management route",
    refuse("POST", TOPICS, { as: "anonymous", json: { name: "ok" } }, 401, "unauthorized"),
  ],
  [
    "no token on a publish route",
    refuse("POST", MESSAGES, { as: "anonymous", json: { body: 1 } }, 401, "unauthorized"),
  ],
  ["'Bearer' alone", refuse("DELETE", "/v1/topics/{topic}", as("Bearer"), 401, "unauthorized")],
  ["'Bearer ' and a space", refuse("DELETE", SUBSCRIBER, as("Bearer "), 401, "unauthorized")],
  [
    "Basic credentials",
    refuse(
      "POST",
      MESSAGES,
      { ...as("Basic YWRtaW46YWRtaW4="), json: { body: 1 } },
      401,
      "unauthorized",
    ),
  ],
  [
    "the admin token as Basic",
    refuse("DELETE", SUBSCRIBER, as(`Basic ${btoa(`admin:${tokens.admin}`)}`), 401, "unauthorized"),
  ],
  [
    "the admin token without a scheme",
    refuse("DELETE", SUBSCRIBER, as(tokens.admin), 401, "unauthorized"),
  ],
  [
    "a 64 KiB token",
    refuse(
      "POST",
      RAW,
      { ...as(`Bearer ${"t".repeat(64 * KiB)}`), body: "x" },
      401,
      "unauthorized",
    ),
  ],
  [
    "the admin token plus one character",
    refuse(
      "POST",
      "/v1/dead-letters/{dlq}/replay",
      as(`Bearer ${tokens.admin}x`),
      401,
      "unauthorized",
    ),
  ],
  [
    "two tokens",
    refuse(
      "POST",
      BATCH,
      { ...as(`Bearer ${tokens.publish} ${tokens.publish}`), json: { messages: [{ body: 1 }] } },
      401,
      "unauthorized",
    ),
  ],
  ["'Bearer null'", refuse("GET", "/v1/messages/{msg}", as("Bearer null"), 401, "unauthorized")],
  [
    "'Bearer undefined'",
    refuse(
      "POST",
      "/v1/subscribers/{sub}/rotate-secret",
      as("Bearer undefined"),
      401,
      "unauthorized",
    ),
  ],
  [
    "a Digest credential",
    refuse("DELETE", "/v1/dead-letters/{dlq}", as('Digest username="admin"'), 401, "unauthorized"),
  ],
  [
    "the publish token on a management route",
    refuse("DELETE", "/v1/topics/{topic}", { as: "publisher" }, 403, "forbidden"),
  ],
  [
    "the publish token on a replay",
    refuse("POST", REPLAY_ALL, { as: "publisher" }, 403, "forbidden"),
  ],
  [
    "an empty ADMIN_TOKEN and an empty bearer",
    refuse(
      "DELETE",
      "/v1/topics/{topic}",
      { ...as("Bearer "), env: { ADMIN_TOKEN: "" } },
      503,
      "not_configured",
    ),
  ],
  [
    "a blank ADMIN_TOKEN and a blank bearer",
    refuse(
      "POST",
      TOPICS,
      { ...as("Bearer  "), json: { name: "ok" }, env: { ADMIN_TOKEN: " " } },
      503,
      "not_configured",
    ),
  ],
];

/**
 * JSON-looking media types the routes' validator does not take: refused by the route's own body
 * check, whose detail names what was sent, on publish and management routes alike.
 */
const JSON_LOOKALIKES: Row[] = (
  [
    ["a topic", "POST", TOPICS, { name: "ok" }, "application/vnd.app.v2+json"],
    ["an envelope", "POST", MESSAGES, { body: 1 }, "application/json ; charset=utf-8"],
    ["a batch", "POST", BATCH, { messages: [{ body: 1 }] }, "application/json;"],
    ["a subscriber", "POST", SUBSCRIBERS, { url: HOOK }, "application/json\t; charset=utf-8"],
    ["a PATCH", "PATCH", SUBSCRIBER, { active: true }, "application/vnd_x+json"],
    ["a filter test", "POST", FILTER_TEST, { filter: "body.a == 1" }, "application/a+b+json"],
    ["a replay", "POST", REPLAY_ALL, { topic: "x" }, "application/json; charset=utf-8; v"],
  ] as const
).map(
  ([what, method, path, json, contentType]): Row => [
    `${what} as ${JSON.stringify(contentType)}`,
    {
      ...refuse(
        method,
        path,
        { body: JSON.stringify(json), contentType },
        415,
        "unsupported_media_type",
      ),
      detail: contentType,
    },
  ],
);

const MEDIA_AND_METHODS: Row[] = [
  [
    "a topic as text/plain",
    refuse(
      "POST",
      TOPICS,
      { body: '{"name":"ok"}', contentType: "text/plain" },
      415,
      "unsupported_media_type",
    ),
  ],
  [
    "a topic as application/jsonp",
    refuse(
      "POST",
      TOPICS,
      { body: '{"name":"ok"}', contentType: "application/jsonp" },
      415,
      "unsupported_media_type",
    ),
  ],
  [
    "a topic without a content type",
    refuse(
      "POST",
      TOPICS,
      { body: new TextEncoder().encode('{"name":"ok"}') },
      415,
      "unsupported_media_type",
    ),
  ],
  [
    "an envelope as a form",
    refuse(
      "POST",
      MESSAGES,
      { body: "body=1", contentType: "application/x-www-form-urlencoded" },
      415,
      "unsupported_media_type",
    ),
  ],
  [
    "a PATCH as multipart",
    refuse(
      "PATCH",
      SUBSCRIBER,
      { body: "--b\r\n\r\n--b--", contentType: "multipart/form-data; boundary=b" },
      415,
      "unsupported_media_type",
    ),
  ],
  [
    "PUT on a topic",
    refuse("PUT", "/v1/topics/{topic}", { json: { name: "x" } }, 405, "method_not_allowed"),
  ],
  [
    "POST on a message",
    refuse("POST", "/v1/messages/{msg}", { json: {} }, 405, "method_not_allowed"),
  ],
];

const ROWS: Row[] = [
  ...MALFORMED_JSON,
  ...DEEP_NESTING,
  ...HUGE,
  ...WRONG_TYPES,
  ...UNICODE,
  ...CRLF,
  ...FORBIDDEN_HEADERS,
  ...PROTOTYPE_KEYS,
  ...BAD_FILTERS,
  ...SSRF,
  ...TRAVERSAL,
  ...IDEMPOTENCY,
  ...TOKENS,
  ...MEDIA_AND_METHODS,
  ...JSON_LOOKALIKES,
];

const fixture = { topic: "", sub: "", msg: "", dlq: "" };

function resolve(path: string): string {
  return path
    .replaceAll("{topic}", fixture.topic)
    .replaceAll("{sub}", fixture.sub)
    .replaceAll("{msg}", fixture.msg)
    .replaceAll("{dlq}", fixture.dlq);
}

beforeAll(async () => {
  // Refused requests are logged by the broker; the log is not under test.
  vi.spyOn(console, "error").mockImplementation(() => undefined);
  vi.spyOn(console, "warn").mockImplementation(() => undefined);
  const { name: topic } = await seedTopic({ description: "the hostile suite's fixture" });
  const subscriber = await seedSubscriber(topic, {
    filter: 'body.kind == "fixture"',
    retry: { maxAttempts: 1 },
    headers: { "x-fixture": "1" },
  });
  const { messageId, tasks } = await publishAndFanOut(topic, { body: { kind: "fixture" } });
  await deliver(tasks, answering(500).fetch);
  const [deadLetter] = await rowsOf("dead_letters", topic);
  Object.assign(fixture, {
    topic,
    sub: subscriber.id,
    msg: messageId,
    dlq: String(deadLetter?.id),
  });
  expect(fixture.dlq).toMatch(/^dlq_/);
});

afterAll(() => {
  vi.restoreAllMocks();
});

describe("hostile input", () => {
  it("has a row for each way in", () => {
    expect(ROWS.length).toBeGreaterThanOrEqual(80);
    expect(new Set(ROWS.map(([label]) => label)).size).toBe(ROWS.length);
  });

  it.each(ROWS)("refuses %s cleanly", async (_label, hostile) => {
    const before = await snapshotTables();
    const { res, queues } = await hostileCall(
      hostile.method,
      resolve(hostile.path),
      hostile.request,
    );
    const problem = await expectRefusedCleanly(res, hostile.status, hostile.code, {
      before,
      queues,
    });
    if (hostile.field !== undefined) {
      expect(problem.errors?.map((error) => error.path)).toContain(hostile.field);
    }
    if (hostile.detail !== undefined) expect(problem.detail).toContain(hostile.detail);
  });

  it("left every prototype clean after the whole table", () => {
    expectNoPollution();
  });
});
