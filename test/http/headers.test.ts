import { describe, expect, it } from "vitest";
import {
  headerNameProblem,
  headerValueProblem,
  MAX_HEADER_NAME_LENGTH,
  MAX_HEADER_VALUE_LENGTH,
  normalizeHeaders,
} from "../../src/http/headers";

describe("headerNameProblem", () => {
  it.each([
    "x-api-key",
    "X-Api-Key",
    "Authorization",
    "content-type",
    "Content-Type",
    "user-agent",
    "mode",
    "x",
    "X_UNDERSCORE",
    "x.dotted",
    "123",
    "!#$%&'*+-.^_`|~",
    "__proto__",
    "hostname",
    "x-host",
    "contents-length",
    "tee",
    "trailers",
    "x-proxy-id",
    "webhooks",
    "x-webhook-id",
    "switchboard",
    "x-switchboard-topic",
    "a".repeat(MAX_HEADER_NAME_LENGTH),
  ])("accepts %j", (name) => {
    expect(headerNameProblem(name)).toBeUndefined();
  });

  it.each([
    ["x api", "contains a space (U+0020)"],
    [" x", "contains a space (U+0020)"],
    ["x-api:", 'contains ":"'],
    [":authority", 'contains ":"'],
    ["x\r\nInjected: 1", "contains a carriage return (U+000D)"],
    ["x\ny", "contains a line feed (U+000A)"],
    ["x\0", "contains a NUL character (U+0000)"],
    ["x\ty", "contains a tab (U+0009)"],
    ["x\u0001", "contains the control character U+0001"],
    ["x\u007f", "contains the control character U+007F"],
    ["clé", 'contains "é" (U+00E9)'],
    ["x-\u{1f600}", 'contains "\u{1f600}" (U+1F600)'],
    ["x(y)", 'contains "("'],
    ["x/y", 'contains "/"'],
    ['x"y', 'contains """'],
    ["x@y", 'contains "@"'],
    ["x[y]", 'contains "["'],
    ["x{y}", 'contains "{"'],
    ["x=y", 'contains "="'],
    ["x,y", 'contains ","'],
    ["x;y", 'contains ";"'],
  ])("refuses %j, which %s", (name, part) => {
    const problem = headerNameProblem(name);
    expect(problem).toContain(part);
    expect(problem).toMatch(
      /a header name may only contain letters, digits and !#\$%&'\*\+-\.\^_`\|~$/,
    );
  });

  it("refuses an empty name", () => {
    expect(headerNameProblem("")).toBe("Header name must not be empty");
  });

  it("refuses a name longer than the limit without repeating it", () => {
    expect(headerNameProblem("a".repeat(MAX_HEADER_NAME_LENGTH + 1))).toBe(
      `Header name is ${MAX_HEADER_NAME_LENGTH + 1} characters long; at most ${MAX_HEADER_NAME_LENGTH} are allowed`,
    );
  });

  const connectionHeaders = [
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
    "proxy-authorization",
    "proxy-authenticate",
    "proxy-connection",
    "proxy-",
    "proxy-anything",
  ];
  const spellings = (name: string) => [
    name,
    name.toUpperCase(),
    name.replace(/(^|-)([a-z])/g, (_, dash: string, char: string) => dash + char.toUpperCase()),
    name.replace(/^./, (char) => char.toUpperCase()),
  ];

  it.each(connectionHeaders.flatMap(spellings))("refuses the connection header %j", (name) => {
    expect(headerNameProblem(name)).toBe(
      `Header name "${name}" is reserved: it describes the connection, which the broker manages`,
    );
  });

  it.each([
    ...["webhook-id", "webhook-timestamp", "webhook-signature", "webhook-", "webhook-x"].flatMap(
      spellings,
    ),
  ])("refuses the broker's own %j", (name) => {
    expect(headerNameProblem(name)).toBe(
      `Header name "${name}" is reserved: webhook-* headers are set by the broker`,
    );
  });

  it.each([
    ...["switchboard-topic", "switchboard-attempt", "switchboard-", "switchboard-x"].flatMap(
      spellings,
    ),
  ])("refuses the broker's own %j", (name) => {
    expect(headerNameProblem(name)).toBe(
      `Header name "${name}" is reserved: switchboard-* headers are set by the broker`,
    );
  });

  it.each([
    ["Proxy-Authorization", "it describes the connection"],
    ["WEBHOOK-ID", "webhook-* headers are set by the broker"],
    ["Switchboard-Topic", "switchboard-* headers are set by the broker"],
    ["Host", "it describes the connection"],
    ["Transfer-Encoding", "it describes the connection"],
  ])("refuses %j because %s", (name, part) => {
    expect(headerNameProblem(name)).toContain(part);
  });
});

describe("headerValueProblem", () => {
  it.each([
    ["an empty value", ""],
    ["a token", "quiet"],
    ["inner spaces and tabs", "a b\tc"],
    [
      "every visible ASCII character",
      Array.from({ length: 94 }, (_, i) => String.fromCharCode(0x21 + i)).join(""),
    ],
    ["a bearer token", "Bearer abc.def-ghi_jkl~"],
    ["a quoted string", '"hello, world"'],
    ["JSON", '{"a":[1,2]}'],
    ["a value at the limit", "v".repeat(MAX_HEADER_VALUE_LENGTH)],
  ])("accepts %s", (_, value) => {
    expect(headerValueProblem(value)).toBeUndefined();
  });

  it.each([
    [
      "CRLF",
      "a\r\nInjected: 1",
      "contains a carriage return (U+000D); header values cannot contain CR, LF or NUL",
    ],
    [
      "a bare LF",
      "a\nb",
      "contains a line feed (U+000A); header values cannot contain CR, LF or NUL",
    ],
    [
      "a bare CR",
      "a\rb",
      "contains a carriage return (U+000D); header values cannot contain CR, LF or NUL",
    ],
    [
      "NUL",
      "a\0b",
      "contains a NUL character (U+0000); header values cannot contain CR, LF or NUL",
    ],
    ["a trailing LF", "value\n", "contains a line feed (U+000A)"],
    [
      "a bell",
      "a\u0007b",
      "contains the control character U+0007; header values cannot contain control characters",
    ],
    ["an escape", "\u001b[31m", "contains the control character U+001B"],
    ["DEL", "a\u007fb", "contains the control character U+007F"],
    ["a vertical tab", "a\vb", "contains the control character U+000B"],
    [
      "a euro sign",
      "5 \u20ac",
      'contains "\u20ac" (U+20AC); header values can only carry ASCII text',
    ],
    ["an emoji", "hi \u{1f44b}", 'contains "\u{1f44b}" (U+1F44B)'],
    ["a CJK character", "\u6771\u4eac", 'contains "\u6771" (U+6771)'],
    ["a lone surrogate", "a\ud800", "(U+D800)"],
    ["a leading space", " a", "Header value must not start or end with a space or tab"],
    ["a trailing space", "a ", "Header value must not start or end with a space or tab"],
    ["a leading tab", "\ta", "Header value must not start or end with a space or tab"],
    ["only a space", " ", "Header value must not start or end with a space or tab"],
    [
      "a value over the limit",
      "v".repeat(MAX_HEADER_VALUE_LENGTH + 1),
      `Header value is ${MAX_HEADER_VALUE_LENGTH + 1} characters long; at most ${MAX_HEADER_VALUE_LENGTH} are allowed`,
    ],
  ])("refuses %s", (_, value, part) => {
    expect(headerValueProblem(value)).toContain(part);
  });

  it("keeps the value itself out of the reason", () => {
    expect(headerValueProblem("secret-token\r\n")).not.toContain("secret-token");
  });

  it.each([["a\r\nb"], ["a\nb"], ["a\0b"]])(
    "refuses what fetch's Headers would refuse: %j",
    (value) => {
      expect(() => new Headers({ x: value })).toThrow();
      expect(headerValueProblem(value)).toBeDefined();
    },
  );

  it.each([["a\tb"], ['"q"'], ["~!@#$%^&*()"]])(
    "accepts what fetch's Headers accepts: %j",
    (value) => {
      expect(new Headers({ x: value }).get("x")).toBe(value);
      expect(headerValueProblem(value)).toBeUndefined();
    },
  );
});

describe("normalizeHeaders", () => {
  it.each([
    ["no headers", {}, {}],
    ["lower-cases names", { "X-Api-Key": "k", MODE: "quiet" }, { "x-api-key": "k", mode: "quiet" }],
    ["keeps values as they are", { "X-A": "Mixed Case Value" }, { "x-a": "Mixed Case Value" }],
    ["lets a later duplicate win", { "X-Mode": "a", "x-mode": "b" }, { "x-mode": "b" }],
    ["lets the last of several win", { a: "1", A: "2", b: "3" }, { a: "2", b: "3" }],
    ["keeps an empty value", { "x-empty": "" }, { "x-empty": "" }],
  ])("%s", (_, input: Record<string, string>, expected: Record<string, string>) => {
    expect(normalizeHeaders(input)).toEqual(expected);
  });

  it("keeps a header named __proto__ as an ordinary header", () => {
    const input: Record<string, string> = JSON.parse('{"__proto__":"x","Constructor":"y"}');
    const normalized = normalizeHeaders(input);
    expect(Object.keys(normalized)).toEqual(["__proto__", "constructor"]);
    expect(Object.getPrototypeOf(normalized)).toBe(Object.prototype);
    expect(Object.getOwnPropertyDescriptor(normalized, "__proto__")?.value).toBe("x");
  });

  it("does not change its input", () => {
    const input = { "X-A": "1" };
    normalizeHeaders(input);
    expect(input).toEqual({ "X-A": "1" });
  });

  it("merges so that the later source wins whatever the case", () => {
    const message = { "X-Mode": "from message", "x-other": "m" };
    const subscriber = { "x-mode": "from subscriber" };
    expect({ ...normalizeHeaders(message), ...normalizeHeaders(subscriber) }).toEqual({
      "x-mode": "from subscriber",
      "x-other": "m",
    });
  });
});
