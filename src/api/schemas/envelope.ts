import { z } from "@hono/zod-openapi";
import { isBase64 } from "../../publish/body";
import { HeaderMap, HttpMethod, QueryMap } from "./common";

export const MAX_DELAY_SECONDS = 43200;
/** Deeper JSON bodies are refused: nothing real nests this far, and hostile ones cost stack. */
export const MAX_BODY_DEPTH = 128;
export const MAX_IDEMPOTENCY_KEY_LENGTH = 255;

/** Values that fill a subscriber URL's `:name` and `{name}` segments. */
export const PathParams = z
  .record(
    z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { message: "must be a parameter name" }),
    z.string().max(2048),
  )
  .refine((params) => Object.keys(params).length <= 32, { message: "must have at most 32 entries" })
  .openapi({ example: { orderId: "42" } });

export const IdempotencyKey = z.string().min(1).max(MAX_IDEMPOTENCY_KEY_LENGTH);

const envelopeShape = {
  body: z
    .unknown()
    .optional()
    .openapi({ example: { category: "food", green_light: true } }),
  bodyBase64: z.string().optional(),
  bodyText: z.string().optional(),
  contentType: z.string().min(1).max(256).optional(),
  headers: HeaderMap.optional(),
  query: QueryMap.optional(),
  pathParams: PathParams.optional(),
  method: HttpMethod.optional(),
  delaySeconds: z.number().int().min(0).max(MAX_DELAY_SECONDS).optional(),
};

type EnvelopeFields = {
  body?: unknown;
  bodyBase64?: string | undefined;
  bodyText?: string | undefined;
  contentType?: string | undefined;
};

function checkBodies(envelope: EnvelopeFields, ctx: z.RefinementCtx): void {
  const bodies = (["body", "bodyBase64", "bodyText"] as const).filter(
    (field) => envelope[field] !== undefined,
  );
  if (bodies.length > 1) {
    ctx.addIssue({
      code: "custom",
      path: [bodies[1] ?? "body"],
      message: `cannot be sent together with ${bodies[0]}; send one body`,
    });
  }
  if (envelope.bodyBase64 !== undefined && !isBase64(envelope.bodyBase64)) {
    ctx.addIssue({ code: "custom", path: ["bodyBase64"], message: "must be standard base64" });
  }
  if (envelope.contentType !== undefined && /[^\t\x20-\x7e]/.test(envelope.contentType)) {
    ctx.addIssue({
      code: "custom",
      path: ["contentType"],
      message: "must be printable ASCII (no CR, LF or NUL)",
    });
  }
  if (envelope.body !== undefined && jsonDepth(envelope.body) > MAX_BODY_DEPTH) {
    ctx.addIssue({
      code: "custom",
      path: ["body"],
      message: `must not nest deeper than ${MAX_BODY_DEPTH} levels`,
    });
  } else if (envelope.body !== undefined && hasNonFiniteNumber(envelope.body)) {
    // JSON.parse reads 1e400 as Infinity, which would be delivered as null.
    ctx.addIssue({
      code: "custom",
      path: ["body"],
      message: "must not hold numbers beyond the range of a double (such as 1e400)",
    });
  }
}

/**
 * A message as a publisher sends it. At most one of `body` (any JSON value), `bodyBase64` (bytes)
 * and `bodyText` (text); `contentType` goes with the latter two.
 */
export const Envelope = z.strictObject(envelopeShape).superRefine(checkBodies).openapi("Envelope");

/** An envelope in a batch, which may carry its own idempotency key. */
export const BatchEnvelope = z
  .strictObject({ ...envelopeShape, idempotencyKey: IdempotencyKey.optional() })
  .superRefine(checkBodies)
  .openapi("BatchEnvelope");

export const PublishBatch = z
  .strictObject({ messages: z.array(BatchEnvelope).min(1).max(100) })
  .openapi("PublishBatch");

export type Envelope = z.infer<typeof Envelope>;
export type BatchEnvelope = z.infer<typeof BatchEnvelope>;

/** Nesting depth of a JSON value, measured without recursion. */
export function jsonDepth(value: unknown): number {
  let deepest = 0;
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length > 0) {
    const [current, depth] = stack.pop() as [unknown, number];
    if (current === null || typeof current !== "object") continue;
    deepest = Math.max(deepest, depth);
    if (deepest > MAX_BODY_DEPTH) return deepest;
    for (const child of Object.values(current)) stack.push([child, depth + 1]);
  }
  return deepest;
}

/** Whether a JSON value holds a number outside the double range; call after `jsonDepth`. */
export function hasNonFiniteNumber(value: unknown): boolean {
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const current = stack.pop();
    if (typeof current === "number" && !Number.isFinite(current)) return true;
    if (current === null || typeof current !== "object") continue;
    for (const child of Object.values(current)) stack.push(child);
  }
  return false;
}
