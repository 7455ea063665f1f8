/** When the request function tries again: pure timing rules, apart from the I/O. */

/** The first retry waits about this long; each later one twice as long as the one before. */
export const BASE_DELAY_MS = 250;
/** No backoff delay grows past this. */
export const MAX_DELAY_MS = 8_000;
/**
 * A `Retry-After` longer than this is not waited out: a caller blocked for minutes is worse off
 * than one that gets the `rate_limited` error and decides for itself.
 */
export const MAX_RETRY_AFTER_MS = 60_000;

/**
 * The wait before retry number `retry` (1-based): exponential, capped, with "equal jitter"
 * (between half and all of it) so that clients failing together do not retry together.
 *
 * @example backoffDelay(3, () => 0.5); // 750; a third retry waits 500 ms to just under 1000 ms
 */
export function backoffDelay(retry: number, random: () => number = Math.random): number {
  const ceiling = Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** (retry - 1));
  return ceiling / 2 + (random() * ceiling) / 2;
}

/**
 * A `Retry-After` header in milliseconds from `now`: delta seconds or an HTTP date. `undefined`
 * when absent or unreadable, 0 for a date in the past.
 *
 * @example retryAfterMs("2", Date.now()); // 2000
 */
export function retryAfterMs(header: string | null, now: number): number | undefined {
  if (header === null) return undefined;
  const value = header.trim();
  if (/^\d+$/.test(value)) return Number(value) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}
