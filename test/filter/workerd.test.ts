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
});
