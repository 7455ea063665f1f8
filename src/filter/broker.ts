import type { Evaluator } from "./compile-config";
import { compileNode } from "./compiler";
import { TextTooLongError } from "./errors";
import { standardFunctions } from "./functions";
import { defaultOperators, type OperatorFunction } from "./operators";
import { parse } from "./parser";
import { useDotAccessOperatorAndOptionalChaining } from "./properties";
import { guardedRegex } from "./regex";
import { FilterSyntaxError } from "./syntax-error";

/** What a filter sees: the message as the broker describes it. */
export interface FilterMessage {
  id: string;
  topic: string;
  body: unknown;
  headers: Record<string, string>;
  query: Record<string, string | string[]>;
  pathParams: Record<string, string>;
  method: string | null;
  publishedAt: string;
}

/** Why a filter does not compile, and where: `position` is 0-based in the source. */
export interface FilterSyntaxProblem {
  message: string;
  position: number;
}

/** A subscriber's filter, compiled once and evaluated per message. */
export interface CompiledFilter {
  readonly source: string;
  /** true if the message matches; any evaluation error is a non-match */
  matches(message: FilterMessage): boolean;
  /** the same, but says why an evaluation failed */
  evaluate(message: FilterMessage): { matched: boolean; error?: Error };
}

/** Longest filter source, in UTF-8 bytes. */
export const FILTER_MAX_LENGTH = 4096;
/** Deepest nesting of parentheses, calls, prefix operators and branches in a filter. */
export const FILTER_MAX_DEPTH = 64;

/**
 * Longest text a filter's `+` may build, in UTF-16 code units: four times the largest body. Each
 * `+` of a large field adds the field's size again, and a 4 KB filter holds hundreds of them.
 */
export const FILTER_MAX_TEXT_LENGTH = 4 * 1024 * 1024;

const regex = guardedRegex();

/** filtrex's `+`, refusing to build text longer than FILTER_MAX_TEXT_LENGTH. */
const boundedPlus: OperatorFunction = (a, b) => {
  const sum = defaultOperators["+"](a, b);
  if (typeof sum === "string" && sum.length > FILTER_MAX_TEXT_LENGTH) {
    throw new TextTooLongError(sum.length, FILTER_MAX_TEXT_LENGTH);
  }
  return sum;
};

const operators = { ...defaultOperators, "+": boundedPlus };

/** Offset of the first character that takes the UTF-8 size past the limit, or -1. */
function overflowAt(source: string): number {
  let bytes = 0;
  for (let index = 0; index < source.length; index++) {
    const start = index;
    const code = source.charCodeAt(index);
    if (code < 0x80) bytes += 1;
    else if (code < 0x800) bytes += 2;
    else if (
      code >= 0xd800 &&
      code <= 0xdbff &&
      (source.charCodeAt(index + 1) & 0xfc00) === 0xdc00
    ) {
      bytes += 4;
      index += 1;
    } else bytes += 3;
    if (bytes > FILTER_MAX_LENGTH) return start;
  }
  return -1;
}

function asError(thrown: unknown): Error {
  return thrown instanceof Error ? thrown : new Error(String(thrown));
}

function fromEvaluator(source: string, evaluator: Evaluator): CompiledFilter {
  return {
    source,
    matches(message) {
      try {
        const result = evaluator(message);
        return !(result instanceof Error) && Boolean(result);
      } catch {
        return false;
      }
    },
    evaluate(message) {
      try {
        const result = evaluator(message);
        if (result instanceof Error) return { matched: false, error: result };
        return { matched: Boolean(result) };
      } catch (thrown) {
        return { matched: false, error: asError(thrown) };
      }
    },
  };
}

function compileChecked(source: string): ReturnType<typeof compileFilter> {
  if (typeof source !== "string") {
    return { ok: false, problem: { message: "The filter must be a string", position: 0 } };
  }
  const overflow = overflowAt(source);
  if (overflow !== -1) {
    const message = `The filter is longer than ${FILTER_MAX_LENGTH} bytes (UTF-8)`;
    return { ok: false, problem: { message, position: overflow } };
  }
  if (source.trim() === "") return { ok: true, filter: fromEvaluator(source, () => true) };
  const tree = parse(source, { maxDepth: FILTER_MAX_DEPTH });
  const evaluator = compileNode(tree, {
    source,
    functions: standardFunctions,
    operators,
    properties: { customProp: useDotAccessOperatorAndOptionalChaining, constants: undefined },
    regex,
    strictFunctions: true,
  });
  return { ok: true, filter: fromEvaluator(source, evaluator) };
}

/**
 * Compiles a subscriber filter: a filtrex expression over the message, with `a.b.c` reading
 * nested fields and a missing field reading as undefined (so `body.x == 1` is simply false).
 * Empty or blank source matches everything. Refused with a position, never thrown: malformed
 * syntax, more than FILTER_MAX_LENGTH bytes or FILTER_MAX_DEPTH levels, unknown functions,
 * and `~=` patterns that are invalid or can backtrack catastrophically.
 *
 * @example
 * const result = compileFilter('body.category == "food" and headers.mode == "quiet"');
 * if (result.ok && result.filter.matches(message)) deliver(message);
 */
export function compileFilter(
  source: string,
): { ok: true; filter: CompiledFilter } | { ok: false; problem: FilterSyntaxProblem } {
  try {
    return compileChecked(source);
  } catch (error) {
    if (error instanceof FilterSyntaxError) {
      return { ok: false, problem: { message: error.reason, position: error.position } };
    }
    return { ok: false, problem: { message: "The filter could not be compiled", position: 0 } };
  }
}
