/**
 * The filter compiler: filtrex 3.1's expression language, compiled to closures so it runs where
 * code generation from strings is forbidden (Cloudflare Workers). `compileExpression` and its
 * options and errors are filtrex's API; `compileFilter` is the broker's entry point.
 */
export {
  type CompiledFilter,
  compileFilter,
  FILTER_MAX_DEPTH,
  FILTER_MAX_LENGTH,
  FILTER_MAX_TEXT_LENGTH,
  type FilterMessage,
  type FilterSyntaxProblem,
} from "./broker";
export {
  type CompiledExpression,
  compileExpression,
  EXPRESSION_MAX_DEPTH,
  type Options,
} from "./compile-expression";
export {
  InternalError,
  TextTooLongError,
  UnexpectedTypeError,
  UnknownFunctionError,
  UnknownOptionError,
  UnknownPropertyError,
  UnsafeRegexError,
} from "./errors";
export type { ExpressionFunction } from "./functions";
export type { OperatorImplementation, Operators } from "./operators";
export {
  type PropertyFunction,
  type PropertyType,
  type SafeGetter,
  useDotAccessOperator,
  useDotAccessOperatorAndOptionalChaining,
  useOptionalChaining,
} from "./properties";
export { FILTER_REGEX_INPUT_LIMIT, REGEX_CACHE_SIZE } from "./regex";
export { FilterSyntaxError } from "./syntax-error";
