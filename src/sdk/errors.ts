import type { FieldError, ProblemCode } from "./types";

/**
 * Codes for failures that never reached an answer from the broker, or got one that is not the
 * broker's: `invalid_request` (the call's arguments cannot make an HTTP request: a body that
 * `JSON.stringify` throws on, such as a BigInt or a cycle, or a header that `fetch` refuses;
 * nothing was sent, and it is never retried), `network_error` (the request could not be sent or
 * its answer not read), `timeout` (no answer within `timeoutMs`), `aborted` (the caller's
 * `signal` fired) and `unexpected_response` (not problem+json on an error, or not JSON on a
 * success, e.g. from a proxy in between).
 */
export type ClientErrorCode =
  | "invalid_request"
  | "network_error"
  | "timeout"
  | "aborted"
  | "unexpected_response";

/** Every code a {@link SwitchboardError} can carry: the broker's problem codes and the client's own. */
export type SwitchboardErrorCode = ProblemCode | ClientErrorCode;

/** What a {@link SwitchboardError} is made of. */
export interface SwitchboardErrorInit {
  code: SwitchboardErrorCode;
  detail: string;
  status?: number | undefined;
  requestId?: string | undefined;
  errors?: FieldError[] | undefined;
  cause?: unknown;
}

/**
 * The one error every SDK call rejects with. Broker errors carry the fields of their
 * problem+json body; failures without a broker answer carry a {@link ClientErrorCode} and no
 * `status`.
 *
 * @example
 * try {
 *   await sb.topics.create({ name: "orders" });
 * } catch (error) {
 *   if (error instanceof SwitchboardError && error.code === "conflict") {
 *     // the topic already exists
 *   } else throw error;
 * }
 */
export class SwitchboardError extends Error {
  override readonly name = "SwitchboardError";
  /** The HTTP status, or `undefined` when no answer came (network error, timeout, abort). */
  readonly status: number | undefined;
  readonly code: SwitchboardErrorCode;
  /** A sentence for humans, from the problem's `detail`. */
  readonly detail: string;
  /** The broker's request id (`x-request-id`), to quote when reporting a problem. */
  readonly requestId: string | undefined;
  /** The fields that failed validation, for `validation_failed`; empty otherwise. */
  readonly errors: FieldError[];

  constructor(init: SwitchboardErrorInit) {
    super(init.detail, init.cause === undefined ? undefined : { cause: init.cause });
    this.status = init.status;
    this.code = init.code;
    this.detail = init.detail;
    this.requestId = init.requestId;
    this.errors = init.errors ?? [];
  }
}
