import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  type CompiledFilter,
  compileFilter,
  FILTER_MAX_DEPTH,
  FILTER_MAX_LENGTH,
  FILTER_MAX_TEXT_LENGTH,
  FILTER_REGEX_INPUT_LIMIT,
  type FilterMessage,
  TextTooLongError,
  UnexpectedTypeError,
  UnsafeRegexError,
} from "../../src/filter";

const base: FilterMessage = {
  id: "msg_1",
  topic: "orders",
  body: { category: "food", green_light: true, count: 3, customer: { tier: "gold" }, tags: ["a"] },
  headers: { mode: "quiet", "x-region": "eu" },
  query: { tag: ["new", "hot"], page: "2" },
  pathParams: { shop: "s1" },
  method: "POST",
  publishedAt: "2026-11-28T12:00:00.000Z",
};

const message = (body: unknown, overrides: Partial<FilterMessage> = {}): FilterMessage => ({
  ...base,
  body,
  ...overrides,
});

function compiled(source: string): CompiledFilter {
  const result = compileFilter(source);
  if (!result.ok)
    throw new Error(`${source}: ${result.problem.message} at ${result.problem.position}`);
  return result.filter;
}

describe("compileFilter matches messages", () => {
  it.each([
    ['body.category == "food" and headers.mode == "quiet"', true],
    ['body.category == "food" and headers.mode == "loud"', false],
    ["body.green_light", true],
    ['body.customer.tier == "gold"', true],
    ['body.customer.tier in ("gold", "platinum")', true],
    ["body.count >= 1 and body.count <= 5", true],
    ["1 <= body.count < 3", false],
    ['topic == "orders"', true],
    ['id == "msg_1"', true],
    ['method == "POST"', true],
    ['"hot" in query.tag', true],
    ['query.page == "2"', true],
    ['pathParams.shop == "s1"', true],
    ["'x-region' of headers == \"eu\"", true],
    ['publishedAt ~= "^2026-11"', true],
    ['body.category ~= "^fo+d$"', true],
    ['body.category not in ("toys", "books")', true],
    ["exists(body.customer) and not empty(body.tags)", true],
    ['if body.count > 2 then body.category == "food" else false', true],
    ['body.missing == "x" or body.green_light', true],
  ])("%s → %s", (source, expected) => {
    expect(compiled(source).matches(base)).toBe(expected);
    expect(compiled(source).evaluate(base)).toEqual({ matched: expected });
  });

  it.each([
    ["body.green_light", { green_light: false }, false],
    ["body.green_light", {}, false],
    ["body.count", { count: 0 }, false],
    ["body.count", { count: 2 }, true],
    ["body.name", { name: "" }, false],
    ["body.name", { name: "x" }, true],
    ["body.flag", { flag: null }, false],
    ["body", "text body", true],
    ["body.customer.tier", { customer: null }, false],
  ])("%s on %j matches by truthiness: %s", (source, body, expected) => {
    expect(compiled(source).matches(message(body))).toBe(expected);
  });

  it("treats a missing field as undefined rather than an error", () => {
    const filter = compiled('body.customer.tier == "gold"');
    expect(filter.evaluate(message({}))).toEqual({ matched: false });
    expect(filter.evaluate(message(null))).toEqual({ matched: false });
    expect(filter.evaluate(message("text"))).toEqual({ matched: false });
  });

  it("reports evaluation errors as non-matches with the error", () => {
    const filter = compiled("body.count > 5");
    expect(filter.matches(message({}))).toBe(false);
    const result = filter.evaluate(message({ count: "many" }));
    expect(result.matched).toBe(false);
    expect(result.error).toBeInstanceOf(UnexpectedTypeError);
  });

  it("refuses to build text longer than FILTER_MAX_TEXT_LENGTH with +, as a non-match", () => {
    const field = "a".repeat(FILTER_MAX_TEXT_LENGTH / 4);
    const four = compiled("body.s + body.s + body.s + body.s == body.t");
    expect(four.evaluate(message({ s: field, t: field.repeat(4) }))).toEqual({ matched: true });

    // Hundreds of terms fit in a filter: the text would pass the memory of a Worker long before
    // anything read it, so the first + past the limit stops the evaluation.
    const many = compiled(`${Array(400).fill("body.s").join(" + ")} == ""`);
    const result = many.evaluate(message({ s: field }));
    expect(result.matched).toBe(false);
    expect(result.error).toBeInstanceOf(TextTooLongError);
    expect(result.error?.message).toBe(
      `The text would be ${FILTER_MAX_TEXT_LENGTH + field.length} characters long; a filter builds at most ${FILTER_MAX_TEXT_LENGTH}`,
    );
    expect(compiled("body.n + body.n == 2").matches(message({ n: 1 }))).toBe(true);
  });

  it("never reaches the prototype", () => {
    for (const source of ["body.constructor", "body.toString", "body.__proto__", "constructor"]) {
      expect(compiled(source).evaluate(message({}))).toEqual({ matched: false });
    }
  });

  it.each([[""], ["   "], ["\n\t "]])("matches everything with the blank filter %j", (source) => {
    const filter = compiled(source);
    expect(filter.source).toBe(source);
    expect(filter.matches(message(null))).toBe(true);
    expect(filter.evaluate(message(null))).toEqual({ matched: true });
  });
});

describe("compileFilter refuses bad filters with a position, never throwing", () => {
  it.each([
    ["(a", 2],
    ["a)", 1],
    ["((a)", 4],
    ['"abc', 0],
    ["'abc", 0],
    ['"a\\n"', 0],
    ["a = 1", 2],
    ["a === 1", 4],
    ["a && b", 2],
    ["a || b", 2],
    ["!a", 0],
    ["a ==", 4],
    ["== a", 0],
    ["body.x and", 7],
    ["if a then b", 11],
    ["a b", 2],
    ["(1,)", 3],
    ["1.2.3", 0],
    ["010.5", 0],
    ["foo(body.x)", 0],
    ["body.n > bogus(1)", 9],
    ["toString(1)", 0],
    ['body.x ~= "("', 10],
    ['body.x ~= "[a-"', 10],
    ['body.x ~= "(a+)+"', 10],
    ['body.x ~= "(a*)*"', 10],
    ['body.x ~= "(a|a)*"', 10],
    ['body.x ~= "(\\\\w+\\\\s?)*"', 10],
    ['body.x ~= "^([a-z]+\\\\.)+com$"', 10],
  ])("%j at %i", (source, position) => {
    const result = compileFilter(source);
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.problem.position).toBe(position);
      expect(result.problem.message).not.toBe("");
    }
  });

  it("refuses a filter longer than 4 KB, at the byte that crosses the limit", () => {
    expect(compileFilter(`${"a".repeat(FILTER_MAX_LENGTH - 1)} `).ok).toBe(true);
    expect(compileFilter("a".repeat(FILTER_MAX_LENGTH + 1))).toEqual({
      ok: false,
      problem: { message: expect.stringContaining("4096 bytes"), position: FILTER_MAX_LENGTH },
    });
    // The quote is one byte and each é two: the 2048th é (at offset 2048) makes 4097.
    const multibyte = compileFilter(`"${"é".repeat(2048)}"`);
    expect(multibyte.ok ? -1 : multibyte.problem.position).toBe(2048);
    expect(compileFilter(`"${"é".repeat(2047)}"`).ok).toBe(true);
  });

  it("refuses nesting deeper than 64 levels, at the construct that is too deep", () => {
    const nested = (depth: number) => `${"(".repeat(depth)}1${")".repeat(depth)}`;
    expect(compileFilter(nested(FILTER_MAX_DEPTH)).ok).toBe(true);
    expect(compileFilter(nested(FILTER_MAX_DEPTH + 1))).toEqual({
      ok: false,
      problem: { message: "Nested deeper than 64 levels", position: FILTER_MAX_DEPTH },
    });
    const negations = compileFilter(`${"not ".repeat(200)}body.x`);
    expect(negations.ok).toBe(false);
  });

  it.each([
    ["10,000 nested parentheses", `${"(".repeat(10_000)}1${")".repeat(10_000)}`],
    ["10,000 open parentheses", "(".repeat(10_000)],
    ["1 MB of text", "x".repeat(1_000_000)],
    ["1 MB unterminated string", `"${"a".repeat(1_000_000)}`],
    ["1 MB of operators", "+".repeat(1_000_000)],
  ])("refuses %s quickly", (_, source) => {
    const started = Date.now();
    const result = compileFilter(source);
    expect(result.ok).toBe(false);
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it("never throws, whatever the string", () => {
    const alphabet = fc.constantFrom(
      ..."()\"'\\,.=!~<>+-*/^%?: \n\tabcnotiforelsemd01239$_é😀\u2028\uD800".split(""),
    );
    const source = fc.oneof(
      fc.string({ unit: "binary", maxLength: 64 }),
      fc.array(alphabet, { maxLength: 80 }).map((chars) => chars.join("")),
    );
    fc.assert(
      fc.property(source, (text) => {
        const result = compileFilter(text);
        if (result.ok) {
          expect(typeof result.filter.matches(base)).toBe("boolean");
        } else {
          expect(result.problem.position).toBeGreaterThanOrEqual(0);
          expect(result.problem.position).toBeLessThanOrEqual(text.length);
        }
      }),
      { seed: 42, numRuns: 3000 },
    );
  });
});

describe("compileFilter guards regular expressions", () => {
  it("refuses invalid and catastrophic patterns computed at evaluation, as non-matches", () => {
    const filter = compiled("body.text ~= body.pattern");
    expect(filter.evaluate(message({ text: "aaaa", pattern: "a+" }))).toEqual({ matched: true });
    const invalid = filter.evaluate(message({ text: "a", pattern: "(" }));
    expect(invalid.matched).toBe(false);
    expect(invalid.error).toBeInstanceOf(SyntaxError);
    const unsafe = filter.evaluate(message({ text: `${"a".repeat(40)}!`, pattern: "(a+)+$" }));
    expect(unsafe.matched).toBe(false);
    expect(unsafe.error).toBeInstanceOf(UnsafeRegexError);
    const long = filter.evaluate(message({ text: "a", pattern: "a".repeat(5000) }));
    expect(long.error).toBeInstanceOf(UnsafeRegexError);
  });

  it("tests a linear pattern against the first 64 KiB of the text only", () => {
    const filter = compiled('body.text ~= "needle"');
    const within = `${"x".repeat(FILTER_REGEX_INPUT_LIMIT - 6)}needle`;
    expect(filter.matches(message({ text: within }))).toBe(true);
    expect(filter.matches(message({ text: `x${within}` }))).toBe(false);
  });

  it("cuts the text further for patterns whose backtracking is polynomial", () => {
    const filter = compiled('body.text ~= "a+b"');
    expect(filter.matches(message({ text: `${"a".repeat(4000)}b` }))).toBe(true);
    expect(filter.matches(message({ text: `${"a".repeat(5000)}b` }))).toBe(false);
    const started = Date.now();
    expect(filter.matches(message({ text: "a".repeat(1_000_000) }))).toBe(false);
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it("keeps working across many distinct computed patterns", () => {
    const filter = compiled("body.text ~= body.pattern");
    for (let index = 0; index < 1000; index++) {
      expect(filter.matches(message({ text: `id-${index}`, pattern: `^id-${index}$` }))).toBe(true);
    }
  });
});
