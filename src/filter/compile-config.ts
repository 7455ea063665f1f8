import type { OperatorFunction, OperatorName } from "./operators";
import type { PropertyConfig } from "./properties";
import type { RegexPolicy } from "./regex";

/** A compiled (sub)expression: evaluates against the data, throwing on evaluation errors. */
export type Evaluator = (data: unknown) => unknown;

/** Everything compilation depends on besides the tree. */
export interface CompileConfig {
  /** The source, for the position of compile-time refusals. */
  source: string;
  /** Function table; looked up by own property, and the `this` of every call, as in filtrex. */
  functions: Readonly<Record<string, unknown>>;
  operators: Readonly<Record<OperatorName, OperatorFunction>>;
  properties: PropertyConfig;
  regex: RegexPolicy;
  /** Refuse calls to unknown functions at compile time instead of failing at evaluation. */
  strictFunctions: boolean;
}
