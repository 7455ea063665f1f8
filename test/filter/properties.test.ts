import { describe, expect, it } from "vitest";
import {
  compileExpression,
  type PropertyFunction,
  UnknownPropertyError,
  useDotAccessOperator,
  useDotAccessOperatorAndOptionalChaining,
  useOptionalChaining,
} from "../../src/filter";

describe("property functions", () => {
  it.each([
    ["foo.bar", { foo: { bar: 42 } }, 42],
    ["foo.bar.baz", { foo: { bar: { baz: "deep" } } }, "deep"],
    ["'foo.bar'", { "foo.bar": 1 }, 1],
    ["bar of foo", { foo: { bar: 2 } }, 2],
    ["list.length", { list: [1, 2] }, 2],
  ])("useDotAccessOperator reads %s", (expression, data, expected) => {
    expect(compileExpression(expression, { customProp: useDotAccessOperator })(data)).toBe(
      expected,
    );
  });

  it.each([
    ["foo.bar", { foo: {} }, "bar"],
    ["foo.bar", { foo: null }, "bar"],
    ["foo.toString", { foo: {} }, "toString"],
    ["s.length", { s: "abc" }, "length"],
  ])("useDotAccessOperator refuses %s on %j, naming %s", (expression, data, missing) => {
    const result = compileExpression(expression, { customProp: useDotAccessOperator })(data);
    expect(result).toBeInstanceOf(UnknownPropertyError);
    expect(result).toMatchObject({ propertyName: missing });
  });

  it.each([
    ["bar of foo", { foo: null }, null],
    ["bar of foo", { foo: undefined }, undefined],
    ["bar of foo", { foo: { bar: 42 } }, 42],
  ])("useOptionalChaining reads %s on %j", (expression, data, expected) => {
    expect(compileExpression(expression, { customProp: useOptionalChaining })(data)).toBe(expected);
  });

  it("useOptionalChaining still refuses a missing property of an object", () => {
    const result = compileExpression("bar of foo", { customProp: useOptionalChaining })({
      foo: {},
    });
    expect(result).toBeInstanceOf(UnknownPropertyError);
  });

  const chaining = { customProp: useDotAccessOperatorAndOptionalChaining };
  it.each([
    ["foo.bar", { foo: null }, null],
    ["foo.bar", { foo: { bar: 42 } }, 42],
    ["bar of foo", { foo: null }, null],
    ["bar of foo", { foo: { bar: 42 } }, 42],
    ["foo.bar.baz", { foo: {} }, undefined],
    ["missing", {}, undefined],
    ["s.length", { s: "abc" }, 3],
    ["s.0", { s: "abc" }, "a"],
    ["list.1", { list: [1, 2] }, 2],
    ["'a.b'", { "a.b": 5 }, 5],
    ["'x' of foo", { foo: null }, null],
  ])("useDotAccessOperatorAndOptionalChaining reads %s on %j", (expression, data, expected) => {
    expect(compileExpression(expression, chaining)(data)).toBe(expected);
  });

  it.each([["toString"], ["constructor"], ["__proto__"], ["hasOwnProperty"], ["foo.constructor"]])(
    "useDotAccessOperatorAndOptionalChaining never reaches the prototype: %s is undefined",
    (expression) => {
      expect(compileExpression(expression, chaining)({ foo: {} })).toBeUndefined();
      expect(
        compileExpression(expression, chaining)(Object.create({ foo: 1, toString: 2 })),
      ).toBeUndefined();
    },
  );

  it("calls the shipped property functions directly too", () => {
    const get = (name: string) => ({ a: 1 })[name];
    expect(useDotAccessOperatorAndOptionalChaining("a.b", get, { a: { b: 3 } }, "unescaped")).toBe(
      3,
    );
    expect(useDotAccessOperatorAndOptionalChaining("a", get, null, "unescaped")).toBeNull();
    expect(useDotAccessOperator("a", get, {}, "single-quoted")).toBe(1);
    expect(useOptionalChaining("a", get, undefined, "unescaped")).toBeUndefined();
  });

  it("passes name, safe getter, object and type to a custom property function", () => {
    const seen: unknown[] = [];
    const spy: PropertyFunction = (name, get, object, type) => {
      seen.push([name, object, type]);
      return get(name);
    };
    const data = { a: 1, "b-c": 2 };
    expect(compileExpression("a + 'b-c'", { customProp: spy })(data)).toBe(3);
    expect(seen).toEqual([
      ["a", data, "unescaped"],
      ["b-c", data, "single-quoted"],
    ]);
  });

  it.each([
    ["a", (name: string) => name === "a", true],
    ["a + bb + ccc", (name: string) => name.length, 6],
  ])("resolves %s through the README's custom property functions", (expression, prop, expected) => {
    expect(compileExpression(expression, { customProp: prop })()).toBe(expected);
  });

  it("searches text with a custom property function, as in the README", () => {
    const text = "able was i ere I saw elba\nthe Rain in spain falls MAINLY on the plain";
    const search = (expression: string) =>
      compileExpression(expression, { customProp: (word) => text.includes(word) })();
    expect(search("able and was and i")).toBe(true);
    expect(search("able and was and dog")).toBe(false);
    expect(search("Rain and (missing or MAINLY)")).toBe(true);
    expect(search("NotThere or missing or falls and plain")).toBe(true);
  });

  it("keeps the safe getter away from inherited properties", () => {
    const viaGetter: PropertyFunction = (name, get) => get(name);
    const result = compileExpression("a", { customProp: viaGetter })(Object.create({ a: 1 }));
    expect(result).toBeInstanceOf(ReferenceError);
  });
});

describe("constants", () => {
  const options = { constants: { pi: Math.PI, true: true, false: false } };

  it.each([
    ["2 * pi * radius", { radius: 6 }, 2 * Math.PI * 6],
    ["not true == false and not false == true", {}, true],
    ["pi", { pi: 3 }, Math.PI],
    ["'pi'", { pi: 3 }, 3],
    ["pi of x", { x: { pi: 3 } }, Math.PI],
  ])("%s on %j is %j", (expression, data, expected) => {
    expect(compileExpression(expression, options)(data)).toBe(expected);
  });

  it("shadows data for unquoted names only, as in the README", () => {
    const fn = compileExpression("'a' + a + 'b' + b", { constants: { a: "a_const " } });
    expect(fn({ a: "a_data ", b: "b_data " })).toBe("a_data a_const b_data b_data ");
  });

  it("still evaluates the object of `of` before taking a constant", () => {
    expect(compileExpression("pi of missing", options)({})).toBeInstanceOf(UnknownPropertyError);
  });
});

describe("operators option", () => {
  it("replaces operators, calling unary minus with one argument", () => {
    const calls: unknown[][] = [];
    const minus = (...args: unknown[]) => {
      calls.push(args);
      return "minus";
    };
    const fn = compileExpression("-a + b", {
      operators: { "+": (a, b) => `${String(a)}+${String(b)}`, "-": minus },
    });
    expect(fn({ a: 1, b: 2 })).toBe("minus+2");
    expect(calls).toEqual([[1]]);
  });

  it.each([
    ["a == b", "==", "a==b"],
    ["a < b", "<", "a<b"],
    ["a ~= b", "~=", "a~=b"],
    ["a mod b", "mod", "amodb"],
    ["a % b", "mod", "amodb"],
    ["a ^ b", "^", "a^b"],
  ])("routes %s through the %s operator", (expression, name, expected) => {
    const operators = { [name]: (a: unknown, b: unknown) => `${String(a)}${name}${String(b)}` };
    const fn = compileExpression(expression, { operators, customProp: (n) => n });
    expect(fn()).toBe(expected);
  });

  it("returns the first falsy link of a chain, as JavaScript's && does", () => {
    const operators = {
      "<": (a: unknown, b: unknown) => (a === "b" ? 0 : `${String(a)}<${String(b)}`),
    };
    const fn = compileExpression("a < b < c", { operators, customProp: (n) => n });
    expect(fn()).toBe(0);
    expect(compileExpression("a < c < d", { operators, customProp: (n) => n })()).toBe("c<d");
  });
});
