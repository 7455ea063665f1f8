import { mod, num, numstr, str } from "./runtime";

function plus(a: unknown, b: unknown): number | string {
  const left = numstr(a);
  const right = numstr(b);
  return typeof left === "number" && typeof right === "number" ? left + right : `${left}${right}`;
}

/** How operators are called: `-` is also called with one argument, for unary minus. */
export type OperatorFunction = (a: unknown, b?: unknown) => unknown;

/**
 * A replacement operator. Any function of one or two parameters fits (typed ones too, as with
 * filtrex's `any`); it receives whatever the operands evaluate to.
 */
export type OperatorImplementation = (a: never, b?: never) => unknown;

/** The operators an expression uses, overridable through `options.operators` as in filtrex. */
export interface Operators {
  "+"?: OperatorImplementation;
  "-"?: OperatorImplementation;
  "*"?: OperatorImplementation;
  "/"?: OperatorImplementation;
  "^"?: OperatorImplementation;
  /** Used by both `mod` and the deprecated `%`. */
  mod?: OperatorImplementation;
  /** Accepted for filtrex's typings; as in filtrex, `%` evaluates with `mod`. */
  "%"?: OperatorImplementation;
  "=="?: OperatorImplementation;
  "!="?: OperatorImplementation;
  "<"?: OperatorImplementation;
  "<="?: OperatorImplementation;
  ">="?: OperatorImplementation;
  ">"?: OperatorImplementation;
  "~="?: OperatorImplementation;
}

/** The names an expression looks operators up by. */
export type OperatorName = Exclude<keyof Operators, "%">;

/**
 * filtrex's default operators. Binary minus with an undefined right operand negates the left,
 * because filtrex's `-` tells unary from binary by `b === undefined`.
 */
export const defaultOperators: Readonly<Record<OperatorName, OperatorFunction>> = {
  "+": plus,
  "-": (a, b) => (b === undefined ? -num(a) : num(a) - num(b)),
  "*": (a, b) => num(a) * num(b),
  "/": (a, b) => num(a) / num(b),
  "^": (a, b) => num(a) ** num(b),
  mod: (a, b) => mod(num(a), num(b)),
  "==": (a, b) => a === b,
  "!=": (a, b) => a !== b,
  "<": (a, b) => num(a) < num(b),
  "<=": (a, b) => num(a) <= num(b),
  ">=": (a, b) => num(a) >= num(b),
  ">": (a, b) => num(a) > num(b),
  "~=": (a, b) => RegExp(str(b)).test(str(a)),
};
