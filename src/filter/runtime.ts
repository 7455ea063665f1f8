import { UnexpectedTypeError } from "./errors";

/*
 * filtrex's runtime helpers, with its exact coercions: single-element lists and boxed primitives
 * unwrap, nothing else converts, and the type names in messages are filtrex's (an object, a list
 * and null all read "undefined" there, because its unboxing drops them).
 */

/** True if `object` is an object or function with an own property `name` (never inherited). */
export function isOwnProperty(object: unknown, name: string): boolean {
  return (
    (typeof object === "object" || typeof object === "function") &&
    object !== null &&
    Object.hasOwn(object, name)
  );
}

function unbox(value: unknown): unknown {
  if (typeof value !== "object") return value;
  if (value instanceof Number || value instanceof String || value instanceof Boolean) {
    return value.valueOf();
  }
  return undefined;
}

function unwrap(value: unknown): unknown {
  return unbox(Array.isArray(value) && value.length === 1 ? value[0] : value);
}

/** The type of a value as filtrex names it in its messages. */
export function prettyType(value: unknown): string {
  const unwrapped = unwrap(value);
  if (unwrapped === undefined) return "undefined";
  if (unwrapped === null) return "null";
  if (unwrapped === true) return "true";
  if (unwrapped === false) return "false";
  if (typeof unwrapped === "number") return "number";
  if (typeof unwrapped === "string") return "text";
  if (typeof unwrapped !== "object" && typeof unwrapped !== "function") return "unknown type";
  return Array.isArray(unwrapped) ? "list" : "object";
}

/** The value as a number, or an UnexpectedTypeError. */
export function num(value: unknown): number {
  if (typeof value === "number") return value;
  const unwrapped = unwrap(value);
  if (typeof unwrapped === "number") return unwrapped;
  throw new UnexpectedTypeError("number", prettyType(value));
}

/** The value as a string, or an UnexpectedTypeError. */
export function str(value: unknown): string {
  if (typeof value === "string") return value;
  const unwrapped = unwrap(value);
  if (typeof unwrapped === "string") return unwrapped;
  throw new UnexpectedTypeError("text", prettyType(value));
}

/** The value as a number or a string, or an UnexpectedTypeError. */
export function numstr(value: unknown): number | string {
  if (typeof value === "number" || typeof value === "string") return value;
  const unwrapped = unwrap(value);
  if (typeof unwrapped === "number" || typeof unwrapped === "string") return unwrapped;
  throw new UnexpectedTypeError("text or number", prettyType(value));
}

/** The value as a boolean (no truthiness: only booleans pass), or an UnexpectedTypeError. */
export function bool(value: unknown): boolean {
  if (typeof value === "boolean") return value;
  const unwrapped = unwrap(value);
  if (typeof unwrapped === "boolean") return unwrapped;
  throw new UnexpectedTypeError("logical value (“true” or “false”)", prettyType(value));
}

/** Throws filtrex's error for the values `in` cannot treat as a list: null and undefined. */
export function requireListable(value: unknown): void {
  if (value === undefined || value === null) {
    throw new UnexpectedTypeError("list", prettyType(value));
  }
}

/** The value as a list: a list as is, anything else but null/undefined as a list of one. */
export function arr(value: unknown): readonly unknown[] {
  requireListable(value);
  return Array.isArray(value) ? value : [value];
}

/** Modulo with the sign of the divisor: `-1 mod 3 == 2`. */
export function mod(a: number, b: number): number {
  return ((a % b) + b) % b;
}

/** `a in b`: every element of `a` is in `b` (SameValueZero, so NaN is in (NaN)). */
export function isSubset(a: unknown, b: unknown): boolean {
  const subset = arr(a);
  const superset = arr(b);
  return subset.every((value) => superset.includes(value));
}
