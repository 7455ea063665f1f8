import { describe, expect, it } from "vitest";
import {
  base64DecodedLength,
  base64ToBytes,
  bodyBytes,
  filterBody,
  isBase64,
  type MessageBody,
} from "../../src/publish/body";

const text = (value: string, contentType: string): MessageBody => ({
  kind: "text",
  text: value,
  contentType,
});
const bytes = (value: string, contentType: string): MessageBody => ({
  kind: "bytes",
  base64: btoa(value),
  contentType,
});

describe("filterBody", () => {
  it.each<[string, MessageBody, unknown]>([
    ["a JSON body is its value", { kind: "json", value: { a: [1] }, contentType: "x" }, { a: [1] }],
    ["a JSON null body is null", { kind: "json", value: null, contentType: "x" }, null],
    ["no body is null", { kind: "none" }, null],
    ["JSON text is parsed", text('{"category":"food"}', "application/json"), { category: "food" }],
    [
      "JSON text with parameters and a +json type is parsed",
      text("[1,2]", "application/vnd.api+json; charset=utf-8"),
      [1, 2],
    ],
    ["JSON text that does not parse is the text", text("{oops", "application/json"), "{oops"],
    ["other text is the text", text('{"a":1}', "text/plain"), '{"a":1}'],
    [
      "raw JSON bytes are parsed",
      bytes('{"category":"food"}', "application/json"),
      {
        category: "food",
      },
    ],
    ["raw text bytes are the text", bytes("hello", "text/plain; charset=utf-8"), "hello"],
    ["raw JSON bytes that do not parse are the text", bytes("nope", "application/json"), "nope"],
    ["binary bytes are null", bytes("\x89PNG", "image/png"), null],
    ["octet streams are null", bytes("abc", "application/octet-stream"), null],
  ])("%s", (_, body, expected) => {
    expect(filterBody(body)).toEqual(expected);
  });

  it("decodes raw text bytes as UTF-8", () => {
    const utf8 = String.fromCharCode(...new TextEncoder().encode('{"city":"Zürich"}'));
    expect(
      filterBody({ kind: "bytes", base64: btoa(utf8), contentType: "application/json" }),
    ).toEqual({ city: "Zürich" });
  });
});

describe("bodyBytes", () => {
  it.each<[string, MessageBody, string]>([
    ["JSON as serialized", { kind: "json", value: { a: "é" }, contentType: "x" }, '{"a":"é"}'],
    ["text as UTF-8", text("grüße", "text/plain"), "grüße"],
    ["no body as nothing", { kind: "none" }, ""],
  ])("sends %s", (_, body, expected) => {
    expect(new TextDecoder().decode(bodyBytes(body))).toBe(expected);
  });

  it("sends base64 bodies byte for byte", () => {
    expect([...bodyBytes({ kind: "bytes", base64: "AP8Q", contentType: "x" })]).toEqual([
      0x00, 0xff, 0x10,
    ]);
  });
});

describe("base64", () => {
  it.each(["", "AA==", "AAA=", "AAAA", "AA", "AAA", "+/+/"])("accepts %j", (value) => {
    expect(isBase64(value)).toBe(true);
  });

  it.each(["A", "AAAAA", "AA=A", "AA AA", "AA\nAA", "-_-_", "abc$", "AA==="])(
    "refuses %j",
    (value) => {
      expect(isBase64(value)).toBe(false);
    },
  );

  it.each([0, 1, 2, 3, 4, 5, 100, 1000])("knows the decoded length of %i bytes", (length) => {
    const encoded = btoa("\0".repeat(length));
    expect(base64DecodedLength(encoded)).toBe(length);
    expect(base64DecodedLength(encoded.replace(/=+$/, ""))).toBe(length);
    expect(base64ToBytes(encoded)).toHaveLength(length);
  });
});
