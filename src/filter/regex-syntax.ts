/*
 * Just enough of JavaScript's regular-expression syntax (no flags, Annex B) to analyse a
 * pattern for backtracking: groups, alternatives, quantifiers, and the characters each atom can
 * match, as ranges of UTF-16 code units. Patterns are validated by `RegExp` first; where this
 * reading is unsure (backreferences, octal escapes), it assumes "any character", which only
 * makes the analysis more cautious. Syntax that changes what the rest means, such as an inline
 * modifier group `(?i:…)`, cannot be read that way and is refused instead.
 */

/** An inclusive range of UTF-16 code units. */
export type Range = readonly [number, number];
/** A set of characters, as ranges. */
export type CharSet = readonly Range[];

/** A node of a parsed pattern; `at` is its offset in the pattern. */
export type RegexNode =
  | { kind: "chars"; at: number; set: CharSet }
  | {
      kind: "group";
      at: number;
      alternatives: RegexNode[][];
      lookaround: boolean;
      /** A lookbehind, which V8 matches from right to left. */
      lookbehind: boolean;
    }
  | { kind: "assertion"; at: number; start: boolean }
  | { kind: "backreference"; at: number }
  | { kind: "repeat"; at: number; node: RegexNode; min: number; max: number };

/** Every character. */
export const ANY: CharSet = [[0, 0xffff]];
const DIGIT: CharSet = [[48, 57]];
const WORD: CharSet = [
  [48, 57],
  [65, 90],
  [95, 95],
  [97, 122],
];
const SPACE: CharSet = [
  [9, 13],
  [32, 32],
  [160, 160],
  [5760, 5760],
  [8192, 8202],
  [8232, 8233],
  [8239, 8239],
  [8287, 8287],
  [12288, 12288],
  [65279, 65279],
];
const LINE_END: CharSet = [
  [10, 10],
  [13, 13],
  [8232, 8233],
];

/** Every character not in the set. */
function complement(set: CharSet): CharSet {
  const sorted = [...set].sort((a, b) => a[0] - b[0]);
  const out: Range[] = [];
  let next = 0;
  for (const [lo, hi] of sorted) {
    if (lo > next) out.push([next, lo - 1]);
    next = Math.max(next, hi + 1);
  }
  if (next <= 0xffff) out.push([next, 0xffff]);
  return out;
}

/** True if the sets share a character. */
export function intersects(a: CharSet, b: CharSet): boolean {
  return a.some(([lo, hi]) => b.some(([otherLo, otherHi]) => lo <= otherHi && otherLo <= hi));
}

const CLASS_ESCAPES: Readonly<Record<string, CharSet>> = {
  d: DIGIT,
  D: complement(DIGIT),
  w: WORD,
  W: complement(WORD),
  s: SPACE,
  S: complement(SPACE),
};
const CONTROL_ESCAPES: Readonly<Record<string, number>> = { n: 10, r: 13, t: 9, v: 11, f: 12 };

/** Patterns nested deeper than this are refused outright rather than analysed. */
export const MAX_GROUP_DEPTH = 64;

/** Thrown by `parsePattern` for a pattern it cannot read; `index` is the offending offset. */
export class Unreadable extends Error {
  readonly index: number;

  constructor(reason: string, index: number) {
    super(reason);
    this.index = index;
  }
}

function single(set: CharSet): number | null {
  const [only] = set;
  return set.length === 1 && only !== undefined && only[0] === only[1] ? only[0] : null;
}

/**
 * Parses a pattern already accepted by `RegExp` into its alternatives. Throws Unreadable past
 * MAX_GROUP_DEPTH nested groups and at a group opening it does not know.
 */
export function parsePattern(source: string): RegexNode[][] {
  let at = 0;
  let depth = 0;

  function charAt(offset: number): string {
    return source.charAt(at + offset);
  }

  function take(width: number, set: CharSet): CharSet {
    at += width;
    return set;
  }

  /** An escape at `at`; backreferences and unusual escapes read as "any character". */
  function readEscape(inClass: boolean): CharSet | "backreference" | "boundary" {
    const char = charAt(1);
    const classEscape = CLASS_ESCAPES[char];
    if (classEscape) return take(2, classEscape);
    const control = CONTROL_ESCAPES[char];
    if (control !== undefined) return take(2, [[control, control]]);
    if (char === "b" || char === "B") {
      if (inClass) return take(2, [[8, 8]]);
      at += 2;
      return "boundary";
    }
    if (!inClass && (/[1-9]/.test(char) || (char === "k" && charAt(2) === "<"))) {
      at += 2;
      while (/[0-9]/.test(charAt(0)) && char !== "k") at += 1;
      if (char === "k") at = source.indexOf(">", at) + 1;
      return "backreference";
    }
    const hex = /^(?:x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4})/.exec(source.slice(at + 1));
    if (hex) {
      const code = Number.parseInt(hex[0].slice(1), 16);
      return take(1 + hex[0].length, [[code, code]]);
    }
    if (char === "c" || /[0-9]/.test(char)) return take(2, ANY);
    const code = char.charCodeAt(0);
    return take(2, [[code, code]]);
  }

  function classAtom(): CharSet {
    if (charAt(0) !== "\\") {
      const code = source.charCodeAt(at);
      return take(1, [[code, code]]);
    }
    const escaped = readEscape(true);
    return typeof escaped === "string" ? ANY : escaped;
  }

  function characterClass(): CharSet {
    at += 1;
    const negated = charAt(0) === "^";
    if (negated) at += 1;
    const ranges: Range[] = [];
    while (at < source.length && charAt(0) !== "]") {
      const low = classAtom();
      if (charAt(0) === "-" && charAt(1) !== "]" && at + 1 < source.length) {
        at += 1;
        const high = classAtom();
        const from = single(low);
        const to = single(high);
        if (from !== null && to !== null) ranges.push([from, to]);
        else ranges.push(...low, [45, 45], ...high);
      } else {
        ranges.push(...low);
      }
    }
    at += 1;
    return negated ? complement(ranges) : ranges;
  }

  function quantifier(): { min: number; max: number } | null {
    const char = charAt(0);
    let bounds: { min: number; max: number } | null = null;
    if (char === "*") bounds = { min: 0, max: Number.POSITIVE_INFINITY };
    else if (char === "+") bounds = { min: 1, max: Number.POSITIVE_INFINITY };
    else if (char === "?") bounds = { min: 0, max: 1 };
    if (bounds) at += 1;
    const braces = char === "{" ? /^\{(\d+)(,(\d*))?\}/.exec(source.slice(at)) : null;
    if (braces) {
      at += braces[0].length;
      const min = Number(braces[1]);
      const open = braces[2] !== undefined && !braces[3];
      const max =
        braces[2] === undefined ? min : open ? Number.POSITIVE_INFINITY : Number(braces[3]);
      bounds = { min, max };
    }
    if (bounds && charAt(0) === "?") at += 1;
    return bounds;
  }

  function atom(): RegexNode {
    const start = at;
    const char = charAt(0);
    if (char === "(") {
      const head = /^\((?:\?(?::|[=!]|<[=!]|<[^>]*>))?/.exec(source.slice(at))?.[0] ?? "(";
      // Any other `(?` that RegExp accepts is a modifier group, `(?i:`, `(?-i:`, `(?ms:`: its
      // flags change which characters match, what `.` and `^` mean, and so which alternatives
      // overlap, none of which the sets here describe. `(?i:a|A)*` would pass as unambiguous.
      if (head === "(" && charAt(1) === "?") {
        throw new Unreadable("an inline modifier group, whose flags the check cannot model", start);
      }
      at += head.length;
      depth += 1;
      if (depth > MAX_GROUP_DEPTH) {
        throw new Unreadable(`groups nested deeper than ${MAX_GROUP_DEPTH}`, 0);
      }
      const alternatives = alternation();
      depth -= 1;
      at += 1;
      return {
        kind: "group",
        at: start,
        alternatives,
        lookaround: /^\(\?<?[=!]/.test(head),
        lookbehind: /^\(\?<[=!]/.test(head),
      };
    }
    if (char === "^" || char === "$") {
      at += 1;
      return { kind: "assertion", at: start, start: char === "^" };
    }
    if (char === ".") return { kind: "chars", at: start, set: take(1, complement(LINE_END)) };
    if (char === "[") return { kind: "chars", at: start, set: characterClass() };
    if (char === "\\") {
      const escaped = readEscape(false);
      if (escaped === "backreference") return { kind: "backreference", at: start };
      if (escaped === "boundary") return { kind: "assertion", at: start, start: false };
      return { kind: "chars", at: start, set: escaped };
    }
    const code = source.charCodeAt(at);
    return { kind: "chars", at: start, set: take(1, [[code, code]]) };
  }

  function alternation(): RegexNode[][] {
    const alternatives: RegexNode[][] = [[]];
    while (at < source.length && charAt(0) !== ")") {
      if (charAt(0) === "|") {
        at += 1;
        alternatives.push([]);
        continue;
      }
      const node = atom();
      const bounds = quantifier();
      alternatives.at(-1)?.push(bounds ? { kind: "repeat", at: node.at, node, ...bounds } : node);
    }
    return alternatives;
  }

  return alternation();
}
