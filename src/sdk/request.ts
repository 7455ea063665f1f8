/**
 * The one function that calls `fetch`. Every SDK method describes its request as a
 * {@link RequestSpec} and hands it here: URL and auth, a timeout per attempt, retries with
 * backoff, and the translation of every failure into a {@link SwitchboardError}.
 */
import { backoffDelay, MAX_RETRY_AFTER_MS, retryAfterMs } from "./backoff";
import { SwitchboardError } from "./errors";
import { errorOf, parseSuccess } from "./responses";

/** A `fetch`-compatible function; `globalThis.fetch` is one. */
export type FetchLike = (input: string, init: RequestInit) => Promise<Response>;

/** Options every call takes besides its own. */
export interface CallOptions {
  /** Cancels the call, retries included; it then rejects with code `aborted`. */
  signal?: AbortSignal | undefined;
  /** Overrides the client's `timeoutMs`, for each attempt of this call. */
  timeoutMs?: number | undefined;
}

/**
 * A message body sent byte for byte. Streams are not accepted: a retry must be able to send the
 * same body again.
 */
export type RawBody = string | Uint8Array | ArrayBuffer | Blob;

/** Query parameters; an array repeats the parameter, `undefined` leaves it out. */
export type QueryParams = Record<string, string | number | readonly string[] | undefined>;

/** One call to the broker, as a method describes it. */
export interface RequestSpec {
  method: "GET" | "POST" | "PATCH" | "DELETE";
  /** Under the base URL, with path parameters already encoded, e.g. `/v1/topics/orders`. */
  path: string;
  query?: QueryParams | undefined;
  /** Serialised as the JSON body. */
  json?: unknown;
  /** Sent as is, instead of `json`. */
  raw?: { body: RawBody; contentType: string } | undefined;
  headers?: Record<string, string> | undefined;
  /**
   * Whether sending the request twice does no harm. Only such requests are retried after a
   * failure that leaves open whether the broker acted on it: a network error, a timeout, a 500.
   */
  idempotent: boolean;
  options?: CallOptions | undefined;
}

/** What the request function needs from the client's options. */
export interface RequestConfig {
  baseUrl: string;
  token: string;
  fetch: FetchLike;
  timeoutMs: number;
  retries: number;
}

/** Sends a request and resolves with its JSON answer (`undefined` for 204). */
export type SendRequest = <T>(spec: RequestSpec) => Promise<T>;

/** The request function of one client. */
export function createRequest(config: RequestConfig): SendRequest {
  const baseUrl = config.baseUrl.replace(/\/+$/, "");
  return async <T>(spec: RequestSpec): Promise<T> => {
    const url = baseUrl + spec.path + queryString(spec.query);
    const init = requestInit(config.token, spec);
    const signal = spec.options?.signal;
    const timeoutMs = spec.options?.timeoutMs ?? config.timeoutMs;
    // Whether a failed try may have been carried out all the same: its answer was lost.
    let mayHaveActed = false;
    for (let retry = 1; ; retry += 1) {
      if (signal?.aborted) throw abortedError(signal);
      let error: SwitchboardError;
      let retryAfter: number | undefined;
      try {
        const { response, text } = await attempt(config.fetch, url, init, timeoutMs, signal);
        if (response.ok) return parseSuccess<T>(response, text);
        error = errorOf(response, text);
        retryAfter = retryAfterMs(response.headers.get("retry-after"), Date.now());
      } catch (caught) {
        if (!(caught instanceof SwitchboardError)) throw caught;
        error = caught;
      }
      // A delete that finds nothing after a try whose answer was lost: that try deleted it (or
      // someone else did). Gone is what was asked for, so it is answered as the delete would be.
      if (spec.method === "DELETE" && mayHaveActed && error.code === "not_found") {
        return undefined as T;
      }
      mayHaveActed ||= mayHaveBeenCarriedOut(error);
      if (retry > config.retries || !isRetryable(error, spec.idempotent)) throw error;
      if (retryAfter !== undefined && retryAfter > MAX_RETRY_AFTER_MS) throw error;
      await sleep(retryAfter ?? backoffDelay(retry), signal);
    }
  };
}

/**
 * 429 and 503 mean the broker accepted nothing (`rate_limited`, `unavailable`), so any request
 * may go again; other failures only when repeating the request is harmless. A missing secret or
 * binding (`not_configured`) stays missing however often it is asked.
 */
function isRetryable(error: SwitchboardError, idempotent: boolean): boolean {
  if (error.code === "not_configured") return false;
  if (error.status === 429 || error.status === 503) return true;
  if (!idempotent) return false;
  if (error.status === undefined) return error.code === "network_error" || error.code === "timeout";
  return error.status >= 500;
}

/** Whether the broker may have acted on a request that failed so: its answer never came. */
function mayHaveBeenCarriedOut(error: SwitchboardError): boolean {
  if (error.status === undefined) return error.code === "network_error" || error.code === "timeout";
  return error.status >= 500 && error.status !== 503;
}

function queryString(query: QueryParams | undefined): string {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query ?? {})) {
    if (value === undefined) continue;
    if (typeof value === "string" || typeof value === "number") params.append(name, String(value));
    else for (const item of value) params.append(name, item);
  }
  const encoded = params.toString();
  return encoded === "" ? "" : `?${encoded}`;
}

/**
 * The request as `fetch` takes it. Arguments that cannot make one are the caller's mistake, the
 * same on every try: they reject with `invalid_request` before anything is sent, rather than
 * with a TypeError from `fetch` that would pass for a network error and be retried.
 */
function requestInit(token: string, spec: RequestSpec): RequestInit {
  const fields: Record<string, string> = {
    ...spec.headers,
    authorization: `Bearer ${token}`,
    accept: "application/json, application/problem+json",
  };
  let body: BodyInit | undefined;
  if (spec.raw !== undefined) {
    fields["content-type"] = spec.raw.contentType;
    body = rawBodyInit(spec.raw.body);
  } else if (spec.json !== undefined) {
    fields["content-type"] = "application/json";
    body = jsonBody(spec.json);
  }
  return { method: spec.method, headers: sendableHeaders(fields), body };
}

function jsonBody(value: unknown): string {
  try {
    return JSON.stringify(value);
  } catch (cause) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    throw new SwitchboardError({
      code: "invalid_request",
      detail: `The request body cannot be serialised as JSON: ${reason}`,
      cause,
    });
  }
}

/** A header name: an HTTP token. */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** A header value as the Fetch standard takes it: Latin-1 code units, no NUL, CR or LF. */
const HEADER_VALUE = /^[^\0\r\n\u0100-\uffff]*$/;

/**
 * Whether `fetch` takes this as a header value. Checked here rather than left to `fetch`:
 * Node and browsers throw a TypeError, indistinguishable from a network failure, and workerd
 * sends other text as UTF-8; the SDK refuses it the same way everywhere.
 */
export function isHeaderValue(value: string): boolean {
  return HEADER_VALUE.test(value);
}

/** The headers, each checked; the message names the header, never its value. */
function sendableHeaders(fields: Record<string, string>): Record<string, string> {
  for (const [name, value] of Object.entries(fields)) {
    if (HEADER_NAME.test(name) && isHeaderValue(value)) continue;
    throw new SwitchboardError({
      code: "invalid_request",
      detail:
        `The header ${JSON.stringify(name)} cannot be sent: HTTP takes a token as the name ` +
        "and Latin-1 text without CR, LF or NUL as the value",
    });
  }
  return fields;
}

function rawBodyInit(body: RawBody): BodyInit {
  // A view over a larger or shared buffer is copied so that exactly its bytes are sent.
  return body instanceof Uint8Array ? body.slice() : body;
}

/** One try: the answer and its whole body, or a SwitchboardError for no answer in time. */
async function attempt(
  fetcher: FetchLike,
  url: string,
  init: RequestInit,
  timeoutMs: number,
  signal: AbortSignal | undefined,
): Promise<{ response: Response; text: string }> {
  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort();
  }, timeoutMs);
  const forwardAbort = () => controller.abort();
  signal?.addEventListener("abort", forwardAbort);
  // Racing against the abort keeps the timeout honest with a fetch that ignores its signal.
  const aborted = new Promise<never>((_, reject) => {
    controller.signal.addEventListener("abort", () => reject(new Error("aborted")));
  });
  try {
    const response = await Promise.race([
      fetcher(url, { ...init, signal: controller.signal }),
      aborted,
    ]);
    const text = await Promise.race([response.text(), aborted]);
    return { response, text };
  } catch (cause) {
    if (signal?.aborted) throw abortedError(signal);
    if (timedOut) {
      throw new SwitchboardError({
        code: "timeout",
        detail: `${init.method} ${url} got no answer within ${timeoutMs} ms`,
      });
    }
    throw new SwitchboardError({
      code: "network_error",
      detail: `${init.method} ${url} failed: ${cause instanceof Error ? cause.message : String(cause)}`,
      cause,
    });
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener("abort", forwardAbort);
  }
}

function abortedError(signal: AbortSignal): SwitchboardError {
  return new SwitchboardError({
    code: "aborted",
    detail: "The call was aborted",
    cause: signal.reason,
  });
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      if (signal) reject(abortedError(signal));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** A UTF-16 surrogate without its other half: `encodeURIComponent` throws a URIError on one. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/**
 * A name or id encoded as one path segment. No name or id holds a lone surrogate, so one is sent
 * as U+FFFD: the call then answers `not_found` like any other that does not exist, instead of
 * throwing before it is made.
 */
export function pathSegment(value: string): string {
  return encodeURIComponent(value.replace(LONE_SURROGATE, "\uFFFD"));
}
