import type { ArithmeticOperator, LogicalOperator, MembershipOperator, Node } from "./ast";
import type { CompileConfig, Evaluator } from "./compile-config";
import { bool, isSubset, requireListable } from "./runtime";

type Step = (left: unknown, right: unknown) => unknown;

/** Folds `step`s left to right over the operands, two operands without a loop. */
function fold(operands: readonly Evaluator[], steps: readonly Step[]): Evaluator {
  const [left, right] = operands;
  const [step] = steps;
  if (operands.length === 2 && left && right && step) {
    return (data) => step(left(data), right(data));
  }
  return (data) => {
    let accumulated = operands[0]?.(data);
    for (let index = 1; index < operands.length; index++) {
      const operand = operands[index];
      const apply = steps[index - 1];
      if (operand && apply) accumulated = apply(accumulated, operand(data));
    }
    return accumulated;
  };
}

/** `a and b and …` / `a or b or …`: booleans only, stopping at the first decisive one. */
export function compileLogical(
  operator: LogicalOperator,
  operands: readonly Evaluator[],
): Evaluator {
  const decisive = operator === "or";
  return (data) => {
    for (const operand of operands) if (bool(operand(data)) === decisive) return decisive;
    return !decisive;
  };
}

/** `a + b - c`, `a * b mod c`, through the configured operators (`%` uses `mod`, as in filtrex). */
export function compileArithmetic(
  operators: readonly ArithmeticOperator[],
  operands: readonly Evaluator[],
  config: CompileConfig,
): Evaluator {
  const steps = operators.map((operator) => config.operators[operator === "%" ? "mod" : operator]);
  return fold(operands, steps);
}

/** Literal items of a list written in the source, or null if any item is computed. */
function literalItems(node: Node | undefined): unknown[] | null {
  if (node?.kind !== "array") return null;
  const items = node.items.map((item) =>
    item.kind === "number" || item.kind === "string" ? item.value : undefined,
  );
  return items.includes(undefined) ? null : items;
}

function membershipStep(operator: MembershipOperator, right: Node | undefined): Step {
  const negate = operator === "notIn";
  const items = literalItems(right);
  if (items === null) return (a, b) => isSubset(a, b) !== negate;
  // A set built once answers like Array.prototype.includes: both use SameValueZero.
  const set = new Set(items);
  return (a) => {
    if (Array.isArray(a)) return a.every((value) => set.has(value)) !== negate;
    requireListable(a);
    return set.has(a) !== negate;
  };
}

/** `a in b`, `a not in b`: every element of `a` (or `a` itself) is in the list `b`. */
export function compileMembership(
  operators: readonly MembershipOperator[],
  operandNodes: readonly Node[],
  operands: readonly Evaluator[],
): Evaluator {
  const steps = operators.map((operator, index) =>
    membershipStep(operator, operandNodes[index + 1]),
  );
  return fold(operands, steps);
}
