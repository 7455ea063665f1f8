import { describe, expect, it } from "vitest";
import { compileExpression } from "../../src/filter";

const run = (expression: string, data: unknown = {}) => compileExpression(expression)(data);

describe("values", () => {
  it.each([
    ["43", 43],
    ["-1.234", -1.234],
    ["0.5", 0.5],
    ['"hello"', "hello"],
    ['""', ""],
    ['" \\" \\\\ "', ' " \\ '],
    ['"\n"', "\n"],
    ['"\u0000"', "\u0000"],
    ['"\uD800"', "\uD800"],
    ['"it\'s"', "it's"],
    // filtrex writes numbers into sloppy-mode JavaScript, where a leading zero means octal.
    ["010", 8],
    ["0777", 511],
    ["08", 8],
    ["019", 19],
    ["08.5", 8.5],
    ["00", 0],
  ])("%j is %j", (expression, expected) => {
    expect(run(expression)).toBe(expected);
  });

  it.each([
    ["foo", { foo: 42 }, 42],
    ["a.b.c", { "a.b.c": 1 }, 1],
    ["'foo-bar'", { "foo-bar": 2 }, 2],
    ["'order+goo*and#stuff'", { "order+goo*and#stuff": 3 }, 3],
    ["'it\\'s'", { "it's": 4 }, 4],
    ["'back\\\\slash'", { "back\\slash": 5 }, 5],
    ["$_.0$$", { "$_.0$$": 6 }, 6],
    ["order.gooandstuff", { "order.gooandstuff": 7 }, 7],
  ])("the name %s reads the data", (expression, data, expected) => {
    expect(run(expression, data)).toBe(expected);
  });

  it("builds arrays from (a, b, c)", () => {
    expect(run('(42, "fifty", pi)', { pi: Math.PI })).toEqual([42, "fifty", Math.PI]);
    expect(run("((1, 2), 3)")).toEqual([[1, 2], 3]);
  });
});

describe("arithmetic", () => {
  it.each([
    ["1 + 2 * 3", 7],
    ["2 * 3 + 1", 7],
    ["(1 + 2) * 3", 9],
    ["((1 + 2) * 3 / 2 + 1 - 4 + 2 ^ 3) * -2", -19],
    ["1.4 * 1.1", 1.54],
    ["97 mod 10", 7],
    ["-1 mod 3", 2],
    ["-0.1 mod 5", 4.9],
    ["2 * 3 ^ 2", 18],
    ["5 ^ 3 ^ 2", 5 ** 9],
    ["-2 ^ 2", -4],
    ["1 / 0", Number.POSITIVE_INFINITY],
    ["10 - 2 - 3", 5],
    ["2 * -3", -6],
    ["- - 3", 3],
    ['"a" + "b"', "ab"],
    ['1 + "0"', "10"],
    ['"n" + 1 + 2', "n12"],
    ["11 % 2", 1],
    ["-1 % 2", 1],
  ])("%s is %j", (expression, expected) => {
    expect(run(expression)).toBe(expected);
  });

  it("unwraps one-element lists and boxed primitives, as filtrex does", () => {
    expect(run("a + 1", { a: [7] })).toBe(8);
    expect(run("a + b", { a: new Number(2), b: new String("x") })).toBe("2x");
    expect(run("not a", { a: new Boolean(false) })).toBe(true);
  });

  it("treats `x - y` with an undefined y as unary minus, as filtrex does", () => {
    expect(run("5 - b", { b: undefined })).toBe(-5);
  });
});

describe("comparisons", () => {
  it.each([
    ["foo == 4", { foo: 4 }, true],
    ["foo == 4", { foo: 3 }, false],
    ["foo != 4", { foo: 3 }, true],
    ["foo < 4", { foo: 3 }, true],
    ["foo <= 4", { foo: 4 }, true],
    ["foo > 4", { foo: 4 }, false],
    ["foo >= 4", { foo: 4 }, true],
    ['foo == "hello"', { foo: "hello" }, true],
    ['1 == "1"', {}, false],
    ["(1 == 1) == 1", {}, false],
    ["(1 == 1) == T", { T: true }, true],
    ["(1, 2) == (1, 2)", {}, false],
    ["x == x", { x: Number.NaN }, false],
  ])("%s on %j is %j", (expression, data, expected) => {
    expect(run(expression, data)).toBe(expected);
  });

  it.each([
    ["1 == 1 == 1", true],
    ["1 == 1 != 2", true],
    ["1 != 2 != 1", true],
    ["1 < 2 <= 2 < 3", true],
    ["1 != 1 == 1", false],
    ["1 <= 1 > 1", false],
    ['"a" == "a" != "b"', true],
    ['"abc" == "abc" ~= "a.c" == "a.c" != "abc"', true],
    ["3 > 2 > 1", true],
  ])("chained relation %s is %j", (expression, expected) => {
    expect(run(expression)).toBe(expected);
  });

  it("evaluates a chain left to right and stops at the first false link", () => {
    const calls: number[] = [];
    const probe = (n: number) => {
      calls.push(n);
      return n;
    };
    const fn = compileExpression("probe(1) > probe(2) > probe(3)", { extraFunctions: { probe } });
    expect(fn()).toBe(false);
    expect(calls).toEqual([1, 2]);
  });

  it.each([
    ['foo ~= "^[hH]ello"', { foo: "hello" }, true],
    ['foo ~= "^[hH]ello"', { foo: "bye" }, false],
    ["foo ~= pattern", { foo: "abc", pattern: "b" }, true],
    ['foo ~= "b"', { foo: ["abc"] }, true],
  ])("regex match %s on %j is %j", (expression, data, expected) => {
    expect(run(expression, data)).toBe(expected);
  });

  it.each([
    ["5 in (1, 2, 3, 4)", false],
    ["3 in (1, 2, 3, 4)", true],
    ["5 not in (1, 2, 3, 4)", true],
    ["3 not in (1, 2, 3, 4)", false],
    ["(1, 2) in (1, 2, 3)", true],
    ["(1, 2) in (2, 3, 1)", true],
    ["(3, 4) in (1, 2, 3)", false],
    ["(1, 2) not in (1, 2, 3)", false],
    ["(3, 4) not in (1, 2, 3)", true],
    ["(1, 2) in 1", false],
    ["1 in 1", true],
    ["(1, 2) not in 1", true],
    ["1 not in 1", false],
    ["4 + 3 in (7, 8)", true],
    ["4 + 3 not in (6, 8)", true],
    ['"aa" in ("aa", "bb")', true],
  ])("membership %s is %j", (expression, expected) => {
    expect(run(expression)).toBe(expected);
  });

  it("finds NaN in a list, as Array.prototype.includes does", () => {
    expect(run("x in (1, y)", { x: Number.NaN, y: Number.NaN })).toBe(true);
    expect(run("x in list", { x: Number.NaN, list: [Number.NaN] })).toBe(true);
  });
});

describe("boolean logic", () => {
  const truth = { T: true, F: false };
  it.each([
    ["F and F", false],
    ["F and T", false],
    ["T and T", true],
    ["F or F", false],
    ["F or T", true],
    ["not F", true],
    ["not T", false],
    ["(F and T) or T", true],
    ["F and (T or T)", false],
    ["F and T or T", true],
    ["T or T and F", true],
    ["not T and F", false],
    ["not T == F", true],
    ["T and T and T and F", false],
    ["F or F or F or T", true],
  ])("%s is %j", (expression, expected) => {
    expect(run(expression, truth)).toBe(expected);
  });

  it("short-circuits `and` and `or`", () => {
    expect(run("F and missing", { F: false })).toBe(false);
    expect(run("T or missing", { T: true })).toBe(true);
  });

  it.each([
    ["if 1 > 2 then 3 else 4", 4],
    ["if 1 < 2 then 3 else 4", 3],
    ["if 1 < 2 then if 3 < 4 then 42 else 420 else if 5 < 6 then 69 else -1/12", 42],
    ["if 1 < 2 then if 3 > 4 then 42 else 420 else if 5 < 6 then 69 else -1/12", 420],
    ["if 1 > 2 then if 3 < 4 then 42 else 420 else if 5 < 6 then 69 else -1/12", 69],
    ["if 1 > 2 then if 3 < 4 then 42 else 420 else if 5 > 6 then 69 else -1/12", -1 / 12],
    ["1 < 2 ? 3 < 4 ? 42 : 420 : 5 < 6 ? 69 : -1/12", 42],
    ["1 > 2 ? 3 < 4 ? 42 : 420 : 5 > 6 ? 69 : -1/12", -1 / 12],
    ["if 1 > 2 then 1 else 2 + 3", 5],
  ])("%s is %j", (expression, expected) => {
    expect(run(expression)).toBe(expected);
  });

  it("runs filtrex's kitchen sink", () => {
    const fn = compileExpression(
      "if 4 > lowNumber * 2 and (max(a, b) < 20 or foo) then 1.1 else 9.4",
    );
    expect(fn({ lowNumber: 1.5, a: 10, b: 12, foo: false })).toBe(1.1);
    expect(fn({ lowNumber: 3.5, a: 10, b: 12, foo: false })).toBe(9.4);
  });

  it("runs the README's first example", () => {
    const fn = compileExpression(
      'category == "meal" and (calories * weight > 2000.0 or subcategory in ("cake", "pie"))',
    );
    expect(fn({ category: "meal", calories: 1, weight: 1, subcategory: "pie" })).toBe(true);
    expect(fn({ category: "meal", calories: 1, weight: 1, subcategory: "soup" })).toBe(false);
  });
});

describe("precedence", () => {
  const numbers = { a: 48.63, b: -96e-4, c: 3.5, d: -2.1 };
  const { a, b, c, d } = numbers;
  it.each([
    ["a + b * c ^ d", a + b * c ** d],
    ["a ^ b * c + d", a ** b * c + d],
    ["-a + -b * -c ^ -d", -a + -b * -(c ** -d)],
    ["-a ^ -b + -c * -d", -(a ** -b) + -c * -d],
    ["-a / -b - -c ^ -d", -a / -b - -(c ** -d)],
    ["a - b - c - d", a - b - c - d],
    ["a / b / c", a / b / c],
  ])("%s", (expression, expected) => {
    expect(run(expression, numbers)).toBeCloseTo(expected, 10);
  });

  it.each([
    ["hat of 'the captain' of ship", { ship: { "the captain": { hat: "epic" } } }, "epic"],
    ["a of b of c", { c: { b: { a: 5 } } }, 5],
    ["a of b + 1", { b: { a: 5 } }, 6],
    ["a of b ^ 2", { b: { a: 5 } }, 25],
    ["length of list", { list: [1, 2, 3] }, 3],
  ])("`of` binds tightest: %s", (expression, data, expected) => {
    expect(run(expression, data)).toBe(expected);
  });
});

describe("functions", () => {
  it.each([
    ["abs(-5)", 5],
    ["ceil(4.1)", 5],
    ["floor(4.6)", 4],
    ["round(4.6)", 5],
    ["sqrt(9)", 3],
    ["log(1)", 0],
    ["log2(8)", 3],
    ["log10(1000)", 3],
    ["min()", Number.POSITIVE_INFINITY],
    ["max()", Number.NEGATIVE_INFINITY],
    ["min(2, 5, 6, 1, 9)", 1],
    ["max(2, 5, 6, 1, 9, 12)", 12],
    ["exists(x)", true],
    ["exists(n)", false],
    ["exists(u)", false],
    ["empty(u)", true],
    ["empty(e)", true],
    ["empty(list)", true],
    ["empty(x)", false],
    ["'abs'(-2)", 2],
  ])("%s is %j", (expression, expected) => {
    expect(run(expression, { x: 1, n: null, u: undefined, e: "", list: [] })).toBe(expected);
  });

  it("calls extra functions with the function table as `this`, as filtrex does", () => {
    const options = {
      extraFunctions: {
        triple: (x: number) => x * 3,
        viaTable(this: { triple: (x: number) => number }, x: number) {
          return this.triple(x) + 1;
        },
      },
    };
    expect(compileExpression("triple(v)", options)({ v: 7 })).toBe(21);
    expect(compileExpression("viaTable(v)", options)({ v: 7 })).toBe(22);
  });

  it("lets extra functions replace standard ones", () => {
    expect(compileExpression("abs(2)", { extraFunctions: { abs: () => "mine" } })()).toBe("mine");
  });
});
