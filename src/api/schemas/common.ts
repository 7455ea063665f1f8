import { z } from "@hono/zod-openapi";
import { HTTP_METHODS } from "../../db/schema";
import { headerNameProblem, headerValueProblem } from "../../http/headers";

export const TOPIC_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export const TopicName = z
  .string()
  .regex(TOPIC_NAME, {
    message:
      "must start with a letter or digit and hold at most 128 letters, digits, '.', '_' or '-'",
  })
  .openapi({ example: "orders.created" });

/**
 * Free text that is stored as written. A lone surrogate (valid in a JSON string, not in Unicode)
 * cannot be: D1 stores UTF-8, and it would read back as replacement characters.
 */
const StoredText = z.string().refine((text) => text.isWellFormed(), {
  message: "must be well-formed Unicode (no lone surrogates)",
});

export const Description = StoredText.max(1024).nullable();

export const Timestamp = z.iso.datetime().openapi({ example: "2026-11-28T12:00:00.000Z" });

export const HttpMethod = z.enum(HTTP_METHODS);

/** Request headers a message or subscriber adds: valid HTTP, none of the reserved ones. */
export const HeaderMap = z
  .record(z.string(), z.string())
  .superRefine((headers, ctx) => {
    const entries = Object.entries(headers);
    if (entries.length > 64) {
      ctx.addIssue({ code: "custom", message: "must have at most 64 entries" });
    }
    for (const [name, value] of entries) {
      const problem = headerNameProblem(name) ?? headerValueProblem(value);
      if (problem) ctx.addIssue({ code: "custom", path: [name], message: problem });
    }
  })
  .openapi({ example: { "x-api-key": "secret-key" } });

const QueryValue = z.union([z.string().max(2048), z.array(z.string().max(2048)).max(64)]);

/** Query parameters; an array repeats the parameter. */
export const QueryMap = z
  .record(z.string().min(1).max(256), QueryValue)
  .refine((query) => Object.keys(query).length <= 64, { message: "must have at most 64 entries" })
  .openapi({ example: { source: "switchboard", tag: ["a", "b"] } });

/** A list page's query: `limit` (1–200, default 50) and the opaque `cursor` of the last page. */
export const PageQuery = z.strictObject({
  // An empty `limit=` means the default, as an empty `cursor=` means the first page.
  limit: z.preprocess(
    (value) => (value === "" ? undefined : value),
    z.coerce.number().int().min(1).max(200).default(50),
  ),
  cursor: z.string().max(512).optional(),
});

export const NextCursor = z.string().nullable();

/** The problem+json body of every error. */
export const ProblemSchema = z
  .object({
    type: z.string(),
    title: z.string(),
    status: z.number().int(),
    code: z.string(),
    detail: z.string(),
    requestId: z.string(),
    errors: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
  })
  .openapi("Problem");
