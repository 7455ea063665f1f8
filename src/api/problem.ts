/**
 * The one error type of the API. Every failure a client can see is an `ApiError` with a code from
 * a closed set, rendered as RFC 9457 `application/problem+json`.
 */
export const PROBLEMS = {
  invalid_json: { status: 400, title: "Invalid JSON" },
  validation_failed: { status: 400, title: "Validation failed" },
  invalid_filter: { status: 400, title: "Invalid filter" },
  invalid_url: { status: 400, title: "URL not allowed" },
  unauthorized: { status: 401, title: "Unauthorized" },
  forbidden: { status: 403, title: "Forbidden" },
  not_found: { status: 404, title: "Not found" },
  method_not_allowed: { status: 405, title: "Method not allowed" },
  conflict: { status: 409, title: "Conflict" },
  payload_too_large: { status: 413, title: "Payload too large" },
  unsupported_media_type: { status: 415, title: "Unsupported media type" },
  rate_limited: { status: 429, title: "Rate limited" },
  internal: { status: 500, title: "Internal error" },
  not_configured: { status: 503, title: "Not configured" },
  unavailable: { status: 503, title: "Unavailable" },
} as const satisfies Record<string, { status: number; title: string }>;

export type ProblemCode = keyof typeof PROBLEMS;

/** One field that failed validation; `path` is dotted (`retry.maxAttempts`, `headers.x-a`). */
export interface FieldError {
  path: string;
  message: string;
}

/** The problem+json body. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  code: ProblemCode;
  detail: string;
  requestId: string;
  errors?: FieldError[];
}

export const PROBLEM_TYPE_BASE = "https://switchboard.dev/errors/";

/**
 * Thrown anywhere below a route; `onError` renders it.
 *
 * @example throw new ApiError("not_found", `Topic ${name} does not exist`);
 */
export class ApiError extends Error {
  override readonly name = "ApiError";
  readonly status: number;

  constructor(
    readonly code: ProblemCode,
    readonly detail: string,
    readonly options: { errors?: FieldError[]; headers?: Record<string, string> } = {},
  ) {
    super(detail);
    this.status = PROBLEMS[code].status;
  }

  /** The problem+json response for this error. */
  toResponse(requestId: string): Response {
    return problemResponse(this.code, this.detail, requestId, this.options);
  }
}

/** Builds a problem+json response; the only place that shapes one. */
export function problemResponse(
  code: ProblemCode,
  detail: string,
  requestId: string,
  options: { errors?: FieldError[]; headers?: Record<string, string> } = {},
): Response {
  const { status, title } = PROBLEMS[code];
  const body: Problem = {
    type: `${PROBLEM_TYPE_BASE}${code}`,
    title,
    status,
    code,
    detail,
    requestId,
    ...(options.errors ? { errors: options.errors } : {}),
  };
  return new Response(JSON.stringify(body), {
    status,
    headers: { ...options.headers, "content-type": "application/problem+json" },
  });
}

/** A validation failure from field errors; `detail` repeats the first so a human sees it at once. */
export function validationError(errors: FieldError[]): ApiError {
  const first = errors[0];
  const detail = first
    ? `${first.path || "body"}: ${first.message}${errors.length > 1 ? ` (and ${errors.length - 1} more)` : ""}`
    : "The request is not valid";
  return new ApiError("validation_failed", detail, { errors });
}
