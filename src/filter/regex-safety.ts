/*
 * A static check of regular expressions for catastrophic backtracking. JavaScript's engine
 * backtracks, so a pattern whose repeated part can match the same text in many ways takes
 * exponential time on a near miss. The check refuses the two shapes that cause it: a quantifier
 * inside a repeated group (`(a+)+`, `(\w+\s?)*`) and a repeated group whose alternatives can
 * start alike or match nothing (`(a|a)*`, `(a|ab)+`, `(a|)*`). It is conservative: it refuses
 * some safe patterns rather than miss an unsafe one. It also counts the unbounded quantifiers,
 * which sets the polynomial degree of the remaining worst case.
 */

import {
  ANY,
  type CharSet,
  intersects,
  parsePattern,
  type Range,
  type RegexNode,
  Unreadable,
} from "./regex-syntax";

/** The verdict on a pattern. */
export type RegexSafety =
  | { safe: true; unboundedQuantifiers: number; anchored: boolean }
  | { safe: false; reason: string; index: number };

/** A quantifier whose range is wider than this counts as unbounded. */
const WIDE_SPAN = 16;

function nullable(node: RegexNode): boolean {
  switch (node.kind) {
    case "chars":
      return false;
    case "group":
      return node.lookaround || node.alternatives.some((sequence) => sequence.every(nullable));
    case "repeat":
      return node.min === 0 || nullable(node.node);
    default:
      return true;
  }
}

function firstSet(sequence: readonly RegexNode[]): CharSet {
  const set: Range[] = [];
  for (const node of sequence) {
    if (node.kind === "chars") set.push(...node.set);
    else if (node.kind === "backreference") set.push(...ANY);
    else if (node.kind === "repeat") set.push(...firstSet([node.node]));
    else if (node.kind === "group" && !node.lookaround) {
      for (const alternative of node.alternatives) set.push(...firstSet(alternative));
    }
    if (!nullable(node)) break;
  }
  return set;
}

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
 * alternation, with the offset of the repeated group, or syntax the check cannot read. Safe: how
 * many unbounded (or wide) quantifiers and backreferences it has, and whether every alternative
 * starts with `^`.
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
  const unboundedQuantifiers = all.filter(
    (node) =>
      node.kind === "backreference" || (node.kind === "repeat" && node.max - node.min > WIDE_SPAN),
  ).length;
  const anchored = top.every((sequence) => {
    const first = sequence[0];
    return first?.kind === "assertion" && first.start;
  });
  return { safe: true, unboundedQuantifiers, anchored };
}
