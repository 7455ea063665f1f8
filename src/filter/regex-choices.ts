/*
 * How many ways the bounded parts of a pattern can split the same text between them. The
 * engine backtracks through every one of them on a near miss, so they multiply: `a?` twenty
 * times over, `a{0,16}` eight times over or `(aa|a)` twenty times over takes exponential time
 * without a single unbounded quantifier. A choice only multiplies when what follows it can also
 * start with what it matches: after `[0-9]{1,3}\.` every count but the greedy one meets a digit
 * where a `.` must be and fails at once, so it adds a few steps but no new ways.
 */

import { firstSet, nullable } from "./regex-first";
import { ANY, type CharSet, intersects, type Range, type RegexNode } from "./regex-syntax";

/** A quantifier whose range is wider than this counts as unbounded (a factor of the length). */
export const WIDE_SPAN = 16;

/** What follows the end of the pattern, or of a lookaround: a match, which ends the search. */
const ACCEPT: CharSet = [];

/** The same set, sorted and merged, so that follow sets stay small along long sequences. */
function merged(ranges: readonly Range[]): CharSet {
  const sorted = [...ranges].sort((a, b) => a[0] - b[0]);
  const out: Range[] = [];
  for (const [lo, hi] of sorted) {
    const last = out.at(-1);
    if (last && lo <= last[1] + 1) out[out.length - 1] = [last[0], Math.max(last[1], hi)];
    else out.push([lo, hi]);
  }
  return out;
}

/**
 * The characters a node can start with, as a follower sees them. A lookaround counts as any
 * character: it consumes none, but it runs again for every count the choice before it tries,
 * and may fail on any of them.
 */
function starts(node: RegexNode): CharSet {
  switch (node.kind) {
    case "chars":
      return node.set;
    case "backreference":
      return ANY;
    case "assertion":
      return ACCEPT;
    case "repeat":
      return starts(node.node);
    case "group":
      return node.lookaround ? ANY : merged(node.alternatives.flatMap(sequenceStarts));
  }
}

function sequenceStarts(sequence: readonly RegexNode[]): Range[] {
  const set: Range[] = [];
  for (const node of sequence) {
    set.push(...starts(node));
    if (!nullable(node)) break;
  }
  return set;
}

/**
 * How many alternatives can match at one position: for a character, those that can start with
 * it, plus those that can match nothing.
 */
function overlappingAlternatives(alternatives: readonly RegexNode[][]): number {
  const empty = alternatives.filter((sequence) => sequence.every(nullable)).length;
  const firsts = alternatives
    .filter((sequence) => !sequence.every(nullable))
    .map((sequence) => firstSet(sequence));
  const most = firsts.map((set) => firsts.filter((other) => intersects(set, other)).length);
  return empty + Math.max(0, ...most);
}

/**
 * The product of the choices in the pattern that can each hand the same text to what follows,
 * and the offset of the first of them (-1 if there is none). A quantifier with max − min within
 * WIDE_SPAN contributes max − min + 1, a group whose alternatives can start alike the number of
 * alternatives that can; unbounded and wide quantifiers are left to the degree.
 */
export function countChoices(top: readonly RegexNode[][]): { ways: number; index: number } {
  let index = -1;

  function chose(node: RegexNode, factor: number): number {
    if (factor > 1 && (index === -1 || node.at < index)) index = node.at;
    return factor;
  }

  function sequenceWays(sequence: readonly RegexNode[], follow: CharSet, backward: boolean) {
    let ways = 1;
    let after = follow;
    for (let position = sequence.length - 1; position >= 0; position -= 1) {
      const node = sequence[position];
      if (node === undefined) continue;
      ways *= nodeWays(node, after, backward);
      after = nullable(node) ? merged([...starts(node), ...after]) : starts(node);
    }
    return ways;
  }

  // `backward`: inside a lookbehind, matched right to left, where "what follows" is what lies
  // before; every choice there is taken to overlap.
  function nodeWays(node: RegexNode, follow: CharSet, backward: boolean): number {
    if (node.kind === "group") {
      // A lookaround is atomic: once it has matched, nothing backtracks into it.
      const innerFollow = node.lookaround ? ACCEPT : follow;
      const innerBackward = backward || node.lookbehind;
      const inner = Math.max(
        ...node.alternatives.map((sequence) => sequenceWays(sequence, innerFollow, innerBackward)),
      );
      // With nothing to hand the text to, the first alternative that matches ends the search.
      const handsOn = !node.lookaround && (backward || follow.length > 0);
      return chose(node, handsOn ? overlappingAlternatives(node.alternatives) : 1) * inner;
    }
    if (node.kind !== "repeat") return 1;
    const body = node.node;
    const again = node.max > 1 ? merged([...starts(body), ...follow]) : follow;
    const inner = nodeWays(body, again, backward);
    // Each pass through the body chooses afresh. The safety check refuses choices inside a
    // body repeated more than once, so this stays 1 unless that check is weaker than this one.
    const repeated = inner === 1 ? 1 : inner ** node.max;
    const span = node.max - node.min;
    const overlaps = backward || nullable(body) || intersects(starts(body), follow);
    const own = span > 0 && span <= WIDE_SPAN && overlaps ? span + 1 : 1;
    return chose(node, own) * repeated;
  }

  const ways = Math.max(...top.map((sequence) => sequenceWays(sequence, ACCEPT, false)));
  return { ways, index };
}
