import { UnknownPropertyError } from "./errors";
import { isOwnProperty } from "./runtime";

/** How a name was written: `foo.bar` is unescaped, `'foo-bar'` is single-quoted. */
export type PropertyType = "unescaped" | "single-quoted";

/** Reads an own property of the object being accessed, or throws an UnknownPropertyError. */
export type SafeGetter = (name: string) => unknown;

/** filtrex's `customProp`: resolves a name against the object `of` applies to (or the data). */
export type PropertyFunction = (
  name: string,
  get: SafeGetter,
  object: unknown,
  type: PropertyType,
) => unknown;

/** The own property `name` of `object`, or an UnknownPropertyError (filtrex's `get`). */
export function safeGet(object: unknown, name: string): unknown {
  if (isOwnProperty(object, name)) return (object as Record<string, unknown>)[name];
  throw new UnknownPropertyError(name);
}

/** An own property of any non-null value (a string's `length` counts), else undefined. */
export function ownOrUndefined(value: unknown, name: string): unknown {
  if (value === null || value === undefined) return value;
  return Object.hasOwn(value, name) ? (value as Record<string, unknown>)[name] : undefined;
}

/**
 * Property function that yields null/undefined instead of an UnknownPropertyError when the
 * object itself is null or undefined, so `bar of foo` is `foo?.bar`.
 *
 * @example compileExpression("bar of foo", { customProp: useOptionalChaining })({ foo: null }) // null
 */
export function useOptionalChaining(
  name: string,
  get: SafeGetter,
  object: unknown,
  _type: PropertyType,
): unknown {
  if (object === null || object === undefined) return object;
  return get(name);
}

/**
 * Property function that reads dots in unquoted names as property access: `foo.bar` is
 * `bar of foo`. A missing step is an UnknownPropertyError naming that step.
 *
 * @example compileExpression("foo.bar", { customProp: useDotAccessOperator })({ foo: { bar: 42 } }) // 42
 */
export function useDotAccessOperator(
  name: string,
  get: SafeGetter,
  object: unknown,
  type: PropertyType,
): unknown {
  if (type === "single-quoted") return get(name);
  let current = object;
  for (const step of name.split(".")) current = safeGet(current, step);
  return current;
}

/**
 * Dot access with optional chaining: `foo.bar` is `foo?.bar`, and a missing property is
 * undefined rather than an error. Only own properties are read (unlike filtrex, whose version
 * of this function reaches inherited ones such as `constructor`): anything else is undefined.
 *
 * @example compileExpression("foo.bar", { customProp: useDotAccessOperatorAndOptionalChaining })({ foo: null }) // null
 */
export function useDotAccessOperatorAndOptionalChaining(
  name: string,
  get: SafeGetter,
  object: unknown,
  type: PropertyType,
): unknown {
  if (object === null || object === undefined) return object;
  if (type === "single-quoted") return get(name);
  let current: unknown = object;
  for (const step of name.split(".")) {
    if (current === null || current === undefined) return current;
    current = ownOrUndefined(current, step);
  }
  return current;
}

/** Where a property is read from, evaluated before the name is resolved. */
type ObjectEvaluator = (data: unknown) => unknown;

/** What property resolution depends on in the compile options. */
export interface PropertyConfig {
  customProp: PropertyFunction | undefined;
  constants: Readonly<Record<string, unknown>> | undefined;
}

function resolver(name: string, quoted: boolean, config: PropertyConfig): ObjectEvaluator {
  const { customProp } = config;
  const type: PropertyType = quoted ? "single-quoted" : "unescaped";
  if (customProp === undefined || (quoted && customProp === useDotAccessOperator)) {
    return (object) => safeGet(object, name);
  }
  if (
    customProp === useOptionalChaining ||
    (quoted && customProp === useDotAccessOperatorAndOptionalChaining)
  ) {
    return (object) => (object === null || object === undefined ? object : safeGet(object, name));
  }
  const steps = name.split(".");
  if (customProp === useDotAccessOperator) {
    return (object) => {
      let current = object;
      for (const step of steps) current = safeGet(current, step);
      return current;
    };
  }
  if (customProp === useDotAccessOperatorAndOptionalChaining) {
    const [first = "", second = "", third = ""] = steps;
    switch (steps.length) {
      case 1:
        return (object) => ownOrUndefined(object, first);
      case 2:
        return (object) => ownOrUndefined(ownOrUndefined(object, first), second);
      case 3:
        return (object) =>
          ownOrUndefined(ownOrUndefined(ownOrUndefined(object, first), second), third);
      default:
        return (object) => {
          let current = object;
          for (let index = 0; index < steps.length; index++) {
            current = ownOrUndefined(current, steps[index] ?? "");
          }
          return current;
        };
    }
  }
  return (object) => customProp(name, (key) => safeGet(object, key), object, type);
}

/**
 * Compiles a name lookup as filtrex resolves it: an unquoted name that is a constant wins, then
 * the property function (or own-property lookup). The object is evaluated first either way.
 * The shipped property functions are recognised and inlined; the result is the same.
 */
export function compileProperty(
  name: string,
  quoted: boolean,
  object: ObjectEvaluator | undefined,
  config: PropertyConfig,
): (data: unknown) => unknown {
  const resolve = resolver(name, quoted, config);
  const { constants } = config;
  if (constants !== undefined && !quoted) {
    return (data) => {
      const target = object === undefined ? data : object(data);
      return isOwnProperty(constants, name) ? constants[name] : resolve(target);
    };
  }
  if (object === undefined) return resolve;
  return (data) => resolve(object(data));
}
