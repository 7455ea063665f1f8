/*
 * A static check of regular expressions for catastrophic backtracking. JavaScript's engine
 * backtracks, so a pattern whose repeated part can match the same text in many ways takes
 * exponential time on a near miss. The check refuses the two shapes that cause it: a quantifier
 * inside a repeated group (`(a+)+`, `(\w+\s?)*`) and a repeated group whose alternatives can
 * start alike or match nothing (`(a|a)*`, `(a|ab)+`, `(a|)*`). It is conservative: it refuses
 * some safe patterns rather than miss an unsafe one. It also counts the unbounded quantifiers,
 * which sets the polynomial degree of the remaining worst case, and the ways the bounded choices
 * can split the same text, which multiplies it; a pattern whose choices alone exceed the budget
 * is refused.
 */

import { countChoices, WIDE_SPAN } from "./regex-choices";
import { firstSet, nullable } from "./regex-first";
import { intersects, parsePattern, type RegexNode, Unreadable } from "./regex-syntax";

/** The verdict on a pattern. */
export type RegexSafety =
  | { safe: true; unboundedQuantifiers: number; anchored: boolean; ways: number }
  | { safe: false; reason: string; index: number };

/**
 * Worst-case backtracking steps allowed per test. A pattern that is safe from unbounded
 * exponential blow-up can still be polynomial: each unbounded quantifier multiplies the work by
 * the text length, and so does an unanchored search; the bounded choices multiply it by a
 * constant (at most {@link MAX_WAYS}). The text is cut to the length that keeps the product in
 * this budget. Polynomial backtracking at the budget takes about 15–50 ms.
 */
export const BACKTRACKING_BUDGET = 2 ** 24;

/**
 * The most ways bounded choices may split the same text. Each way costs several steps (the
 * choices are retried in turn): a chain of them at the full budget took up to ~300 ms a test in
 * the Workers runtime, and at this limit 7–17 ms anchored and ~85 ms unanchored (`a?` 21 times,
 * then `b`, whose text is cut to 16 characters). Past it a pattern is refused; below it the text
 * is still cut so that ways × length^degree stays in the budget.
 */
export const MAX_WAYS = 2 ** 20;

function children(node: RegexNode): RegexNode[] {
  if (node.kind === "group") return node.alternatives.flat();
  if (node.kind === "repeat") return [node.node];
  return [];
}

function descendants(node: RegexNode): RegexNode[] {
  const found: RegexNode[] = [];
  const stack = children(node);
  for (let next = stack.pop(); next !== undefined; next = stack.pop()) {
    found.push(next);
    stack.push(...children(next));
  }
  return found;
}

function ambiguousAlternatives(group: RegexNode): boolean {
  if (group.kind !== "group" || group.alternatives.length < 2) return false;
  const firsts = group.alternatives.map(firstSet);
  return group.alternatives.some(
    (sequence, i) =>
      sequence.every(nullable) ||
      firsts.some((other, j) => j > i && intersects(firsts[i] ?? [], other)),
  );
}

function refusal(node: RegexNode): { reason: string; index: number } | null {
  if (node.kind !== "repeat" || node.max <= 1) return null;
  const inside = descendants(node);
  if (inside.some((inner) => inner.kind === "repeat" && inner.max > inner.min)) {
    return { reason: "a quantifier inside a repeated group", index: node.at };
  }
  if (inside.some(ambiguousAlternatives)) {
    return {
      reason: "a repeated group whose alternatives overlap or can be empty",
      index: node.at,
    };
  }
  return null;
}

/**
 * Judges a pattern that `RegExp` accepts. Unsafe: a nested quantifier or an ambiguous repeated
 * alternation, with the offset of the repeated group; bounded choices that alone exceed the
 * budget, with the offset of the first; or syntax the check cannot read. Safe: how many unbounded
 * (or wide) quantifiers and backreferences it has, whether every alternative starts with `^`,
 * and how many ways its bounded choices can split the same text.
 */
export function judgeRegex(pattern: string): RegexSafety {
  let top: RegexNode[][];
  try {
    top = parsePattern(pattern);
  } catch (error) {
    if (!(error instanceof Unreadable)) throw error;
    return { safe: false, reason: error.message, index: error.index };
  }
  const all = top.flat().flatMap((node) => [node, ...descendants(node)]);
  for (const node of all) {
    const refused = refusal(node);
    if (refused) return { safe: false, ...refused };
  }
  const { ways, index } = countChoices(top);
  if (ways > MAX_WAYS) {
    const reason = `bounded quantifiers or alternatives that can split the same text more than ${MAX_WAYS} ways`;
    return { safe: false, reason, index };
  }
  const unboundedQuantifiers = all.filter(
    (node) =>
      node.kind === "backreference" || (node.kind === "repeat" && node.max - node.min > WIDE_SPAN),
  ).length;
  const anchored = top.every((sequence) => {
    const first = sequence[0];
    return first?.kind === "assertion" && first.start;
  });
  return { safe: true, unboundedQuantifiers, anchored, ways };
}
