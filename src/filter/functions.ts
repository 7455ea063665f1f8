/** A function callable from an expression. */
export type ExpressionFunction = (...args: never[]) => unknown;

/** The functions every expression can call, as filtrex defines them. */
export const standardFunctions: Readonly<Record<string, ExpressionFunction>> = {
  abs: Math.abs,
  ceil: Math.ceil,
  floor: Math.floor,
  log: Math.log,
  log2: Math.log2,
  log10: Math.log10,
  max: Math.max,
  min: Math.min,
  round: Math.round,
  sqrt: Math.sqrt,
  /** True unless the value is undefined or null. */
  exists: (value: unknown) => value !== undefined && value !== null,
  /** True for undefined, null, "" and an empty list. */
  empty: (value: unknown) =>
    value === undefined ||
    value === null ||
    value === "" ||
    (Array.isArray(value) && value.length === 0),
};
