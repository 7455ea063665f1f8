/**
 * Plain D1 statements for the hot paths: publishing, fan-out and delivery. There, drizzle's query
 * building cost more CPU than the statements themselves (BENCHMARKS.md, "End-to-end throughput"),
 * so these paths use fixed SQL text and the management API keeps the builder. A list is bound as
 * one JSON parameter and read back with `json_each`: a statement's parameter count does not grow
 * with its batch, so D1's 100 parameters never split one, and one statement serves any batch size.
 *
 * A bound value may hold at most 2 MB in production (local D1 does not check): lists that can grow
 * with a fan-out are split with {@link jsonChunks}.
 */

import { packBySize } from "./chunk";

/** The rows of a statement's result, typed as the statement's column aliases say. */
export function rowsOf<T>(result: D1Result<unknown> | undefined): T[] {
  return (result?.results ?? []) as T[];
}

/** A safe bound for one JSON parameter, well under D1's 2 MB per value. */
export const JSON_PARAMETER_MAX_CHARS = 1_000_000;

/**
 * Splits `items` into runs whose JSON list stays within `maxChars`, each run at least one item
 * long. `charsOf` is an item's length in the JSON, separators aside.
 */
export function jsonChunks<T>(
  items: readonly T[],
  charsOf: (item: T) => number,
  maxChars = JSON_PARAMETER_MAX_CHARS,
): T[][] {
  // Each item takes a comma; the brackets take two.
  return packBySize(items, (item) => charsOf(item) + 1, maxChars - 2);
}
