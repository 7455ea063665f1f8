import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { buildTargetUrl, type QueryParams } from "../../src/delivery/target-url";

function urlOf(
  template: string,
  pathParams: Record<string, string> = {},
  subscriberQuery: QueryParams = {},
  messageQuery: QueryParams = {},
): string {
  const result = buildTargetUrl(template, pathParams, subscriberQuery, messageQuery);
  if (!result.ok) throw new Error(result.reason);
  return result.url;
}

describe("buildTargetUrl path parameters", () => {
  it.each([
    ["https://h.example/hook", {}, "https://h.example/hook"],
    ["https://h.example/orders/:orderId", { orderId: "42" }, "https://h.example/orders/42"],
    [
      "https://h.example/orders/:orderId/items",
      { orderId: "42" },
      "https://h.example/orders/42/items",
    ],
    [
      "https://h.example/orders/{orderId}/items",
      { orderId: "42" },
      "https://h.example/orders/42/items",
    ],
    ["https://h.example/orders/%7BorderId%7D", { orderId: "42" }, "https://h.example/orders/42"],
    ["https://h.example/orders/%7borderId%7d", { orderId: "42" }, "https://h.example/orders/42"],
    ["https://h.example/:a/:b/:a", { a: "1", b: "2" }, "https://h.example/1/2/1"],
    [
      "https://h.example/v{version}/files/{name}.json",
      { version: "2", name: "x" },
      "https://h.example/v2/files/x.json",
    ],
    ["https://h.example/{a}{b}", { a: "x", b: "y" }, "https://h.example/xy"],
    ["https://h.example/:_private/:A1_b", { _private: "p", A1_b: "q" }, "https://h.example/p/q"],
    ["https://h.example/o/:id/", { id: "7" }, "https://h.example/o/7/"],
    ["https://h.example/o/:id", { id: "7", unused: "x" }, "https://h.example/o/7"],
    ["https://h.example:8443/x/:id", { id: "9" }, "https://h.example:8443/x/9"],
    ["http://127.0.0.1:8787/x/:id", { id: "9" }, "http://127.0.0.1:8787/x/9"],
    ["https://h.example/o/:id", { id: "" }, "https://h.example/o/"],
    ["https://h.example/o/:id/x", { id: "" }, "https://h.example/o//x"],
  ])("fills %s with %o", (template, params: Record<string, string>, expected) => {
    expect(urlOf(template, params)).toBe(expected);
  });

  it.each([
    ["a slash", "a/b", "a%2Fb"],
    ["a space", "a b", "a%20b"],
    ["a question mark", "a?b=1", "a%3Fb%3D1"],
    ["a hash", "a#b", "a%23b"],
    ["a percent sign", "100%", "100%25"],
    ["an encoded-looking value", "%2e%2e", "%252e%252e"],
    ["an ampersand", "a&b", "a%26b"],
    ["a plus", "a+b", "a%2Bb"],
    ["a colon", "a:b", "a%3Ab"],
    ["braces", "{x}", "%7Bx%7D"],
    ["a backslash", "a\\b", "a%5Cb"],
    ["non-ASCII text", "gr\u00fc\u00dfe", "gr%C3%BC%C3%9Fe"],
    ["an emoji", "\u{1f44b}", "%F0%9F%91%8B"],
    ["a lone surrogate", "a\ud800", "a%EF%BF%BD"],
    ["a CRLF", "a\r\nb", "a%0D%0Ab"],
    ["a dot inside a value", "a.b", "a.b"],
    ["three dots", "...", "..."],
    ["unreserved characters", "A-z_0.9~!*'()", "A-z_0.9~!*'()"],
  ])("encodes %s in a value", (_, value, encoded) => {
    expect(urlOf("https://h.example/x/:id/y", { id: value })).toBe(
      `https://h.example/x/${encoded}/y`,
    );
    expect(urlOf("https://h.example/x/{id}/y", { id: value })).toBe(
      `https://h.example/x/${encoded}/y`,
    );
  });

  it.each([
    ["https://h.example/:id.json", "https://h.example/:id.json"],
    ["https://h.example/a:id", "https://h.example/a:id"],
    ["https://h.example/::id", "https://h.example/::id"],
    ["https://h.example/:1abc", "https://h.example/:1abc"],
    ["https://h.example/:", "https://h.example/:"],
    ["https://h.example/{1abc}", "https://h.example/%7B1abc%7D"],
    ["https://h.example/{a-b}", "https://h.example/%7Ba-b%7D"],
    ["https://h.example/{}", "https://h.example/%7B%7D"],
    ["https://h.example/x?id=:id&name={id}", "https://h.example/x?id=:id&name={id}"],
  ])("leaves %s alone: not a parameter", (template, expected) => {
    expect(urlOf(template, { id: "7", "1abc": "x" })).toBe(expected);
  });

  it.each([
    [
      "https://h.example/orders/:orderId",
      {},
      ["orderId"],
      "URL needs path parameter orderId, which the message does not have",
    ],
    [
      "https://h.example/{a}/:b/{c}",
      { b: "1" },
      ["a", "c"],
      "URL needs path parameters a, c, which the message does not have",
    ],
    [
      "https://h.example/:a/:a",
      {},
      ["a"],
      "URL needs path parameter a, which the message does not have",
    ],
    [
      "https://h.example/:Id",
      { id: "1" },
      ["Id"],
      "URL needs path parameter Id, which the message does not have",
    ],
    [
      "https://h.example/:constructor/{toString}",
      {},
      ["constructor", "toString"],
      "URL needs path parameters constructor, toString, which the message does not have",
    ],
    [
      "https://h.example/:__proto__",
      {},
      ["__proto__"],
      "URL needs path parameter __proto__, which the message does not have",
    ],
  ])("fails for %s with %o", (template, params: Record<string, string>, missing, reason) => {
    expect(buildTargetUrl(template, params, {}, {})).toEqual({ ok: false, missing, reason });
  });

  it("finds a parameter named like an Object property when the message has it", () => {
    const params: Record<string, string> = JSON.parse('{"__proto__":"p","constructor":"c"}');
    expect(urlOf("https://h.example/:__proto__/{constructor}", params)).toBe(
      "https://h.example/p/c",
    );
  });

  it.each([
    ["https://h.example/a/:id/b", { id: ".." }],
    ["https://h.example/a/:id/b", { id: "." }],
    ["https://h.example/a/{id}/b", { id: ".." }],
    ["https://h.example/a/{x}{y}/b", { x: ".", y: "." }],
  ])(
    "refuses to let %s with %o climb out of its path",
    (template, params: Record<string, string>) => {
      const result = buildTargetUrl(template, params, {}, {});
      expect(result.ok).toBe(false);
      expect(!result.ok && result.missing).toEqual([]);
      expect(!result.ok && result.reason).toMatch(
        /with "\." or "\.\.", which would send the request to a different path$/,
      );
    },
  );

  it("never lets a value change the host, the query or another segment", () => {
    fc.assert(
      fc.property(fc.string({ unit: "grapheme" }), fc.string(), (a, b) => {
        fc.pre(![".", ".."].includes(a) && ![".", ".."].includes(b));
        const url = new URL(urlOf("https://h.example/x/:a/{b}?q=1", { a, b }));
        expect(url.host).toBe("h.example");
        expect(url.search).toBe("?q=1");
        const segments = url.pathname.split("/");
        expect(segments).toHaveLength(4);
        expect(decodeURIComponent(segments[2] ?? "")).toBe(a);
        expect(decodeURIComponent(segments[3] ?? "")).toBe(b.toWellFormed());
      }),
    );
  });

  it("throws for a template that is not a URL", () => {
    expect(() => buildTargetUrl("not a url", {}, {}, {})).toThrow(TypeError);
  });
});

describe("buildTargetUrl query", () => {
  it.each([
    ["no query anywhere", "https://h.example/x", {}, {}, "https://h.example/x"],
    [
      "the URL's own query, kept as written",
      "https://h.example/x?a=1&b=two%20words&c",
      {},
      {},
      "https://h.example/x?a=1&b=two%20words&c",
    ],
    [
      "a subscriber query",
      "https://h.example/x",
      { source: "switchboard" },
      {},
      "https://h.example/x?source=switchboard",
    ],
    ["a message query", "https://h.example/x", {}, { page: "2" }, "https://h.example/x?page=2"],
    [
      "all three, on different names",
      "https://h.example/x?a=1",
      { b: "2" },
      { c: "3" },
      "https://h.example/x?a=1&b=2&c=3",
    ],
    [
      "the message over the subscriber",
      "https://h.example/x",
      { page: "1", keep: "k" },
      { page: "2" },
      "https://h.example/x?page=2&keep=k",
    ],
    [
      "the subscriber over the URL",
      "https://h.example/x?page=0&z=1",
      { page: "1" },
      {},
      "https://h.example/x?z=1&page=1",
    ],
    [
      "the message over the URL",
      "https://h.example/x?page=0",
      {},
      { page: "2" },
      "https://h.example/x?page=2",
    ],
    [
      "every value of a repeated URL parameter",
      "https://h.example/x?tag=a&tag=b&z=1",
      {},
      { tag: "c" },
      "https://h.example/x?z=1&tag=c",
    ],
    [
      "an array as repeated parameters",
      "https://h.example/x",
      {},
      { tag: ["a", "b"] },
      "https://h.example/x?tag=a&tag=b",
    ],
    [
      "an array over an array",
      "https://h.example/x",
      { tag: ["a", "b", "c"] },
      { tag: ["d"] },
      "https://h.example/x?tag=d",
    ],
    [
      "an empty array, which removes the name",
      "https://h.example/x?tag=a",
      { tag: "b" },
      { tag: [] },
      "https://h.example/x",
    ],
    ["an empty value", "https://h.example/x", {}, { flag: "" }, "https://h.example/x?flag="],
    [
      "a name matched after form decoding",
      "https://h.example/x?my%20name=1&my+name=2",
      {},
      { "my name": "3" },
      "https://h.example/x?my%20name=3",
    ],
    [
      "a name matched case-sensitively",
      "https://h.example/x?Page=1",
      {},
      { page: "2" },
      "https://h.example/x?Page=1&page=2",
    ],
    [
      "an empty pair in the URL",
      "https://h.example/x?a=1&&b=2",
      {},
      { c: "3" },
      "https://h.example/x?a=1&b=2&c=3",
    ],
    ["a bare question mark", "https://h.example/x?", {}, { a: "1" }, "https://h.example/x?a=1"],
    [
      "a bare question mark and nothing to add",
      "https://h.example/x?",
      {},
      {},
      "https://h.example/x?",
    ],
  ])(
    "merges %s",
    (_, template, subscriberQuery: QueryParams, messageQuery: QueryParams, expected) => {
      expect(urlOf(template, {}, subscriberQuery, messageQuery)).toBe(expected);
    },
  );

  it.each([
    ["a space", "a b", "a%20b"],
    ["an ampersand and equals sign", "a&b=c", "a%26b%3Dc"],
    ["a plus", "1+1", "1%2B1"],
    ["a hash", "#x", "%23x"],
    ["a slash and question mark", "/?", "%2F%3F"],
    ["non-ASCII text", "\u00e9\u6771", "%C3%A9%E6%9D%B1"],
    ["a lone surrogate", "\udc00", "%EF%BF%BD"],
    ["a CRLF", "\r\n", "%0D%0A"],
  ])("encodes %s in names and values", (_, text, encoded) => {
    expect(urlOf("https://h.example/x", {}, {}, { [text]: text })).toBe(
      `https://h.example/x?${encoded}=${encoded}`,
    );
    const parsed = new URL(urlOf("https://h.example/x", {}, { [text]: [text, "2"] }, {}));
    expect(parsed.searchParams.getAll(text.toWellFormed())).toEqual([text.toWellFormed(), "2"]);
  });

  it("fills the path and merges the query together", () => {
    expect(
      urlOf(
        "https://api.example.com/orders/:orderId/lines/{line}?v=1",
        { orderId: "A/1", line: "2 b" },
        { source: "switchboard", page: "1" },
        { page: "2", tag: ["x", "y"] },
      ),
    ).toBe(
      "https://api.example.com/orders/A%2F1/lines/2%20b?v=1&source=switchboard&page=2&tag=x&tag=y",
    );
  });

  it("does not change its inputs", () => {
    const pathParams = { id: "1" };
    const subscriberQuery = { a: ["1"] };
    const messageQuery = { a: "2" };
    urlOf("https://h.example/:id", pathParams, subscriberQuery, messageQuery);
    expect([pathParams, subscriberQuery, messageQuery]).toEqual([
      { id: "1" },
      { a: ["1"] },
      { a: "2" },
    ]);
  });
});

describe("buildTargetUrl on repeated templates", () => {
  it.each([
    ["https://h.example/hook?x=1", {}, {}, "https://h.example/hook?x=1"],
    ["https://H.example:443/a/../hook", {}, {}, "https://h.example/hook"],
    ["https://h.example/hook", { page: "2" }, {}, "https://h.example/hook?page=2"],
    ["https://h.example/orders/:id", {}, { id: "7" }, "https://h.example/orders/7"],
    ["https://h.example/orders/%7bid%7d", {}, { id: "8" }, "https://h.example/orders/8"],
  ])("gives the same URL every time for %s", (template, query, pathParams, expected) => {
    for (let i = 0; i < 3; i++) {
      expect(urlOf(template, pathParams, query)).toBe(expected);
      // A template seen without a query still takes one when a message brings it.
      expect(urlOf(template, pathParams, query, { n: String(i) })).toBe(
        `${expected}${expected.includes("?") ? "&" : "?"}n=${i}`,
      );
    }
  });
});
