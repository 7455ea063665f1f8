/** The longest delay a queue message can carry, and so the longest wait between attempts. */
export const MAX_DELAY_SECONDS = 43200;

export interface RetryPolicy {
  maxAttempts: number;
  baseDelaySeconds: number;
  maxDelaySeconds: number;
}

// 2^64 times any allowed base delay is still finite and far past the cap, so larger exponents
// change nothing but would overflow to Infinity (and 0 · Infinity to NaN).
const MAX_EXPONENT = 64;
const JITTER = 0.2;

/**
 * Delay before the next attempt after failed attempt `attempt` (1-based):
 * min(maxDelay, base·2^(attempt−1)) × jitter in [1, 1.2), capped at {@link MAX_DELAY_SECONDS},
 * rounded up to whole seconds. Jitter only lengthens, so it may take a delay past the policy's
 * `maxDelaySeconds` but never past the cap. `random` returns [0, 1).
 *
 * @example
 * backoffDelaySeconds(3, { maxAttempts: 15, baseDelaySeconds: 5, maxDelaySeconds: 43200 }, () => 0); // 20
 */
export function backoffDelaySeconds(
  attempt: number,
  policy: RetryPolicy,
  random: () => number = Math.random,
): number {
  const exponent = Number.isFinite(attempt)
    ? Math.min(Math.max(Math.floor(attempt) - 1, 0), MAX_EXPONENT)
    : MAX_EXPONENT;
  const base = finiteAtLeastZero(policy.baseDelaySeconds);
  const maxDelay = Math.min(finiteAtLeastZero(policy.maxDelaySeconds), MAX_DELAY_SECONDS);
  const delay = Math.min(maxDelay, base * 2 ** exponent);
  const factor = 1 + JITTER * Math.min(finiteAtLeastZero(random()), 1);
  return Math.min(MAX_DELAY_SECONDS, Math.ceil(delay * factor));
}

/**
 * The delay before a queue retries a task the broker itself failed on (storage down, not the
 * subscriber): `firstSeconds` after the first attempt, doubling with each one, up to `maxSeconds`.
 *
 * @example doublingDelaySeconds(3, 60, 3600); // 240
 */
export function doublingDelaySeconds(
  attempts: number,
  firstSeconds: number,
  maxSeconds: number,
): number {
  return Math.min(maxSeconds, firstSeconds * 2 ** Math.max(0, attempts - 1));
}

function finiteAtLeastZero(value: number): number {
  return Number.isFinite(value) ? Math.max(value, 0) : 0;
}

const MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
const DAY = "(?:mon|tue|wed|thu|fri|sat|sun)";
const LONG_DAY = "(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday)";
const MONTH = `(?<month>${MONTHS.join("|")})`;
const TIME = "(?<hour>\\d{2}):(?<minute>\\d{2}):(?<second>\\d{2})";
// RFC 9110 §5.6.7: recipients accept IMF-fixdate and the two obsolete forms, RFC 850 and asctime.
const HTTP_DATES = [
  new RegExp(`^${DAY}, (?<day>\\d{2}) ${MONTH} (?<year>\\d{4}) ${TIME} GMT$`, "i"),
  new RegExp(`^${LONG_DAY}, (?<day>\\d{2})-${MONTH}-(?<year>\\d{2}) ${TIME} GMT$`, "i"),
  new RegExp(`^${DAY} ${MONTH} (?<day> \\d|\\d{2}) ${TIME} (?<year>\\d{4})$`, "i"),
];

/**
 * Parses a Retry-After value (delta-seconds or HTTP-date) into whole seconds from `now`, capped
 * at {@link MAX_DELAY_SECONDS}. Undefined if absent or invalid (negative or fractional seconds
 * included), so the caller falls back to its backoff; a date in the past → 0.
 *
 * @example
 * parseRetryAfter("120", now); // 120
 * parseRetryAfter("Wed, 21 Oct 2026 07:28:00 GMT", new Date("2026-10-21T07:27:00Z")); // 60
 */
export function parseRetryAfter(value: string | null, now: Date): number | undefined {
  const text = value?.trim() ?? "";
  if (/^\d+$/.test(text)) return Math.min(Number(text), MAX_DELAY_SECONDS);
  const date = parseHttpDate(text, now);
  if (date === undefined) return undefined;
  const seconds = Math.ceil((date - now.getTime()) / 1000);
  return Math.min(Math.max(seconds, 0), MAX_DELAY_SECONDS);
}

/** Milliseconds since the epoch, or undefined if `text` is not an HTTP-date. */
function parseHttpDate(text: string, now: Date): number | undefined {
  const groups = HTTP_DATES.map((format) => format.exec(text)?.groups).find(Boolean);
  if (groups === undefined) return undefined;
  const { year = "", month = "", day, hour, minute, second } = groups;
  let fullYear = Number(year);
  if (year.length === 2) {
    // Two-digit years more than 50 years ahead are in the past century (RFC 9110 §5.6.7).
    fullYear += 2000;
    if (fullYear > now.getUTCFullYear() + 50) fullYear -= 100;
  }
  const fields = [
    fullYear,
    MONTHS.indexOf(month.toLowerCase()),
    ...[day, hour, minute, second].map(Number),
  ];
  const [y = 0, m = 0, d, h, min, s] = fields;
  const time = Date.UTC(y, m, d, h, min, s);
  const parsed = new Date(time);
  const roundTrip = [
    parsed.getUTCFullYear(),
    parsed.getUTCMonth(),
    parsed.getUTCDate(),
    parsed.getUTCHours(),
    parsed.getUTCMinutes(),
    parsed.getUTCSeconds(),
  ];
  // Date.UTC rolls 31 February over into March: a date that does not survive the trip is invalid.
  return roundTrip.every((field, i) => field === fields[i]) ? time : undefined;
}
