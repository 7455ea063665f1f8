import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { HTTP_METHODS } from "../../src/db/schema";
import { readDeliveryTask, readFanoutTask } from "../../src/queues/task-guards";
import { DeliveryTaskSchema, FanoutTaskSchema } from "../../src/queues/tasks";

const RUNS = { seed: 42, numRuns: 3000 };

/** Each guard against its schema: the same verdict and, when accepted, the same value. */
function expectSameAsSchemas(input: unknown): void {
  const fanout = FanoutTaskSchema.safeParse(input);
  const readFanout = readFanoutTask(input);
  expect(readFanout === undefined).toBe(!fanout.success);
  if (fanout.success) expectSameValue(readFanout, fanout.data);

  const delivery = DeliveryTaskSchema.safeParse(input);
  const readDelivery = readDeliveryTask(input);
  expect(readDelivery === undefined).toBe(!delivery.success);
  if (delivery.success) expectSameValue(readDelivery, delivery.data);
}

/**
 * Equal values with the same own keys, in the same order, and the same prototypes. Not
 * `toStrictEqual`, which compares `constructor` properties by identity and so would tell two equal
 * maps with a `constructor` entry apart.
 */
function expectSameValue(actual: unknown, expected: unknown): void {
  expect(actual).toEqual(expected);
  expect(layout(actual)).toEqual(layout(expected));
}

function layout(value: unknown): unknown {
  if (typeof value !== "object" || value === null) return typeof value;
  const proto = Object.getPrototypeOf(value);
  const kind =
    proto === null ? "null" : proto === Object.prototype ? "object" : proto.constructor?.name;
  const fields = value as Record<PropertyKey, unknown>;
  return [kind, Reflect.ownKeys(value).map((key) => [String(key), layout(fields[key])])];
}

// Well-formed tasks.

const text = fc.string({ maxLength: 6 });
const body = fc.oneof(
  fc.constant({ kind: "none" }),
  fc.record({ kind: fc.constant("json"), value: fc.anything(), contentType: text }),
  fc.record({ kind: fc.constant("text"), text, contentType: text }),
  fc.record({ kind: fc.constant("bytes"), base64: text, contentType: text }),
);
const stringMap = fc.dictionary(text, text, { maxKeys: 4 });
const content = fc.record({
  body,
  headers: stringMap,
  query: fc.dictionary(text, fc.oneof(text, fc.array(text, { maxLength: 3 })), { maxKeys: 4 }),
  pathParams: stringMap,
  method: fc.constantFrom(...HTTP_METHODS, null),
});
const publishedAt = fc.double({ noNaN: true, noDefaultInfinity: true });
/** An optional field, sometimes present as an explicit `undefined`. */
const optional = <T>(value: fc.Arbitrary<T>) => fc.option(value, { nil: undefined, freq: 4 });
const fanoutTask = fc.record(
  {
    messageId: text,
    topic: text,
    publishedAt,
    content: fc.option(content, { nil: null }),
    redrives: optional(fc.oneof(fc.nat(20), fc.maxSafeInteger(), fc.constant(-0))),
    deferred: optional(fc.boolean()),
  },
  { requiredKeys: ["messageId", "topic", "publishedAt", "content"] },
);
const deliveryTask = fc.record(
  {
    messageId: text,
    subscriberId: text,
    topic: text,
    publishedAt,
    content: fc.option(content, { nil: null }),
    replay: optional(fc.boolean()),
  },
  { requiredKeys: ["messageId", "subscriberId", "topic", "publishedAt", "content"] },
);
const task = fc.oneof(fanoutTask, deliveryTask);

// Single-field mutations of a well-formed task.

function Named(this: unknown) {}
class Thing {}
const badValue = fc.oneof(
  fc.constantFrom<unknown>(
    undefined,
    null,
    Number.NaN,
    Number.POSITIVE_INFINITY,
    Number.NEGATIVE_INFINITY,
    -0,
    0,
    1,
    1.5,
    2 ** 53,
    -(2 ** 53),
    "",
    "none",
    "json",
    "text",
    "bytes",
    "GET",
    "get",
    "HEAD",
    true,
    [],
    ["a"],
    ["a", 1],
    {},
    new Date(0),
    new Map(),
    Named,
    () => 1,
  ),
  fc.anything({ maxDepth: 2 }),
);

const RESHAPES = [
  "wrapInArray",
  "asArray",
  "nullPrototype",
  "inherited",
  "symbolKey",
  "hiddenSymbolKey",
  "hiddenKey",
  "asDate",
  "asInstance",
  "sparseArray",
] as const;

/** What a mutation does to the value at its path. */
type Change = { set: unknown } | { remove: true } | { reshape: (typeof RESHAPES)[number] };
const change: fc.Arbitrary<Change> = fc.oneof(
  { arbitrary: badValue.map((value) => ({ set: value })), weight: 2 },
  { arbitrary: fc.constant({ remove: true as const }), weight: 1 },
  { arbitrary: fc.constantFrom(...RESHAPES).map((reshape) => ({ reshape })), weight: 1 },
);

function isObjectLike(value: unknown): value is object {
  return typeof value === "object" && value !== null;
}

/** A copy with the same prototype and own properties, `__proto__` keys included. */
function copyOf(value: object): object {
  if (Array.isArray(value)) return value.slice();
  return Object.create(Object.getPrototypeOf(value), Object.getOwnPropertyDescriptors(value));
}

function withOwn(target: object, key: PropertyKey, value: unknown, enumerable = true) {
  return Object.defineProperty(target, key, {
    value,
    enumerable,
    writable: true,
    configurable: true,
  });
}

/** `items` after a hole, which reads as `undefined` but is not an own key. */
function withHole(items: unknown[]): unknown[] {
  const holed = new Array(items.length + 1);
  for (const [i, item] of items.entries()) holed[i + 1] = item;
  return holed;
}

function reshaped(value: unknown, change: Change): unknown {
  if ("set" in change) return change.set;
  if ("remove" in change) return value;
  const fields = isObjectLike(value) ? value : {};
  switch (change.reshape) {
    case "wrapInArray":
      return [value];
    case "asArray":
      return Object.assign([], fields);
    case "nullPrototype":
      return Object.assign(Object.create(null), fields);
    case "inherited":
      return Object.create(fields);
    case "symbolKey":
      return withOwn(copyOf(fields), Symbol("key"), "x");
    case "hiddenSymbolKey":
      return withOwn(copyOf(fields), Symbol("key"), 1, false);
    case "hiddenKey":
      return withOwn(copyOf(fields), "hidden", 1, false);
    case "asDate":
      return Object.assign(new Date(0), fields);
    case "asInstance":
      return Object.assign(new Thing(), fields);
    case "sparseArray":
      return Array.isArray(value) ? withHole(value) : value;
  }
}

/** `root` with the value at `path` changed, copying only the objects along the way. */
function changedAt(root: unknown, path: readonly string[], change: Change): unknown {
  const [key, ...rest] = path;
  if (key === undefined) return reshaped(root, change);
  if (!isObjectLike(root)) return root;
  const copy = copyOf(root);
  if (rest.length === 0 && "remove" in change) {
    Reflect.deleteProperty(copy, key);
    return copy;
  }
  return withOwn(copy, key, changedAt((root as Record<string, unknown>)[key], rest, change));
}

/** Stands for a key the object does not have yet in {@link pathsOf}. */
const NEW_KEY = Symbol("new key");
const newKey = fc.constantFrom("extra", "__proto__", "constructor", "toString", "0");

/** Every path into a task, and one to a new key in each object, short of the json `value`. */
function pathsOf(value: unknown, path: (string | symbol)[] = []): (string | symbol)[][] {
  const paths = [path];
  if (!isObjectLike(value) || path.at(-1) === "value") return paths;
  paths.push([...path, NEW_KEY]);
  for (const key of Object.keys(value)) {
    paths.push(...pathsOf((value as Record<string, unknown>)[key], [...path, key]));
  }
  return paths;
}

const mutatedTask = task.chain((original) =>
  fc.tuple(fc.constantFrom(...pathsOf(original)), newKey, change).map(([path, key, change]) =>
    changedAt(
      original,
      path.map((step) => (step === NEW_KEY ? key : String(step))),
      change,
    ),
  ),
);

// Task-shaped junk, each field well-formed or, now and then, not; and junk of any shape.

const maybe = <T>(value: fc.Arbitrary<T>) =>
  fc.oneof({ arbitrary: value, weight: 12 }, { arbitrary: badValue, weight: 1 });
const looseBody = fc.record(
  {
    kind: maybe(fc.constantFrom("none", "json", "text", "bytes")),
    value: fc.anything(),
    text: maybe(text),
    base64: maybe(text),
    contentType: maybe(text),
  },
  { requiredKeys: ["kind"] },
);
const looseStringMap = fc.dictionary(text, maybe(text), { maxKeys: 3 });
const looseContent = fc.record({
  body: maybe(looseBody),
  headers: maybe(looseStringMap),
  query: maybe(fc.dictionary(text, maybe(fc.oneof(text, fc.array(maybe(text), { maxLength: 3 }))))),
  pathParams: maybe(looseStringMap),
  method: maybe(fc.constantFrom(...HTTP_METHODS, null)),
});
const looseTask = fc.record(
  {
    messageId: maybe(text),
    subscriberId: maybe(text),
    topic: maybe(text),
    publishedAt: maybe(fc.double()),
    content: maybe(fc.option(looseContent, { nil: null })),
    redrives: maybe(fc.oneof(fc.integer(), fc.maxSafeInteger(), fc.double())),
    deferred: maybe(fc.boolean()),
    replay: maybe(fc.boolean()),
  },
  { requiredKeys: ["messageId", "topic", "publishedAt", "content"] },
);
const junk = fc.anything({
  withBoxedValues: true,
  withDate: true,
  withMap: true,
  withNullPrototype: true,
  withObjectString: true,
  withSparseArray: true,
  withTypedArray: true,
});

describe("readFanoutTask and readDeliveryTask agree with the schemas", () => {
  it("on well-formed tasks of every body kind, which both accept", () => {
    fc.assert(
      fc.property(task, (input) => {
        const schema = "subscriberId" in input ? DeliveryTaskSchema : FanoutTaskSchema;
        expect(schema.safeParse(input).success).toBe(true);
        expectSameAsSchemas(input);
      }),
      RUNS,
    );
  });

  it("on a task with one field changed, removed, added or reshaped", () => {
    fc.assert(fc.property(mutatedTask, expectSameAsSchemas), RUNS);
  });

  it("on task-shaped junk", () => {
    fc.assert(fc.property(looseTask, expectSameAsSchemas), RUNS);
  });

  it("on junk of any shape", () => {
    fc.assert(fc.property(junk, expectSameAsSchemas), RUNS);
  });
});

describe("readFanoutTask and readDeliveryTask follow zod on the edges", () => {
  const fanout = { messageId: "m", topic: "t", publishedAt: 1, content: null };
  const withContent = (changes: Record<string, unknown>) => ({
    ...fanout,
    content: {
      body: { kind: "none" },
      headers: {},
      query: {},
      pathParams: {},
      method: "POST",
      ...changes,
    },
  });
  const headers = (value: object) => withContent({ headers: value });

  it.each<[string, unknown, boolean]>([
    ["refuses a publishedAt of Infinity", { ...fanout, publishedAt: Infinity }, false],
    ["refuses a publishedAt of NaN", { ...fanout, publishedAt: Number.NaN }, false],
    ["refuses a fractional redrives", { ...fanout, redrives: 1.5 }, false],
    ["refuses a redrives beyond the safe integers", { ...fanout, redrives: 2 ** 53 }, false],
    ["accepts a task that is a Date", Object.assign(new Date(0), fanout), true],
    ["accepts fields inherited from a prototype", Object.create(fanout), true],
    ["refuses an array with the fields of a task", Object.assign([], fanout), false],
    [
      "refuses a json body without its value",
      withContent({ body: { kind: "json", contentType: "x" } }),
      false,
    ],
    [
      "accepts a json body whose value is undefined",
      withContent({ body: { kind: "json", value: undefined, contentType: "x" } }),
      true,
    ],
    ["refuses an unknown kind", withContent({ body: { kind: "form" } }), false],
    ["refuses a method in lower case", withContent({ method: "post" }), false],
    ["refuses a method of undefined", withContent({ method: undefined }), false],
    [
      "accepts headers with a null prototype",
      headers(Object.assign(Object.create(null), { a: "b" })),
      true,
    ],
    ["refuses headers that are a Date", headers(new Date(0)), false],
    ["refuses headers that are a class instance", headers(new Thing()), false],
    ["accepts headers whose constructor is not a function", headers({ constructor: "x" }), true],
    [
      "refuses headers whose constructor has no prototype",
      headers({ constructor: () => 1 }),
      false,
    ],
    ["refuses headers with a symbol key", headers({ [Symbol("key")]: "x" }), false],
    [
      "ignores a non-enumerable header of the wrong type",
      headers(withOwn({}, "a", 1, false)),
      true,
    ],
    [
      "ignores an own __proto__ header of the wrong type",
      headers(JSON.parse('{"__proto__":1}')),
      true,
    ],
    ["refuses a query array with a hole", withContent({ query: { a: withHole(["b"]) } }), false],
    ["refuses a query array with a number", withContent({ query: { a: ["b", 1] } }), false],
  ])("%s", (_, input, accepted) => {
    expect(readFanoutTask(input) !== undefined).toBe(accepted);
    expectSameAsSchemas(input);
  });

  it("keeps a present optional key, even as undefined, and strips unknown keys", () => {
    const task = readFanoutTask({ ...fanout, redrives: undefined, extra: 1 });
    expect(task).toStrictEqual({ ...fanout, redrives: undefined });
    expect(Object.keys(task ?? {})).toEqual([
      "messageId",
      "topic",
      "publishedAt",
      "content",
      "redrives",
    ]);
  });

  it("hands back the json value itself and fresh maps", () => {
    const value = { a: [1] };
    const tags = ["b"];
    const query = { tags };
    const input = withContent({ body: { kind: "json", value, contentType: "x" }, query });
    const content = readFanoutTask(input)?.content;
    expect(content?.body).toEqual({ kind: "json", value, contentType: "x" });
    expect(content?.body.kind === "json" && content.body.value).toBe(value);
    expect(content?.query).toEqual(query);
    expect(content?.query).not.toBe(query);
    expect(content?.query.tags).not.toBe(tags);
  });
});
