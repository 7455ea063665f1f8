/**
 * Wrapping the runtime's objects (bindings, batches, messages) so that a few members count what
 * they do while everything else stays the runtime's own.
 */

/**
 * `target` with some members replaced; every other member is the target's own, methods bound to
 * it, since the runtime's objects refuse to be called on anything else.
 */
export function passThrough<T extends object>(target: T, overrides: Partial<T>): T {
  return new Proxy(target, {
    get(object, key) {
      if (Object.hasOwn(overrides, key)) return Reflect.get(overrides, key);
      const value: unknown = Reflect.get(object, key, object);
      return typeof value === "function" ? value.bind(object) : value;
    },
  });
}
