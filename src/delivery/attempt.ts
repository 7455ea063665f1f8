/**
 * One delivery attempt over the network and what it means. The send never throws: a refused
 * connection, a reset, a timeout or a redirect all come back as a failed attempt.
 */
import { backoffDelaySeconds, parseRetryAfter, type RetryPolicy } from "./backoff";
import type { DeliveryRequest } from "./request";

/** How an attempt went. */
export type AttemptResult =
  | { kind: "delivered"; status: number }
  | { kind: "gone"; status: 410 }
  | { kind: "failed"; status: number | null; error: string; retryAfterSeconds?: number };

/** What to do with the delivery after an attempt. */
export type Decision =
  | { action: "delivered" }
  | { action: "retry"; delaySeconds: number }
  | { action: "dead" };

const ERROR_SNIPPET_BYTES = 256;
/** An answer body up to this size is read to the end and dropped; a larger one is cancelled. */
const DRAINED_BODY_MAX_BYTES = 64 * 1024;

/** Sends the request with the subscriber's timeout, without following redirects. */
export async function sendAttempt(
  request: DeliveryRequest,
  timeoutMs: number,
  fetcher: typeof fetch = fetch,
  now: () => Date = () => new Date(),
): Promise<AttemptResult> {
  let response: Response;
  try {
    response = await fetcher(request.url, {
      method: request.method,
      headers: request.headers,
      body: request.body,
      redirect: "manual",
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (error) {
    return { kind: "failed", status: null, error: networkError(error, timeoutMs) };
  }
  const { status } = response;
  if (status >= 200 && status < 300) {
    await discard(response);
    return { kind: "delivered", status };
  }
  if (status === 410) {
    await discard(response);
    return { kind: "gone", status };
  }
  const snippet = await readSnippet(response);
  const retryAfterSeconds = parseRetryAfter(response.headers.get("retry-after"), now());
  return {
    kind: "failed",
    status,
    error: `HTTP ${status}${status >= 300 && status < 400 ? " (redirects are not followed)" : ""}${snippet ? `: ${snippet}` : ""}`,
    ...(retryAfterSeconds === undefined ? {} : { retryAfterSeconds }),
  };
}

/**
 * The contract's rule: 2xx delivered; 410 dead at once; otherwise retry after the backoff (or the
 * subscriber's Retry-After, without jitter) until `maxAttempts` attempts were made.
 */
export function decide(
  result: AttemptResult,
  attempt: number,
  policy: RetryPolicy,
  random: () => number = Math.random,
): Decision {
  if (result.kind === "delivered") return { action: "delivered" };
  if (result.kind === "gone" || attempt >= policy.maxAttempts) return { action: "dead" };
  const delaySeconds = result.retryAfterSeconds ?? backoffDelaySeconds(attempt, policy, random);
  return { action: "retry", delaySeconds };
}

function networkError(error: unknown, timeoutMs: number): string {
  if (error instanceof Error && (error.name === "TimeoutError" || error.name === "AbortError")) {
    return `Timed out after ${timeoutMs} ms`;
  }
  const message = error instanceof Error ? error.message : String(error);
  return `Network error: ${message}`.slice(0, 500);
}

/**
 * Drops an answer's body, reading a small one to the end so that the runtime can reuse the
 * connection; one that announces or reaches more than {@link DRAINED_BODY_MAX_BYTES} is cancelled.
 * The outcome is already known, so a body that fails to read changes nothing.
 */
async function discard(response: Response): Promise<void> {
  if (!response.body) return;
  try {
    const announced = response.headers.get("content-length");
    if (announced === null) {
      await drainUpTo(response.body, DRAINED_BODY_MAX_BYTES);
    } else if (Number(announced) <= DRAINED_BODY_MAX_BYTES) {
      // The runtime stops at the announced length; reading it whole is the cheapest way.
      await response.arrayBuffer();
    } else {
      await response.body.cancel();
    }
  } catch {
    // The body failed or timed out after the status arrived: the status stands.
  }
}

/** Reads a body of unknown length to its end, or cancels it once it passes `maxBytes`. */
async function drainUpTo(body: ReadableStream<Uint8Array>, maxBytes: number): Promise<void> {
  const reader = body.getReader();
  let read = 0;
  while (read <= maxBytes) {
    const { done, value } = await reader.read();
    if (done) return;
    read += value.byteLength;
  }
  await reader.cancel();
}

async function readSnippet(response: Response): Promise<string> {
  try {
    const reader = response.body?.getReader();
    if (!reader) return "";
    const { value } = await reader.read();
    await reader.cancel();
    if (!value) return "";
    return new TextDecoder()
      .decode(value.subarray(0, ERROR_SNIPPET_BYTES))
      .replace(/\s+/g, " ")
      .trim();
  } catch {
    return "";
  }
}
