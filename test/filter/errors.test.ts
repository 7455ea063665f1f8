import { describe, expect, it } from "vitest";
import {
  compileExpression,
  FilterSyntaxError,
  UnexpectedTypeError,
  UnknownFunctionError,
  UnknownOptionError,
  UnknownPropertyError,
} from "../../src/filter";

const run = (expression: string, data: unknown = {}) => compileExpression(expression)(data);

describe("evaluation errors are returned, never thrown", () => {
  it.each([
    ["a", {}, UnknownPropertyError, "ReferenceError", "Property “a” does not exist."],
    ["toString", {}, UnknownPropertyError, "ReferenceError", "Property “toString” does not exist."],
    [
      "constructor",
      {},
      UnknownPropertyError,
      "ReferenceError",
      "Property “constructor” does not exist.",
    ],
    [
      "__proto__",
      {},
      UnknownPropertyError,
      "ReferenceError",
      "Property “__proto__” does not exist.",
    ],
    [
      "a",
      Object.create({ a: 42 }),
      UnknownPropertyError,
      "ReferenceError",
      "Property “a” does not exist.",
    ],
    [
      "something of nothing",
      { nothing: undefined },
      UnknownPropertyError,
      "ReferenceError",
      "Property “something” does not exist.",
    ],
    [
      "toString of something",
      { something: {} },
      UnknownPropertyError,
      "ReferenceError",
      "Property “toString” does not exist.",
    ],
    [
      "length of s",
      { s: "abc" },
      UnknownPropertyError,
      "ReferenceError",
      "Property “length” does not exist.",
    ],
    ["f(1)", {}, UnknownFunctionError, "ReferenceError", "Unknown function: f()"],
    ["toString()", {}, UnknownFunctionError, "ReferenceError", "Unknown function: toString()"],
    [
      "1 == 1 and 1",
      {},
      UnexpectedTypeError,
      "TypeError",
      "Expected a logical value (“true” or “false”), but got a number instead.",
    ],
    [
      "1 or 1 != 1",
      {},
      UnexpectedTypeError,
      "TypeError",
      "Expected a logical value (“true” or “false”), but got a number instead.",
    ],
    [
      'not "hello"',
      {},
      UnexpectedTypeError,
      "TypeError",
      "Expected a logical value (“true” or “false”), but got a text instead.",
    ],
    [
      "if 1 then 2 else 3",
      {},
      UnexpectedTypeError,
      "TypeError",
      "Expected a logical value (“true” or “false”), but got a number instead.",
    ],
    [
      "num + bool",
      { num: 1, bool: true },
      UnexpectedTypeError,
      "TypeError",
      "Expected a text or number, but got a true instead.",
    ],
    [
      "a + 1",
      { a: null },
      UnexpectedTypeError,
      "TypeError",
      "Expected a text or number, but got a undefined instead.",
    ],
    [
      "a + 1",
      { a: {} },
      UnexpectedTypeError,
      "TypeError",
      "Expected a text or number, but got a undefined instead.",
    ],
    [
      "a + 1",
      { a: [1, 2] },
      UnexpectedTypeError,
      "TypeError",
      "Expected a text or number, but got a undefined instead.",
    ],
    [
      "a + 1",
      { a: Math.abs },
      UnexpectedTypeError,
      "TypeError",
      "Expected a text or number, but got a object instead.",
    ],
    [
      "date + 1",
      { date: new Date(0) },
      UnexpectedTypeError,
      "TypeError",
      "Expected a text or number, but got a undefined instead.",
    ],
    [
      '"a" < "b"',
      {},
      UnexpectedTypeError,
      "TypeError",
      "Expected a number, but got a text instead.",
    ],
    ['"a" * 2', {}, UnexpectedTypeError, "TypeError", "Expected a number, but got a text instead."],
    ['-"a"', {}, UnexpectedTypeError, "TypeError", "Expected a number, but got a text instead."],
    [
      "abc ~= 1",
      { abc: "x" },
      UnexpectedTypeError,
      "TypeError",
      "Expected a text, but got a number instead.",
    ],
    [
      "1 in x",
      { x: null },
      UnexpectedTypeError,
      "TypeError",
      "Expected a list, but got a undefined instead.",
    ],
    [
      "x in (1, 2)",
      { x: undefined },
      UnexpectedTypeError,
      "TypeError",
      "Expected a list, but got a undefined instead.",
    ],
    [
      'x ~= "("',
      { x: "a" },
      SyntaxError,
      "SyntaxError",
      "Invalid regular expression: /(/: Unterminated group",
    ],
  ])("%s on %j returns %O named %s", (expression, data, errorClass, name, message) => {
    const result = run(expression, data);
    expect(result).toBeInstanceOf(errorClass);
    expect(result).toMatchObject({ name, message });
  });

  it("evaluates a call's arguments before finding out the function is unknown", () => {
    expect(run("nope(missing)")).toBeInstanceOf(UnknownPropertyError);
  });

  it("returns what a custom function throws", () => {
    const boom = () => {
      throw new RangeError("boom");
    };
    const fn = compileExpression("boom()", { extraFunctions: { boom } });
    expect(() => fn()).not.toThrow();
    expect(fn()).toBeInstanceOf(RangeError);
  });

  it("refuses non-callable extra functions at evaluation", () => {
    const options = { extraFunctions: { sqrt: undefined, a: 42, b: {} } } as unknown as Parameters<
      typeof compileExpression
    >[1];
    for (const expression of ["a()", "b()", "sqrt(4)"]) {
      expect(compileExpression(expression, options)()).toBeInstanceOf(UnknownFunctionError);
    }
    expect(compileExpression("sqrt(4)", options)()).toMatchObject({
      message: "Unknown function: sqrt()",
    });
  });

  it("carries filtrex's error details", () => {
    expect(run("a")).toMatchObject({ I18N_STRING: "UNKNOWN_PROPERTY", propertyName: "a" });
    expect(run("f()")).toMatchObject({ I18N_STRING: "UNKNOWN_FUNCTION", functionName: "f" });
    expect(run('-"a"')).toMatchObject({
      I18N_STRING: "UNEXPECTED_TYPE",
      expectedType: "number",
      recievedType: "text",
    });
  });
});

describe("syntax errors are thrown, with the position", () => {
  it.each([
    ["", 0, "Expecting '-', 'not', 'if', '(', 'Number', 'Symbol', 'String', got 'EndOfExpression'"],
    ["1 +", 3, "got 'EndOfExpression'"],
    ["a b", 2, "got 'Symbol'"],
    ["(1", 2, "got 'EndOfExpression'"],
    ["1)", 1, "got ')'"],
    ["()", 1, "got ')'"],
    ["(1,)", 3, "got ')'"],
    ["f(1,", 4, "got 'EndOfExpression'"],
    ["not(a)", 5, "got ')'"],
    ["a of(b)", 6, "got ')'"],
    ["if a then b", 11, "got 'EndOfExpression'"],
    ["a ? b", 5, "got 'EndOfExpression'"],
    ["1 == == 2", 5, "got '=='"],
    ["(1, 2) of x", 7, "got 'of'"],
    ["f(x)(y)", 4, "got '('"],
    ["1 +\n 2 )", 7, "Parse error on line 2:"],
  ])("%j fails at %i", (expression, position, fragment) => {
    let thrown: unknown;
    try {
      compileExpression(expression);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(FilterSyntaxError);
    expect(thrown).toMatchObject({ name: "Error", position });
    expect((thrown as Error).message).toContain(fragment);
  });

  it.each([
    ['"abc', 0],
    ['"\\n"', 0],
    ["'\\'", 0],
    ['"a\\" == "; evil = true; //"', 9],
    ["1.", 0],
    ["1.2.3", 0],
    ["a = 1", 2],
    ["a && b", 2],
    ["é", 0],
    ["[1]", 0],
  ])("lexical error in %j at %i", (expression, position) => {
    expect(() => compileExpression(expression)).toThrow(
      /^Lexical error on line 1\. Unrecognized text\./,
    );
    expect(() => compileExpression(expression)).toThrow(expect.objectContaining({ position }));
  });

  it("reports a parse error before a later lexical error, as filtrex does", () => {
    expect(() => compileExpression("a b = c")).toThrow(/^Parse error/);
  });

  it("lays the message out as filtrex does", () => {
    expect(() => compileExpression("not(a)")).toThrow(
      [
        "Parse error on line 1:",
        "not(a)",
        "-----^",
        "Expecting 'EndOfExpression', '-', '+', '*', '/', '^', 'mod', 'and', 'or', 'in', 'notIn', '%', '?', '==', '!=', '~=', '<', '<=', '>=', '>', got ')'",
      ].join("\n"),
    );
  });

  it("refuses an octal literal with a fraction, which filtrex cannot compile either", () => {
    expect(() => compileExpression("010.5")).toThrow(FilterSyntaxError);
  });

  it("refuses nesting deeper than 256 levels with a position, without overflowing the stack", () => {
    const deep = `${"(".repeat(10_000)}1${")".repeat(10_000)}`;
    expect(() => compileExpression(deep)).toThrow(expect.objectContaining({ position: 256 }));
    expect(() => compileExpression(`${"not ".repeat(10_000)}a`)).toThrow(FilterSyntaxError);
    expect(compileExpression(`${"(".repeat(256)}1${")".repeat(256)}`)()).toBe(1);
    expect(compileExpression(`${"- ".repeat(256)}1`)()).toBe(1);
    expect(
      compileExpression(`${"if t then ".repeat(85)}1${" else 0".repeat(85)}`)({ t: true }),
    ).toBe(1);
  });

  it("evaluates long flat chains without deep recursion", () => {
    expect(compileExpression(Array(50_000).fill("1").join(" + "))()).toBe(50_000);
    expect(compileExpression(Array(50_000).fill("a").join(" or "))({ a: false })).toBe(false);
  });
});

describe("options", () => {
  it.each([["extraFunction"], ["customProps"], ["bogus"]])(
    "refuses the unknown option %s",
    (key) => {
      expect(() => compileExpression("1", { [key]: true } as never)).toThrow(UnknownOptionError);
      expect(() => compileExpression("1", { [key]: true } as never)).toThrow(
        expect.objectContaining({ name: "TypeError", keyName: key, I18N_STRING: "UNKNOWN_OPTION" }),
      );
    },
  );

  it("refuses filtrex 2's three-argument API", () => {
    const legacy = compileExpression as unknown as (...args: unknown[]) => unknown;
    expect(() => legacy("1", {}, () => "foo")).toThrow(TypeError);
    expect(() => legacy("1", { myCustomFunc: (n: number) => n * n })).toThrow(UnknownOptionError);
  });
});
