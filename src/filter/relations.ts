import type { Node, RelationalOperator } from "./ast";
import type { CompileConfig, Evaluator } from "./compile-config";
import { defaultOperators } from "./operators";
import { refusalAt } from "./syntax-error";

type Comparison = (a: unknown, b: unknown) => unknown;

/** The comparison of one link; a default `~=` on a literal pattern prepares it once. */
function comparison(
  operator: RelationalOperator,
  right: Node | undefined,
  config: CompileConfig,
): Comparison {
  const implementation = config.operators[operator];
  if (operator !== "~=" || implementation !== defaultOperators["~="]) return implementation;
  if (right?.kind !== "string") return (subject, pattern) => config.regex.dynamic(subject, pattern);
  const prepared = config.regex.literal(right.value);
  if (!prepared.ok) throw refusalAt(config.source, right.position, prepared.reason);
  const { matcher } = prepared;
  return (subject) => matcher(subject);
}

/**
 * `a < b <= c` as filtrex evaluates it: operands left to right, each link compared with the
 * previous operand, stopping at the first falsy comparison and returning it (like `&&`).
 */
export function compileRelation(
  operators: readonly RelationalOperator[],
  operandNodes: readonly Node[],
  operands: readonly Evaluator[],
  config: CompileConfig,
): Evaluator {
  const tests = operators.map((operator, index) =>
    comparison(operator, operandNodes[index + 1], config),
  );
  const [left, right] = operands;
  const [test] = tests;
  if (operands.length === 2 && left && right && test) {
    const rightNode = operandNodes[1];
    const literal =
      rightNode?.kind === "string" || rightNode?.kind === "number" ? rightNode.value : null;
    if (literal !== null && test === defaultOperators["=="])
      return (data) => left(data) === literal;
    if (literal !== null && test === defaultOperators["!="])
      return (data) => left(data) !== literal;
    return (data) => test(left(data), right(data));
  }
  return (data) => {
    let previous = operands[0]?.(data);
    let result: unknown = true;
    for (let index = 1; index < operands.length; index++) {
      const current = operands[index]?.(data);
      result = tests[index - 1]?.(previous, current);
      if (!result) return result;
      previous = current;
    }
    return result;
  };
}
