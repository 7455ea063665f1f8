import { compileNode } from "./compiler";
import { UnknownOptionError } from "./errors";
import { type ExpressionFunction, standardFunctions } from "./functions";
import {
  defaultOperators,
  type OperatorFunction,
  type OperatorName,
  type Operators,
} from "./operators";
import { parse } from "./parser";
import type { PropertyFunction } from "./properties";
import { compatibleRegex } from "./regex";

/** The options of `compileExpression`, as in filtrex 3.1. */
export interface Options {
  /** Functions callable from the expression, beside (or replacing) the standard ones. */
  extraFunctions?: Readonly<Record<string, ExpressionFunction>>;
  /** Values for unquoted names; they shadow the data, which `'quoted'` names still reach. */
  constants?: Readonly<Record<string, unknown>>;
  /** Resolves names instead of own-property lookup; see `useDotAccessOperator` and friends. */
  customProp?: PropertyFunction;
  /** Replacements for the built-in operators. */
  operators?: Operators;
}

/** The compiled expression: returns the value, or the error evaluation raised (never throws). */
export type CompiledExpression = (data?: unknown) => unknown;

/** Deepest nesting `compileExpression` accepts; deeper input is a syntax error, not a crash. */
export const EXPRESSION_MAX_DEPTH = 256;

const KNOWN_OPTIONS: readonly string[] = ["extraFunctions", "constants", "customProp", "operators"];
const sharedRegex = compatibleRegex();

/**
 * Compiles a filtrex expression to a function of the data, with filtrex 3.1's syntax,
 * semantics, options and errors, built from closures (no code is generated from strings).
 * Throws for bad options and malformed expressions (a FilterSyntaxError with `position`); the
 * compiled function never throws, it returns the evaluation error instead.
 *
 * @example
 * const fn = compileExpression('transactions <= 5 and abs(profit) > 20.5');
 * fn({ transactions: 3, profit: -40.5 }); // true
 */
export function compileExpression(expression: string, options?: Options): CompiledExpression {
  // biome-ignore lint/complexity/noArguments: filtrex rejects a third argument (its old API).
  if (arguments.length > 2) throw new TypeError("Too many arguments.");
  if (typeof expression !== "string") throw new TypeError("The expression must be a string.");
  if (options === null) throw new TypeError("Cannot destructure 'options' as it is null.");
  const settings: Options = typeof options === "object" ? options : {};
  for (const key of Object.keys(settings)) {
    if (!KNOWN_OPTIONS.includes(key)) throw new UnknownOptionError(key);
  }
  const { extraFunctions, constants, customProp, operators } = settings;

  const functions: Record<string, unknown> = { ...standardFunctions };
  if (extraFunctions) {
    for (const name of Object.keys(extraFunctions)) functions[name] = extraFunctions[name];
  }
  const resolvedOperators: Record<string, OperatorFunction> = { ...defaultOperators };
  if (operators) {
    for (const [name, implementation] of Object.entries(operators)) {
      resolvedOperators[name] =
        typeof implementation === "function"
          ? (implementation as OperatorFunction)
          : () => {
              throw new TypeError(`The operator ${name} is not a function.`);
            };
    }
  }

  const tree = parse(expression, { maxDepth: EXPRESSION_MAX_DEPTH });
  const evaluate = compileNode(tree, {
    source: expression,
    functions,
    operators: resolvedOperators as Record<OperatorName, OperatorFunction>,
    properties: {
      customProp: typeof customProp === "function" ? customProp : undefined,
      constants: constants ?? undefined,
    },
    regex: sharedRegex,
    strictFunctions: false,
  });

  return (data) => {
    try {
      return evaluate(data);
    } catch (error) {
      return error;
    }
  };
}
