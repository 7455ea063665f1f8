/*
 * The two facts about a piece of a parsed pattern that the backtracking checks compare: whether
 * it can match the empty string, and which characters it can start with.
 */

import { ANY, type CharSet, type Range, type RegexNode } from "./regex-syntax";

/** True if the node can match without consuming a character. */
export function nullable(node: RegexNode): boolean {
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

/** The characters the sequence can start with; lookarounds add nothing, as they consume none. */
export function firstSet(sequence: readonly RegexNode[]): CharSet {
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
