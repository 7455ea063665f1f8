/**
 * Hand-written twins of `FanoutTaskSchema` and `DeliveryTaskSchema`, for the queue consumers. In
 * workerd zod runs jitless (Workers forbid code built from strings), so it walks each schema
 * generically, a noticeable share of a delivery's CPU; these run for every task consumed. They
 * accept exactly what the schemas accept and return what `safeParse` would, down to zod's quirks:
 * test/queues/task-guards.test.ts holds them equal.
 */
import type { z } from "zod";
import { HTTP_METHODS } from "../db/schema";
import { logError } from "../log";
import type {
  DeliveryBundle,
  DeliveryTask,
  DeliveryWork,
  FanoutTask,
  MessageContent,
} from "./tasks";

type Fields = Record<string, unknown>;
type Body = MessageContent["body"];
type StringMap = Record<string, string>;
type Query = MessageContent["query"];

const METHODS: ReadonlySet<unknown> = new Set(HTTP_METHODS);

/** `z.object`'s test: any object but null and arrays, so a Date or a class instance passes too. */
function isObject(value: unknown): value is Fields {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * zod's `isPlainObject`, which `z.record` requires: a constructor that is not a function (or is
 * missing, as with a null prototype) passes; one whose prototype lacks `isPrototypeOf` does not.
 */
function isPlainObject(value: unknown): value is Fields {
  if (!isObject(value)) return false;
  const ctor = value.constructor;
  if (typeof ctor !== "function") return true;
  const proto: unknown = ctor.prototype;
  return isObject(proto) && Object.hasOwn(proto, "isPrototypeOf");
}

/** `z.number()` refuses NaN and the infinities. */
function isNumber(value: unknown): value is number {
  return typeof value === "number" && Number.isFinite(value);
}

/** `.optional()` takes an explicit `undefined` as well as a missing key. */
function isOptionalSafeInt(value: unknown): value is number | undefined {
  return value === undefined || (typeof value === "number" && Number.isSafeInteger(value));
}

function isOptionalBoolean(value: unknown): value is boolean | undefined {
  return value === undefined || typeof value === "boolean";
}

/** A record refuses an own enumerable symbol key, since it fails `z.string()` as a key. */
function hasEnumerableSymbol(value: object): boolean {
  for (const symbol of Object.getOwnPropertySymbols(value)) {
    if (Object.prototype.propertyIsEnumerable.call(value, symbol)) return true;
  }
  return false;
}

/**
 * `z.record(z.string(), item)`: own enumerable keys only, into a fresh object. zod skips an own
 * `__proto__` key without checking its value, lest it replace the copy's prototype.
 */
function readRecord<T>(
  value: unknown,
  readItem: (item: unknown) => T | undefined,
): Record<string, T> | undefined {
  if (!isPlainObject(value) || hasEnumerableSymbol(value)) return undefined;
  const record: Record<string, T> = {};
  for (const key of Object.keys(value)) {
    if (key === "__proto__") continue;
    const item = readItem(value[key]);
    if (item === undefined) return undefined;
    record[key] = item;
  }
  return record;
}

function readString(value: unknown): string | undefined {
  return typeof value === "string" ? value : undefined;
}

/** A string, or `z.array(z.string())`, which builds a new array; a hole reads as `undefined`. */
function readQueryValue(value: unknown): string | string[] | undefined {
  if (typeof value === "string") return value;
  if (!Array.isArray(value)) return undefined;
  const items = new Array<string>(value.length);
  for (let i = 0; i < value.length; i++) {
    const item: unknown = value[i];
    if (typeof item !== "string") return undefined;
    items[i] = item;
  }
  return items;
}

/**
 * The `kind` union. Keys are read with `in` and `[]`, as zod does, so inherited ones count; `value`
 * is `z.unknown()` yet required: present as `undefined` passes, missing fails.
 */
function readBody(value: unknown): Body | undefined {
  if (!isObject(value)) return undefined;
  switch (value.kind) {
    case "none":
      return { kind: "none" };
    case "json": {
      const contentType = value.contentType;
      if (!("value" in value) || typeof contentType !== "string") return undefined;
      return { kind: "json", value: value.value, contentType };
    }
    case "text": {
      const { text, contentType } = value;
      if (typeof text !== "string" || typeof contentType !== "string") return undefined;
      return { kind: "text", text, contentType };
    }
    case "bytes": {
      const { base64, contentType } = value;
      if (typeof base64 !== "string" || typeof contentType !== "string") return undefined;
      return { kind: "bytes", base64, contentType };
    }
    default:
      return undefined;
  }
}

/** `MessageContentSchema.nullable()`: `null` is a valid answer here, `undefined` the refusal. */
function readContent(value: unknown): MessageContent | null | undefined {
  if (value === null) return null;
  if (!isObject(value)) return undefined;
  const body = readBody(value.body);
  if (body === undefined) return undefined;
  const headers: StringMap | undefined = readRecord(value.headers, readString);
  if (headers === undefined) return undefined;
  const query: Query | undefined = readRecord(value.query, readQueryValue);
  if (query === undefined) return undefined;
  const pathParams: StringMap | undefined = readRecord(value.pathParams, readString);
  if (pathParams === undefined) return undefined;
  const method = value.method;
  if (method !== null && !METHODS.has(method)) return undefined;
  return { body, headers, query, pathParams, method: method as MessageContent["method"] };
}

/**
 * `FanoutTaskSchema.safeParse(value).data`, or `undefined` where it fails. An optional key that
 * is present, even as `undefined`, is kept, as zod keeps it.
 */
export function readFanoutTask(value: unknown): FanoutTask | undefined {
  if (!isObject(value)) return undefined;
  const { messageId, topic, publishedAt } = value;
  if (typeof messageId !== "string" || typeof topic !== "string" || !isNumber(publishedAt)) {
    return undefined;
  }
  const content = readContent(value.content);
  if (content === undefined) return undefined;
  const task: FanoutTask = { messageId, topic, publishedAt, content };
  if ("redrives" in value) {
    const redrives = value.redrives;
    if (!isOptionalSafeInt(redrives)) return undefined;
    task.redrives = redrives;
  }
  if ("deferred" in value) {
    const deferred = value.deferred;
    if (!isOptionalBoolean(deferred)) return undefined;
    task.deferred = deferred;
  }
  if ("unrecorded" in value) {
    const unrecorded = value.unrecorded;
    if (!isOptionalBoolean(unrecorded)) return undefined;
    task.unrecorded = unrecorded;
  }
  return task;
}

/** `DeliveryTaskSchema.safeParse(value).data`, or `undefined` where it fails. */
export function readDeliveryTask(value: unknown): DeliveryTask | undefined {
  if (!isObject(value)) return undefined;
  const { messageId, subscriberId, topic, publishedAt } = value;
  if (
    typeof messageId !== "string" ||
    typeof subscriberId !== "string" ||
    typeof topic !== "string" ||
    !isNumber(publishedAt)
  ) {
    return undefined;
  }
  const content = readContent(value.content);
  if (content === undefined) return undefined;
  const task: DeliveryTask = { messageId, subscriberId, topic, publishedAt, content };
  if ("replay" in value) {
    const replay = value.replay;
    if (!isOptionalBoolean(replay)) return undefined;
    task.replay = replay;
  }
  if ("openedAt" in value) {
    const openedAt = value.openedAt;
    if (openedAt !== undefined && !isNumber(openedAt)) return undefined;
    task.openedAt = openedAt;
  }
  if ("attempt" in value) {
    const attempt = value.attempt;
    if (!isOptionalSafeInt(attempt) || (attempt !== undefined && attempt < 1)) return undefined;
    task.attempt = attempt;
  }
  return task;
}

/** `DeliveryBundleSchema.safeParse(value).data`, or `undefined` where it fails. */
export function readDeliveryBundle(value: unknown): DeliveryBundle | undefined {
  if (!isObject(value) || value.kind !== "bundle") return undefined;
  const { topic, openedAt, messages, subscriberIds } = value;
  if (typeof topic !== "string" || !isNumber(openedAt)) return undefined;
  if (!Array.isArray(messages) || messages.length === 0) return undefined;
  if (!Array.isArray(subscriberIds) || subscriberIds.length === 0) return undefined;
  if (!subscriberIds.every((id): id is string => typeof id === "string")) return undefined;
  const read: DeliveryBundle["messages"] = [];
  for (const message of messages as unknown[]) {
    if (!isObject(message)) return undefined;
    const { messageId, publishedAt } = message;
    if (typeof messageId !== "string" || !isNumber(publishedAt)) return undefined;
    const content = readContent(message.content);
    if (content === undefined) return undefined;
    read.push({ messageId, publishedAt, content });
  }
  return { kind: "bundle", topic, openedAt, messages: read, subscriberIds };
}

/** `DeliveryWorkSchema.safeParse(value).data`, or `undefined` where it fails. */
export function readDeliveryWork(value: unknown): DeliveryWork | undefined {
  return isObject(value) && value.kind === "bundle"
    ? readDeliveryBundle(value)
    : readDeliveryTask(value);
}

/** A queue message and the task it carries. */
export interface Work<T> {
  message: Message<unknown>;
  task: T;
}

/**
 * The batch's well-formed tasks, in order, as `read` takes them. A malformed one is logged as
 * `<consumer>.malformed_task`, with the schema's account of what is wrong, and acked: no retry
 * can mend it.
 */
export function wellFormedTasks<T>(
  batch: MessageBatch<unknown>,
  read: (value: unknown) => T | undefined,
  schema: z.ZodType,
  consumer: string,
): Work<T>[] {
  const work: Work<T>[] = [];
  for (const message of batch.messages) {
    const task = read(message.body);
    if (task !== undefined) work.push({ message, task });
    else {
      const error = schema.safeParse(message.body).error?.message;
      logError(`${consumer}.malformed_task`, { id: message.id, error });
      message.ack();
    }
  }
  return work;
}
