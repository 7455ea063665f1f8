import { describe, expect, it } from "vitest";
import { compileExpression, compileFilter, UnsafeRegexError } from "../../src/filter";

describe("inside workerd", () => {
  it("runs in the Workers runtime", () => {
    expect(navigator.userAgent).toBe("Cloudflare-Workers");
  });

  it("compiles and evaluates with code generation from strings refused, as in production", () => {
    // The test runner lets `new Function` through; production does not. Refuse it here too.
    const saved = {
      Function: Reflect.get(globalThis, "Function"),
      eval: Reflect.get(globalThis, "eval"),
    };
    function refuse(): never {
      throw new EvalError("Code generation from strings disallowed for this context");
    }
    Reflect.set(globalThis, "Function", refuse);
    Reflect.set(globalThis, "eval", refuse);
    try {
      expect(() => new Function("return 1")).toThrow(EvalError);
      const fn = compileExpression('a.b * 2 > 5 and c ~= "^x" and d in (1, 2)', {
        customProp: (name, get) => (name === "a.b" ? 3 : get(name)),
      });
      expect(fn({ c: "xyz", d: 2 })).toBe(true);
      const filter = compileFilter('body.kind == "order" and body.total >= 10');
      expect(filter.ok).toBe(true);
      if (filter.ok) {
        const message = {
          id: "m",
          topic: "t",
          body: { kind: "order", total: 12 },
          headers: {},
          query: {},
          pathParams: {},
          method: null,
          publishedAt: "2026-01-01T00:00:00Z",
        };
        expect(filter.filter.matches(message)).toBe(true);
      }
    } finally {
      Reflect.set(globalThis, "Function", saved.Function);
      Reflect.set(globalThis, "eval", saved.eval);
    }
  });

  it("refuses inline modifier groups, which this runtime honours and the backtracking check cannot model", () => {
    // Case-insensitively `a` and `A` are the same character, so `(?i:a|A)*` is `(a|a)*`: two
    // ways per character, doubling the work with each one. The runtime runs it as such, so the
    // refusal must come from the check, not from the pattern failing to compile.
    expect(/^(?i:a|A)$/.test("A")).toBe(true);
    expect(/(?i:a|A)/.source).toBe("(?i:a|A)");
    const literal = compileFilter('body.x ~= "^(?i:a|A)*$"');
    expect(literal).toMatchObject({ ok: false, problem: { position: 10 } });
    if (!literal.ok) expect(literal.problem.message).toContain("inline modifier group");
    const computed = compileFilter("body.x ~= body.pattern");
    expect(computed.ok).toBe(true);
    if (computed.ok) {
      const outcome = computed.filter.evaluate({
        id: "m",
        topic: "t",
        body: { x: `${"a".repeat(26)}!`, pattern: "^(?i:a|A)*$" },
        headers: {},
        query: {},
        pathParams: {},
        method: null,
        publishedAt: "2026-01-01T00:00:00Z",
      });
      expect(outcome.matched).toBe(false);
      expect(outcome.error).toBeInstanceOf(UnsafeRegexError);
    }
  });

  it("refuses a chain of bounded quantifiers whose splits of the text exceed the budget", () => {
    // Against 64 `a`s this pattern tries every split of them between the eight quantifiers
    // before failing at the missing `b`: 17^7 ways that reach `b`, over 2^28.
    const chain = compileFilter(`body.x ~= "^${"a{0,16}".repeat(8)}b"`);
    expect(chain).toMatchObject({ ok: false, problem: { position: 10 } });
    if (!chain.ok) expect(chain.problem.message).toContain("split the same text");
    const alternatives = compileFilter(`body.x ~= "^${"(?:aa|a)".repeat(26)}c"`);
    expect(alternatives).toMatchObject({ ok: false, problem: { position: 10 } });
  });

  it("cuts the text for an unanchored chain of a? so that its worst case stays in the budget", () => {
    // 20 of the 21 `a?` can each hand an `a` to the next: 2^20 ways per start position, so the
    // text is cut to 2^24 / 2^20 = 16 characters and the worst case to 2^20 × 16 steps.
    const result = compileFilter(`body.x ~= "${"a?".repeat(21)}b"`);
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    const message = (x: string) => ({
      id: "m",
      topic: "t",
      body: { x },
      headers: {},
      query: {},
      pathParams: {},
      method: null,
      publishedAt: "2026-01-01T00:00:00Z",
    });
    expect(result.filter.matches(message(`${"a".repeat(15)}b`))).toBe(true);
    expect(result.filter.matches(message(`${"a".repeat(16)}b`))).toBe(false);
  });
});
