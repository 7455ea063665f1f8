import { describe, expect, it } from "vitest";
import { FILTER_REGEX_INPUT_LIMIT, inputLimit } from "../../src/filter/regex";
import { BACKTRACKING_BUDGET, judgeRegex } from "../../src/filter/regex-safety";

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
    [`^${"a{0,16}".repeat(8)}b`, 1],
    [`^${"a?".repeat(26)}b`, 1],
    [`^${"a?".repeat(22)}b`, 1],
    [`^${"a{0,16}".repeat(6)}b`, 1],
    [`^${"(?:aa|a)".repeat(21)}c`, 1],
    [`x${"a{0,16}".repeat(8)}$`, 1],
    [`^${"(?:aa|a)".repeat(26)}c`, 1],
    [`^(?=${"a{0,16}".repeat(7)}b)`, 4],
    [
      "((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((a))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))",
      0,
    ],
  ])("refuses %s (offset %i)", (pattern, index) => {
    expect(judgeRegex(pattern)).toMatchObject({ safe: false, index });
  });

  it.each([
    ["^[hH]ello", 0, true, 1],
    ["(foo|bar)+", 1, false, 1],
    ["\\d{3}-\\d{4}", 0, false, 1],
    ["^(\\d{3})+$", 1, true, 1],
    ["a+b", 1, false, 1],
    [".*foo.*bar", 2, false, 1],
    ["^\\w+@\\w+\\.com$", 2, true, 1],
    ["(?:https?|ftp)://", 0, false, 1],
    ["(a|b)*", 1, false, 1],
    ["[(a+)+]", 0, false, 1],
    ["\\(a+\\)+", 2, false, 1],
    ["x{2,}", 1, false, 1],
    ["a{0,100}", 1, false, 1],
    ["(a)\\1", 1, false, 1],
    ["^a|^b", 0, true, 1],
    ["[^]*", 1, false, 1],
    ["(?<year>\\d{4})-(?:\\d{2})", 0, false, 1],
    ["(?<=a)b(?<!c)(?=d)(?!e)", 0, false, 1],
    ["\\(?i:a\\)", 0, false, 1],
    ["[(?i:a)]", 0, false, 1],
    ["^[0-9]{3}-[0-9]{4}$", 0, true, 1],
    ["^v[0-9]{1,3}\\.[0-9]{1,3}$", 0, true, 1],
    ["^\\d{1,2}/\\d{1,2}/\\d{4}$", 0, true, 1],
    ["^[a-z]{2,10}[0-9]{0,3}$", 0, true, 1],
    ["colou?r", 0, false, 1],
    ["^(?:a|ab)$", 0, true, 1],
    ["^\\w{1,16}\\w{1,16}\\w{1,16}@", 0, true, 16 * 16],
    ["^(?:x[0-9]{0,3})?[0-9]", 0, true, 4],
    ["a{0,3}(?=a)", 0, false, 4],
    ["(?<=a{0,3}a{0,3})b", 0, false, 16],
    ["(?:a|aa)(?:a|aa)b", 0, false, 4],
    [`^${"a?".repeat(21)}b`, 0, true, 2 ** 20],
    [`^${"(?:aa|a)".repeat(20)}c`, 0, true, 2 ** 20],
  ])(
    "accepts %s (%i unbounded quantifiers, anchored: %s, %i ways)",
    (pattern, unboundedQuantifiers, anchored, ways) => {
      expect(judgeRegex(pattern)).toEqual({ safe: true, unboundedQuantifiers, anchored, ways });
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
    ["^v[0-9]{1,3}\\.[0-9]{1,3}$", FILTER_REGEX_INPUT_LIMIT],
    [`^${"a?".repeat(21)}b`, FILTER_REGEX_INPUT_LIMIT],
    [`${"a?".repeat(9)}b`, FILTER_REGEX_INPUT_LIMIT],
    [`${"a?".repeat(21)}b`, 16],
    [`a+${"a?".repeat(8)}b`, 362],
  ])("lets %s see %i characters", (pattern, limit) => {
    const verdict = judgeRegex(pattern);
    expect(verdict.safe).toBe(true);
    if (verdict.safe) expect(inputLimit(verdict)).toBe(limit);
  });

  // The bound the cut exists for: the ways the bounded choices split the text, times one factor
  // of the length per unbounded quantifier (and per start position when unanchored), stays
  // within the budget at the longest text the pattern sees, whatever that text is.
  it.each([
    "^[0-9]{3}-[0-9]{4}$",
    "(foo|bar)+",
    ".*foo.*bar",
    "\\w{1,16}\\w{1,16}@",
    `^${"a?".repeat(21)}b`,
    `${"a?".repeat(21)}b`,
    `a+${"a?".repeat(8)}b`,
    `.*${"(?:aa|a)".repeat(12)}c`,
    `^${"a{0,16}".repeat(5)}b`,
  ])("bounds the worst case of %s by the budget", (pattern) => {
    const verdict = judgeRegex(pattern);
    expect(verdict.safe).toBe(true);
    if (!verdict.safe) return;
    const degree = verdict.unboundedQuantifiers + (verdict.anchored ? 0 : 1);
    const longest = degree === 0 ? 1 : inputLimit(verdict);
    expect(verdict.ways * longest ** degree).toBeLessThanOrEqual(BACKTRACKING_BUDGET);
  });
});
