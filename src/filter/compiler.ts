import type { Node } from "./ast";
import { compileArithmetic, compileLogical, compileMembership } from "./chains";
import type { CompileConfig, Evaluator } from "./compile-config";
import { UnknownFunctionError } from "./errors";
import { defaultOperators } from "./operators";
import { compileProperty } from "./properties";
import { compileRelation } from "./relations";
import { bool, isOwnProperty, num } from "./runtime";
import { refusalAt } from "./syntax-error";

type Callable = (this: unknown, ...args: unknown[]) => unknown;

function lookupFunction(config: CompileConfig, name: string): Callable | null {
  const candidate = isOwnProperty(config.functions, name) ? config.functions[name] : undefined;
  return typeof candidate === "function" ? (candidate as Callable) : null;
}

/** A call; arguments are evaluated first, even for an unknown function, as in filtrex. */
function compileCall(node: Extract<Node, { kind: "call" }>, config: CompileConfig): Evaluator {
  const args = node.args.map((arg) => compileNode(arg, config));
  const fn = lookupFunction(config, node.name);
  const table = config.functions;
  const { name } = node;
  if (fn === null) {
    if (config.strictFunctions)
      throw refusalAt(config.source, node.position, `Unknown function: ${name}()`);
    return (data) => {
      for (const arg of args) arg(data);
      throw new UnknownFunctionError(name);
    };
  }
  const [first] = args;
  if (args.length === 1 && first !== undefined) return (data) => fn.call(table, first(data));
  return (data) =>
    fn.apply(
      table,
      args.map((arg) => arg(data)),
    );
}

function compileAll(nodes: readonly Node[], config: CompileConfig): Evaluator[] {
  return nodes.map((node) => compileNode(node, config));
}

/**
 * Compiles a tree to one closure per node, built once; evaluation runs no parser and generates
 * no code. Recursion follows the tree, whose depth the parser bounds.
 */
export function compileNode(node: Node, config: CompileConfig): Evaluator {
  switch (node.kind) {
    case "number":
    case "string": {
      const { value } = node;
      return () => value;
    }
    case "array": {
      const items = compileAll(node.items, config);
      return (data) => items.map((item) => item(data));
    }
    case "property": {
      const object = node.object === undefined ? undefined : compileNode(node.object, config);
      return compileProperty(node.name, node.quoted, object, config.properties);
    }
    case "call":
      return compileCall(node, config);
    case "negate": {
      const operand = compileNode(node.operand, config);
      const negate = config.operators["-"];
      if (negate === defaultOperators["-"]) return (data) => -num(operand(data));
      return (data) => negate(operand(data));
    }
    case "not": {
      const operand = compileNode(node.operand, config);
      return (data) => !bool(operand(data));
    }
    case "power": {
      const base = compileNode(node.base, config);
      const exponent = compileNode(node.exponent, config);
      const power = config.operators["^"];
      return (data) => power(base(data), exponent(data));
    }
    case "conditional": {
      const test = compileNode(node.test, config);
      const consequent = compileNode(node.consequent, config);
      const alternate = compileNode(node.alternate, config);
      return (data) => (bool(test(data)) ? consequent(data) : alternate(data));
    }
    case "logical":
      return compileLogical(node.operator, compileAll(node.operands, config));
    case "arithmetic":
      return compileArithmetic(node.operators, compileAll(node.operands, config), config);
    case "membership":
      return compileMembership(node.operators, node.operands, compileAll(node.operands, config));
    case "relation":
      return compileRelation(
        node.operators,
        node.operands,
        compileAll(node.operands, config),
        config,
      );
  }
}
