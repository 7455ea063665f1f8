/**
 * The parsed expression. Left-associative runs of one precedence level (`a + b - c`,
 * `a and b and c`) are one node with a list of operands, so evaluation walks them in a loop and
 * a long `or` chain never turns into deep recursion. `position` is the 0-based source offset.
 */

/** `+ - * / mod %`; one node holds operators of a single precedence level. */
export type ArithmeticOperator = "+" | "-" | "*" | "/" | "mod" | "%";
/** `in` and `not in`. */
export type MembershipOperator = "in" | "notIn";
/** `and` and `or`. */
export type LogicalOperator = "and" | "or";
/** Operators that fold left to right over a list of operands. */
export type ChainOperator = ArithmeticOperator | MembershipOperator | LogicalOperator;
/** Operators of a (possibly chained) relation: `a < b <= c`. */
export type RelationalOperator = "==" | "!=" | "~=" | "<" | "<=" | ">=" | ">";

/** A node of the expression tree. */
export type Node =
  | { kind: "number"; position: number; value: number }
  | { kind: "string"; position: number; value: string }
  | { kind: "array"; position: number; items: Node[] }
  /** `object` is absent for a bare name, which reads from the data. */
  | { kind: "property"; position: number; name: string; quoted: boolean; object?: Node }
  | { kind: "call"; position: number; name: string; args: Node[] }
  | { kind: "negate"; position: number; operand: Node }
  | { kind: "not"; position: number; operand: Node }
  | { kind: "power"; position: number; base: Node; exponent: Node }
  | { kind: "logical"; position: number; operator: LogicalOperator; operands: Node[] }
  /** `operators[i]` joins `operands[i]` and `operands[i + 1]`; likewise below. */
  | { kind: "arithmetic"; position: number; operators: ArithmeticOperator[]; operands: Node[] }
  | { kind: "membership"; position: number; operators: MembershipOperator[]; operands: Node[] }
  | { kind: "relation"; position: number; operators: RelationalOperator[]; operands: Node[] }
  /** Both `if … then … else …` and the deprecated `… ? … : …`. */
  | { kind: "conditional"; position: number; test: Node; consequent: Node; alternate: Node };
