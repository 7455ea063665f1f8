import { UnsafeRegexError } from "./errors";
import { BACKTRACKING_BUDGET, judgeRegex, type RegexSafety } from "./regex-safety";
import { str } from "./runtime";

/** `subject ~= pattern` for one prepared pattern. */
export type Matcher = (subject: unknown) => boolean;

/** How `~=` builds and runs regular expressions. */
export interface RegexPolicy {
  /** Prepares a pattern written as a literal, once, or says why it is refused. */
  literal(pattern: string): { ok: true; matcher: Matcher } | { ok: false; reason: string };
  /** `subject ~= pattern` with a pattern computed at evaluation. */
  dynamic(subject: unknown, pattern: unknown): boolean;
}

/** Most distinct computed patterns kept compiled, per policy. */
export const REGEX_CACHE_SIZE = 256;
/** Longest text (UTF-16 units) a linear-time pattern is tested against; the rest is ignored. */
export const FILTER_REGEX_INPUT_LIMIT = 65_536;
/** Longest computed pattern the guarded policy compiles. */
export const FILTER_REGEX_MAX_PATTERN = 4096;

function boundedCache<V>(): { get(key: string): V | undefined; set(key: string, value: V): V } {
  const entries = new Map<string, V>();
  return {
    get: (key) => entries.get(key),
    set(key, value) {
      if (entries.size >= REGEX_CACHE_SIZE) {
        const oldest = entries.keys().next();
        if (!oldest.done) entries.delete(oldest.value);
      }
      entries.set(key, value);
      return value;
    },
  };
}

/**
 * filtrex's `~=`: `RegExp(pattern).test(subject)`, evaluated in that order, with compiled
 * patterns reused. An invalid pattern raises a fresh SyntaxError at every evaluation, as in
 * filtrex, which compiles the pattern each time.
 */
export function compatibleRegex(): RegexPolicy {
  const cache = boundedCache<RegExp>();
  return {
    literal(pattern) {
      try {
        const regex = RegExp(pattern);
        return { ok: true, matcher: (subject) => regex.test(str(subject)) };
      } catch {
        return { ok: true, matcher: (subject) => RegExp(pattern).test(str(subject)) };
      }
    },
    dynamic(subject, pattern) {
      const source = str(pattern);
      const regex = cache.get(source) ?? cache.set(source, RegExp(source));
      return regex.test(str(subject));
    },
  };
}

/**
 * How much of the text a pattern with this verdict may see: the length n at which
 * ways × n^degree reaches the budget. Degree 0 does work independent of the length, and the
 * safety check has already refused ways beyond MAX_WAYS, a fraction of the budget.
 */
export function inputLimit(verdict: Extract<RegexSafety, { safe: true }>): number {
  const degree = verdict.unboundedQuantifiers + (verdict.anchored ? 0 : 1);
  if (degree === 0) return FILTER_REGEX_INPUT_LIMIT;
  const length = (BACKTRACKING_BUDGET / verdict.ways) ** (1 / degree);
  return Math.min(FILTER_REGEX_INPUT_LIMIT, Math.floor(length + 1e-9));
}

type Prepared = { regex: RegExp; limit: number } | { refused: string; index: number };

function prepare(pattern: string): Prepared {
  const regex = RegExp(pattern);
  const verdict = judgeRegex(pattern);
  if (!verdict.safe) return { refused: verdict.reason, index: verdict.index };
  return { regex, limit: inputLimit(verdict) };
}

function test(prepared: Extract<Prepared, { regex: RegExp }>, subject: unknown): boolean {
  const text = str(subject);
  return prepared.regex.test(text.length > prepared.limit ? text.slice(0, prepared.limit) : text);
}

/**
 * The broker's `~=`: invalid and catastrophic patterns are refused (a literal one at compile
 * time, a computed one with an error at evaluation), and the text is cut so that the worst case
 * of what remains stays within a fixed budget.
 */
export function guardedRegex(): RegexPolicy {
  const cache = boundedCache<Prepared>();
  return {
    literal(pattern) {
      let prepared: Prepared;
      try {
        prepared = prepare(pattern);
      } catch (error) {
        return { ok: false, reason: error instanceof Error ? error.message : String(error) };
      }
      if ("refused" in prepared) {
        const reason = `Refused regular expression /${pattern}/: ${prepared.refused} at offset ${prepared.index}`;
        return { ok: false, reason };
      }
      return { ok: true, matcher: (subject) => test(prepared, subject) };
    },
    dynamic(subject, pattern) {
      const source = str(pattern);
      if (source.length > FILTER_REGEX_MAX_PATTERN) {
        throw new UnsafeRegexError(source, `longer than ${FILTER_REGEX_MAX_PATTERN} characters`, 0);
      }
      const prepared = cache.get(source) ?? cache.set(source, prepare(source));
      if ("refused" in prepared)
        throw new UnsafeRegexError(source, prepared.refused, prepared.index);
      return test(prepared, subject);
    },
  };
}
