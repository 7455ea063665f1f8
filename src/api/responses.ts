/**
 * Shared pieces of route declarations: the problem responses each route documents, and the
 * bearer-token security requirements.
 */
import { ProblemSchema } from "./schemas/common";

const problem = (description: string) => ({
  description,
  content: { "application/problem+json": { schema: ProblemSchema } },
});

/** The error responses any authenticated route may give. */
export const commonErrors = {
  400: problem("The request is not valid (`invalid_json`, `validation_failed`, …)"),
  401: problem("No or wrong bearer token (`unauthorized`)"),
  403: problem("The token lacks the role (`forbidden`)"),
  404: problem("Unknown resource (`not_found`)"),
  413: problem("The body is too large (`payload_too_large`)"),
  415: problem("The body is not JSON (`unsupported_media_type`)"),
  500: problem("A bug (`internal`)"),
  503: problem(
    "A secret or binding is missing, or storage failed (`not_configured`, `unavailable`)",
  ),
} as const;

export const rateLimited = {
  429: problem("The queue refused the send for throughput (`rate_limited`), with Retry-After"),
} as const;

export const conflictError = { 409: problem("Conflict (`conflict`)") } as const;

type SecurityRequirement = Record<string, string[]>;

export const adminSecurity: SecurityRequirement[] = [{ adminToken: [] }];
export const publisherSecurity: SecurityRequirement[] = [{ adminToken: [] }, { publishToken: [] }];

/** A JSON response or request body of `schema`, for route declarations. */
export const json = <T>(schema: T) => ({ content: { "application/json": { schema } } });
