import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  backoffDelaySeconds,
  MAX_DELAY_SECONDS,
  parseRetryAfter,
  type RetryPolicy,
} from "../../src/delivery/backoff";

const defaults: RetryPolicy = { maxAttempts: 15, baseDelaySeconds: 5, maxDelaySeconds: 43200 };
const noJitter = () => 0;
const mostJitter = () => 0.999999;

describe("backoffDelaySeconds", () => {
  it.each([
    // attempt, policy, delay without jitter
    [1, defaults, 5],
    [2, defaults, 10],
    [3, defaults, 20],
    [4, defaults, 40],
    [10, defaults, 2560],
    [14, defaults, 40960],
    [15, defaults, 43200],
    [16, defaults, 43200],
    [100, defaults, 43200],
    [1, { ...defaults, baseDelaySeconds: 0 }, 0],
    [50, { ...defaults, baseDelaySeconds: 0 }, 0],
    [1, { ...defaults, baseDelaySeconds: 3600 }, 3600],
    [5, { ...defaults, baseDelaySeconds: 3600 }, 43200],
    [1, { ...defaults, baseDelaySeconds: 1, maxDelaySeconds: 60 }, 1],
    [6, { ...defaults, baseDelaySeconds: 1, maxDelaySeconds: 60 }, 32],
    [7, { ...defaults, baseDelaySeconds: 1, maxDelaySeconds: 60 }, 60],
    [3, { ...defaults, baseDelaySeconds: 10, maxDelaySeconds: 0 }, 0],
    [3, { ...defaults, baseDelaySeconds: 10, maxDelaySeconds: 99999 }, 40],
    [20, { ...defaults, baseDelaySeconds: 10, maxDelaySeconds: 99999 }, 43200],
    [2, { ...defaults, baseDelaySeconds: 1.5 }, 3],
    [1, { ...defaults, baseDelaySeconds: 0.2 }, 1],
  ])("waits after attempt %i with %o: %i s", (attempt, policy, expected) => {
    expect(backoffDelaySeconds(attempt, policy, noJitter)).toBe(expected);
  });

  it.each([
    // attempt, policy, delay with the most jitter
    [1, defaults, 6],
    [2, defaults, 12],
    [3, defaults, 24],
    [10, defaults, 3072],
    [14, defaults, 43200],
    [1, { ...defaults, baseDelaySeconds: 1 }, 2],
    [1, { ...defaults, baseDelaySeconds: 0 }, 0],
    [7, { ...defaults, baseDelaySeconds: 1, maxDelaySeconds: 60 }, 72],
  ])("with the most jitter, waits after attempt %i with %o: %i s", (attempt, policy, expected) => {
    expect(backoffDelaySeconds(attempt, policy, mostJitter)).toBe(expected);
  });

  it.each([
    ["a huge attempt", 1e6],
    ["the largest safe integer", Number.MAX_SAFE_INTEGER],
    ["an infinite attempt", Number.POSITIVE_INFINITY],
  ])("stays at the cap for %s", (_, attempt) => {
    expect(backoffDelaySeconds(attempt, defaults, noJitter)).toBe(MAX_DELAY_SECONDS);
    expect(backoffDelaySeconds(attempt, defaults, mostJitter)).toBe(MAX_DELAY_SECONDS);
    expect(backoffDelaySeconds(attempt, { ...defaults, baseDelaySeconds: 0 }, noJitter)).toBe(0);
  });

  it.each([
    ["zero", 0],
    ["a negative attempt", -3],
    ["NaN", Number.NaN],
    ["a fraction", 1.7],
  ])("keeps the delay within bounds for an invalid attempt number: %s", (_, attempt) => {
    const delay = backoffDelaySeconds(attempt, defaults, noJitter);
    expect(Number.isInteger(delay)).toBe(true);
    expect(delay).toBeGreaterThanOrEqual(0);
    expect(delay).toBeLessThanOrEqual(MAX_DELAY_SECONDS);
  });

  it.each([
    ["NaN", () => Number.NaN],
    ["a negative number", () => -1],
    ["one", () => 1],
    ["more than one", () => 7],
  ])("keeps jitter within bounds when random returns %s", (_, random) => {
    const delay = backoffDelaySeconds(3, defaults, random);
    expect(delay).toBeGreaterThanOrEqual(20);
    expect(delay).toBeLessThanOrEqual(24);
  });

  it("never shortens a delay, never passes 1.2 times it, and never passes the cap", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 200 }),
        fc.integer({ min: 0, max: 3600 }),
        fc.integer({ min: 0, max: MAX_DELAY_SECONDS }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (attempt, base, max, r) => {
          const policy = { maxAttempts: 100, baseDelaySeconds: base, maxDelaySeconds: max };
          const plain = Math.min(max, base * 2 ** Math.min(attempt - 1, 64));
          const delay = backoffDelaySeconds(attempt, policy, () => r);
          expect(Number.isInteger(delay)).toBe(true);
          expect(delay).toBeGreaterThanOrEqual(Math.min(plain, MAX_DELAY_SECONDS));
          expect(delay).toBeLessThanOrEqual(Math.min(Math.ceil(plain * 1.2), MAX_DELAY_SECONDS));
        },
      ),
    );
  });

  it("uses Math.random when no random is given", () => {
    const delays = Array.from({ length: 200 }, () => backoffDelaySeconds(10, defaults));
    expect(Math.min(...delays)).toBeGreaterThanOrEqual(2560);
    expect(Math.max(...delays)).toBeLessThan(3072 + 1);
    expect(new Set(delays).size).toBeGreaterThan(1);
  });
});

describe("parseRetryAfter", () => {
  const now = new Date("2026-11-28T12:00:00.000Z");

  it.each([
    ["0", 0],
    ["1", 1],
    ["120", 120],
    ["0120", 120],
    ["  30  ", 30],
    ["\t30", 30],
    ["43200", 43200],
    ["43201", 43200],
    ["86400", 43200],
    ["99999999999999999999999", 43200],
  ])("reads delta-seconds %j as %i", (value, expected) => {
    expect(parseRetryAfter(value, now)).toBe(expected);
  });

  it.each([
    ["Sat, 28 Nov 2026 12:01:00 GMT", 60],
    ["Sat, 28 Nov 2026 12:00:00 GMT", 0],
    ["Sat, 28 Nov 2026 13:00:00 GMT", 3600],
    ["sat, 28 nov 2026 12:00:30 gmt", 30],
    ["  Sat, 28 Nov 2026 12:00:10 GMT ", 10],
    ["Sun, 29 Nov 2026 00:00:00 GMT", 43200],
    ["Tue, 01 Dec 2026 00:00:00 GMT", 43200],
    ["Fri, 01 Jan 2100 00:00:00 GMT", 43200],
    ["Sat, 28 Nov 2026 11:59:59 GMT", 0],
    ["Thu, 01 Jan 1970 00:00:00 GMT", 0],
    ["Sun, 06 Nov 1994 08:49:37 GMT", 0],
    // The obsolete forms that RFC 9110 asks recipients to accept
    ["Saturday, 28-Nov-26 12:02:00 GMT", 120],
    ["Sunday, 06-Nov-94 08:49:37 GMT", 0],
    ["Sat Nov 28 12:00:45 2026", 45],
    ["Sun Nov  6 08:49:37 1994", 0],
  ])("reads the HTTP-date %j as %i", (value, expected) => {
    expect(parseRetryAfter(value, now)).toBe(expected);
  });

  it("rounds a date less than a second ahead up to a whole second", () => {
    const justBefore = new Date("2026-11-28T12:00:59.500Z");
    expect(parseRetryAfter("Sat, 28 Nov 2026 12:01:00 GMT", justBefore)).toBe(1);
  });

  it.each([
    ["absent", null],
    ["empty", ""],
    ["blank", "   "],
    ["negative", "-5"],
    ["signed", "+5"],
    ["fractional", "1.5"],
    ["with a unit", "30s"],
    ["not a number", "soon"],
    ["hex", "0x10"],
    ["exponent", "1e3"],
    ["two numbers", "1 2"],
    ["ISO-8601", "2026-11-28T12:01:00Z"],
    ["a date without GMT", "Sat, 28 Nov 2026 12:01:00"],
    ["a date in another zone", "Sat, 28 Nov 2026 12:01:00 PST"],
    ["a date with an offset", "Sat, 28 Nov 2026 12:01:00 +0000"],
    ["31 February", "Sat, 31 Feb 2026 12:00:00 GMT"],
    ["hour 25", "Sat, 28 Nov 2026 25:00:00 GMT"],
    ["minute 60", "Sat, 28 Nov 2026 12:60:00 GMT"],
    ["an unknown month", "Sat, 28 Foo 2026 12:00:00 GMT"],
    ["a one-digit day", "Sat, 1 Nov 2026 12:00:00 GMT"],
    ["a two-digit year in IMF-fixdate", "Sat, 28 Nov 26 12:00:00 GMT"],
    ["year 0050", "Sat, 28 Nov 0050 12:00:00 GMT"],
    ["a JavaScript date string", "Sat Nov 28 2026 12:01:00 GMT+0000 (Coordinated Universal Time)"],
  ])("ignores a value that is %s", (_, value) => {
    expect(parseRetryAfter(value, now)).toBeUndefined();
  });

  it("reads the date Response headers give back", () => {
    const later = new Date(now.getTime() + 90_000).toUTCString();
    const headers = new Headers({ "retry-after": later });
    expect(parseRetryAfter(headers.get("retry-after"), now)).toBe(90);
    expect(parseRetryAfter(new Headers().get("retry-after"), now)).toBeUndefined();
  });
});
