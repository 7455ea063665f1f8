/** What the broker answered, as the SDK returns it: parsed JSON, or a SwitchboardError. */
import { SwitchboardError } from "./errors";
import type { FieldError, ProblemCode } from "./types";

/** The JSON of a 2xx answer; `undefined` for 204 or an empty body. */
export function parseSuccess<T>(response: Response, text: string): T {
  if (response.status === 204 || text === "") return undefined as T;
  try {
    // The broker's answers follow its schemas; checking them again here would ship zod.
    return JSON.parse(text) as T;
  } catch {
    throw new SwitchboardError({
      status: response.status,
      code: "unexpected_response",
      detail: `HTTP ${response.status} with a body that is not JSON: ${excerpt(text)}`,
      requestId: response.headers.get("x-request-id") ?? undefined,
    });
  }
}

/** The error for a non-2xx answer: the broker's problem, or a description of what came instead. */
export function errorOf(response: Response, text: string): SwitchboardError {
  const requestId = response.headers.get("x-request-id") ?? undefined;
  const problem = problemOf(text);
  if (problem !== undefined) {
    return new SwitchboardError({
      status: response.status,
      ...problem,
      requestId: problem.requestId ?? requestId,
    });
  }
  const statusLine = `HTTP ${response.status}${response.statusText ? ` ${response.statusText}` : ""}`;
  return new SwitchboardError({
    status: response.status,
    code: "unexpected_response",
    detail: text.trim() === "" ? statusLine : `${statusLine}: ${excerpt(text)}`,
    requestId,
  });
}

function problemOf(
  text: string,
):
  | { code: ProblemCode; detail: string; requestId: string | undefined; errors: FieldError[] }
  | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== "object" || value === null) return undefined;
  const { code, detail, requestId, errors } = value as Record<string, unknown>;
  if (typeof code !== "string" || typeof detail !== "string") return undefined;
  return {
    // A newer broker may answer with a code this SDK does not list; it is passed on as is.
    code: code as ProblemCode,
    detail,
    requestId: typeof requestId === "string" ? requestId : undefined,
    errors: Array.isArray(errors) ? errors.filter(isFieldError) : [],
  };
}

function isFieldError(value: unknown): value is FieldError {
  if (typeof value !== "object" || value === null) return false;
  const { path, message } = value as Record<string, unknown>;
  return typeof path === "string" && typeof message === "string";
}

function excerpt(text: string): string {
  const flat = text.replace(/\s+/g, " ").trim();
  return flat.length > 200 ? `${flat.slice(0, 200)}…` : flat;
}
