/**
 * Route middleware for JSON bodies, run before validation so that each way a body can be wrong
 * gets its own problem: too large (413), not JSON by content type (415), not parseable (400
 * invalid_json). Hono caches the body's text, not the parsed value: the validator parses it a
 * second time, a cost of microseconds per request against the clear problem this check gives.
 */
import type { MiddlewareHandler } from "hono";
import type { AppEnv } from "./context";
import { ApiError } from "./problem";

/**
 * The JSON media types the routes' validator (@hono/zod-openapi) takes: `application/json` or a
 * `+json` type whose subtype before the suffix has only letters, dots and hyphens, each parameter
 * `;name=value` with no space before the semicolon. The validator refuses anything else with a
 * bare 415, so checking the same rule here is what lets the problem name the type that was sent,
 * and keeps this check from passing a body that the validator then refuses.
 */
const JSON_TYPE = /^application\/(?:[a-z.-]+\+)?json(?:;\s*[a-z0-9-]+=[^;]+)*$/i;

/** Default cap for management bodies; publishing sets its own. */
export const MAX_JSON_BODY_BYTES = 256 * 1024;

/**
 * Requires a JSON body (or allows none when `optional`) of at most `maxBytes` bytes.
 *
 * @example createRoute({ ..., middleware: [requireAccess("admin"), jsonBody()] })
 */
export function jsonBody(
  options: { optional?: boolean; maxBytes?: number } = {},
): MiddlewareHandler<AppEnv> {
  const maxBytes = options.maxBytes ?? MAX_JSON_BODY_BYTES;
  return async (c, next) => {
    const declared = Number(c.req.header("content-length") ?? Number.NaN);
    if (declared > maxBytes) throw tooLarge(maxBytes);

    const text = await c.req.text();
    if (text.length === 0 && options.optional) {
      // No body means the defaults. The route's validator would still parse a body whose
      // Content-Type says JSON, and "" does not parse: without that header it takes no body as {}.
      const headers = new Headers(c.req.raw.headers);
      headers.delete("content-type");
      c.req.raw = new Request(c.req.raw.url, { method: c.req.raw.method, headers });
      return next();
    }
    if (new TextEncoder().encode(text).byteLength > maxBytes) throw tooLarge(maxBytes);

    const contentType = c.req.header("content-type");
    if (!contentType || !JSON_TYPE.test(contentType)) {
      throw new ApiError(
        "unsupported_media_type",
        `Send the body as application/json${contentType ? `, not ${contentType}` : ""}`,
      );
    }
    if (text.trim().length === 0) {
      throw new ApiError("invalid_json", "The request body is empty; expected a JSON object");
    }
    try {
      JSON.parse(text);
    } catch (error) {
      throw new ApiError("invalid_json", `The request body is not valid JSON: ${reason(error)}`);
    }
    await next();
  };
}

function tooLarge(maxBytes: number): ApiError {
  return new ApiError("payload_too_large", `The request body is larger than ${maxBytes} bytes`);
}

function reason(error: unknown): string {
  return error instanceof SyntaxError ? error.message : "unparseable";
}
