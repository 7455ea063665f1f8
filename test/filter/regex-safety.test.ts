import { describe, expect, it } from "vitest";
import { FILTER_REGEX_INPUT_LIMIT, inputLimit } from "../../src/filter/regex";
import { judgeRegex } from "../../src/filter/regex-safety";

describe("judgeRegex", () => {
  it.each([
    ["(a+)+", 0],
    ["(a*)*", 0],
    ["(a|a)*", 0],
    ["(\\w+\\s?)*", 0],
    ["^(a+)+$", 1],
    ["(?:a+)+", 0],
    ["((a+))+", 0],
    ["(a|ab)+", 0],
    ["(a|)*", 0],
    ["(a?)+", 0],
    ["(\\d|\\w)+", 0],
    ["(.*a){20}", 0],
    ["^([a-z]+\\.)+com$", 1],
    ["x(a{1,3})*", 1],
    ["(?=(a+)+)", 3],
    ["^(?i:a|A)*$", 1],
    ["x(?-i:a)", 1],
    ["(?ims-:a)", 0],
    ["(?m:^)a", 0],
    ["(?s:.|\\n)*", 0],
    ["(a)(?i:\\1)", 3],
    [
      "((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((a))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))",
      0,
    ],
  ])("refuses %s (offset %i)", (pattern, index) => {
    expect(judgeRegex(pattern)).toMatchObject({ safe: false, index });
  });

  it.each([
    ["^[hH]ello", 0, true],
    ["(foo|bar)+", 1, false],
    ["\\d{3}-\\d{4}", 0, false],
    ["^(\\d{3})+$", 1, true],
    ["a+b", 1, false],
    [".*foo.*bar", 2, false],
    ["^\\w+@\\w+\\.com$", 2, true],
    ["(?:https?|ftp)://", 0, false],
    ["(a|b)*", 1, false],
    ["[(a+)+]", 0, false],
    ["\\(a+\\)+", 2, false],
    ["x{2,}", 1, false],
    ["a{0,100}", 1, false],
    ["(a)\\1", 1, false],
    ["^a|^b", 0, true],
    ["[^]*", 1, false],
    ["(?<year>\\d{4})-(?:\\d{2})", 0, false],
    ["(?<=a)b(?<!c)(?=d)(?!e)", 0, false],
    ["\\(?i:a\\)", 0, false],
    ["[(?i:a)]", 0, false],
  ])(
    "accepts %s (%i unbounded quantifiers, anchored: %s)",
    (pattern, unboundedQuantifiers, anchored) => {
      expect(judgeRegex(pattern)).toEqual({ safe: true, unboundedQuantifiers, anchored });
    },
  );
});

describe("inputLimit", () => {
  it.each([
    ["error", FILTER_REGEX_INPUT_LIMIT],
    ["^a+$", FILTER_REGEX_INPUT_LIMIT],
    ["a+b", 4096],
    ["^\\w+@\\w+\\.com$", 4096],
    [".*foo.*bar", 256],
    ["\\w+@\\w+\\.\\w+", 64],
  ])("lets %s see %i characters", (pattern, limit) => {
    const verdict = judgeRegex(pattern);
    expect(verdict.safe).toBe(true);
    if (verdict.safe) expect(inputLimit(verdict)).toBe(limit);
  });
});
