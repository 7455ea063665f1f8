import { z } from "zod";
import type { FieldError } from "./problem";

/**
 * Messages a client can act on ("must be at most 100", "is required"), set once for every schema
 * so that each field error reads the same way wherever it comes from.
 */
z.config({
  // Workers forbid code built from strings; never let zod try its compiled fast path.
  jitless: true,
  customError: (issue) => {
    switch (issue.code) {
      case "invalid_type":
        return issue.input === undefined ? "is required" : `must be ${article(issue.expected)}`;
      case "too_big":
        return bound("at most", issue.origin, issue.maximum);
      case "too_small":
        return issue.origin === "string" && Number(issue.minimum) === 1
          ? "must not be empty"
          : bound("at least", issue.origin, issue.minimum);
      case "invalid_value":
        return `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(", ")}`;
      case "invalid_format":
        return `must be a valid ${issue.format}`;
      default:
        return undefined;
    }
  },
});

/** The field errors of a zod failure, with dotted paths (`retry.maxAttempts`, `limit`). */
export function fieldErrors(error: z.ZodError): FieldError[] {
  return error.issues.flatMap((issue) => {
    const path = issue.path.map(String).join(".");
    if (issue.code === "unrecognized_keys") {
      return issue.keys.map((key) => ({
        path: path ? `${path}.${key}` : key,
        message: "is not a known field",
      }));
    }
    return [{ path, message: issue.message }];
  });
}

function bound(word: string, origin: string, limit: number | bigint): string {
  if (origin === "string") return `must be ${word} ${limit} characters`;
  if (origin === "array" || origin === "set") return `must have ${word} ${limit} items`;
  if (origin === "object") return `must have ${word} ${limit} entries`;
  return `must be ${word} ${limit}`;
}

function article(type: string): string {
  return /^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`;
}
