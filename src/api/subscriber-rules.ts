/**
 * The checks a subscriber's URL and filter must pass before they are stored, turned into the
 * contract's problems. Shared by create and update so both refuse the same things.
 */
import { type CompiledFilter, compileFilter } from "../filter";
import { checkSubscriberUrl } from "../security/url-policy";
import { ApiError } from "./problem";

/** Throws `invalid_url` when the URL policy refuses the URL. */
export function assertUrlAllowed(url: string, allowPrivate: boolean): void {
  const result = checkSubscriberUrl(url, { allowPrivate });
  if (!result.ok) {
    throw new ApiError("invalid_url", result.reason, {
      errors: [{ path: "url", message: result.reason }],
    });
  }
}

/** The compiled filter; throws `invalid_filter`, naming the position, when it does not compile. */
export function compileFilterOrThrow(source: string): CompiledFilter {
  const compiled = compileFilter(source);
  if (compiled.ok) return compiled.filter;
  const { message, position } = compiled.problem;
  const detail = `Filter does not compile at position ${position}: ${message}`;
  throw new ApiError("invalid_filter", detail, { errors: [{ path: "filter", message: detail }] });
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** The filter to store (null for "every message"); throws `invalid_filter` when it does not compile. */
export function normalizeFilter(filter: string | null | undefined): string | null {
  if (filter === undefined || filter === null || filter.trim() === "") return null;
  compileFilterOrThrow(filter);
  // A stored filter must read back as it compiled; D1 turns a lone surrogate into U+FFFD.
  const surrogate = filter.search(LONE_SURROGATE);
  if (surrogate !== -1) {
    const detail = `Filter cannot be stored: a lone surrogate at position ${surrogate}`;
    throw new ApiError("invalid_filter", detail, { errors: [{ path: "filter", message: detail }] });
  }
  return filter;
}
